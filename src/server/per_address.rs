//! How many connections each client address holds, so that one address cannot take all of the
//! service's connections. An IPv6 client is counted by its /64 network, which a single host
//! usually has to itself; an IPv4 address mapped into IPv6 counts as the IPv4 address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct PerAddress {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One connection counted against its address until dropped.
pub struct AddressSlot {
    counts: Arc<PerAddress>,
    address: IpAddr,
}

impl PerAddress {
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `peer`, or `None` when its address holds the most.
    pub fn take(self: &Arc<Self>, peer: IpAddr) -> Option<AddressSlot> {
        let address = counted_as(peer);
        let mut open = self.open();
        let held = open.entry(address).or_insert(0);
        if *held >= self.max {
            return None;
        }
        *held += 1;
        Some(AddressSlot {
            counts: self.clone(),
            address,
        })
    }

    fn open(&self) -> MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn held(&self, peer: IpAddr) -> u32 {
        self.open().get(&counted_as(peer)).copied().unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open();
        if let Some(held) = open.get_mut(&self.address) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.address);
            }
        }
    }
}

fn counted_as(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_holds_at_most_its_share_until_it_closes_one() {
        let counts = PerAddress::new(2);
        let first = counts.take(ip("192.0.2.1")).unwrap();
        let _second = counts.take(ip("::ffff:192.0.2.1")).unwrap();
        assert!(counts.take(ip("192.0.2.1")).is_none());
        assert!(counts.take(ip("192.0.2.2")).is_some());
        drop(first);
        assert!(counts.take(ip("192.0.2.1")).is_some());
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_network() {
        let counts = PerAddress::new(1);
        let _held = counts.take(ip("2001:db8:1:2::1")).unwrap();
        assert!(counts.take(ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(counts.take(ip("2001:db8:1:3::1")).is_some());
    }

    #[test]
    fn closed_connections_leave_nothing_behind() {
        let counts = PerAddress::new(3);
        let slots: Vec<_> = (0..3)
            .map(|_| counts.take(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(counts.held(ip("192.0.2.1")), 3);
        drop(slots);
        assert!(counts.open().is_empty());
    }
}

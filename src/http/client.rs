//! The client's address, as the per-address limits (installs, sign-up, sign-in) see it.
//!
//! It is the connection's peer, unless that peer is one of `TALLY_TRUSTED_PROXIES`: then the
//! forwarding headers name the client. `Forwarded` (RFC 7239) is read when present, else
//! `X-Forwarded-For`, never one for lack of the other. The chain is walked from the right,
//! skipping trusted proxies, and the first untrusted address is the client: what a client writes
//! in those headers itself stands further left and is never believed. A hop that hides its
//! address (`for=unknown`, an obfuscated name, anything unreadable) ends the walk: the client is
//! then the nearest hop known to its right, at worst the peer itself.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::state::AppState;

/// The peer address of the connection, or `unknown` when the router runs without one (tests
/// driving it directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

/// The networks whose forwarding headers are believed; empty: none.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

/// One hop of a forwarding chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Address(IpAddr),
    /// A node that hides its address or names none readable: the chain cannot be followed
    /// past it.
    Unknown,
}

impl TrustedProxies {
    pub fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer`, by the rules of the module documentation.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let chain = if headers.contains_key("forwarded") {
            forwarded_for(headers)
        } else {
            x_forwarded_for(headers)
        };
        let mut nearest_known = peer;
        for hop in chain.iter().rev() {
            match *hop {
                Hop::Address(address) if self.trusts(address) => nearest_known = address,
                Hop::Address(address) => return address,
                Hop::Unknown => return nearest_known,
            }
        }
        // Every hop trusted: the leftmost is the farthest one known.
        nearest_known
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        TrustedProxies(state.config.trusted_proxies.clone())
    }
}

impl<S> FromRequestParts<S> for ClientAddress
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Self("unknown".to_owned()));
        };
        let client = TrustedProxies::from_ref(state).client_of(peer.ip(), &parts.headers);
        Ok(Self(client.to_string()))
    }
}

/// The `for=` nodes of every `Forwarded` header, in order; an element without `for=`, or a
/// header that is not text, is an unknown hop.
fn forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let mut chain = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(value) = value.to_str() else {
            chain.push(Hop::Unknown);
            continue;
        };
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then_some(value.trim())
            });
            chain.push(hop(node.map(|node| node.trim_matches('"'))));
        }
    }
    chain
}

/// The entries of every `X-Forwarded-For` header, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(value) => chain.extend(value.split(',').map(|node| hop(Some(node.trim())))),
            Err(_) => chain.push(Hop::Unknown),
        }
    }
    chain
}

fn hop(node: Option<&str>) -> Hop {
    node.and_then(parse_node).map_or(Hop::Unknown, Hop::Address)
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            let inner = node.strip_prefix('[')?.split(']').next()?;
            inner.parse().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::parse_trusted_proxy;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies(
            list.iter()
                .map(|e| parse_trusted_proxy(e).unwrap())
                .collect(),
        )
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let found = proxies(&["10.0.0.0/8"]).client_of(
            ip("203.0.113.9"),
            &headers(&[("x-forwarded-for", "1.2.3.4")]),
        );
        assert_eq!(found, ip("203.0.113.9"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        let spoofed = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 192.168.1.1")]);
        assert_eq!(
            trusted.client_of(ip("10.1.2.3"), &spoofed),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_accepts_ports_and_ipv6() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let both = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=http, for="[2001:db8::17]:4711""#,
            ),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(trusted.client_of(ip("10.0.0.1"), &both), ip("2001:db8::17"));
    }

    #[test]
    fn an_unknown_hop_ends_the_walk_at_the_nearest_hop_known() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        for (forwarded, client) in [
            ("for=unknown", "10.0.0.1"),
            ("for=unknown, for=198.51.100.7", "198.51.100.7"),
            ("for=198.51.100.7, for=_hidden, for=10.0.0.9", "10.0.0.9"),
            ("for=198.51.100.7, proto=https", "10.0.0.1"),
        ] {
            let both = headers(&[("forwarded", forwarded), ("x-forwarded-for", "203.0.113.1")]);
            assert_eq!(trusted.client_of(peer, &both), ip(client), "{forwarded}");
        }
        let garbled = headers(&[("x-forwarded-for", "198.51.100.7, junk, 10.0.0.9")]);
        assert_eq!(trusted.client_of(peer, &garbled), ip("10.0.0.9"));
    }

    #[test]
    fn an_unreadable_chain_leaves_the_proxy_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let garbled = headers(&[("x-forwarded-for", "not-an-address")]);
        assert_eq!(trusted.client_of(ip("10.0.0.1"), &garbled), ip("10.0.0.1"));
        assert_eq!(
            trusted.client_of(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn entries_are_networks_or_single_addresses() {
        assert!(parse_trusted_proxy("10.0.0.0/8").is_ok());
        assert!(parse_trusted_proxy(" 192.168.1.1 ").is_ok());
        assert!(parse_trusted_proxy("::1").is_ok());
        assert!(parse_trusted_proxy("proxy.internal").is_err());
    }
}

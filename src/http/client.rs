//! The client's address, as the per-address limits (installs, sign-up, sign-in) see it.
//!
//! It is the connection's peer, unless that peer is one of `TALLY_TRUSTED_PROXIES`: then the
//! forwarding headers name the client. `Forwarded` (RFC 7239) is read when present, else
//! `X-Forwarded-For`. Their entries are read from the right, skipping trusted proxies, and the
//! first untrusted address is the client: what a client writes in those headers itself stands
//! further left and is never believed. A header that cannot be read leaves the peer's address.

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

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer`, by the rules of the module documentation.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
        let Some(chain) = chain else { return peer };
        chain
            .iter()
            .rev()
            .find(|address| !self.trusts(**address))
            // Every hop trusted: the leftmost is the farthest one known.
            .or(chain.first())
            .copied()
            .unwrap_or(peer)
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

/// The `for=` addresses of every `Forwarded` header, in order; `None` when there is no such
/// header or one of its `for=` values is not an address (an obfuscated or unknown node: the
/// chain cannot be followed past it).
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all("forwarded") {
        let value = value.to_str().ok()?;
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then_some(value.trim())
            });
            if let Some(node) = node {
                chain.push(parse_node(node.trim_matches('"'))?);
            }
        }
    }
    (!chain.is_empty()).then_some(chain)
}

/// The addresses of every `X-Forwarded-For` header, in order; `None` when absent or unreadable.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for node in value.to_str().ok()?.split(',') {
            chain.push(parse_node(node.trim())?);
        }
    }
    (!chain.is_empty()).then_some(chain)
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
    use crate::config::parse_trusted_proxy;

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

//! Per-address limits behind a proxy: the forwarding headers name the client only when the
//! connection comes from one of `TALLY_TRUSTED_PROXIES`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use tally::cli::args::parse_trusted_proxy;
use tally::config::Config;

use crate::common::TestApp;

/// An install callback arriving from `peer`, forwarded for `client` when given.
async fn install_from(app: &TestApp, peer: &str, client: Option<&str>) -> StatusCode {
    let headers: Vec<(&str, &str)> = client
        .map(|client| vec![("x-forwarded-for", client)])
        .unwrap_or_default();
    install_with(app, peer, &headers).await
}

/// An install callback arriving from `peer` with these forwarding headers.
async fn install_with(app: &TestApp, peer: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut request =
        Request::post("/api/install-callback").header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::from("{}")).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    app.request(request).await.status
}

async fn app_trusting(proxies: &[&str]) -> TestApp {
    TestApp::with_config(Config {
        install_rate_limit_per_minute: 2,
        trusted_proxies: proxies
            .iter()
            .map(|p| parse_trusted_proxy(p).unwrap())
            .collect(),
        ..Config::default()
    })
    .await
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = app_trusting(&["10.0.0.0/8"]).await;
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            assert_eq!(
                install_from(&app, "10.0.0.5:4000", Some(client)).await,
                StatusCode::OK
            );
        }
    }
    assert_eq!(
        install_from(&app, "10.0.0.5:4000", Some("198.51.100.1")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client cannot escape its limit by writing its own header in front of the proxy's.
    assert_eq!(
        install_from(&app, "10.0.0.5:4000", Some("203.0.113.50, 198.51.100.2")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = app_trusting(&["10.0.0.0/8"]).await;
    let peer = "203.0.113.7:5000";
    assert_eq!(
        install_from(&app, peer, Some("198.51.100.1")).await,
        StatusCode::OK
    );
    assert_eq!(
        install_from(&app, peer, Some("198.51.100.2")).await,
        StatusCode::OK
    );
    // Both counted against the peer itself.
    assert_eq!(
        install_from(&app, peer, Some("198.51.100.3")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn without_trusted_proxies_the_peer_is_the_client() {
    let app = app_trusting(&[]).await;
    for client in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(
            install_from(&app, "10.0.0.5:4000", Some(client)).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        install_from(&app, "10.0.0.5:4000", Some("198.51.100.3")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn an_unknown_hop_in_forwarded_never_hands_over_to_x_forwarded_for() {
    let app = app_trusting(&["10.0.0.0/8"]).await;
    // The client writes both headers itself; the proxy passes them on.
    let mut statuses = Vec::new();
    for spoofed in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let headers = [("forwarded", "for=unknown"), ("x-forwarded-for", spoofed)];
        statuses.push(install_with(&app, "10.0.0.5:4000", &headers).await);
    }
    // Counted against the proxy, the nearest hop known, not against addresses of its choosing.
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn the_chain_is_walked_from_the_right_up_to_an_unknown_hop() {
    let app = app_trusting(&["10.0.0.0/8"]).await;
    // Obfuscated by a client in front of the proxy's own entry: the proxy's entry names it.
    let behind_obfuscation = [("forwarded", "for=unknown, for=198.51.100.20")];
    // A hop that hides its client, then a trusted proxy: the trusted proxy is the client known.
    let hidden = [("forwarded", "for=198.51.100.30, for=_hidden, for=10.0.0.7")];
    for _ in 0..2 {
        assert_eq!(
            install_with(&app, "10.0.0.5:4000", &behind_obfuscation).await,
            StatusCode::OK
        );
        assert_eq!(
            install_with(&app, "10.0.0.5:4000", &hidden).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        install_with(&app, "10.0.0.5:4000", &behind_obfuscation).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // 10.0.0.7 is spent; the address left of the hidden hop was never believed.
    let other_side = [("forwarded", "for=198.51.100.31, for=_hidden, for=10.0.0.7")];
    assert_eq!(
        install_with(&app, "10.0.0.5:4000", &other_side).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

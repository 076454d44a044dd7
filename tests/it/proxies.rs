//! Per-address limits behind a proxy: the forwarding headers name the client only when the
//! connection comes from one of `TALLY_TRUSTED_PROXIES`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use tally::config::{parse_trusted_proxy, Config};

use crate::common::TestApp;

/// An install callback arriving from `peer`, forwarded for `client` when given.
async fn install_from(app: &TestApp, peer: &str, client: Option<&str>) -> StatusCode {
    let mut request =
        Request::post("/api/install-callback").header("content-type", "application/json");
    if let Some(client) = client {
        request = request.header("x-forwarded-for", client);
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

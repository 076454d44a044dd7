//! The built-in web UI: the dashboard and GraphiQL, both from `web/static`, compiled into the
//! binary so that `tally serve` needs no files and no Node.js beside it. The dashboard routes its
//! screens in the browser, so every `/dashboard/...` path answers the same page.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::http::error::json_error;

#[derive(RustEmbed)]
#[folder = "web/static/"]
struct WebAssets;

/// URL prefix of every embedded file (`/assets/app.js` is `web/static/app.js`).
pub const ASSETS_PREFIX: &str = "/assets";

/// Scripts, styles and data only from this origin; nothing inline, so an injected `<script>`
/// or `style` attribute in rendered data does nothing.
const DASHBOARD_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// GraphiQL sets styles inline and carries its fonts as `data:` URLs; still nothing from
/// another origin.
const GRAPHIQL_CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// `GET /`, `GET /dashboard` and `GET /dashboard/*`: the dashboard's one page.
pub async fn index(headers: HeaderMap) -> Response {
    page("index.html", DASHBOARD_CSP, &headers)
}

/// `GET /graphql`: GraphiQL, against `POST /graphql`.
pub async fn graphiql(headers: HeaderMap) -> Response {
    page("graphiql.html", GRAPHIQL_CSP, &headers)
}

/// `GET /assets/*path`: one embedded file, or the usual 404 JSON. Pages are not assets: served
/// from here they would lack their Content-Security-Policy (and `frame-ancestors` with it), so
/// they are only served at their own paths, through `page`.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let is_page =
        WebAssets::get(&path).is_some_and(|file| file.metadata.mimetype().starts_with("text/html"));
    if is_page {
        return json_error(StatusCode::NOT_FOUND);
    }
    embedded(&path, &headers).unwrap_or_else(|| json_error(StatusCode::NOT_FOUND))
}

fn page(name: &str, csp: &'static str, headers: &HeaderMap) -> Response {
    let Some(mut response) = embedded(name, headers) else {
        tracing::error!(file = name, "page missing from the embedded web assets");
        return json_error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    response
}

/// The file with its content type and an ETag. Files keep their names from one release to the
/// next, so browsers revalidate them every time (`no-cache`), which costs a 304 when unchanged.
fn embedded(path: &str, headers: &HeaderMap) -> Option<Response> {
    let file = WebAssets::get(path)?;
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let body = if fresh {
        Body::empty()
    } else {
        Body::from(file.data.into_owned())
    };
    let content_type = match file.metadata.mimetype() {
        // Scripts and styles are text; say which text.
        mime if mime.starts_with("text/") || mime == "application/javascript" => {
            format!("{mime}; charset=utf-8")
        }
        mime => mime.to_owned(),
    };
    let mut response = (status, body).into_response();
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response_headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

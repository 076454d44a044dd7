//! Request methods: the ones HTTP defines for resources reach the routes (which answer 405 with
//! `Allow` for those they lack); any other method is refused with 501 before it is counted or
//! logged, so a client cannot grow `/metrics` or fill the log with methods of its own making.

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::error::json_error;

/// The methods that reach the routes, as they are named in metrics and logs: RFC 9110's (but
/// CONNECT), PATCH, and QUERY (a GET with a body, which API testers such as schemathesis try).
const KNOWN: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY",
];

/// The name of a method for a metric label or a log field: one of a fixed set, `other` for the
/// rest (which [`refuse_unknown_methods`] keeps from getting that far).
pub fn label(method: &Method) -> &'static str {
    KNOWN
        .iter()
        .find(|known| **known == method.as_str())
        .copied()
        .unwrap_or("other")
}

/// Answers a method outside the known set with 501 and a JSON body, before anything else.
pub async fn refuse_unknown_methods(request: Request, next: Next) -> Response {
    if label(request.method()) == "other" {
        return json_error(StatusCode::NOT_IMPLEMENTED);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_a_fixed_set() {
        assert_eq!(label(&Method::PATCH), "PATCH");
        assert_eq!(label(&Method::from_bytes(b"QUERY").unwrap()), "QUERY");
        assert_eq!(label(&Method::CONNECT), "other");
        let invented = Method::from_bytes("X".repeat(10_000).as_bytes()).unwrap();
        assert_eq!(label(&invented), "other");
        assert_eq!(label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}

//! Request ids: a client's own `x-request-id` is kept only when it is 1 to 64 characters of
//! `A-Za-z0-9._-`, so that it can stand in log lines and response headers as it came; any other
//! value is dropped here and replaced by a new UUID (`SetRequestIdLayer`, right after this).

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;

/// The header that carries a request's id, in requests and in responses.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id a client may choose.
pub const MAX_LEN: usize = 64;

/// Whether a client's request id is kept.
pub fn is_acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Drops a client's request id unless it is one acceptable value.
pub async fn drop_unacceptable(mut request: Request, next: Next) -> Response {
    let mut ids = request.headers().get_all(&REQUEST_ID).iter();
    let keep = match (ids.next(), ids.next()) {
        (None, _) => true,
        (Some(id), None) => is_acceptable(id.as_bytes()),
        // Several: which one the client meant is anyone's guess.
        (Some(_), Some(_)) => false,
    };
    if !keep {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::is_acceptable;

    #[test]
    fn short_ids_of_a_safe_alphabet_are_acceptable() {
        for id in ["a", "trace-me-123", "0f8e.AB_cd-9", &"x".repeat(64)] {
            assert!(is_acceptable(id.as_bytes()), "{id}");
        }
        for id in [
            "",
            "two words",
            "a=b",
            "quote\"",
            "é",
            "tab\t",
            &"x".repeat(65),
        ] {
            assert!(!is_acceptable(id.as_bytes()), "{id:?}");
        }
    }
}

//! The one reader of `Authorization: Bearer <token>`, shared by the REST routes (API keys) and
//! `/graphql` (JWTs), so both agree on what counts as a missing token and what as a bad one.

use axum::http::{header, HeaderMap};

/// Stands in for a token that is not ASCII. No API key or JWT contains it, so such a token is
/// refused like any other malformed one (`Invalid key`, `UNAUTHENTICATED`) instead of being
/// taken for a missing header.
const UNREADABLE: &str = "\u{FFFD}";

/// The token of an `Authorization: Bearer <token>` header (scheme in any case, blanks around the
/// token ignored). `None` only when there is no `Authorization` header or its scheme is not
/// `Bearer`; a token that is empty or not ASCII is still returned, to be refused as invalid.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = std::str::from_utf8(token.trim_ascii())
        .ok()
        .filter(|token| token.is_ascii());
    Some(token.unwrap_or(UNREADABLE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).unwrap(),
        );
        headers
    }

    #[test]
    fn reads_the_token_and_tells_missing_from_unreadable() {
        assert_eq!(bearer(&HeaderMap::new()), None);
        assert_eq!(bearer(&with(b"Basic dXNlcjpwdw==")), None);
        assert_eq!(bearer(&with(b"Bearer")), None);
        assert_eq!(bearer(&with(b"bEaReR  tly_abc ")), Some("tly_abc"));
        assert_eq!(bearer(&with(b"Bearer ")), Some(""));
        assert_eq!(bearer(&with("Bearer tly_é".as_bytes())), Some(UNREADABLE));
        assert_eq!(bearer(&with(b"Bearer tly_\xe9")), Some(UNREADABLE));
    }
}

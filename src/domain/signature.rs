//! Request signatures: `X-Tally-Signature: sha256=<hex>`, HMAC-SHA256 keyed with the API key over
//! the raw body bytes, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const SCHEME: &str = "sha256=";

/// Whether a request may pass: a present header must match; an absent one passes unless the key
/// requires signatures.
pub fn accepts(api_key: &str, body: &[u8], header: Option<&[u8]>, required: bool) -> bool {
    match header {
        None => !required,
        Some(value) => matches(api_key, body, value),
    }
}

fn matches(api_key: &str, body: &[u8], header: &[u8]) -> bool {
    let Ok(header) = std::str::from_utf8(header) else {
        return false;
    };
    let header = header.trim();
    let Some(hex_digest) = header
        .get(..SCHEME.len())
        .filter(|scheme| scheme.eq_ignore_ascii_case(SCHEME))
        .and_then(|_| header.get(SCHEME.len()..))
    else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(api_key.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The header value for `body` signed with `api_key` (what clients compute).
pub fn sign(api_key: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(api_key.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("{SCHEME}{}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_wrong_truncated_and_missing() {
        let body = br#"{"a":1}"#;
        let good = sign("tly_key", body);
        assert!(accepts("tly_key", body, Some(good.as_bytes()), true));
        assert!(!accepts("tly_other", body, Some(good.as_bytes()), false));
        assert!(!accepts(
            "tly_key",
            b"{\"a\": 1}",
            Some(good.as_bytes()),
            false
        ));
        assert!(!accepts(
            "tly_key",
            body,
            Some(&good.as_bytes()[..20]),
            false
        ));
        assert!(!accepts("tly_key", body, Some(b""), false));
        assert!(!accepts(
            "tly_key",
            body,
            Some(&good.as_bytes()[7..]),
            false
        ));
        assert!(accepts("tly_key", body, None, false));
        assert!(!accepts("tly_key", body, None, true));
    }
}

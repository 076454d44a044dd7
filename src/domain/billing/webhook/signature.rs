//! The `Stripe-Signature` header: the provider signs each delivery's timestamp and body with the
//! endpoint's secret, so a delivery we did not get from it, or an old one replayed, is refused.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::error::{messages, BadInputReason, DomainError, DomainResult};

/// How far the signed timestamp may be from our clock, either way.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// The parts of a `Stripe-Signature` header: `t=<unix>,v1=<hex>[,v1=<hex>...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The timestamp exactly as sent: it is part of the signed payload.
    pub timestamp: String,
    pub timestamp_secs: i64,
    /// Every `v1` signature that is valid hex; other schemes (`v0`) are ignored.
    pub signatures: Vec<Vec<u8>>,
}

/// Parses a `Stripe-Signature` header; `None` when it has no timestamp or no `v1` signature.
pub fn parse_signature_header(header: &str) -> Option<SignatureHeader> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if timestamp.is_none() => timestamp = Some(value.to_owned()),
            "v1" => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp?;
    let timestamp_secs = timestamp.parse::<i64>().ok()?;
    if signatures.is_empty() {
        return None;
    }
    Some(SignatureHeader {
        timestamp,
        timestamp_secs,
        signatures,
    })
}

fn invalid_signature() -> DomainError {
    DomainError::bad_input_because(
        BadInputReason::InvalidSignature,
        messages::INVALID_SIGNATURE,
    )
}

/// Checks that `body` was signed with `secret` less than [`SIGNATURE_TOLERANCE_SECS`] from `now`.
/// Any one matching `v1` signature is enough (the provider sends several while a secret is being
/// rolled). Comparisons are constant-time.
pub fn verify_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let parsed = header
        .and_then(parse_signature_header)
        .ok_or_else(invalid_signature)?;
    let age = now.timestamp().saturating_sub(parsed.timestamp_secs);
    if age.abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(invalid_signature());
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(DomainError::internal)?;
    mac.update(parsed.timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = parsed
        .signatures
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if matches {
        Ok(())
    } else {
        Err(invalid_signature())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn sign(secret: &[u8], t: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn parses_timestamp_and_every_v1_signature() {
        let parsed = parse_signature_header("t=1700000000, v1=abcd,v0=ffff,v1=0102,v1=zz").unwrap();
        assert_eq!(parsed.timestamp, "1700000000");
        assert_eq!(parsed.timestamp_secs, 1_700_000_000);
        assert_eq!(parsed.signatures, vec![vec![0xab, 0xcd], vec![0x01, 0x02]]);
    }

    #[test]
    fn rejects_headers_without_timestamp_or_v1() {
        assert_eq!(parse_signature_header(""), None);
        assert_eq!(parse_signature_header("v1=abcd"), None);
        assert_eq!(parse_signature_header("t=123"), None);
        assert_eq!(parse_signature_header("t=123,v0=abcd"), None);
        assert_eq!(parse_signature_header("t=soon,v1=abcd"), None);
        assert_eq!(parse_signature_header("t=123,v1=not-hex"), None);
    }

    #[test]
    fn verifies_within_the_tolerance_only() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let body = br#"{"id":"evt_1"}"#;
        let t = "1700000000";
        let header = format!("t={t},v1={}", sign(b"whsec", t, body));
        assert!(verify_signature(b"whsec", Some(&header), body, now).is_ok());
        assert!(verify_signature(b"other", Some(&header), body, now).is_err());
        assert!(verify_signature(b"whsec", Some(&header), b"{}", now).is_err());
        assert!(verify_signature(b"whsec", None, body, now).is_err());
        let later = now + Duration::seconds(SIGNATURE_TOLERANCE_SECS);
        assert!(verify_signature(b"whsec", Some(&header), body, later).is_ok());
        let too_late = later + Duration::seconds(1);
        assert!(verify_signature(b"whsec", Some(&header), body, too_late).is_err());
    }
}

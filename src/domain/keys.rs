//! API keys: the `tly_` format with its CRC-32 checksum, SHA-256 digests at rest, and the lookup
//! (digest → key, account, plan) that ingestion uses on every request.
//!
//! A key is `tly_` + 30 base62 random characters + 6 base62 characters of checksum. The checksum
//! lets a secret scanner recognise a real key offline, and lets us reject a mistyped or made-up
//! key before any database work.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::domain::error::{DomainError, DomainResult};
use crate::entity::{account, api_key, plan};

pub const KEY_PREFIX: &str = "tly_";
const RANDOM_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
pub const KEY_LEN: usize = KEY_PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
/// Longest wait for the database on a key cache miss.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(800);
/// How many random characters the display prefix shows after `tly_`.
const DISPLAY_RANDOM_CHARS: usize = 8;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// SHA-256 of a whole key: how a key is stored and looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest(pub [u8; 32]);

impl KeyDigest {
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

/// A freshly made key. `plaintext` is shown to its owner once and then forgotten.
pub struct NewKey {
    pub plaintext: String,
    pub digest: KeyDigest,
    pub prefix: String,
}

pub fn generate() -> NewKey {
    let mut rng = rand::rng();
    let random: String = (0..RANDOM_LEN)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect();
    let plaintext = format!("{KEY_PREFIX}{random}{}", checksum(&random));
    NewKey {
        digest: KeyDigest::of(&plaintext),
        prefix: format!("{KEY_PREFIX}{}", &random[..DISPLAY_RANDOM_CHARS]),
        plaintext,
    }
}

/// CRC-32 (IEEE) of the random part, in base62, most significant digit first, padded to 6.
pub fn checksum(random: &str) -> String {
    let mut value = crc32fast::hash(random.as_bytes()) as u64;
    let mut digits = [b'0'; CHECKSUM_LEN];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    // CRC-32 < 62^6, so six digits always hold it.
    String::from_utf8_lossy(&digits).into_owned()
}

/// The digest of `candidate` when it is a well-formed key with a valid checksum.
pub fn parse(candidate: &str) -> Option<KeyDigest> {
    if candidate.len() != KEY_LEN || !candidate.starts_with(KEY_PREFIX) {
        return None;
    }
    let body = &candidate[KEY_PREFIX.len()..];
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (random, check) = body.split_at(RANDOM_LEN);
    (checksum(random) == check).then(|| KeyDigest::of(candidate))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

/// A key's status at `now`. A rotated key stays active until its grace period ends.
pub fn status(
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> KeyStatus {
    if revoked_at.is_some_and(|at| at <= now) {
        KeyStatus::Revoked
    } else if expires_at.is_some_and(|at| at <= now) {
        KeyStatus::Expired
    } else {
        KeyStatus::Active
    }
}

/// A key together with what it takes to judge a request made with it.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    pub api_key: api_key::Model,
    pub account: account::Model,
    pub plan: plan::Model,
}

impl ResolvedKey {
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        status(self.api_key.expires_at, self.api_key.revoked_at, now)
    }
}

/// Digest → key lookups served from memory. Changes are applied to it through
/// [`Invalidation`](crate::domain::invalidation::Invalidation), on every instance; entries live
/// at most `ttl`, which bounds how late this instance sees a change whose announcement was lost.
#[derive(Clone)]
pub struct KeyCache {
    /// One cell per digest, filled once by whichever request asks first: the requests that ask
    /// meanwhile wait for that one load instead of each querying the database (a hot key whose
    /// entry expired, or a cold start under load, would otherwise send one lookup per request).
    entries: moka::sync::Cache<KeyDigest, Arc<OnceCell<Option<Arc<ResolvedKey>>>>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The key with this digest, its account and plan; `None` when no such key exists.
    pub async fn lookup(
        &self,
        db: &DatabaseConnection,
        digest: KeyDigest,
    ) -> DomainResult<Option<Arc<ResolvedKey>>> {
        let cell = self.entries.get_with(digest, Default::default);
        if let Some(hit) = cell.get() {
            return Ok(hit.clone());
        }
        // Bounded: a database whose connections hang must not hold the request (503 instead).
        // A failed load leaves the cell empty, so a later request tries again.
        let load = cell.get_or_try_init(|| async { Ok(load(db, digest).await?.map(Arc::new)) });
        tokio::time::timeout(LOOKUP_TIMEOUT, load)
            .await
            .map_err(|_| {
                DomainError::unavailable(format!(
                    "looking up an API key: no answer from the database within {LOOKUP_TIMEOUT:?}"
                ))
            })?
            .cloned()
    }

    pub fn forget(&self, digest: KeyDigest) {
        self.entries.invalidate(&digest);
    }

    /// Drops every entry: used when a plan or an account's plan changes, so the next request
    /// reads the new limits.
    pub fn forget_all(&self) {
        self.entries.invalidate_all();
    }
}

async fn load(db: &DatabaseConnection, digest: KeyDigest) -> DomainResult<Option<ResolvedKey>> {
    let Some(key) = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(digest.to_hex()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(account) = account::Entity::find_by_id(key.account_id.clone())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(plan) = plan::Entity::find_by_id(account.plan_code.clone())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ResolvedKey {
        api_key: key,
        account,
        plan,
    }))
}

/// Parses a `digest` stored as hex back into a digest, for cache invalidation.
pub fn digest_from_hex(hex_digest: &str) -> Option<KeyDigest> {
    let bytes = hex::decode(hex_digest).ok()?;
    Some(KeyDigest(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_contract_format() {
        let key = generate();
        assert_eq!(key.plaintext.len(), 40);
        assert!(key.plaintext.starts_with("tly_"));
        assert_eq!(key.prefix, key.plaintext[..12]);
        assert_eq!(parse(&key.plaintext), Some(key.digest));
    }

    #[test]
    fn checksum_is_crc32_in_padded_base62() {
        // crc32("") == 0
        assert_eq!(checksum(""), "000000");
        // crc32("123456789") is the IEEE check value 0xCBF43926 = 3421780262, which is
        // 3·62⁵ + 45·62⁴ + 35·62³ + 27·62² + 22·62 + 14 in base 62: "3jZRME".
        assert_eq!(checksum("123456789"), "3jZRME");
    }

    #[test]
    fn a_key_with_a_known_checksum_parses() {
        // crc32("abcdefghijABCDEFGHIJ0123456789") in base 62 is "2C2O59".
        assert!(parse("tly_abcdefghijABCDEFGHIJ01234567892C2O59").is_some());
        assert!(parse("tly_abcdefghijABCDEFGHIJ01234567892C2O5A").is_none());
    }

    #[test]
    fn a_changed_character_breaks_the_checksum() {
        let key = generate().plaintext;
        let mut bytes = key.into_bytes();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(parse(&tampered), None);
        assert_eq!(parse("tly_short"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn status_follows_revocation_then_expiry() {
        let now = Utc::now();
        let past = now - chrono::Duration::seconds(1);
        let future = now + chrono::Duration::seconds(60);
        assert_eq!(status(None, None, now), KeyStatus::Active);
        assert_eq!(status(Some(past), None, now), KeyStatus::Expired);
        assert_eq!(status(Some(past), Some(past), now), KeyStatus::Revoked);
        assert_eq!(status(None, Some(future), now), KeyStatus::Active);
    }
}

//! Passwords (argon2id with OWASP's parameters, hashed off the async runtime, a few at a time
//! for requests), JWTs (HS256, algorithm pinned, `iss`/`aud`/`exp`/`nbf` checked against the
//! service's clock) and the sign-in rate limits.

use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm as ArgonAlgorithm, Argon2, Params, Version};
use chrono::{DateTime, Utc};
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::Clock;
use crate::domain::error::{Context, DomainError, DomainResult, UnauthenticatedReason};
use crate::domain::login_failures::{Attempt, LoginFailures};
use crate::domain::ratelimit::ServiceClock;

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 128;
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// OWASP's first argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(ArgonAlgorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password for a new user, at once (the command line, the first admin); requests
/// take turns through [`PasswordWork`].
pub async fn hash_password(password: String) -> DomainResult<String> {
    on_blocking_thread("password hashing task", move || hash_now(&password)).await
}

/// Checks `password` against a stored hash. With no hash (unknown e-mail) it still does the
/// work of one check, so that timing does not tell which e-mails exist.
pub async fn verify_password(password: String, stored: Option<String>) -> DomainResult<bool> {
    on_blocking_thread("password verification task", move || {
        verify_now(&password, stored)
    })
    .await
}

/// At most this many argon2 hashes or checks run at once by default: one per core, and never
/// more than four, as each holds 19 MiB while it runs.
pub fn default_hashing_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4)
}

/// Password work for requests (sign-up, sign-in), a few at a time: each hash or check holds
/// 19 MiB and a core while it runs, so a flood of sign-ins would otherwise take gigabytes and
/// every core. A request waits its turn up to `queue_timeout`, then is refused with
/// `RateLimited` (retry in a second).
#[derive(Clone)]
pub struct PasswordWork {
    turns: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl PasswordWork {
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
        }
    }

    pub async fn hash(&self, password: String) -> DomainResult<String> {
        let turn = self.wait_for_turn().await?;
        on_blocking_thread("password hashing task", move || {
            // Held by the work itself: an abandoned request does not free its turn early.
            let _turn = turn;
            hash_now(&password)
        })
        .await
    }

    /// [`verify_password`], in turn.
    pub async fn verify(&self, password: String, stored: Option<String>) -> DomainResult<bool> {
        let turn = self.wait_for_turn().await?;
        on_blocking_thread("password verification task", move || {
            let _turn = turn;
            verify_now(&password, stored)
        })
        .await
    }

    async fn wait_for_turn(&self) -> DomainResult<OwnedSemaphorePermit> {
        match tokio::time::timeout(self.queue_timeout, self.turns.clone().acquire_owned()).await {
            Ok(Ok(turn)) => Ok(turn),
            Ok(Err(closed)) => Err(DomainError::internal(anyhow::anyhow!(
                "password work semaphore: {closed}"
            ))),
            Err(_) => Err(DomainError::RateLimited {
                message: "Too many password checks are running; try again in a moment".to_owned(),
                retry_after_secs: 1,
            }),
        }
    }
}

async fn on_blocking_thread<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> DomainResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context_internal(what)?
        .map_err(DomainError::internal)
}

fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("argon2 hashing failed: {err}"))
}

fn verify_now(password: &str, stored: Option<String>) -> anyhow::Result<bool> {
    let known_user = stored.is_some();
    let hash = stored.unwrap_or_else(|| decoy_hash().to_owned());
    let parsed = PasswordHash::new(&hash)
        .map_err(|err| anyhow::anyhow!("stored password hash unreadable: {err}"))?;
    let matches = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(matches && known_user)
}

fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"decoy password that nobody has", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

pub fn validate_password(password: &str) -> DomainResult<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(DomainError::bad_field(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if chars > MAX_PASSWORD_LEN {
        return Err(DomainError::bad_field(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Not valid before this instant. Issued tokens carry `nbf` = `iat`; tokens issued before it
    /// was added have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Who issues a token, for whom, and for how long.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub ttl: Duration,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], settings: TokenSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        // `exp` and `nbf` are checked in `verify` against the service's clock rather than the
        // wall clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer,
            audience: settings.audience,
            ttl: settings.ttl,
        }
    }

    pub fn issue(&self, user_id: &str, now: DateTime<Utc>) -> DomainResult<String> {
        let claims = Claims {
            sub: user_id.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            exp: now.timestamp() + self.ttl.as_secs() as i64,
            nbf: Some(now.timestamp()),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context_internal("signing a JWT")
    }

    /// The user id in a token that is valid at `now`. Every failure reads the same to the client.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> DomainResult<String> {
        let rejected = || {
            DomainError::unauthenticated(
                UnauthenticatedReason::InvalidCredentials,
                "Invalid or expired token",
            )
        };
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| {
                tracing::debug!(error = %err, "rejected JWT");
                rejected()
            })?
            .claims;
        let now = now.timestamp();
        if claims.exp <= now || claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(rejected());
        }
        Ok(claims.sub)
    }
}

type KeyedLimiter =
    RateLimiter<String, DashMapStateStore<String>, ServiceClock, NoOpMiddleware<Nanos>>;

/// Limits on `login` and `signUp`: attempts per client address (both together), and failed
/// `login`s per e-mail and client address with a per-e-mail backstop ([`LoginFailures`]).
pub struct AuthLimiter {
    per_address: KeyedLimiter,
    failures: LoginFailures,
    clock: ServiceClock,
}

impl AuthLimiter {
    pub fn new(
        per_address_per_minute: u32,
        failures: FailureLimits,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let failures = LoginFailures::new(
            failures.per_email_and_address_per_minute,
            failures.per_email_per_minute,
            clock.clone(),
        );
        let clock = ServiceClock(clock);
        let quota = Quota::per_minute(
            NonZeroU32::new(per_address_per_minute.max(1)).unwrap_or(NonZeroU32::MIN),
        );
        Self {
            per_address: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            failures,
            clock,
        }
    }

    pub fn check_address(&self, address: &str) -> DomainResult<()> {
        self.per_address
            .check_key(&address.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                too_many_attempts(wait.as_secs() + 1)
            })
    }

    /// Before a password is checked: refuses an e-mail (normalised) that failed too often from
    /// this address, or from everywhere, in the last minute. The attempt counts as a failure
    /// unless it is forgotten (the password was right).
    pub fn begin_login(&self, email: &str, address: &str) -> DomainResult<Attempt<'_>> {
        self.failures
            .begin(email, address)
            .map_err(too_many_attempts)
    }

    /// Forgets addresses and e-mails whose budget is full again, so memory stays bounded.
    pub fn shrink(&self) {
        self.per_address.retain_recent();
        self.failures.shrink();
    }
}

/// Failed `login`s allowed a minute: per (e-mail, client address), and per e-mail from all
/// addresses together.
#[derive(Debug, Clone, Copy)]
pub struct FailureLimits {
    pub per_email_and_address_per_minute: u32,
    pub per_email_per_minute: u32,
}

fn too_many_attempts(retry_after_secs: u64) -> DomainError {
    DomainError::RateLimited {
        message: "Too many attempts, try again later".to_owned(),
        retry_after_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!verify_password("wrong horse".into(), Some(hash))
            .await
            .unwrap());
        assert!(
            !verify_password("decoy password that nobody has".into(), None)
                .await
                .unwrap()
        );
    }
}

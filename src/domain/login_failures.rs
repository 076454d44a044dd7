//! Failed sign-ins, counted over the last minute per (e-mail, client address) and per e-mail (a
//! backstop well above the first), so that wrong passwords from one address lock that address
//! out of an account, never the account's user at another address.
//!
//! governor's limiters take a cell on every check; here a failure is only known after the
//! password has been checked, yet the limit must be checked before, and a correct password
//! must cost nothing. So each sign-in reserves a failure up front (concurrent guesses cannot
//! overshoot the limit) and gives it back when the password was right.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;

/// The window over which failures are counted.
const WINDOW: Duration = Duration::seconds(60);
/// E-mails are keyed by at most this many characters: no address is longer, and a client must
/// not make the limiter hold megabytes per guess.
const MAX_EMAIL_KEY_CHARS: usize = 320;

pub struct LoginFailures {
    per_email_and_address: usize,
    per_email: usize,
    clock: Arc<dyn Clock>,
    recent: Mutex<Recent>,
}

/// When each failure counted in the window happened, oldest first.
#[derive(Default)]
struct Recent {
    by_email_and_address: HashMap<(String, String), VecDeque<DateTime<Utc>>>,
    by_email: HashMap<String, VecDeque<DateTime<Utc>>>,
}

/// A sign-in under way: it counts as a failure unless [`Attempt::forget`] takes it back
/// (also when the request is abandoned while the password is being checked).
#[must_use = "an attempt counts as a failure unless forgotten"]
pub struct Attempt<'a> {
    failures: &'a LoginFailures,
    email: String,
    address: String,
    at: DateTime<Utc>,
}

impl LoginFailures {
    pub fn new(per_email_and_address: u32, per_email: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            per_email_and_address: per_email_and_address.max(1) as usize,
            per_email: per_email.max(1) as usize,
            clock,
            recent: Mutex::new(Recent::default()),
        }
    }

    /// Reserves a failure for a sign-in as `email` (normalised by the caller) from `address`,
    /// or refuses with the seconds until one of the limits has room again.
    pub fn begin(&self, email: &str, address: &str) -> Result<Attempt<'_>, u64> {
        let email: String = email.chars().take(MAX_EMAIL_KEY_CHARS).collect();
        let now = self.clock.now();
        let mut guard = self.recent();
        let recent = &mut *guard;
        let pair = recent
            .by_email_and_address
            .entry((email.clone(), address.to_owned()))
            .or_default();
        forget_before(pair, now);
        if pair.len() >= self.per_email_and_address {
            return Err(seconds_until_room(pair, now));
        }
        let all = recent.by_email.entry(email.clone()).or_default();
        forget_before(all, now);
        if all.len() >= self.per_email {
            return Err(seconds_until_room(all, now));
        }
        all.push_back(now);
        pair.push_back(now);
        Ok(Attempt {
            failures: self,
            email,
            address: address.to_owned(),
            at: now,
        })
    }

    /// Forgets e-mails and addresses with no failure in the window, so memory stays bounded.
    pub fn shrink(&self) {
        let now = self.clock.now();
        let mut recent = self.recent();
        recent.by_email_and_address.retain(|_, times| {
            forget_before(times, now);
            !times.is_empty()
        });
        recent.by_email.retain(|_, times| {
            forget_before(times, now);
            !times.is_empty()
        });
    }

    fn recent(&self) -> MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Attempt<'_> {
    /// The password was right (or never checked): this attempt is no failure.
    pub fn forget(self) {
        let mut recent = self.failures.recent();
        let key = (self.email.clone(), self.address.clone());
        if let Some(times) = recent.by_email_and_address.get_mut(&key) {
            remove_one(times, self.at);
        }
        if let Some(times) = recent.by_email.get_mut(&self.email) {
            remove_one(times, self.at);
        }
    }
}

fn forget_before(times: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>) {
    while times.front().is_some_and(|&at| at <= now - WINDOW) {
        times.pop_front();
    }
}

/// Seconds until the oldest failure leaves the window, rounded up.
fn seconds_until_room(times: &VecDeque<DateTime<Utc>>, now: DateTime<Utc>) -> u64 {
    let oldest = times.front().copied().unwrap_or(now);
    let wait = (oldest + WINDOW - now).num_milliseconds().max(0) as u64;
    wait.div_ceil(1000).max(1)
}

fn remove_one(times: &mut VecDeque<DateTime<Utc>>, at: DateTime<Utc>) {
    if let Some(index) = times.iter().rposition(|&t| t == at) {
        times.remove(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    fn failures(per_pair: u32, per_email: u32) -> (LoginFailures, ManualClock) {
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        (
            LoginFailures::new(per_pair, per_email, Arc::new(clock.clone())),
            clock,
        )
    }

    #[test]
    fn failures_count_per_email_and_address_and_successes_not_at_all() {
        let (failures, clock) = failures(2, 100);
        for _ in 0..5 {
            failures.begin("a@x", "1.1.1.1").unwrap().forget();
        }
        drop(failures.begin("a@x", "1.1.1.1").unwrap());
        clock.advance(Duration::seconds(20));
        drop(failures.begin("a@x", "1.1.1.1").unwrap());
        assert_eq!(failures.begin("a@x", "1.1.1.1").err(), Some(40));
        assert!(failures.begin("a@x", "2.2.2.2").is_ok());
        assert!(failures.begin("b@x", "1.1.1.1").is_ok());
        clock.advance(Duration::seconds(40));
        assert!(failures.begin("a@x", "1.1.1.1").is_ok());
    }

    #[test]
    fn the_per_email_backstop_covers_every_address() {
        let (failures, _) = failures(2, 3);
        for address in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
            drop(failures.begin("a@x", address).unwrap());
        }
        assert!(failures.begin("a@x", "4.4.4.4").is_err());
        assert!(failures.begin("b@x", "4.4.4.4").is_ok());
    }

    #[test]
    fn shrinking_forgets_what_left_the_window() {
        let (failures, clock) = failures(2, 3);
        drop(failures.begin("a@x", "1.1.1.1").unwrap());
        clock.advance(Duration::seconds(61));
        failures.shrink();
        let recent = failures.recent();
        assert!(recent.by_email.is_empty() && recent.by_email_and_address.is_empty());
    }
}

//! What a limiter answers — the minute window the `RateLimit` header reports and whether a
//! request may pass — shared by the in-memory limiters and the Redis-backed ones.

/// The minute window as the `RateLimit` header reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteWindow {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window is full again; for a refused request, until the next request is
    /// allowed (the `Retry-After`), so that the headers name one wait.
    pub reset_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed(MinuteWindow),
    /// `retry_after_secs` is rounded up: a retry that late is allowed.
    Limited {
        window: MinuteWindow,
        retry_after_secs: u64,
    },
}

/// Nanoseconds as whole seconds, rounded up: a client waiting that long is never early.
pub(super) fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

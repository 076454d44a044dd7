//! The billing provider's webhook (Stripe-compatible): checking the `Stripe-Signature` header
//! ([`signature`]), reading the event ([`event`]) and applying it to its account ([`apply`]) —
//! each event once, and never an older event over a newer one.
//!
//! Plan changes made here reach ingestion on this instance at once (the key cache is emptied after
//! the commit). Other instances keep serving the old plan from their key cache for at most its
//! time to live (`TALLY_KEY_CACHE_TTL_SECONDS`, 5 s by default).

pub mod apply;
pub mod event;
pub mod signature;

pub use apply::{apply_event, prune_processed_events, Outcome, PROCESSED_EVENT_RETENTION_DAYS};
pub use event::{parse_event, Event, Ignored};
pub use signature::{verify_signature, SIGNATURE_TOLERANCE_SECS};

//! The caller of an ingestion route once its key is known to be valid, and what every route
//! derives from it: the body's signature check and the event fields the key fixes.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::deadline::Deadline;
use crate::domain::error::{messages, DomainError, DomainResult, ForbiddenReason};
use crate::domain::keys::ResolvedKey;
use crate::domain::recorder::{EventKind, NewEvent};
use crate::domain::signature;

/// A request's key, once it is known to be valid for the route.
pub struct Caller {
    /// The key with its account and plan, as the key cache holds them.
    pub resolved: Arc<ResolvedKey>,
    /// The key as sent: it signs request bodies.
    pub plaintext: String,
    pub expired: bool,
    /// Until when the request may wait on the database, from its authentication on.
    pub deadline: Deadline,
}

impl Caller {
    /// The id of the caller's API key.
    pub fn key_id(&self) -> &str {
        &self.resolved.api_key.id
    }

    /// The account the key belongs to.
    pub fn account_id(&self) -> &str {
        &self.resolved.account.id
    }
}

pub(super) fn check_signature(
    caller: &Caller,
    body: &[u8],
    header: Option<&[u8]>,
) -> DomainResult<()> {
    if signature::accepts(
        &caller.plaintext,
        body,
        header,
        caller.resolved.api_key.require_signature,
    ) {
        Ok(())
    } else {
        Err(DomainError::forbidden(
            ForbiddenReason::InvalidSignature,
            messages::INVALID_SIGNATURE,
        ))
    }
}

pub(super) fn base_event(caller: &Caller, kind: EventKind, now: DateTime<Utc>) -> NewEvent {
    NewEvent {
        api_key_id: Some(caller.key_id().to_owned()),
        expired_key: caller.expired,
        ..NewEvent::new(Some(caller.account_id().to_owned()), kind, now)
    }
}

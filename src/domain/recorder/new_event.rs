//! What the recorder is handed and answers: the events to store, their kinds, and what became of
//! each one.

use chrono::{DateTime, Utc};

use crate::domain::periods::BillingPeriod;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    ApiCall,
    ToolCall,
    Install,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ApiCall => "API_CALL",
            EventKind::ToolCall => "TOOL_CALL",
            EventKind::Install => "INSTALL",
        }
    }
}

/// An event to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub account_id: Option<String>,
    pub api_key_id: Option<String>,
    pub kind: EventKind,
    /// Ignored (stored as NULL) without an account: idempotency is per account.
    pub event_id: Option<String>,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub status_code: Option<i32>,
    pub response_time_ms: Option<i64>,
    pub skill_id: Option<String>,
    pub tool_name: Option<String>,
    pub hook_event: Option<String>,
    pub input_snippet: Option<String>,
    pub output_snippet: Option<String>,
    /// JSON text.
    pub metadata: Option<String>,
    /// Calls counted against the quota of `period`.
    pub cost: i64,
    /// The billing period that contains `occurred_at` (required when `cost > 0`).
    pub period: Option<BillingPeriod>,
    pub expired_key: bool,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// A finished call report: may complete a call recorded earlier (by verify) with this id.
    pub completes: bool,
}

impl NewEvent {
    /// An event of `kind` at `at` with nothing else known yet: no key, id or details, no period,
    /// received when it occurred; it costs one call, or none for an install.
    pub fn new(account_id: Option<String>, kind: EventKind, at: DateTime<Utc>) -> Self {
        Self {
            account_id,
            api_key_id: None,
            kind,
            event_id: None,
            endpoint: None,
            method: None,
            status_code: None,
            response_time_ms: None,
            skill_id: None,
            tool_name: None,
            hook_event: None,
            input_snippet: None,
            output_snippet: None,
            metadata: None,
            cost: i64::from(kind != EventKind::Install),
            period: None,
            expired_key: false,
            occurred_at: at,
            received_at: at,
            completes: false,
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and counted.
    Accepted,
    /// Completed an earlier verified call; counted nothing new.
    Completed,
    /// Its id was already recorded for the account; nothing stored.
    Duplicate,
}

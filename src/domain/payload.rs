//! The bodies of the ingestion routes: parsed from raw bytes whatever the `Content-Type`, then
//! checked field by field so that a client learns everything wrong at once.
//!
//! Bytes that are not JSON (invalid UTF-8 included) are "Invalid JSON"; JSON that breaks a rule —
//! a wrong type, a missing field, a length — is "Invalid payload" with `details` per field.
//! Unknown fields are ignored; `null` counts as absent, and so does an optional string of
//! `/api/track` sent empty. Text fields must be storable as they are on every backend: PostgreSQL
//! `text` cannot hold a NUL character (SQLite can), so a NUL is refused here, on both backends
//! alike, rather than failing the database write.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::domain::error::{messages, BadInputReason, DomainError};

/// How far in the future a client's `ts` may lie (clock skew).
pub const MAX_FUTURE: Duration = Duration::minutes(5);
/// How old a client's `ts` may be.
pub const MAX_AGE: Duration = Duration::days(35);
pub const MAX_BATCH: usize = 1_000;
pub const MAX_COST: i64 = 1_000;

// The longest strings a client may send, in characters; the OpenAPI document states the same
// (`http::openapi` checks it).
/// A `skill_id` or a `tool_name`.
pub const MAX_NAME_LEN: usize = 200;
pub const MAX_HOOK_EVENT_LEN: usize = 100;
/// A tool's input or output snippet.
pub const MAX_SNIPPET_LEN: usize = 1_000;
pub const MAX_EVENT_ID_LEN: usize = 128;
pub const MAX_ENDPOINT_LEN: usize = 500;
pub const MAX_METHOD_LEN: usize = 16;
/// An install's `platform` or `version`.
pub const MAX_INSTALL_LABEL_LEN: usize = 50;
pub const MIN_STATUS_CODE: i64 = 100;
pub const MAX_STATUS_CODE: i64 = 599;
/// A day.
pub const MAX_RESPONSE_TIME_MS: i64 = 86_400_000;

type Problems = BTreeMap<String, Vec<String>>;

/// Parses bytes as JSON; an empty body reads as `{}` when `empty_is_object`.
pub fn parse_json(body: &[u8], empty_is_object: bool) -> Result<Value, DomainError> {
    if empty_is_object && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body).map_err(|_| DomainError::invalid_json())
}

fn invalid(problems: Problems) -> DomainError {
    DomainError::BadInput {
        reason: BadInputReason::InvalidPayload,
        message: messages::INVALID_PAYLOAD.to_owned(),
        fields: problems,
    }
}

/// Reads the fields of one JSON object, collecting problems under `prefix`.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: String,
    problems: &'a mut Problems,
}

impl<'a> Fields<'a> {
    fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems
            .entry(format!("{}{field}", self.prefix))
            .or_default()
            .push(message.into());
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    fn string(&mut self, field: &str, required: bool, max_chars: usize) -> Option<String> {
        let Some(value) = self.present(field) else {
            if required {
                self.problem(field, "is required");
            }
            return None;
        };
        let Some(text) = value.as_str() else {
            self.problem(field, "must be a string");
            return None;
        };
        let chars = text.chars().count();
        if chars == 0 || chars > max_chars {
            self.problem(field, format!("must be 1 to {max_chars} characters"));
            return None;
        }
        if !storable(text) {
            self.problem(field, "must not contain NUL characters");
            return None;
        }
        Some(text.to_owned())
    }

    /// An optional string that counts as absent when sent empty: hooks fill in a field they
    /// have no value for with `""`, and the tool use must not be lost over it.
    fn blank_or_string(&mut self, field: &str, max_chars: usize) -> Option<String> {
        if self.present(field).and_then(Value::as_str) == Some("") {
            return None;
        }
        self.string(field, false, max_chars)
    }

    fn integer(&mut self, field: &str, required: bool, min: i64, max: i64) -> Option<i64> {
        let Some(value) = self.present(field) else {
            if required {
                self.problem(field, "is required");
            }
            return None;
        };
        let Some(number) = value.as_i64() else {
            self.problem(field, "must be an integer");
            return None;
        };
        if !(min..=max).contains(&number) {
            self.problem(field, format!("must be between {min} and {max}"));
            return None;
        }
        Some(number)
    }

    fn timestamp(&mut self, field: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Some(value) = self.present(field) else {
            self.problem(field, "is required");
            return None;
        };
        let Some(at) = value
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.with_timezone(&Utc))
        else {
            self.problem(field, "must be an RFC 3339 timestamp");
            return None;
        };
        if at > now + MAX_FUTURE {
            self.problem(field, "must not be more than 5 minutes in the future");
            return None;
        }
        if at < now - MAX_AGE {
            self.problem(field, "must not be older than 35 days");
            return None;
        }
        Some(at)
    }
}

/// Text every backend stores as it is. JSON strings are valid Unicode (serde refuses lone
/// surrogates as invalid JSON), and PostgreSQL's UTF-8 `text` takes every character but NUL.
fn storable(text: &str) -> bool {
    !text.contains('\0')
}

fn as_object<'a>(
    value: &'a Value,
    problems: &mut Problems,
    name: &str,
) -> Option<&'a Map<String, Value>> {
    let found = value.as_object();
    if found.is_none() {
        problems
            .entry(name.to_owned())
            .or_default()
            .push("must be a JSON object".to_owned());
    }
    found
}

/// Reads a body that must be one JSON object. `read` takes every field it needs before building
/// the value (`None` when one is missing), so that all problems are reported at once; any problem
/// refuses the whole body.
fn read_object<T>(
    value: &Value,
    read: impl FnOnce(&mut Fields<'_>) -> Option<T>,
) -> Result<T, DomainError> {
    let mut problems = Problems::new();
    let Some(object) = as_object(value, &mut problems, "body") else {
        return Err(invalid(problems));
    };
    let read = read(&mut Fields {
        object,
        prefix: String::new(),
        problems: &mut problems,
    });
    match read {
        Some(read) if problems.is_empty() => Ok(read),
        _ => Err(invalid(problems)),
    }
}

/// The body of `POST /api/track`.
#[derive(Debug, Clone)]
pub struct ToolUse {
    pub skill_id: String,
    pub tool_name: String,
    pub ts: DateTime<Utc>,
    pub hook_event: Option<String>,
    pub tool_input_snippet: Option<String>,
    pub tool_output_snippet: Option<String>,
    pub event_id: Option<String>,
}

pub fn tool_use(value: &Value, now: DateTime<Utc>) -> Result<ToolUse, DomainError> {
    read_object(value, |f| {
        let skill_id = f.string("skill_id", true, MAX_NAME_LEN);
        let tool_name = f.string("tool_name", true, MAX_NAME_LEN);
        let ts = f.timestamp("ts", now);
        let hook_event = f.blank_or_string("hook_event", MAX_HOOK_EVENT_LEN);
        let tool_input_snippet = f.blank_or_string("tool_input_snippet", MAX_SNIPPET_LEN);
        let tool_output_snippet = f.blank_or_string("tool_output_snippet", MAX_SNIPPET_LEN);
        let event_id = f.blank_or_string("event_id", MAX_EVENT_ID_LEN);
        Some(ToolUse {
            skill_id: skill_id?,
            tool_name: tool_name?,
            ts: ts?,
            hook_event,
            tool_input_snippet,
            tool_output_snippet,
            event_id,
        })
    })
}

/// The body of `POST /api/v1/verify` (all optional).
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub event_id: Option<String>,
    pub cost: i64,
}

pub fn verify_request(value: &Value) -> Result<VerifyRequest, DomainError> {
    read_object(value, |f| {
        let endpoint = f.string("endpoint", false, MAX_ENDPOINT_LEN);
        let method = f.string("method", false, MAX_METHOD_LEN);
        let event_id = f.string("event_id", false, MAX_EVENT_ID_LEN);
        let cost = f.integer("cost", false, 1, MAX_COST).unwrap_or(1);
        Some(VerifyRequest {
            endpoint,
            method: method.map(|m| m.to_ascii_uppercase()),
            event_id,
            cost,
        })
    })
}

/// One finished call of `POST /api/v1/events`.
#[derive(Debug, Clone)]
pub struct FinishedCall {
    pub event_id: Option<String>,
    pub endpoint: String,
    pub method: String,
    pub status_code: i32,
    pub response_time_ms: i64,
    pub ts: DateTime<Utc>,
}

/// The whole batch is checked before anything is stored; problems are keyed
/// `events[<index>].<field>`.
pub fn finished_calls(value: &Value, now: DateTime<Utc>) -> Result<Vec<FinishedCall>, DomainError> {
    let mut problems = Problems::new();
    let Some(object) = as_object(value, &mut problems, "body") else {
        return Err(invalid(problems));
    };
    let events = match object.get("events") {
        Some(Value::Array(events)) if (1..=MAX_BATCH).contains(&events.len()) => events,
        Some(Value::Array(_)) => {
            problems.insert(
                "events".to_owned(),
                vec![format!("must hold 1 to {MAX_BATCH} events")],
            );
            return Err(invalid(problems));
        }
        None | Some(Value::Null) => {
            problems.insert("events".to_owned(), vec!["is required".to_owned()]);
            return Err(invalid(problems));
        }
        Some(_) => {
            problems.insert("events".to_owned(), vec!["must be an array".to_owned()]);
            return Err(invalid(problems));
        }
    };
    let mut calls = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let name = format!("events[{index}]");
        let Some(object) = as_object(event, &mut problems, &name) else {
            continue;
        };
        let mut f = Fields {
            object,
            prefix: format!("{name}."),
            problems: &mut problems,
        };
        let event_id = f.string("event_id", false, MAX_EVENT_ID_LEN);
        let endpoint = f.string("endpoint", true, MAX_ENDPOINT_LEN);
        let method = f.string("method", true, MAX_METHOD_LEN);
        let status_code = f.integer("status_code", true, MIN_STATUS_CODE, MAX_STATUS_CODE);
        let response_time_ms = f.integer("response_time_ms", true, 0, MAX_RESPONSE_TIME_MS);
        let ts = f.timestamp("ts", now);
        if let (Some(endpoint), Some(method), Some(status_code), Some(response_time_ms), Some(ts)) =
            (endpoint, method, status_code, response_time_ms, ts)
        {
            calls.push(FinishedCall {
                event_id,
                endpoint,
                method: method.to_ascii_uppercase(),
                status_code: status_code as i32,
                response_time_ms,
                ts,
            });
        }
    }
    if problems.is_empty() {
        Ok(calls)
    } else {
        Err(invalid(problems))
    }
}

/// The body of `POST /api/install-callback` (all optional).
#[derive(Debug, Clone)]
pub struct Install {
    pub skill_id: Option<String>,
    pub platform: Option<String>,
    pub version: Option<String>,
    /// Fields dropped for a wrong type or length, in the order above.
    pub ignored: Vec<&'static str>,
}

/// Reads an install leniently: an install script cannot fix what it sends, and an install is
/// worth recording without its details, so an optional field of the wrong type or length is
/// dropped and named in `ignored` rather than refusing the install. `""` and `null` are absent.
/// Still refused: a body that is not a JSON object, and a NUL character (text no backend can
/// store is `Invalid payload` on every route).
pub fn install(value: &Value) -> Result<Install, DomainError> {
    read_object(value, |f| {
        let mut ignored = Vec::new();
        let mut read = |field: &'static str, max_chars: usize| match f.present(field) {
            Some(Value::String(text)) if text.is_empty() => None,
            Some(Value::String(text)) if text.chars().count() > max_chars => {
                ignored.push(field);
                None
            }
            Some(Value::String(_)) => f.string(field, false, max_chars),
            Some(_) => {
                ignored.push(field);
                None
            }
            None => None,
        };
        let skill_id = read("skill_id", MAX_NAME_LEN);
        let platform = read("platform", MAX_INSTALL_LABEL_LEN);
        let version = read("version", MAX_INSTALL_LABEL_LEN);
        Some(Install {
            skill_id,
            platform,
            version,
            ignored,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn details(err: DomainError) -> Problems {
        match err {
            DomainError::BadInput { fields, .. } => fields,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batch_problems_are_keyed_by_index_and_field() {
        let body = json!({ "events": [
            { "endpoint": "/a", "method": "GET", "status_code": 200, "response_time_ms": 5, "ts": "2026-11-10T11:00:00Z" },
            { "endpoint": "/a", "method": "GET", "status_code": "200", "response_time_ms": 5, "ts": "2026-11-10T11:00:00Z" },
            7
        ]});
        let problems = details(finished_calls(&body, now()).unwrap_err());
        assert_eq!(
            problems.keys().collect::<Vec<_>>(),
            ["events[1].status_code", "events[2]"]
        );
    }

    #[test]
    fn nul_characters_are_refused_in_every_text_field() {
        let body = json!({ "skill_id": "a\u{0}b", "tool_name": "t", "ts": "2026-11-10T12:00:00Z" });
        let problems = details(tool_use(&body, now()).unwrap_err());
        assert_eq!(
            problems["skill_id"],
            vec!["must not contain NUL characters".to_owned()]
        );
        let verify = json!({ "endpoint": "/a", "method": "\u{0}" });
        assert!(details(verify_request(&verify).unwrap_err()).contains_key("method"));
        let other_control = json!({ "platform": "linux\u{1}" });
        assert!(install(&other_control).is_ok());
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let base = json!({ "skill_id": "s", "tool_name": "t" });
        for (ts, ok) in [
            ("2026-11-10T12:05:00Z", true),
            ("2026-11-10T12:05:01Z", false),
            ("2026-10-06T12:00:00Z", true),
            ("2026-10-06T11:59:59Z", false),
            ("yesterday", false),
        ] {
            let mut body = base.clone();
            body["ts"] = json!(ts);
            assert_eq!(tool_use(&body, now()).is_ok(), ok, "{ts}");
        }
    }
}

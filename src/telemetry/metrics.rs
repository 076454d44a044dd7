//! Prometheus metrics of one running service: requests by route and status and their latency
//! per route, events stored, recorder batch sizes and write latency, database errors,
//! connections refused over the cap or closed by a timeout, the build (version and commit) and
//! the process (CPU, memory, open files). Every metric has its `# HELP` and `# TYPE` lines.
//!
//! Each `AppState` owns its recorder and records through it (`metrics::with_local_recorder`)
//! rather than installing a process-wide one, so that many apps in one process (the tests) keep
//! separate numbers and none fails to install.

use std::sync::{Arc, Weak};
use std::time::Duration;

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const REQUESTS: &str = "tally_http_requests_total";
const REQUEST_SECONDS: &str = "tally_http_request_duration_seconds";
const BUILD_INFO: &str = "tally_build_info";
const EVENTS_STORED: &str = "tally_events_stored_total";
const EVENTS_DUPLICATE: &str = "tally_events_duplicate_total";
const BATCH_SIZE: &str = "tally_recorder_batch_events";
const WRITE_SECONDS: &str = "tally_recorder_write_seconds";
const DB_ERRORS: &str = "tally_database_errors_total";
const CONNECTIONS_REFUSED: &str = "tally_connections_refused_total";
const CONNECTIONS_REFUSED_PER_ADDRESS: &str = "tally_connections_refused_per_address_total";
const CONNECTIONS_TIMED_OUT: &str = "tally_connections_timed_out_total";
const REDIS_FALLBACKS: &str = "tally_ratelimit_redis_fallbacks_total";
const REDIS_UP: &str = "tally_ratelimit_redis_up";
const BILLING_EVENTS_IGNORED: &str = "tally_billing_events_ignored_total";

const BATCH_BUCKETS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
];
const REQUEST_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const WRITE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: Arc<PrometheusHandle>,
    process: Arc<metrics_process::Collector>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(BATCH_SIZE.to_owned()), &BATCH_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(WRITE_SECONDS.to_owned()), &WRITE_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(REQUEST_SECONDS.to_owned()),
                    &REQUEST_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = Arc::new(recorder.handle());
        spawn_upkeep(Arc::downgrade(&handle));
        let metrics = Self {
            recorder: Arc::new(recorder),
            handle,
            process: Arc::new(metrics_process::Collector::default()),
        };
        metrics.record(|| {
            describe();
            metrics.process.describe();
            metrics::gauge!(
                BUILD_INFO,
                "version" => env!("CARGO_PKG_VERSION"),
                "commit" => env!("TALLY_COMMIT"),
            )
            .set(1.0);
        });
        metrics
    }

    /// The Prometheus text exposition of everything recorded so far, the process figures read
    /// now.
    pub fn render(&self) -> String {
        self.record(|| self.process.collect());
        self.handle.render()
    }

    fn record(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(self.recorder.as_ref(), f);
    }

    /// One answered request: counted by route and status, timed by route and method. Routes
    /// are the router's patterns and methods one of a fixed set (`http::methods::label`);
    /// both are cut to `MAX_LABEL_CHARS` all the same.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let counted = [("route", bounded(route)), ("status", status.to_string())];
        let timed = [("route", bounded(route)), ("method", bounded(method))];
        self.record(|| {
            metrics::counter!(REQUESTS, &counted).increment(1);
            metrics::histogram!(REQUEST_SECONDS, &timed).record(took.as_secs_f64());
        });
    }

    pub fn events_written(&self, stored: u64, duplicates: u64) {
        self.record(|| {
            metrics::counter!(EVENTS_STORED).increment(stored);
            metrics::counter!(EVENTS_DUPLICATE).increment(duplicates);
        });
    }

    pub fn batch(&self, events: usize, took: Duration) {
        self.record(|| {
            metrics::histogram!(BATCH_SIZE).record(events as f64);
            metrics::histogram!(WRITE_SECONDS).record(took.as_secs_f64());
        });
    }

    pub fn database_error(&self, during: &'static str) {
        self.record(|| metrics::counter!(DB_ERRORS, "during" => during).increment(1));
    }

    /// A connection over the connection cap was answered 503 (or closed) at once.
    pub fn connection_refused(&self) {
        self.record(|| metrics::counter!(CONNECTIONS_REFUSED).increment(1));
    }

    /// A connection over its address's share was answered 503 (or closed) at once.
    pub fn connection_refused_per_address(&self) {
        self.record(|| metrics::counter!(CONNECTIONS_REFUSED_PER_ADDRESS).increment(1));
    }

    /// A connection was closed for being too slow (`reason`: which timeout).
    pub fn connection_timed_out(&self, reason: &'static str) {
        self.record(|| metrics::counter!(CONNECTIONS_TIMED_OUT, "reason" => reason).increment(1));
    }

    /// A per-key rate limit was decided by this instance alone because Redis was unreachable.
    pub fn redis_fallback(&self) {
        self.record(|| metrics::counter!(REDIS_FALLBACKS).increment(1));
    }

    /// Whether per-key limits are shared through Redis right now (1) or per instance (0).
    pub fn redis_up(&self, up: bool) {
        self.record(|| metrics::gauge!(REDIS_UP).set(if up { 1.0 } else { 0.0 }));
    }
}

impl Metrics {
    /// A billing-provider event changed nothing; `reason` is one of a fixed set
    /// (`domain::billing::webhook::Ignored`), never text from the event.
    pub fn billing_event_ignored(&self, reason: &'static str) {
        self.record(|| {
            metrics::describe_counter!(
                BILLING_EVENTS_IGNORED,
                "Billing-provider events that changed nothing, by why (`reason`): unhandled_type, no_account, no_plan, unknown_plan, unknown_account, stale."
            );
            metrics::counter!(BILLING_EVENTS_IGNORED, "reason" => reason).increment(1);
        });
    }
}

/// Longest label value kept: every label value names a new series, kept until the process ends.
const MAX_LABEL_CHARS: usize = 64;

fn bounded(label: &str) -> String {
    label.chars().take(MAX_LABEL_CHARS).collect()
}

/// The `# HELP` text of every metric.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by matched route and status."
    );
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer an HTTP request (to its response head), by matched route and method."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels name the running version and the commit it was built from."
    );
    describe_counter!(
        EVENTS_STORED,
        "Usage events committed to the database (acknowledged)."
    );
    describe_counter!(
        EVENTS_DUPLICATE,
        "Usage events not stored again: their event id was already recorded."
    );
    describe_histogram!(
        BATCH_SIZE,
        Unit::Count,
        "Events per recorder transaction (group commit)."
    );
    describe_histogram!(
        WRITE_SECONDS,
        Unit::Seconds,
        "Time to write and commit one recorder transaction."
    );
    describe_counter!(
        DB_ERRORS,
        "Database errors, by what was being done (`during`)."
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused because the connection cap was reached."
    );
    describe_counter!(
        CONNECTIONS_REFUSED_PER_ADDRESS,
        "Connections refused because their client address held its most connections."
    );
    describe_counter!(
        CONNECTIONS_TIMED_OUT,
        "Connections closed by a timeout, by which one (`reason`)."
    );
    describe_counter!(
        REDIS_FALLBACKS,
        "Per-key rate limits decided by this instance alone because Redis was unreachable."
    );
    describe_gauge!(
        REDIS_UP,
        "1 while per-key rate limits are shared through Redis, 0 while this instance limits alone."
    );
}

/// Histograms keep samples until rendered; drain them now and then even when nobody scrapes.
fn spawn_upkeep(handle: Weak<PrometheusHandle>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            match handle.upgrade() {
                Some(handle) => handle.run_upkeep(),
                None => break,
            }
        }
    });
}

//! `tally serve`: open and migrate the database, set up a fresh installation, listen, and shut
//! down gracefully on SIGINT or SIGTERM.

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::cli::args::ServeArgs;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::billing;
use crate::domain::retention;
use crate::domain::settings::{self, AdminBootstrap};
use crate::http::client::TrustedProxies;
use crate::jobs::{self, Job};
use crate::state::AppState;
use crate::{app, db};

pub mod accept;
mod per_address;

use accept::ConnectionLimits;

pub async fn serve(database_url: &str, args: ServeArgs) -> anyhow::Result<()> {
    args.check()?;
    // Bound first: when the port is taken, nothing has been created yet.
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let config = Config::from_serve_args(&args);
    let db = db::open(database_url, config.write_timeout).await?;
    let _single_instance = db::lock_single_instance(database_url)?;
    let setup = db::lock_setup(database_url)
        .await
        .context("waiting for other instances to finish setting the database up")?;
    if args.no_migrate {
        tracing::info!("not migrating: --no-migrate");
        let pending = db::pending_migrations(&db)
            .await
            .context("reading the database's migrations")?;
        if !pending.is_empty() {
            anyhow::bail!(
                "--no-migrate (TALLY_NO_MIGRATE), but the database lacks {} migration(s) this                  version needs, from {}: run `tally migrate up` first, or start without                  --no-migrate",
                pending.len(),
                pending[0]
            );
        }
    } else {
        db::migrate(&db).await.context("applying migrations")?;
    }
    bootstrap_admin(&db, &args).await?;
    warn_once_about_a_relative_upgrade_url(&db, &args).await?;
    setup.release().await;
    let jwt_secret = match args.configured_jwt_secret()? {
        Some(secret) => secret.to_owned(),
        None => settings::jwt_secret(&db)
            .await
            .map_err(|err| err.into_operator_error().context("loading the JWT secret"))?,
    };
    let state = AppState::new(db, config, jwt_secret.as_bytes());
    check_redis(&state).await;
    spawn_housekeeping(&state);
    if args.no_billing_close {
        tracing::info!("not closing billing periods in the background: --no-billing-close");
    } else {
        spawn_billing_runs(&state, args.billing_close_interval_seconds);
    }
    spawn_event_retention(&state);

    let shutdown = shutdown_signal();
    let limits = connection_limits(&state.config);
    tracing::info!(address = %listener.local_addr()?, "tally listening");
    accept::serve(
        listener,
        app(state.clone()),
        limits,
        state.metrics.clone(),
        shutdown,
    )
    .await;
    // Every event accepted into the recorder's queue is written before the database closes.
    state.ingestion.recorder.flush().await;
    state.db.close_by_ref().await.ok();
    // "tally stopped" is logged by `main`, once the process has nothing left to do.
    Ok(())
}

/// A relative upgrade URL works but sends clients over their quota nowhere useful. Said on the
/// first start with that value and remembered in the database's settings, rather than on every
/// restart, where it would read as noise.
async fn warn_once_about_a_relative_upgrade_url(
    db: &DatabaseConnection,
    args: &ServeArgs,
) -> anyhow::Result<()> {
    if args.upgrade_url_is_absolute() {
        return Ok(());
    }
    let first_time = settings::first_start_with_upgrade_url(db, &args.upgrade_url)
        .await
        .map_err(|err| err.into_operator_error().context("reading the settings"))?;
    if first_time {
        tracing::warn!(
            upgrade_url = %args.upgrade_url,
            "upgrade_url is not an absolute http(s) URL: clients over their quota get a link \
             they cannot follow; set --upgrade-url / TALLY_UPGRADE_URL to your pricing page \
             (said once for this value)"
        );
    }
    Ok(())
}

/// Asks Redis, when configured, before listening: one that does not answer is logged at start
/// (a warning naming its address) and the service starts anyway, with per-key limits per
/// instance until Redis answers.
async fn check_redis(state: &AppState) {
    if let Some(shared) = state.ingestion.key_limits.shared() {
        shared.ping(std::time::Duration::from_secs(1)).await;
    }
}

/// Descriptors kept free for everything but client connections: the database pool, SQLite's
/// files, logs.
const RESERVED_FILE_DESCRIPTORS: u64 = 128;

/// The connection settings, with the cap lowered where the open-file limit could not hold it
/// (running out of descriptors would refuse clients with no answer at all).
fn connection_limits(config: &Config) -> ConnectionLimits {
    let mut max_connections = config.max_connections;
    if let Some(open_files) = accept::raise_open_file_limit() {
        let room = open_files.saturating_sub(RESERVED_FILE_DESCRIPTORS).max(1);
        if u64::from(max_connections) > room {
            tracing::warn!(
                configured = max_connections,
                open_file_limit = open_files,
                using = room,
                "the open-file limit cannot hold the configured connection cap; lowering it"
            );
            max_connections = u32::try_from(room).unwrap_or(u32::MAX);
        }
    }
    ConnectionLimits {
        header_read_timeout: config.header_read_timeout,
        keep_alive_timeout: config.keep_alive_timeout,
        max_connections,
        max_connections_per_address: config.max_connections_per_address,
        trusted_proxies: TrustedProxies(config.trusted_proxies.clone()),
    }
}

async fn bootstrap_admin(db: &DatabaseConnection, args: &ServeArgs) -> anyhow::Result<()> {
    let outcome = settings::ensure_admin(
        db,
        &args.admin_email,
        // Empty, as a compose file passes an unset variable: generated, like unset.
        args.admin_password
            .clone()
            .filter(|password| !password.is_empty()),
        SystemClock.now(),
    )
    .await
    .map_err(|err| {
        err.into_operator_error()
            .context("creating the first admin")
    })?;
    if let AdminBootstrap::Created {
        email,
        generated_password,
    } = outcome
    {
        match generated_password {
            Some(password) => {
                println!(
                    "Created admin user {email} with password: {password}\n(shown once; sign in and keep it safe)"
                );
                tracing::info!(
                    %email,
                    "created the first admin; its generated password is printed once on standard output"
                );
            }
            None => tracing::info!(
                %email,
                "created the first admin with the password of TALLY_ADMIN_PASSWORD"
            ),
        }
    }
    Ok(())
}

/// Periodic clean-up of in-memory limiter state and of old billing webhook event ids.
fn spawn_housekeeping(state: &AppState) {
    let limiter = state.auth_limiter.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.shrink();
        }
    });

    let (db, clock) = (state.db.clone(), state.clock.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let prune = billing::webhook::prune_processed_events(&db, clock.now());
            match jobs::run_alone(&db, Job::WebhookIdPruning, prune).await {
                Ok(None | Some(0)) => {}
                Ok(Some(deleted)) => {
                    tracing::info!(deleted, "pruned old billing webhook event ids")
                }
                Err(err) => {
                    tracing::warn!(error = ?err, "pruning billing webhook event ids failed")
                }
            }
        }
    });
}

/// Closes ended billing periods now and then, on one instance at a time; runs on several
/// instances would still be harmless.
fn spawn_billing_runs(state: &AppState, interval_seconds: u64) {
    let (db, clock) = (state.db.clone(), state.clock.clone());
    let every = std::time::Duration::from_secs(interval_seconds.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let now = clock.now();
            let close = billing::close::close_ended_periods(&db, now, now);
            if let Err(err) = jobs::run_alone(&db, Job::BillingClose, close).await {
                tracing::error!(error = ?err, "background billing run failed; retrying next time");
            }
        }
    });
}

/// Prunes raw usage events past the retention period, at start and then every hour.
fn spawn_event_retention(state: &AppState) {
    let days = state.config.event_retention_days;
    if days == 0 {
        tracing::info!("event retention off: raw usage events are kept forever");
        return;
    }
    if days < 36 {
        tracing::warn!(
            days,
            "event retention is shorter than the 35 days of accepted event times: \
             repeated event ids older than that can no longer be recognised"
        );
    }
    let (db, clock) = (state.db.clone(), state.clock.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let before = retention::cutoff(clock.now(), days);
            let prune = retention::prune_events(&db, before);
            match jobs::run_alone(&db, Job::EventRetention, prune).await {
                Ok(None | Some(0)) => {}
                Ok(Some(deleted)) => tracing::info!(deleted, %before, "pruned raw usage events"),
                Err(err) => tracing::warn!(error = ?err, "pruning raw usage events failed"),
            }
        }
    });
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal arriving right after "listening" is not missed.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
            }
            (Err(err), _) | (_, Err(err)) => {
                tracing::error!(error = %err, "cannot listen for SIGINT/SIGTERM");
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown requested: finishing in-flight requests");
    }
}

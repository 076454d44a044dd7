//! The subcommands other than `serve`.
//!
//! Commands that set a database up (`migrate up`, `seed-demo`) create a missing SQLite file;
//! commands that work on an installation (`user create`, `billing close`, `migrate down|status`)
//! refuse to, so that running one in the wrong directory fails instead of making an empty one.

pub mod args;
pub mod demo;
mod progress;

use anyhow::{bail, Context as _};
use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;

use self::args::{BillingAction, Cli, Command, MigrateAction, SeedDemoArgs, UserAction};
use self::demo::DemoOptions;
use self::progress::Progress;
use crate::clock::{Clock, SystemClock};
use crate::domain::accounts::{self, AccountChoice, NewUser, Role};
use crate::domain::error::DomainError;
use crate::entity::account;
use crate::{db, graphql, server};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let database_url = cli.global.database_url;
    match cli.command {
        None => server::serve(&database_url, cli.serve).await,
        Some(Command::Serve(args)) => server::serve(&database_url, *args).await,
        Some(Command::Migrate { action }) => migrate(&database_url, action).await,
        Some(Command::User { action }) => user(&database_url, action).await,
        Some(Command::Billing { action }) => billing(&database_url, action).await,
        Some(Command::Schema { check }) => print_or_check(&graphql::sdl(), "schema", check),
        Some(Command::Openapi { check }) => {
            print_or_check(crate::http::rest_routes::document(), "openapi", check)
        }
        Some(Command::SeedDemo(args)) => seed_demo(&database_url, args).await,
    }
}

async fn migrate(database_url: &str, action: MigrateAction) -> anyhow::Result<()> {
    let db = match action {
        // Setting up a database is what `migrate up` is for.
        MigrateAction::Up => open(database_url).await?,
        MigrateAction::Down | MigrateAction::Status => open_existing(database_url).await?,
    };
    // Printed, not logged: what was applied or reverted is the command's answer.
    match action {
        MigrateAction::Up => {
            let pending = db::pending_migrations(&db).await?;
            Migrator::up(&db, None).await?;
            if pending.is_empty() {
                println!("Nothing to apply: every migration is applied.");
            } else {
                println!(
                    "Applied {} migration(s): {}",
                    pending.len(),
                    pending.join(", ")
                );
            }
        }
        MigrateAction::Down => {
            let applied = Migrator::get_applied_migrations(&db).await?;
            let last = applied.last().map(|m| m.name().to_owned());
            Migrator::down(&db, Some(1)).await?;
            match last {
                Some(name) => println!("Reverted {name}"),
                None => println!("Nothing to revert: no migration is applied."),
            }
        }
        MigrateAction::Status => {
            // Printed, not logged: the list is the command's answer, whatever the log level.
            for migration in Migrator::get_migration_with_status(&db).await? {
                let status = migration.status().to_string();
                println!("{status:<8} {}", migration.name());
            }
        }
    }
    Ok(())
}

async fn user(database_url: &str, action: UserAction) -> anyhow::Result<()> {
    let UserAction::Create {
        email,
        password,
        admin,
        account,
    } = action;
    let db = open_existing(database_url).await?;
    db::migrate(&db).await.context("applying migrations")?;
    let account = match account {
        None => AccountChoice::New(email.clone()),
        Some(wanted) => account_for(&db, wanted).await?,
    };
    let role = if admin { Role::Admin } else { Role::Member };
    let created = accounts::create_user(
        &db,
        NewUser {
            email,
            password,
            role,
            account,
        },
        SystemClock.now(),
    )
    .await
    .map_err(DomainError::into_operator_error)?;
    println!(
        "Created {} user {} (id {}) in account {}",
        role.as_str(),
        created.email,
        created.id,
        created.account_id
    );
    Ok(())
}

/// The account `--account` names: the one with that id; else the one with that name, or a new
/// one of that name when none has it. Several of that name are refused with their ids: picking
/// one would put the user in a stranger's account.
async fn account_for(db: &DatabaseConnection, wanted: String) -> anyhow::Result<AccountChoice> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    if let Some(by_id) = account::Entity::find_by_id(wanted.clone()).one(db).await? {
        return Ok(AccountChoice::Existing(by_id.id));
    }
    let named = account::Entity::find()
        .filter(account::Column::Name.eq(wanted.as_str()))
        .order_by_asc(account::Column::CreatedAt)
        .all(db)
        .await?;
    match named.as_slice() {
        [] => Ok(AccountChoice::New(wanted)),
        [only] => Ok(AccountChoice::Existing(only.id.clone())),
        several => {
            let candidates: Vec<String> = several
                .iter()
                .map(|account| {
                    format!(
                        "{} (created {}, {})",
                        account.id,
                        account.created_at.format("%Y-%m-%d %H:%M UTC"),
                        account.plan_code
                    )
                })
                .collect();
            bail!(
                "{} accounts are named {wanted:?}: pass the id of the one you mean to --account: \
                 {}",
                several.len(),
                candidates.join(", ")
            )
        }
    }
}

async fn billing(database_url: &str, action: BillingAction) -> anyhow::Result<()> {
    let BillingAction::Close { as_of } = action;
    let db = open_existing(database_url).await?;
    db::migrate(&db).await.context("applying migrations")?;
    let now = SystemClock.now();
    let as_of = as_of.unwrap_or(now);
    if as_of > now {
        bail!("--as-of lies in the future: only ended periods can be closed");
    }
    let run = crate::domain::billing::close::close_ended_periods(&db, as_of, now)
        .await
        .map_err(|err| err.into_operator_error().context("billing run failed"))?;
    println!(
        "Created {} invoice(s), {} cents in total",
        run.invoices_created, run.total_cents
    );
    Ok(())
}

/// Prints a generated document (`tally schema`, `tally openapi`), or compares it with a file.
fn print_or_check(
    generated: &str,
    command: &str,
    check: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    match check {
        None => {
            print!("{generated}");
            Ok(())
        }
        Some(path) => {
            let on_disk = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if on_disk == generated {
                Ok(())
            } else {
                bail!(
                    "{} differs from the code; run `tally {command} > {}`",
                    path.display(),
                    path.display()
                )
            }
        }
    }
}

async fn seed_demo(database_url: &str, args: SeedDemoArgs) -> anyhow::Result<()> {
    // Seeding sets up a new database: one that holds users is refused before anything is
    // written to it, migrations included.
    let db = open(database_url).await?;
    demo::refuse_a_database_in_use(&db)
        .await
        .map_err(DomainError::into_operator_error)?;
    db::migrate(&db).await.context("applying migrations")?;
    let password = args
        .password
        .clone()
        .filter(|password| !password.is_empty())
        .unwrap_or_else(demo::generated_password);
    let options = DemoOptions {
        accounts: args.accounts,
        events: args.events,
        days: args.days,
        seed: args.seed,
        password: password.clone(),
    };
    let mut shown = Progress::new(args.events, "events");
    let mut progress = move |written: u64, asked: u64| shown.update(written, asked);
    let summary = demo::seed(&db, &options, SystemClock.now(), &mut progress)
        .await
        .map_err(|err| err.into_operator_error().context("seeding demo data"))?;
    println!(
        "Seeded {} accounts, {} users, {} keys and {} events in {:.1} s.",
        summary.accounts, summary.users, summary.keys, summary.events, summary.seconds
    );
    let last_account = args.accounts.saturating_sub(1);
    println!("Every demo user signs in with the password {password:?}.");
    println!("Admin: {}", summary.admin_email);
    println!(
        "Members: {} to {} (1 to {} per account, user0 in every one)",
        demo::user_email(0, 0),
        demo::user_email(last_account, demo::users_in_account(last_account) - 1),
        demo::MAX_USERS_PER_ACCOUNT,
    );
    if let Some(key) = summary.sample_key {
        println!("An API key of the first account (shown once): {key}");
    }
    Ok(())
}

/// Opens the database of a command that works on an existing installation. A SQLite file that
/// is not there is refused rather than created: an empty `tally.db` in the wrong directory would
/// otherwise look like an installation without users, keys or usage.
async fn open_existing(database_url: &str) -> anyhow::Result<DatabaseConnection> {
    if let Some(path) = sqlite_file(database_url) {
        if !path.exists() {
            let shown = std::env::current_dir()
                .map(|dir| dir.join(&path))
                .unwrap_or(path);
            bail!(
                "there is no database at {}: run this in the directory of your installation, \
                 point --database-url (TALLY_DATABASE_URL) at it, or create one with \
                 `tally migrate up` or `tally serve`",
                shown.display()
            );
        }
    }
    open(database_url).await
}

/// Opens the database of a command, with the lock wait the commands use.
async fn open(database_url: &str) -> anyhow::Result<DatabaseConnection> {
    db::open(database_url, db::DEFAULT_LOCK_TIMEOUT).await
}

/// The file of a SQLite URL; `None` for other databases and in-memory SQLite.
fn sqlite_file(database_url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if !database_url.starts_with("sqlite:")
        || database_url.contains(":memory:")
        || database_url.contains("mode=memory")
    {
        return None;
    }
    sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
        .ok()
        .map(|options| options.get_filename().to_owned())
}

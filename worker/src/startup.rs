//! Wiring shared by both binaries: the database (migrated at start) and the engine (dispatcher,
//! and optionally a runner) on a transport.

use crate::broker::Broker;
use crate::dispatch::Dispatcher;
use crate::engine::Engine;
use crate::events::{Subscriptions, TaskEvents};
use crate::runner::Runner;
use crate::settings::RunnerSettings;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionTrait};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Connects and applies the migrations. Every SQLite connection gets WAL and a busy timeout, so
/// the API and the in-process runner can write at once.
pub async fn connect_database(url: &str) -> Result<DatabaseConnection, String> {
    // Fail fast when the database is down (callers answer 503 or retry) instead of queueing
    // for the pool's default 30 s.
    let mut options = ConnectOptions::new(url);
    options
        .acquire_timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(3))
        // A pooled connection is checked (a round trip) only once it has been idle for a second,
        // not before every query: a busy pool's connections are in use, and after an outage
        // (which takes longer) the dead ones are found and replaced before a query meets them.
        .test_before_acquire_if_idle_for(Duration::from_secs(1))
        // On every connection of the pool, not only the first.
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .synchronous(SqliteSynchronous::Normal)
        });
    let db = Database::connect(options).await.map_err(|e| format!("cannot connect to the database: {e}"))?;
    migrate(&db, url).await.map_err(|e| format!("migrations failed: {e}"))?;
    Ok(db)
}

/// Applies the migrations. Several processes may start at once (`api` processes, a runner, an
/// `api token create` beside a starting server), and exactly one must apply them while the
/// others wait, then find nothing to do:
/// - PostgreSQL: the migrations run in one transaction holding an advisory lock (DDL is
///   transactional there);
/// - SQLite: under an exclusive lock on the file `<database>.migrate.lock` beside it (a
///   transaction would not do: a migration there turns foreign keys off, which a transaction
///   ignores).
async fn migrate(db: &DatabaseConnection, url: &str) -> Result<(), sea_orm::DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        let _lock = match sqlite_file(url) {
            Some(file) => Some(lock_beside(&file).await.map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?),
            None => None,
        };
        return Migrator::up(db, None).await;
    }
    let txn = db.begin().await?;
    txn.execute_unprepared("SELECT pg_advisory_xact_lock(7262010001)").await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

/// The database file a SQLite URL names (`sqlite://path?mode=rwc`, `sqlite:path`); none for an
/// in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// An exclusive lock on `<file>.migrate.lock`, held until the returned file is dropped; waits
/// (off the async threads) while another process holds it.
async fn lock_beside(file: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut name = file.as_os_str().to_owned();
    name.push(".migrate.lock");
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(name)?;
    tokio::task::spawn_blocking(move || lock.lock().map(|()| lock)).await.map_err(std::io::Error::other)?
}

/// Logs to stderr (colours only on a terminal); `RUST_LOG` takes targets as in `info,sqlx=warn`
/// (that is the default). Lines carry their spans: `task{id attempt operation workload runner}`
/// in runners, `request{method path}` in the api.
pub fn init_telemetry() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter = std::env::var("RUST_LOG").ok().and_then(|spec| spec.parse::<Targets>().ok()).unwrap_or_else(|| {
        Targets::new()
            .with_default(tracing::Level::INFO)
            .with_target("sqlx", tracing::Level::WARN)
            .with_target("sea_orm", tracing::Level::WARN)
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr),
        )
        .with(filter)
        .init();
}

/// Starts the background half of a process — a dispatcher always, and a runner when
/// `with_runner` — and returns the engine's front door, and what to await after `shutdown` for
/// the runner to drain. The engine's channels are added to `subscriptions`, which the caller
/// follows once it has added its own. The runner registers (re-adopting its work) before the dispatcher's
/// first sweep, so a runner coming back is never taken for gone.
pub async fn start_engine(
    db: DatabaseConnection,
    broker: Arc<dyn Broker>,
    settings: &RunnerSettings,
    with_runner: bool,
    subscriptions: &mut Subscriptions,
    shutdown: &CancellationToken,
) -> Result<(Engine, Drained), String> {
    let events = TaskEvents::default();
    events.listen(subscriptions);
    let runner = if with_runner {
        let mechanism = settings.mechanism()?;
        tracing::info!(containment = %mechanism.describe(), "workloads are contained");
        mechanism.prepare();
        if mechanism.is_process_tree() {
            // A subreaper inherits the orphans of its workloads: reap them as they exit.
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                while !shutdown.is_cancelled() {
                    let _ = tokio::task::spawn_blocking(crate::process::reap_orphans).await;
                    tokio::time::sleep(crate::operations::POLL * 5).await;
                }
            });
        }
        let runner = Runner::new(db.clone(), broker.clone(), settings, events.clone(), mechanism);
        runner.register().await.map_err(|e| format!("cannot register runner: {e}"))?;
        Some(tokio::spawn(runner.run(shutdown.clone())))
    } else {
        None
    };
    let dispatcher = Dispatcher::new(db.clone(), broker, settings.clone(), events.clone());
    tokio::spawn(dispatcher.clone().run(shutdown.clone()));
    let finished = crate::finished::FinishedTasks::following(&events, shutdown.clone());
    Ok((Engine::new(db, dispatcher, events, finished), Drained(runner)))
}

/// Completes once the runner (if any) has drained after shutdown.
pub struct Drained(Option<tokio::task::JoinHandle<()>>);

impl Drained {
    pub async fn wait(self) {
        if let Some(runner) = self.0 {
            let _ = runner.await;
        }
    }
}

/// Completes on SIGTERM (what systemd, container runtimes and `kill` send) or SIGINT (Ctrl-C).
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                }
                return;
            }
            Err(err) => tracing::warn!(%err, "cannot watch for SIGTERM; SIGINT only"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    /// SQLite is built with the query planner stability guarantee (`.cargo/config.toml`):
    /// without it, every statement with a bound `LIMIT` (every sea-orm `.one()`) is parsed and
    /// planned again each time it runs.
    #[tokio::test]
    async fn sqlite_is_built_to_keep_its_plans() {
        let db = super::connect_database("sqlite::memory:").await.expect("sqlite");
        let options = Statement::from_string(DbBackend::Sqlite, "PRAGMA compile_options");
        let options: Vec<String> = db
            .query_all_raw(options)
            .await
            .expect("compile options")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("text"))
            .collect();
        assert!(options.iter().any(|o| o == "ENABLE_QPSG"), "{options:?}");
    }
}

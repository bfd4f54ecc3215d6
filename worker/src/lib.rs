//! The engine of the task queue: its front door for every face (`engine`: submit, cancel), the
//! broker transports (`broker`), the relay and sweeper that keep the database and the queue in
//! step (`dispatch`), the runner that claims tasks and performs them (`runner`, `operations`),
//! the process supervisor (`process`) and the containment of workloads (`contain`).
//!
//! `cargo run -p worker` runs one distributed runner; the `api` crate embeds the same runner
//! in-process for the single-machine mode.

pub mod archive;
pub mod batch;
pub mod broker;
pub mod contain;
pub mod dispatch;
pub mod engine;
pub mod events;
pub mod finished;
pub mod kept;
pub mod lease;
pub mod operations;
pub mod process;
pub mod runner;
pub mod settings;
pub mod startup;

/// Fault injection for the fault tests, at named points just before a side effect. Unset in
/// production; reading the environment costs nothing worth measuring next to the side effect.
///
/// - `TASKQ_CRASH_AT=<point>`: the process dies here at once (abort: no destructor, no flush),
///   as a `kill -9` at exactly this instant would leave things.
/// - `TASKQ_FAIL_ONCE_AT=<point>`: the first time the point is reached, it fails as the database
///   would (`Err`), as an outage at exactly this instant would.
pub fn fault_point(name: &str) -> Result<(), sea_orm::DbErr> {
    static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if std::env::var_os("TASKQ_CRASH_AT").is_some_and(|at| at == name) {
        eprintln!("TASKQ_CRASH_AT={name}: crashing here");
        std::process::abort();
    }
    if std::env::var_os("TASKQ_FAIL_ONCE_AT").is_some_and(|at| at == name)
        && !FAILED.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return Err(sea_orm::DbErr::Custom(format!("TASKQ_FAIL_ONCE_AT={name}: failing here once")));
    }
    Ok(())
}

/// A pause for the fault tests, at a named point between two steps:
/// `TASKQ_PAUSE_AT=<point>` holds the first task that reaches it until the file named by
/// `TASKQ_RESUME_WHEN` exists, as a thread descheduled at exactly this instant would; the rest
/// of the process goes on (it hears cancels, renews its lease). Unset in production.
pub async fn pause_point(name: &str) {
    static PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if std::env::var_os("TASKQ_PAUSE_AT").is_none_or(|at| at != name)
        || PAUSED.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return;
    }
    let resume = std::path::PathBuf::from(std::env::var_os("TASKQ_RESUME_WHEN").unwrap_or_default());
    tracing::info!(point = name, resume = %resume.display(), "TASKQ_PAUSE_AT: paused here");
    while !resume.exists() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

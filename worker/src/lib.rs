//! The runner side of the task queue: the broker transports (`broker`), the relay and sweeper
//! that keep the database and the queue in step (`dispatch`), the runner that claims tasks and
//! performs them (`runner`, `operations`), and the process supervisor (`process`).
//!
//! `cargo run -p worker` runs one distributed runner; the `api` crate embeds the same runner
//! in-process for the single-machine mode.

pub mod broker;
pub mod dispatch;
pub mod jobs_file;
pub mod lease;
pub mod operations;
pub mod process;
pub mod runner;
pub mod settings;
pub mod startup;

/// Fault injection for the crash tests: when the environment variable `TASKQ_CRASH_AT` names
/// this point, the process dies here at once (abort: no destructor, no flush), as a `kill -9` at
/// exactly this instant would leave things. Unset in production; reading it costs nothing worth
/// measuring next to the side effect it guards.
pub fn crash_point(name: &str) {
    if std::env::var_os("TASKQ_CRASH_AT").is_some_and(|at| at == name) {
        eprintln!("TASKQ_CRASH_AT={name}: crashing here");
        std::process::abort();
    }
}

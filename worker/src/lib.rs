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

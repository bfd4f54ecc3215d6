//! Domain model shared by the `api` and `worker` crates: SeaORM entities, the task and workload
//! state machines, the queue message contract, and the store functions (all SQL lives there).
//!
//! No HTTP and no broker code belongs here.

pub mod environment;
pub mod message;
pub mod model;
pub mod outcome;
pub mod state;
pub mod store;

pub use model::{api_token, logon_session, runner, snapshot, task, tenant, user, workload, workload_spec};
pub use state::{Operation, TaskState, WorkloadState};

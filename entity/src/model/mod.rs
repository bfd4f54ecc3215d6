//! SeaORM entities, one module per table.

pub mod api_token;
pub mod logon_session;
pub mod runner;
pub mod snapshot;
pub mod task;
pub mod tenant;
pub mod user;
pub mod workload;
pub mod workload_spec;

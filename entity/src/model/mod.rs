//! SeaORM entities, one module per table.

pub mod api_token;
pub mod job;
pub mod job_session;
pub mod logon_session;
pub mod runner;
pub mod task;
pub mod tenant;
pub mod user;

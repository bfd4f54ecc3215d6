//! Store functions: every SQL statement of the project. Each takes `&impl ConnectionTrait`, so the
//! same code runs on a pool or inside a transaction.

pub mod logons;
pub mod page;
pub mod revocations;
pub mod runners;
pub mod snapshots;
pub mod specs;
pub mod tasks;
pub mod tenants;
pub mod users;
pub mod workloads;

pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

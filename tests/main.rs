//! Integration tests: one binary, one module per feature.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "suite/auth.rs"]
mod auth;
#[path = "suite/caching.rs"]
mod caching;
#[path = "suite/cancellation.rs"]
mod cancellation;
#[path = "suite/compat.rs"]
mod compat;
#[path = "suite/containment.rs"]
mod containment;
#[path = "suite/daytona.rs"]
mod daytona;
#[path = "suite/distributed.rs"]
mod distributed;
#[path = "suite/engine.rs"]
mod engine;
#[path = "suite/errors.rs"]
mod errors;
#[path = "suite/faults.rs"]
mod faults;
#[path = "suite/fuzz.rs"]
mod fuzz;
#[path = "suite/hostile.rs"]
mod hostile;
#[path = "suite/paging.rs"]
mod paging;
#[path = "suite/query.rs"]
mod query;
#[path = "suite/races.rs"]
mod races;
#[path = "suite/representations.rs"]
mod representations;
#[path = "suite/shared_services.rs"]
mod shared_services;
#[path = "suite/shutdown.rs"]
mod shutdown;
#[path = "suite/stop.rs"]
mod stop;
#[path = "suite/tasks.rs"]
mod tasks;
#[path = "suite/tenants.rs"]
mod tenants;
#[path = "suite/upgrade.rs"]
mod upgrade;
#[path = "suite/vercel.rs"]
mod vercel;

//! Database migrations, applied at start by `api` and `worker` and by `cargo run -p migration`.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261201_000001_hardening;
mod m20261201_000002_task_events;
mod m20261201_000003_task_outcomes;
mod m20261201_000004_workload_endings;
mod m20261201_000005_task_cancel_and_params;
mod m20261201_000006_tenants;
mod m20261201_000007_neutral_operations;
mod m20261201_000008_neutral_workload_states;
mod m20261201_000009_derived_session_facts;
mod m20261201_000010_workloads;
mod m20261201_000011_containment;
mod m20261201_000012_limits;
mod m20261201_000013_tenant_spec_names;
mod m20261201_000014_spec_deletion;
mod m20261201_000015_schedules_and_env;
mod m20261206_000016_snapshots;
mod m20261206_000017_snapshot_expiry;
mod m20261206_000018_task_deletion_events;
mod m20261206_000019_auth_events;
mod m20261206_000020_task_counts;
mod m20261206_000021_view_changes;
mod m20261206_000022_final_state_events;
mod m20261206_000023_lean_task_indexes;
mod m20261207_000024_spec_faces;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261201_000001_hardening::Migration),
            Box::new(m20261201_000002_task_events::Migration),
            Box::new(m20261201_000003_task_outcomes::Migration),
            Box::new(m20261201_000004_workload_endings::Migration),
            Box::new(m20261201_000005_task_cancel_and_params::Migration),
            Box::new(m20261201_000006_tenants::Migration),
            Box::new(m20261201_000007_neutral_operations::Migration),
            Box::new(m20261201_000008_neutral_workload_states::Migration),
            Box::new(m20261201_000009_derived_session_facts::Migration),
            Box::new(m20261201_000010_workloads::Migration),
            Box::new(m20261201_000011_containment::Migration),
            Box::new(m20261201_000012_limits::Migration),
            Box::new(m20261201_000013_tenant_spec_names::Migration),
            Box::new(m20261201_000014_spec_deletion::Migration),
            Box::new(m20261201_000015_schedules_and_env::Migration),
            Box::new(m20261206_000016_snapshots::Migration),
            Box::new(m20261206_000017_snapshot_expiry::Migration),
            Box::new(m20261206_000018_task_deletion_events::Migration),
            Box::new(m20261206_000019_auth_events::Migration),
            Box::new(m20261206_000020_task_counts::Migration),
            Box::new(m20261206_000021_view_changes::Migration),
            Box::new(m20261206_000022_final_state_events::Migration),
            Box::new(m20261206_000023_lean_task_indexes::Migration),
            Box::new(m20261207_000024_spec_faces::Migration),
        ]
    }
}

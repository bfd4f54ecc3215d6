//! Changes to what a sandbox or session view shows are announced by the spec they belong to,
//! so that an `api` process may keep views in memory (`api::views`): a change to a spec, to a
//! workload of it, or to a task aimed at either (inserted, deleted, or its state or schedule
//! changed) names the spec.
//! - PostgreSQL: `NOTIFY taskq_view_changed, '<spec id>'` at commit (every process listens);
//! - SQLite (one writer at a time, so in commit order): the spec's row in `view_versions` gets
//!   the next version, and a process reads the rows above the last version it has seen.
//!
//! A task's target is a spec (Daytona's start and stop) or a workload (a session's stop), whose
//! spec is looked up.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000021_view_changes"
    }
}

/// The spec a task aimed at `target` belongs to.
macro_rules! spec_of_target {
    ($target:literal) => {
        concat!("COALESCE((SELECT spec_id FROM workloads WHERE id = ", $target, "), ", $target, ")")
    };
}

const UP_POSTGRES: &[&str] = &[
    // Tasks inserted or deleted in bulk notify once per statement (a seeded million is one
    // notification per spec, not a million trigger calls).
    concat!(
        "CREATE OR REPLACE FUNCTION taskq_view_tasks_changed() RETURNS trigger AS $$
         BEGIN
             PERFORM pg_notify('taskq_view_changed', spec)
             FROM (SELECT DISTINCT ",
        spec_of_target!("changed.target_id"),
        " AS spec FROM changed) specs;
             RETURN NULL;
         END $$ LANGUAGE plpgsql"
    ),
    concat!(
        "CREATE OR REPLACE FUNCTION taskq_view_task_changed() RETURNS trigger AS $$
         BEGIN
             PERFORM pg_notify('taskq_view_changed', ",
        spec_of_target!("NEW.target_id"),
        ");
             RETURN NULL;
         END $$ LANGUAGE plpgsql"
    ),
    "CREATE OR REPLACE FUNCTION taskq_view_spec_changed() RETURNS trigger AS $$
     BEGIN
         IF TG_TABLE_NAME = 'workloads' THEN
             PERFORM pg_notify('taskq_view_changed', COALESCE(NEW.spec_id, OLD.spec_id));
         ELSE
             PERFORM pg_notify('taskq_view_changed', COALESCE(NEW.id, OLD.id));
         END IF;
         RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER tasks_view_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS changed
     FOR EACH STATEMENT EXECUTE FUNCTION taskq_view_tasks_changed()",
    "CREATE TRIGGER tasks_view_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS changed
     FOR EACH STATEMENT EXECUTE FUNCTION taskq_view_tasks_changed()",
    "CREATE TRIGGER tasks_view_update AFTER UPDATE ON tasks FOR EACH ROW
     WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.not_before IS DISTINCT FROM NEW.not_before)
     EXECUTE FUNCTION taskq_view_task_changed()",
    "CREATE TRIGGER workloads_view_changed AFTER INSERT OR UPDATE OR DELETE ON workloads FOR EACH ROW
     EXECUTE FUNCTION taskq_view_spec_changed()",
    "CREATE TRIGGER workload_specs_view_changed AFTER INSERT OR UPDATE OR DELETE ON workload_specs
     FOR EACH ROW EXECUTE FUNCTION taskq_view_spec_changed()",
];

/// The next version, given to `spec`.
macro_rules! bump {
    ($spec:expr) => {
        concat!(
            "INSERT INTO view_versions (spec_id, version) VALUES (",
            $spec,
            ", (SELECT COALESCE(MAX(version), 0) + 1 FROM view_versions))
             ON CONFLICT (spec_id) DO UPDATE SET version = EXCLUDED.version;"
        )
    };
}

const UP_SQLITE: &[&str] = &[
    "CREATE TABLE view_versions (spec_id TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL)",
    "CREATE INDEX view_versions_by_version ON view_versions (version)",
    concat!(
        "CREATE TRIGGER tasks_view_insert AFTER INSERT ON tasks BEGIN ",
        bump!(spec_of_target!("NEW.target_id")),
        " END"
    ),
    concat!(
        "CREATE TRIGGER tasks_view_delete AFTER DELETE ON tasks BEGIN ",
        bump!(spec_of_target!("OLD.target_id")),
        " END"
    ),
    concat!(
        "CREATE TRIGGER tasks_view_update AFTER UPDATE ON tasks
         WHEN OLD.state IS NOT NEW.state OR OLD.not_before IS NOT NEW.not_before BEGIN ",
        bump!(spec_of_target!("NEW.target_id")),
        " END"
    ),
    concat!("CREATE TRIGGER workloads_view_insert AFTER INSERT ON workloads BEGIN ", bump!("NEW.spec_id"), " END"),
    concat!("CREATE TRIGGER workloads_view_update AFTER UPDATE ON workloads BEGIN ", bump!("NEW.spec_id"), " END"),
    concat!("CREATE TRIGGER workloads_view_delete AFTER DELETE ON workloads BEGIN ", bump!("OLD.spec_id"), " END"),
    concat!("CREATE TRIGGER workload_specs_view_insert AFTER INSERT ON workload_specs BEGIN ", bump!("NEW.id"), " END"),
    concat!("CREATE TRIGGER workload_specs_view_update AFTER UPDATE ON workload_specs BEGIN ", bump!("NEW.id"), " END"),
    concat!("CREATE TRIGGER workload_specs_view_delete AFTER DELETE ON workload_specs BEGIN ", bump!("OLD.id"), " END"),
];

const DOWN_POSTGRES: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_view_insert ON tasks",
    "DROP TRIGGER IF EXISTS tasks_view_delete ON tasks",
    "DROP TRIGGER IF EXISTS tasks_view_update ON tasks",
    "DROP TRIGGER IF EXISTS workloads_view_changed ON workloads",
    "DROP TRIGGER IF EXISTS workload_specs_view_changed ON workload_specs",
    "DROP FUNCTION IF EXISTS taskq_view_tasks_changed()",
    "DROP FUNCTION IF EXISTS taskq_view_task_changed()",
    "DROP FUNCTION IF EXISTS taskq_view_spec_changed()",
];

const DOWN_SQLITE: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_view_insert",
    "DROP TRIGGER IF EXISTS tasks_view_delete",
    "DROP TRIGGER IF EXISTS tasks_view_update",
    "DROP TRIGGER IF EXISTS workloads_view_insert",
    "DROP TRIGGER IF EXISTS workloads_view_update",
    "DROP TRIGGER IF EXISTS workloads_view_delete",
    "DROP TRIGGER IF EXISTS workload_specs_view_insert",
    "DROP TRIGGER IF EXISTS workload_specs_view_update",
    "DROP TRIGGER IF EXISTS workload_specs_view_delete",
    "DROP TABLE IF EXISTS view_versions",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, if m.get_database_backend() == DbBackend::Postgres { UP_POSTGRES } else { UP_SQLITE }).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, if m.get_database_backend() == DbBackend::Postgres { DOWN_POSTGRES } else { DOWN_SQLITE }).await
    }
}

async fn run(m: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    for statement in statements {
        m.get_connection().execute_unprepared(statement).await?;
    }
    Ok(())
}

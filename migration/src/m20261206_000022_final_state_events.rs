//! Task-state notifications only where someone listens for them: a task's claim (`Queued` →
//! `Running`) no longer notifies.
//!
//! On PostgreSQL a transaction that notifies holds one database-wide lock from just before its
//! commit until the commit is flushed, so notifying commits are flushed one at a time, and under
//! load they queued on that lock (measured: a third of the busy backends waited on it during
//! the accept benchmark). A claim notified twice (`taskq_task_changed`, `taskq_view_changed`)
//! and nobody needs it:
//! - task waiters (`Engine::wait_finished`) wake only for a final state, and the finished-task
//!   cache keeps only final tasks, which no later transition changes (a deletion still notifies);
//! - a kept sandbox or session view shows a pending task the same whether it is queued or
//!   running (`changing`, `stopping`), so its view changes when the task is inserted, deleted,
//!   rescheduled or ends, not when it is claimed.
//!
//! SQLite's view versions follow the same rule.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000022_final_state_events"
    }
}

const UP_POSTGRES: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_notify_changed ON tasks",
    "CREATE TRIGGER tasks_notify_changed AFTER UPDATE OF state ON tasks FOR EACH ROW
     WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.state IN ('Finished', 'Cancelled'))
     EXECUTE FUNCTION taskq_notify_task_changed()",
    "DROP TRIGGER IF EXISTS tasks_view_update ON tasks",
    "CREATE TRIGGER tasks_view_update AFTER UPDATE ON tasks FOR EACH ROW
     WHEN (OLD.not_before IS DISTINCT FROM NEW.not_before
           OR (OLD.state IS DISTINCT FROM NEW.state AND NEW.state IN ('Finished', 'Cancelled')))
     EXECUTE FUNCTION taskq_view_task_changed()",
];

const DOWN_POSTGRES: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_notify_changed ON tasks",
    "CREATE TRIGGER tasks_notify_changed AFTER UPDATE OF state ON tasks FOR EACH ROW
     WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION taskq_notify_task_changed()",
    "DROP TRIGGER IF EXISTS tasks_view_update ON tasks",
    "CREATE TRIGGER tasks_view_update AFTER UPDATE ON tasks FOR EACH ROW
     WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.not_before IS DISTINCT FROM NEW.not_before)
     EXECUTE FUNCTION taskq_view_task_changed()",
];

/// SQLite's `tasks_view_update` (migration 21) with the condition `when`.
macro_rules! sqlite_view_update {
    ($when:literal) => {
        concat!(
            "CREATE TRIGGER tasks_view_update AFTER UPDATE ON tasks WHEN ",
            $when,
            " BEGIN
             INSERT INTO view_versions (spec_id, version)
             VALUES (COALESCE((SELECT spec_id FROM workloads WHERE id = NEW.target_id), NEW.target_id),
                     (SELECT COALESCE(MAX(version), 0) + 1 FROM view_versions))
             ON CONFLICT (spec_id) DO UPDATE SET version = EXCLUDED.version;
             END"
        )
    };
}

const UP_SQLITE: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_view_update",
    sqlite_view_update!(
        "OLD.not_before IS NOT NEW.not_before OR (OLD.state IS NOT NEW.state AND NEW.state IN ('Finished', 'Cancelled'))"
    ),
];

const DOWN_SQLITE: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_view_update",
    sqlite_view_update!("OLD.state IS NOT NEW.state OR OLD.not_before IS NOT NEW.not_before"),
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

//! Task-state notifications (PostgreSQL only): every change of a task's state sends
//! `NOTIFY taskq_task_changed, '<task id>'`, delivered at commit. Every process listens, so
//! waiting for a task needs no polling (see `worker::events`). SQLite runs in one process, which
//! signals its own changes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000002_task_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE OR REPLACE FUNCTION taskq_notify_task_changed() RETURNS trigger AS $$
             BEGIN
                 PERFORM pg_notify('taskq_task_changed', NEW.id::text);
                 RETURN NEW;
             END $$ LANGUAGE plpgsql",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER tasks_notify_changed AFTER UPDATE OF state ON tasks FOR EACH ROW
             WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION taskq_notify_task_changed()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS tasks_notify_changed ON tasks").await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS taskq_notify_task_changed()").await?;
        Ok(())
    }
}

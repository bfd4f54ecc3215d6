//! Task deletions notify like state changes (PostgreSQL only): deleting a task sends
//! `NOTIFY taskq_task_changed, '<task id>'` at commit, so that every process forgets the
//! finished task it keeps in memory (see `worker::finished`). SQLite runs in one process,
//! which signals its own deletions.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000018_task_deletion_events"
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
            "CREATE OR REPLACE FUNCTION taskq_notify_task_deleted() RETURNS trigger AS $$
             BEGIN
                 PERFORM pg_notify('taskq_task_changed', OLD.id::text);
                 RETURN OLD;
             END $$ LANGUAGE plpgsql",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER tasks_notify_deleted AFTER DELETE ON tasks FOR EACH ROW
             EXECUTE FUNCTION taskq_notify_task_deleted()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS tasks_notify_deleted ON tasks").await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS taskq_notify_task_deleted()").await?;
        Ok(())
    }
}

//! Each user's task count, kept by triggers (`task_counts`), so that the task query's
//! `PagesCount` needs no scan of every task of the user: at a million tasks that count was a
//! 103 ms parallel scan per page (docs/benchmarks.md). A user's count is spread over 16 rows
//! (by task id), so that concurrent inserts of one user do not queue on one row lock; the count
//! is their sum. Rows counted when the migration runs go to shard 0 (a shard may go negative as
//! they are deleted; the sum stays right). The table is locked while it is counted, so no task
//! is missed or counted twice.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000020_task_counts"
    }
}

const TABLE: &str = "CREATE TABLE task_counts (
    user_id integer NOT NULL,
    shard integer NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (user_id, shard)
)";
const COUNT_EXISTING: &str =
    "INSERT INTO task_counts (user_id, shard, n) SELECT user_id, 0, count(*) FROM tasks GROUP BY user_id";

const UP_POSTGRES: &[&str] = &[
    "LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE",
    TABLE,
    "CREATE OR REPLACE FUNCTION taskq_count_tasks() RETURNS trigger AS $$
     BEGIN
         IF TG_OP = 'INSERT' THEN
             INSERT INTO task_counts (user_id, shard, n) VALUES (NEW.user_id, NEW.id % 16, 1)
             ON CONFLICT (user_id, shard) DO UPDATE SET n = task_counts.n + 1;
         ELSE
             INSERT INTO task_counts (user_id, shard, n) VALUES (OLD.user_id, OLD.id % 16, -1)
             ON CONFLICT (user_id, shard) DO UPDATE SET n = task_counts.n - 1;
         END IF;
         RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER tasks_count AFTER INSERT OR DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION taskq_count_tasks()",
    COUNT_EXISTING,
];

const UP_SQLITE: &[&str] = &[
    TABLE,
    "CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
         INSERT INTO task_counts (user_id, shard, n) VALUES (NEW.user_id, NEW.id % 16, 1)
         ON CONFLICT (user_id, shard) DO UPDATE SET n = n + 1;
     END",
    "CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
         INSERT INTO task_counts (user_id, shard, n) VALUES (OLD.user_id, OLD.id % 16, -1)
         ON CONFLICT (user_id, shard) DO UPDATE SET n = n - 1;
     END",
    COUNT_EXISTING,
];

const DOWN_POSTGRES: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_count ON tasks",
    "DROP FUNCTION IF EXISTS taskq_count_tasks()",
    "DROP TABLE IF EXISTS task_counts",
];

const DOWN_SQLITE: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_count_insert",
    "DROP TRIGGER IF EXISTS tasks_count_delete",
    "DROP TABLE IF EXISTS task_counts",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on either backend: the counts and the triggers start together.
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

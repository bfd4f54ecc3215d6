//! Each user's task count, kept by triggers (`task_counts`), so that the task query's
//! `PagesCount` needs no scan of every task of the user: at a million tasks that count was a
//! 103 ms parallel scan per page (docs/benchmarks.md). A user's count is their sum of rows by
//! shard. On PostgreSQL the shard is the connection's (its backend pid modulo 16): concurrent
//! inserts of one user on different connections do not queue on one row lock, and a
//! transaction adds to one row of a user only, so two transactions cannot deadlock on the
//! counts. SQLite has one writer and one shard. A shard may go negative (a task counted in
//! another is deleted); the sum stays right. The table is locked while the tasks already there
//! are counted, so none is missed or counted twice.

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

/// Once per statement, from its transition table: a statement inserting many tasks adds to each
/// shard once (a row-level trigger would update one row thousands of times in one transaction,
/// each update a new row version that the next must walk past).
const UP_POSTGRES: &[&str] = &[
    "LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE",
    TABLE,
    "CREATE OR REPLACE FUNCTION taskq_count_inserted_tasks() RETURNS trigger AS $$
     BEGIN
         INSERT INTO task_counts (user_id, shard, n)
         SELECT user_id, pg_backend_pid() % 16, count(*) FROM inserted GROUP BY 1 ORDER BY 1
         ON CONFLICT (user_id, shard) DO UPDATE SET n = task_counts.n + EXCLUDED.n;
         RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE OR REPLACE FUNCTION taskq_count_deleted_tasks() RETURNS trigger AS $$
     BEGIN
         INSERT INTO task_counts (user_id, shard, n)
         SELECT user_id, pg_backend_pid() % 16, -count(*) FROM deleted GROUP BY 1 ORDER BY 1
         ON CONFLICT (user_id, shard) DO UPDATE SET n = task_counts.n + EXCLUDED.n;
         RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS inserted
     FOR EACH STATEMENT EXECUTE FUNCTION taskq_count_inserted_tasks()",
    "CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS deleted
     FOR EACH STATEMENT EXECUTE FUNCTION taskq_count_deleted_tasks()",
    COUNT_EXISTING,
];

const UP_SQLITE: &[&str] = &[
    TABLE,
    "CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
         INSERT INTO task_counts (user_id, shard, n) VALUES (NEW.user_id, 0, 1)
         ON CONFLICT (user_id, shard) DO UPDATE SET n = n + 1;
     END",
    "CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
         INSERT INTO task_counts (user_id, shard, n) VALUES (OLD.user_id, 0, -1)
         ON CONFLICT (user_id, shard) DO UPDATE SET n = n - 1;
     END",
    COUNT_EXISTING,
];

const DOWN_POSTGRES: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_count_insert ON tasks",
    "DROP TRIGGER IF EXISTS tasks_count_delete ON tasks",
    "DROP FUNCTION IF EXISTS taskq_count_inserted_tasks()",
    "DROP FUNCTION IF EXISTS taskq_count_deleted_tasks()",
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

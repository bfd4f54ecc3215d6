//! Credential notifications (PostgreSQL; SQLite gets the two tables below only), so that every
//! `api` process can keep the credentials it has checked in memory and forget one as soon as it
//! stops being valid: at commit, `NOTIFY taskq_auth_changed` with
//! - `token:<hash>` when an API token is revoked (or its row changes, or goes);
//! - `logon:<hash>` when a logon session is deleted (logged off, or expired);
//! - `*` when a user or a tenant changes or goes (rare: everything is forgotten);
//! - `task:<id>` when a task is deleted (a finished task kept in memory is forgotten; sent on
//!   this channel too, so that it is ordered with the syncs below).
//!
//! A session's idle-timer write is no change of its validity and notifies nothing.
//!
//! And what makes a revocation wait until every process has heard of it
//! (`entity::store::revocations`): `auth_sync`, the last sync number taken (one row), and
//! `api_processes`, each process's lease on what it keeps and the last sync it has handled.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000019_auth_events"
    }
}

const UP: &[&str] = &[
    "CREATE TABLE auth_sync (n bigint NOT NULL)",
    "INSERT INTO auth_sync (n) VALUES (0)",
    "CREATE TABLE api_processes (
         id text PRIMARY KEY,
         synced bigint NOT NULL,
         expires_at timestamptz NOT NULL
     )",
    "CREATE OR REPLACE FUNCTION taskq_notify_token_changed() RETURNS trigger AS $$
     BEGIN
         PERFORM pg_notify('taskq_auth_changed', 'token:' || OLD.token_hash);
         RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER api_tokens_notify_changed AFTER UPDATE OR DELETE ON api_tokens FOR EACH ROW
     EXECUTE FUNCTION taskq_notify_token_changed()",
    "CREATE OR REPLACE FUNCTION taskq_notify_logon_deleted() RETURNS trigger AS $$
     BEGIN
         PERFORM pg_notify('taskq_auth_changed', 'logon:' || OLD.token_hash);
         RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER logon_sessions_notify_deleted AFTER DELETE ON logon_sessions FOR EACH ROW
     EXECUTE FUNCTION taskq_notify_logon_deleted()",
    "CREATE OR REPLACE FUNCTION taskq_notify_task_forgotten() RETURNS trigger AS $$
     BEGIN
         PERFORM pg_notify('taskq_auth_changed', 'task:' || OLD.id::text);
         RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER tasks_notify_forgotten AFTER DELETE ON tasks FOR EACH ROW
     EXECUTE FUNCTION taskq_notify_task_forgotten()",
    "CREATE OR REPLACE FUNCTION taskq_notify_auth_all() RETURNS trigger AS $$
     BEGIN
         PERFORM pg_notify('taskq_auth_changed', '*');
         RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER users_notify_changed AFTER UPDATE OR DELETE ON users FOR EACH ROW
     EXECUTE FUNCTION taskq_notify_auth_all()",
    // A tenant's row is also written as a lock (its name set to itself): only a real change counts.
    "CREATE TRIGGER tenants_notify_changed AFTER UPDATE ON tenants FOR EACH ROW
     WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION taskq_notify_auth_all()",
    "CREATE TRIGGER tenants_notify_deleted AFTER DELETE ON tenants FOR EACH ROW
     EXECUTE FUNCTION taskq_notify_auth_all()",
];

const DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS tenants_notify_deleted ON tenants",
    "DROP TRIGGER IF EXISTS tenants_notify_changed ON tenants",
    "DROP TRIGGER IF EXISTS users_notify_changed ON users",
    "DROP TRIGGER IF EXISTS tasks_notify_forgotten ON tasks",
    "DROP FUNCTION IF EXISTS taskq_notify_task_forgotten()",
    "DROP FUNCTION IF EXISTS taskq_notify_auth_all()",
    "DROP TRIGGER IF EXISTS logon_sessions_notify_deleted ON logon_sessions",
    "DROP FUNCTION IF EXISTS taskq_notify_logon_deleted()",
    "DROP TRIGGER IF EXISTS api_tokens_notify_changed ON api_tokens",
    "DROP FUNCTION IF EXISTS taskq_notify_token_changed()",
    "DROP TABLE IF EXISTS api_processes",
    "DROP TABLE IF EXISTS auth_sync",
];

/// SQLite has no notifications: its processes read `auth_sync` (see `revocations`), and a lease
/// ends at a time in milliseconds since the epoch.
const UP_SQLITE: &[&str] = &[
    "CREATE TABLE auth_sync (n INTEGER NOT NULL)",
    "INSERT INTO auth_sync (n) VALUES (0)",
    "CREATE TABLE api_processes (id TEXT PRIMARY KEY, synced INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
];

const DOWN_SQLITE: &[&str] = &["DROP TABLE IF EXISTS api_processes", "DROP TABLE IF EXISTS auth_sync"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, if m.get_database_backend() == DbBackend::Postgres { UP } else { UP_SQLITE }).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, if m.get_database_backend() == DbBackend::Postgres { DOWN } else { DOWN_SQLITE }).await
    }
}

async fn run(m: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    for statement in statements {
        m.get_connection().execute_unprepared(statement).await?;
    }
    Ok(())
}

//! Hardening: logon tokens are stored only as a hash, and a job has at most one active session,
//! enforced by the database.
//!
//! - `logon_sessions.token` becomes `token_hash` (SHA-256, hex). Tokens cannot be recovered from a
//!   hash, so the table is recreated empty: clients log on again, as after an idle timeout.
//! - `job_sessions.active_job_id` holds the job id while a session is not Stopped, and is unique:
//!   a second active session of one job cannot be inserted, however many starts race. A database
//!   written before this migration may hold several active sessions of one job (the defect this
//!   closes); only the newest of them gets the column, so the upgrade never fails, and the others
//!   stay stoppable.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000001_hardening"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum LogonSessions {
    Table,
    Id,
    Token,
    TokenHash,
    UserId,
    CreatedAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum JobSessions {
    Table,
    ActiveJobId,
}

const ACTIVE_INDEX: &str = "job_sessions_one_active_per_job";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(LogonSessions::Table).to_owned()).await?;
        m.create_table(logon_sessions(string_uniq(LogonSessions::TokenHash))).await?;

        m.alter_table(
            Table::alter().table(JobSessions::Table).add_column(string_null(JobSessions::ActiveJobId)).to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE job_sessions SET active_job_id = job_id WHERE state <> 'Stopped' AND NOT EXISTS (
                     SELECT 1 FROM job_sessions newer
                     WHERE newer.job_id = job_sessions.job_id AND newer.state <> 'Stopped'
                       AND (newer.creation_time > job_sessions.creation_time
                            OR (newer.creation_time = job_sessions.creation_time AND newer.id > job_sessions.id)))",
            )
            .await?;
        m.create_index(
            Index::create()
                .name(ACTIVE_INDEX)
                .table(JobSessions::Table)
                .col(JobSessions::ActiveJobId)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(ACTIVE_INDEX).table(JobSessions::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(JobSessions::Table).drop_column(JobSessions::ActiveJobId).to_owned())
            .await?;
        m.drop_table(Table::drop().table(LogonSessions::Table).to_owned()).await?;
        m.create_table(logon_sessions(string_uniq(LogonSessions::Token))).await
    }
}

fn logon_sessions(token: ColumnDef) -> TableCreateStatement {
    Table::create()
        .table(LogonSessions::Table)
        .col(string(LogonSessions::Id).primary_key())
        .col(token)
        .col(integer(LogonSessions::UserId))
        .col(timestamp_with_time_zone(LogonSessions::CreatedAt))
        .col(timestamp_with_time_zone(LogonSessions::LastSeenAt))
        .foreign_key(
            ForeignKey::create()
                .from(LogonSessions::Table, LogonSessions::UserId)
                .to(Users::Table, Users::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

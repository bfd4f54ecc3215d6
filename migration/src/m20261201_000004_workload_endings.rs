//! Workload endings become facts: `job_sessions.ending` holds a JSON `entity::outcome::End`,
//! which each face phrases (Veeam's FailureMessage), instead of a sentence in `failure_message`.
//! Sessions of earlier releases keep their words as a `legacy` ending.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000004_workload_endings"
    }
}

#[derive(DeriveIden)]
enum JobSessions {
    Table,
    Ending,
    FailureMessage,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(JobSessions::Table).add_column(text_null(JobSessions::Ending)).to_owned())
            .await?;
        let legacy = match m.get_database_backend() {
            DbBackend::Postgres => "json_build_object('kind', 'legacy', 'message', failure_message)::text",
            _ => "json_object('kind', 'legacy', 'message', failure_message)",
        };
        m.get_connection()
            .execute_unprepared(&format!("UPDATE job_sessions SET ending = {legacy} WHERE state = 'Stopped'"))
            .await?;
        m.alter_table(Table::alter().table(JobSessions::Table).drop_column(JobSessions::FailureMessage).to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(JobSessions::Table).add_column(text_null(JobSessions::FailureMessage)).to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(JobSessions::Table).drop_column(JobSessions::Ending).to_owned()).await
    }
}

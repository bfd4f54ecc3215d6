//! A session's `result` and `progress` were Veeam's words, stored: both follow from its state and
//! its ending (see the Veeam face), so they are no longer kept.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000009_derived_session_facts"
    }
}

#[derive(DeriveIden)]
enum JobSessions {
    Table,
    Result,
    Progress,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [JobSessions::Result, JobSessions::Progress] {
            m.alter_table(Table::alter().table(JobSessions::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(JobSessions::Table)
                .add_column(string_len(JobSessions::Result, 16).default("None"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table(JobSessions::Table).add_column(integer(JobSessions::Progress).default(0)).to_owned(),
        )
        .await
    }
}

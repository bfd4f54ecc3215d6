//! Workload states in the engine's words: a running workload is `Running` (Veeam's face still
//! shows a running session as `Working`).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000008_neutral_workload_states"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("UPDATE job_sessions SET state = 'Running' WHERE state = 'Working'")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("UPDATE job_sessions SET state = 'Working' WHERE state = 'Running'")
            .await?;
        Ok(())
    }
}

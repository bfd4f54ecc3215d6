//! Task operations in the engine's words: `start_workload`, `stop_spec`, `stop_workload`
//! (Veeam's StartJob, StopJob, StopJobSession, which the Veeam face still shows).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000007_neutral_operations"
    }
}

const RENAMES: [(&str, &str); 3] =
    [("StartJob", "start_workload"), ("StopJob", "stop_spec"), ("StopJobSession", "stop_workload")];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (old, new) in RENAMES {
            m.get_connection()
                .execute_unprepared(&format!("UPDATE tasks SET operation = '{new}' WHERE operation = '{old}'"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (old, new) in RENAMES {
            m.get_connection()
                .execute_unprepared(&format!("UPDATE tasks SET operation = '{old}' WHERE operation = '{new}'"))
                .await?;
        }
        Ok(())
    }
}

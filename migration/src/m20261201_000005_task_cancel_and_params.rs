//! Tasks: who asked to cancel and when (`cancel_requested_by`, `cancel_requested_at`; a task that
//! ends because of it is in the final state `Cancelled`), and per-task parameters (`params`, JSON:
//! e.g. a forced stop, a grace period of its own).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000005_task_cancel_and_params"
    }
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    CancelRequestedBy,
    CancelRequestedAt,
    Params,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            integer_null(Tasks::CancelRequestedBy),
            timestamp_with_time_zone_null(Tasks::CancelRequestedAt),
            text_null(Tasks::Params),
        ] {
            m.alter_table(Table::alter().table(Tasks::Table).add_column(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [Tasks::CancelRequestedBy, Tasks::CancelRequestedAt, Tasks::Params] {
            m.alter_table(Table::alter().table(Tasks::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

//! A spec can be deleted (a Daytona sandbox is): it keeps its row, for the history of its
//! workloads and tasks, with `deleted_at` set and its name freed for reuse.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000014_spec_deletion"
    }
}

#[derive(DeriveIden)]
enum WorkloadSpecs {
    Table,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(WorkloadSpecs::Table)
                .add_column(timestamp_with_time_zone_null(WorkloadSpecs::DeletedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(WorkloadSpecs::Table).drop_column(WorkloadSpecs::DeletedAt).to_owned()).await
    }
}

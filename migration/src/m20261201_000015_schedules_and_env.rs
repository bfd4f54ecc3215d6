//! A task can be scheduled: `not_before` holds it back (unpublished, unclaimed, not pending)
//! until then, so a schedule (a Daytona sandbox's auto-stop, auto-delete) is an engine task in
//! the database, not a timer in a process. A spec has an environment its command runs with,
//! and a disk size (recorded, as a sandbox's; listings sort by it).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000015_schedules_and_env"
    }
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    NotBefore,
}

#[derive(DeriveIden)]
enum WorkloadSpecs {
    Table,
    Env,
    DiskBytes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(Tasks::Table).add_column(timestamp_with_time_zone_null(Tasks::NotBefore)).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table(WorkloadSpecs::Table).add_column(text(WorkloadSpecs::Env).default("{}")).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(WorkloadSpecs::Table)
                .add_column(big_integer_null(WorkloadSpecs::DiskBytes))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(WorkloadSpecs::Table).drop_column(WorkloadSpecs::DiskBytes).to_owned())
            .await?;
        m.alter_table(Table::alter().table(WorkloadSpecs::Table).drop_column(WorkloadSpecs::Env).to_owned()).await?;
        m.alter_table(Table::alter().table(Tasks::Table).drop_column(Tasks::NotBefore).to_owned()).await
    }
}

//! A task can be scheduled: `not_before` holds it back (unpublished, unclaimed, not pending)
//! until then, so a schedule (a Daytona sandbox's auto-stop, auto-delete) is an engine task in
//! the database, not a timer in a process. A spec has an environment its command runs with,
//! and a disk size (recorded, as a sandbox's; listings sort by it). Two indexes: the relay's read
//! of due tasks, and a target's tasks.

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
    State,
    TargetId,
    NotBefore,
    PublishedAt,
}

/// The relay's two reads: queued tasks not scheduled, and scheduled ones now due; each a range
/// of this index, however many tasks wait for a later time.
const RELAY_INDEX: &str = "ix_tasks_state_not_before_published";

/// A target's tasks (`pending_for`: what a sandbox's state is derived from, on every read).
const TARGET_INDEX: &str = "ix_tasks_target_state";

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
        m.create_index(
            Index::create()
                .name(RELAY_INDEX)
                .table(Tasks::Table)
                .col(Tasks::State)
                .col(Tasks::NotBefore)
                .col(Tasks::PublishedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name(TARGET_INDEX).table(Tasks::Table).col(Tasks::TargetId).col(Tasks::State).to_owned(),
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
        m.drop_index(Index::drop().name(TARGET_INDEX).table(Tasks::Table).to_owned()).await?;
        m.drop_index(Index::drop().name(RELAY_INDEX).table(Tasks::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Tasks::Table).drop_column(Tasks::NotBefore).to_owned()).await
    }
}

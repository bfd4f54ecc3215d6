//! Snapshots: an archive of a spec's working directory, made by a snapshot task (which stops
//! the workload first) and restored into a new spec's working directory before its first run.
//! A row is written before its task (status `pending`, shown to no one) and marked `created`
//! (with its size) or `failed` by the runner; a delete marks it `deleted` and removes the file.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000016_snapshots"
    }
}

#[derive(DeriveIden)]
enum Snapshots {
    Table,
    Id,
    TenantId,
    SpecId,
    WorkloadId,
    Scope,
    Status,
    SizeBytes,
    Path,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Snapshots::Table)
                .if_not_exists()
                .col(string(Snapshots::Id).primary_key())
                .col(integer(Snapshots::TenantId))
                .col(string(Snapshots::SpecId))
                .col(string(Snapshots::WorkloadId))
                .col(string(Snapshots::Scope))
                .col(string_len(Snapshots::Status, 16))
                .col(big_integer(Snapshots::SizeBytes).default(0))
                .col(string(Snapshots::Path))
                .col(timestamp_with_time_zone(Snapshots::CreatedAt))
                .col(timestamp_with_time_zone(Snapshots::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_snapshots_tenant_created")
                .table(Snapshots::Table)
                .col(Snapshots::TenantId)
                .col(Snapshots::CreatedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Snapshots::Table).to_owned()).await
    }
}

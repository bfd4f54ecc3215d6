//! Snapshot expiry: when a snapshot is deleted by itself (`expires_at`, none: never). Its
//! deletion is a scheduled engine task; until that has run, a snapshot past its expiry is
//! treated as deleted.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000017_snapshot_expiry"
    }
}

#[derive(DeriveIden)]
enum Snapshots {
    Table,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Snapshots::Table)
                .add_column(ColumnDef::new(Snapshots::ExpiresAt).timestamp_with_time_zone().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Snapshots::Table).drop_column(Snapshots::ExpiresAt).to_owned()).await
    }
}

//! Tenants and API tokens. Tenants own users, tokens, workload specs (jobs), workloads (job
//! sessions) and tasks; everything written before belongs to the tenant `default` (id 1), where
//! the Veeam face's users live. API tokens (for the bearer-token faces) are stored only as a
//! SHA-256 hash, and revoked rather than deleted.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000006_tenants"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    TenantId,
    Name,
    TokenHash,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
}
#[derive(DeriveIden)]
enum Jobs {
    Table,
}
#[derive(DeriveIden)]
enum JobSessions {
    Table,
}
#[derive(DeriveIden)]
enum Tasks {
    Table,
}
#[derive(DeriveIden)]
enum Owned {
    TenantId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Tenants::Table)
                .col(pk_auto(Tenants::Id))
                .col(string_uniq(Tenants::Name))
                .col(timestamp_with_time_zone(Tenants::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared("INSERT INTO tenants (id, name, created_at) VALUES (1, 'default', CURRENT_TIMESTAMP)")
            .await?;
        if m.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
            // The explicit id 1 did not advance the sequence.
            m.get_connection().execute_unprepared("SELECT setval(pg_get_serial_sequence('tenants', 'id'), 1)").await?;
        }
        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(pk_auto(ApiTokens::Id))
                .col(integer(ApiTokens::TenantId))
                .col(string(ApiTokens::Name))
                .col(string_uniq(ApiTokens::TokenHash))
                .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiTokens::Table, ApiTokens::TenantId)
                        .to(Tenants::Table, Tenants::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        for table in [
            Users::Table.into_iden(),
            Jobs::Table.into_iden(),
            JobSessions::Table.into_iden(),
            Tasks::Table.into_iden(),
        ] {
            m.alter_table(
                Table::alter().table(table.clone()).add_column(integer(Owned::TenantId).default(1)).to_owned(),
            )
            .await?;
            let name = format!("ix_{table}_tenant");
            m.create_index(Index::create().name(name).table(table).col(Owned::TenantId).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Users::Table.into_iden(),
            Jobs::Table.into_iden(),
            JobSessions::Table.into_iden(),
            Tasks::Table.into_iden(),
        ] {
            let name = format!("ix_{table}_tenant");
            m.drop_index(Index::drop().name(name).table(table.clone()).to_owned()).await?;
            m.alter_table(Table::alter().table(table).drop_column(Owned::TenantId).to_owned()).await?;
        }
        m.drop_table(Table::drop().table(ApiTokens::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Tenants::Table).to_owned()).await
    }
}

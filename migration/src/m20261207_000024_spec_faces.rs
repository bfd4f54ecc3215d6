//! A spec records the face that made it (`face`: `daytona`, `vercel`, `vercel_v1`; none for a
//! jobs file's), which until now only the key of its `meta` told. A Daytona create counts the
//! tenant's sandboxes against its quota, and listings filter by face: both parsed the `meta` of
//! every spec of the tenant, on PostgreSQL with a plan costly enough to be JIT-compiled on each
//! create (100 ms and more with 10,000 sandboxes). Indexed with the tenant, among live specs.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string_null;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000024_spec_faces"
    }
}

#[derive(DeriveIden)]
enum WorkloadSpecs {
    Table,
    Face,
}

const INDEX: &str = "ix_workload_specs_tenant_face";

/// The faces that keep their attributes under their own key of `meta`.
const FACES: [&str; 3] = ["daytona", "vercel", "vercel_v1"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(WorkloadSpecs::Table).add_column(string_null(WorkloadSpecs::Face)).to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for face in FACES {
            let has_key = match m.get_database_backend() {
                DbBackend::Postgres => format!("meta::jsonb ? '{face}'"),
                _ => format!("json_extract(meta, '$.{face}') IS NOT NULL"),
            };
            db.execute_unprepared(&format!(
                "UPDATE workload_specs SET face = '{face}' WHERE face IS NULL AND {has_key}"
            ))
            .await?;
        }
        db.execute_unprepared(&format!(
            "CREATE INDEX {INDEX} ON workload_specs (tenant_id, face) WHERE deleted_at IS NULL"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(INDEX).table(WorkloadSpecs::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(WorkloadSpecs::Table).drop_column(WorkloadSpecs::Face).to_owned()).await?;
        Ok(())
    }
}

//! A spec's name is unique within its tenant, not across tenants: two tenants may each have a
//! spec (a job, a sandbox) called the same. Before, the column itself was `UNIQUE`.
//!
//! PostgreSQL drops the column's constraint. SQLite cannot drop a column constraint, so the table
//! is rebuilt from its own definition without it, in one batch on one connection (foreign keys
//! off meanwhile, so the workloads that refer to it are left as they are).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000013_tenant_spec_names"
    }
}

const INDEX: &str = "ix_workload_specs_tenant_name";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        match m.get_database_backend() {
            DbBackend::Postgres => {
                for constraint in name_constraints(db).await? {
                    db.execute_unprepared(&format!("ALTER TABLE workload_specs DROP CONSTRAINT \"{constraint}\""))
                        .await?;
                }
            }
            _ => {
                let ddl = sqlite_ddl(db).await?;
                let unique = ddl.replace("\"name\" varchar NOT NULL UNIQUE", "\"name\" varchar NOT NULL");
                if unique == ddl {
                    return Err(DbErr::Migration(format!("unexpected definition of workload_specs: {ddl}")));
                }
                rebuild(db, &unique).await?;
            }
        }
        m.create_index(
            Index::create()
                .name(INDEX)
                .table(Alias::new("workload_specs"))
                .col(Alias::new("tenant_id"))
                .col(Alias::new("name"))
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(INDEX).table(Alias::new("workload_specs")).to_owned()).await?;
        let db = m.get_connection();
        match m.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared("ALTER TABLE workload_specs ADD CONSTRAINT jobs_name_key UNIQUE (name)").await?;
            }
            _ => {
                let ddl = sqlite_ddl(db).await?;
                rebuild(db, &ddl.replace("\"name\" varchar NOT NULL", "\"name\" varchar NOT NULL UNIQUE")).await?;
            }
        }
        Ok(())
    }
}

/// The unique constraints on `workload_specs (name)` alone.
async fn name_constraints(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
             WHERE t.relname = 'workload_specs' AND c.contype = 'u'
               AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = t.oid AND attname = 'name')]",
        ))
        .await?;
    rows.iter().map(|row| row.try_get::<String>("", "conname")).collect()
}

async fn sqlite_ddl(db: &impl ConnectionTrait) -> Result<String, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'workload_specs'",
        ))
        .await?
        .ok_or_else(|| DbErr::Migration("workload_specs has no definition".into()))?;
    row.try_get("", "sql")
}

/// Replaces `workload_specs` by a table defined as `ddl`, keeping its rows and indexes.
async fn rebuild(db: &impl ConnectionTrait, ddl: &str) -> Result<(), DbErr> {
    let indexes = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'workload_specs' AND sql IS NOT NULL",
        ))
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "sql"))
        .collect::<Result<Vec<_>, _>>()?;
    let create = ddl.replacen("workload_specs", "workload_specs_rebuilt", 1);
    let mut batch = format!(
        "PRAGMA foreign_keys = OFF;
         {create};
         INSERT INTO workload_specs_rebuilt SELECT * FROM workload_specs;
         DROP TABLE workload_specs;
         ALTER TABLE workload_specs_rebuilt RENAME TO workload_specs;"
    );
    for index in indexes {
        batch.push_str(&format!("{index};"));
    }
    batch.push_str("PRAGMA foreign_keys = ON;");
    db.execute_unprepared(&batch).await?;
    Ok(())
}

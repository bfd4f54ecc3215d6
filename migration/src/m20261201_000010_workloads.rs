//! The engine's own words for its tables: `jobs` become `workload_specs` and `job_sessions`
//! become `workloads`.
//!
//! - A spec keeps its name, command and working directory; what only a face shows (Veeam's job
//!   type and description) moves into `meta`, a JSON object the faces own.
//! - A workload refers to its spec by `spec_id` (and keeps the spec's name as it was then,
//!   `spec_name`); `creation_time`/`end_time` become `created_at`/`ended_at`; `job_type` goes (it is
//!   the spec's). It gains `succeeded` (set with `ending`: whether it ran to a successful end by
//!   itself, so lists can filter on it in SQL) and `labels` (a JSON object of strings).
//! - Indexes for listing: workloads by tenant in creation order, tasks by tenant and by user in id
//!   order. Indexes made by earlier migrations keep their names.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000010_workloads"
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
}

#[derive(DeriveIden)]
enum WorkloadSpecs {
    Table,
    Meta,
    JobType,
    Description,
}

#[derive(DeriveIden)]
enum JobSessions {
    Table,
}

#[derive(DeriveIden)]
enum Workloads {
    Table,
    Id,
    Name,
    TenantId,
    JobId,
    SpecId,
    JobName,
    SpecName,
    JobType,
    CreationTime,
    CreatedAt,
    EndTime,
    EndedAt,
    ActiveJobId,
    ActiveSpecId,
    Succeeded,
    Labels,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    TenantId,
    UserId,
}

const LISTING_INDEXES: [&str; 4] =
    ["ix_workloads_tenant_created", "ix_workloads_tenant_name", "ix_tasks_tenant_id", "ix_tasks_user_id"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        m.rename_table(Table::rename().table(Jobs::Table, WorkloadSpecs::Table).to_owned()).await?;
        m.alter_table(
            Table::alter().table(WorkloadSpecs::Table).add_column(text(WorkloadSpecs::Meta).default("{}")).to_owned(),
        )
        .await?;
        let meta = match m.get_database_backend() {
            DbBackend::Postgres => "json_build_object('jobType', job_type, 'description', description)::text",
            _ => "json_object('jobType', job_type, 'description', description)",
        };
        db.execute_unprepared(&format!("UPDATE workload_specs SET meta = {meta}")).await?;
        for column in [WorkloadSpecs::JobType, WorkloadSpecs::Description] {
            m.alter_table(Table::alter().table(WorkloadSpecs::Table).drop_column(column).to_owned()).await?;
        }

        m.rename_table(Table::rename().table(JobSessions::Table, Workloads::Table).to_owned()).await?;
        for (from, to) in [
            (Workloads::JobId, Workloads::SpecId),
            (Workloads::JobName, Workloads::SpecName),
            (Workloads::CreationTime, Workloads::CreatedAt),
            (Workloads::EndTime, Workloads::EndedAt),
            (Workloads::ActiveJobId, Workloads::ActiveSpecId),
        ] {
            m.alter_table(Table::alter().table(Workloads::Table).rename_column(from, to).to_owned()).await?;
        }
        m.alter_table(Table::alter().table(Workloads::Table).drop_column(Workloads::JobType).to_owned()).await?;
        m.alter_table(Table::alter().table(Workloads::Table).add_column(boolean_null(Workloads::Succeeded)).to_owned())
            .await?;
        m.alter_table(
            Table::alter().table(Workloads::Table).add_column(text(Workloads::Labels).default("{}")).to_owned(),
        )
        .await?;
        record_succeeded(db).await?;

        for (name, sort) in [(LISTING_INDEXES[0], Workloads::CreatedAt), (LISTING_INDEXES[1], Workloads::Name)] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Workloads::Table)
                    .col(Workloads::TenantId)
                    .col(sort)
                    .col(Workloads::Id)
                    .to_owned(),
            )
            .await?;
        }
        for (name, owner) in [(LISTING_INDEXES[2], Tasks::TenantId), (LISTING_INDEXES[3], Tasks::UserId)] {
            m.create_index(Index::create().name(name).table(Tasks::Table).col(owner).col(Tasks::Id).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for (name, table) in [
            (LISTING_INDEXES[0], Workloads::Table.into_iden()),
            (LISTING_INDEXES[1], Workloads::Table.into_iden()),
            (LISTING_INDEXES[2], Tasks::Table.into_iden()),
            (LISTING_INDEXES[3], Tasks::Table.into_iden()),
        ] {
            m.drop_index(Index::drop().name(name).table(table).to_owned()).await?;
        }
        for column in [Workloads::Succeeded, Workloads::Labels] {
            m.alter_table(Table::alter().table(Workloads::Table).drop_column(column).to_owned()).await?;
        }
        m.alter_table(
            Table::alter().table(Workloads::Table).add_column(string(Workloads::JobType).default("Backup")).to_owned(),
        )
        .await?;
        for (to, from) in [
            (Workloads::JobId, Workloads::SpecId),
            (Workloads::JobName, Workloads::SpecName),
            (Workloads::CreationTime, Workloads::CreatedAt),
            (Workloads::EndTime, Workloads::EndedAt),
            (Workloads::ActiveJobId, Workloads::ActiveSpecId),
        ] {
            m.alter_table(Table::alter().table(Workloads::Table).rename_column(from, to).to_owned()).await?;
        }
        m.rename_table(Table::rename().table(Workloads::Table, JobSessions::Table).to_owned()).await?;

        for column in [WorkloadSpecs::JobType, WorkloadSpecs::Description] {
            m.alter_table(Table::alter().table(WorkloadSpecs::Table).add_column(string(column).default("")).to_owned())
                .await?;
        }
        let (job_type, description) = match m.get_database_backend() {
            DbBackend::Postgres => ("meta::json->>'jobType'", "meta::json->>'description'"),
            _ => ("json_extract(meta, '$.jobType')", "json_extract(meta, '$.description')"),
        };
        db.execute_unprepared(&format!(
            "UPDATE workload_specs SET job_type = COALESCE({job_type}, 'Backup'), description = COALESCE({description}, '')"
        ))
        .await?;
        db.execute_unprepared(
            "UPDATE job_sessions SET job_type = (SELECT job_type FROM workload_specs WHERE workload_specs.id = job_sessions.job_id)",
        )
        .await?;
        m.alter_table(Table::alter().table(WorkloadSpecs::Table).drop_column(WorkloadSpecs::Meta).to_owned()).await?;
        m.rename_table(Table::rename().table(WorkloadSpecs::Table, Jobs::Table).to_owned()).await
    }
}

/// Sets `succeeded` on every ended workload, read from its JSON `ending` as `entity::outcome::End`
/// reads it: exited by itself with code 0, or a legacy ending without a failure message.
async fn record_succeeded(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, "SELECT id, ending FROM workloads WHERE ending IS NOT NULL"))
        .await?;
    let mut verdicts: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for row in rows {
        let id: String = row.try_get("", "id")?;
        let ending: String = row.try_get("", "ending")?;
        verdicts[usize::from(succeeded(&ending))].push(id);
    }
    for (verdict, ids) in verdicts.iter().enumerate() {
        for chunk in ids.chunks(500) {
            let update = Query::update()
                .table(Workloads::Table)
                .value(Workloads::Succeeded, verdict == 1)
                .and_where(Expr::col(Workloads::Id).is_in(chunk.iter().cloned()))
                .to_owned();
            db.execute(&update).await?;
        }
    }
    Ok(())
}

fn succeeded(ending: &str) -> bool {
    let Ok(end) = serde_json::from_str::<serde_json::Value>(ending) else { return false };
    match end["kind"].as_str() {
        Some("exited") => end["code"] == 0 && end["during_stop"] == false,
        Some("legacy") => serde_json::Value::is_null(&end["message"]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn success_is_read_from_endings_as_the_engine_reads_them() {
        for (ending, succeeded) in [
            (r#"{"kind":"exited","code":0,"signal":null,"during_stop":false}"#, true),
            (r#"{"kind":"exited","code":0,"signal":null,"during_stop":true}"#, false),
            (r#"{"kind":"exited","code":2,"signal":null,"during_stop":false}"#, false),
            (r#"{"kind" : "legacy", "message" : null}"#, true),
            (r#"{"kind" : "legacy", "message" : "Stopped by user."}"#, false),
            (r#"{"kind":"stopped","how":{"kind":"already_exited"}}"#, false),
            ("not json", false),
        ] {
            assert_eq!(super::succeeded(ending), succeeded, "{ending}");
        }
    }
}

//! A workload spec may carry resource sizes, which its workloads are limited to where the host's
//! cgroup controllers allow: `cpu_millis` (1000 = one CPU), `memory_bytes`, `max_processes`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000012_limits"
    }
}

#[derive(DeriveIden)]
enum WorkloadSpecs {
    Table,
    CpuMillis,
    MemoryBytes,
    MaxProcesses,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for mut column in [
            integer_null(WorkloadSpecs::CpuMillis),
            big_integer_null(WorkloadSpecs::MemoryBytes),
            integer_null(WorkloadSpecs::MaxProcesses),
        ] {
            m.alter_table(Table::alter().table(WorkloadSpecs::Table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [WorkloadSpecs::CpuMillis, WorkloadSpecs::MemoryBytes, WorkloadSpecs::MaxProcesses] {
            m.alter_table(Table::alter().table(WorkloadSpecs::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

//! Containment: a workload keeps the handle of what contains its processes (`containment`, JSON:
//! a cgroup, a tracked process tree, or for workloads of earlier releases nothing, meaning its
//! process group) and what the kernel measured of it once it ended (CPU time, peak memory, peak
//! process count, where the mechanism provides them). A runner says which mechanism it uses.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000011_containment"
    }
}

#[derive(DeriveIden)]
enum Workloads {
    Table,
    Containment,
    CpuUsec,
    MemoryPeakBytes,
    ProcessesPeak,
}

#[derive(DeriveIden)]
enum Runners {
    Table,
    Containment,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for mut column in [
            text_null(Workloads::Containment),
            big_integer_null(Workloads::CpuUsec),
            big_integer_null(Workloads::MemoryPeakBytes),
            big_integer_null(Workloads::ProcessesPeak),
        ] {
            m.alter_table(Table::alter().table(Workloads::Table).add_column(&mut column).to_owned()).await?;
        }
        m.alter_table(Table::alter().table(Runners::Table).add_column(text_null(Runners::Containment)).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Runners::Table).drop_column(Runners::Containment).to_owned()).await?;
        for column in [Workloads::Containment, Workloads::CpuUsec, Workloads::MemoryPeakBytes, Workloads::ProcessesPeak]
        {
            m.alter_table(Table::alter().table(Workloads::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

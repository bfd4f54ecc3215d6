//! Three indexes of `tasks` that no query needs any more, dropped: every insert and every state
//! change of a task wrote an entry into each (a state change moves the row, so none of its
//! updates is HOT), and they were a third of the table's nine indexes.
//! - `ix_tasks_user` (`user_id`) and `ix_tasks_tenant` (`tenant_id`): each is the prefix of the
//!   ordered index that migration 10 added for the same owner (`user_id, id`; `tenant_id, id`),
//!   which serves every lookup it served, the foreign key's cascade included;
//! - `ix_tasks_state_published` (`state, published_at`): the relay's reads use
//!   `ix_tasks_state_not_before_published` (see `tasks::queued_and_due`), and the other reads
//!   by state `ix_tasks_state_runner`.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000023_lean_task_indexes"
    }
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    UserId,
    TenantId,
    State,
    PublishedAt,
}

fn dropped() -> [(&'static str, Vec<Tasks>); 3] {
    [
        ("ix_tasks_user", vec![Tasks::UserId]),
        ("ix_tasks_tenant", vec![Tasks::TenantId]),
        ("ix_tasks_state_published", vec![Tasks::State, Tasks::PublishedAt]),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in dropped() {
            m.drop_index(Index::drop().name(name).table(Tasks::Table).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, columns) in dropped() {
            let mut index = Index::create().name(name).table(Tasks::Table).to_owned();
            for column in columns {
                index.col(column);
            }
            m.create_index(index).await?;
        }
        Ok(())
    }
}

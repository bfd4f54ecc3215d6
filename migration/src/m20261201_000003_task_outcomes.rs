//! Task outcomes become facts: `tasks.outcome` holds a JSON `entity::outcome::Outcome`, which
//! each face phrases, instead of a sentence in `message` and a `related_session_id` for Veeam's
//! link. Finished tasks of earlier releases keep their words as a `legacy` outcome.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000003_task_outcomes"
    }
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Outcome,
    Message,
    RelatedSessionId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Tasks::Table).add_column(text_null(Tasks::Outcome)).to_owned()).await?;
        let legacy = match m.get_database_backend() {
            DbBackend::Postgres => {
                "json_build_object('kind', 'legacy', 'success', COALESCE(success, false), \
                 'message', COALESCE(message, ''), 'workload', related_session_id)::text"
            }
            _ => {
                "json_object('kind', 'legacy', 'success', json(CASE WHEN success THEN 'true' ELSE 'false' END), \
                 'message', COALESCE(message, ''), 'workload', related_session_id)"
            }
        };
        m.get_connection()
            .execute_unprepared(&format!("UPDATE tasks SET outcome = {legacy} WHERE state = 'Finished'"))
            .await?;
        for column in [Tasks::Message, Tasks::RelatedSessionId] {
            m.alter_table(Table::alter().table(Tasks::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Tasks::Table).add_column(text_null(Tasks::Message)).to_owned()).await?;
        m.alter_table(Table::alter().table(Tasks::Table).add_column(string_null(Tasks::RelatedSessionId)).to_owned())
            .await?;
        m.alter_table(Table::alter().table(Tasks::Table).drop_column(Tasks::Outcome).to_owned()).await
    }
}

use crate::runner;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::OnConflict};

/// Records that `id` is alive now (inserting it on first sight).
pub async fn heartbeat(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    let now = super::now();
    runner::Entity::insert(runner::ActiveModel {
        id: Set(id.to_owned()),
        started_at: Set(now),
        heartbeat_at: Set(now),
        containment: Set(None),
    })
    .on_conflict(OnConflict::column(runner::Column::Id).update_column(runner::Column::HeartbeatAt).to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Runners whose last heartbeat is older than `before`.
pub async fn silent_since(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<Vec<runner::Model>, DbErr> {
    runner::Entity::find().filter(runner::Column::HeartbeatAt.lt(before)).all(db).await
}

/// Records how the runner contains workloads (said once, at start).
pub async fn describe(db: &impl ConnectionTrait, id: &str, containment: &str) -> Result<(), DbErr> {
    runner::Entity::update_many()
        .col_expr(runner::Column::Containment, sea_orm::sea_query::Expr::value(containment.to_owned()))
        .filter(runner::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<runner::Model>, DbErr> {
    runner::Entity::find_by_id(id.to_owned()).one(db).await
}

use crate::logon_session;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, sea_query::Expr,
};

pub async fn create(
    db: &impl ConnectionTrait,
    id: &str,
    token_hash: &str,
    user_id: i32,
) -> Result<logon_session::Model, DbErr> {
    let now = super::now();
    logon_session::ActiveModel {
        id: Set(id.to_owned()),
        token_hash: Set(token_hash.to_owned()),
        user_id: Set(user_id),
        created_at: Set(now),
        last_seen_at: Set(now),
    }
    .insert(db)
    .await
}

/// How often a session's idle timer is written: a request restarts the timer only when the
/// last write is at least this old, so polling with a session writes at most once a second
/// (its idle timeout runs from its last write: up to this much early).
pub const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// The live session whose token hashes to `token_hash`, and its user (none: deleted), in one
/// read; its idle timer restarted (see `TOUCH_EVERY`). Sessions idle since before `idle_since`
/// are expired: deleted and not returned.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    token_hash: &str,
    idle_since: DateTime<Utc>,
) -> Result<Option<(logon_session::Model, Option<crate::user::Model>)>, DbErr> {
    let Some((mut session, user)) = logon_session::Entity::find()
        .filter(logon_session::Column::TokenHash.eq(token_hash))
        .find_also_related(crate::user::Entity)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if session.last_seen_at < idle_since {
        logon_session::Entity::delete_by_id(session.id).exec(db).await?;
        return Ok(None);
    }
    let now = super::now();
    if now - session.last_seen_at >= TOUCH_EVERY {
        logon_session::Entity::update_many()
            .col_expr(logon_session::Column::LastSeenAt, Expr::value(now))
            .filter(logon_session::Column::Id.eq(&session.id))
            .exec(db)
            .await?;
        session.last_seen_at = now;
    }
    Ok(Some((session, user)))
}

pub async fn list_for_user(db: &impl ConnectionTrait, user_id: i32) -> Result<Vec<logon_session::Model>, DbErr> {
    logon_session::Entity::find()
        .filter(logon_session::Column::UserId.eq(user_id))
        .order_by_asc(logon_session::Column::CreatedAt)
        .all(db)
        .await
}

pub async fn find_for_user(
    db: &impl ConnectionTrait,
    id: &str,
    user_id: i32,
) -> Result<Option<logon_session::Model>, DbErr> {
    logon_session::Entity::find_by_id(id.to_owned()).filter(logon_session::Column::UserId.eq(user_id)).one(db).await
}

/// Deletes a logon session (logging off); how many. Returns once no `api` process accepts it
/// (`revocations::settle`).
pub async fn delete(db: &DatabaseConnection, id: &str) -> Result<u64, DbErr> {
    let deleted = logon_session::Entity::delete_by_id(id.to_owned()).exec(db).await?.rows_affected;
    if deleted > 0 {
        super::revocations::settle(db).await?;
    }
    Ok(deleted)
}

/// Deletes the sessions idle since before `idle_since`; how many.
pub async fn delete_idle_since(db: &impl ConnectionTrait, idle_since: DateTime<Utc>) -> Result<u64, DbErr> {
    let deleted =
        logon_session::Entity::delete_many().filter(logon_session::Column::LastSeenAt.lt(idle_since)).exec(db).await?;
    Ok(deleted.rows_affected)
}

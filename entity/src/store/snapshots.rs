//! Snapshots: written `pending` before their task, `created` or `failed` by the runner,
//! `deleted` by a delete task (the owner's, or the one their expiry scheduled).

use crate::snapshot::{self, Column};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

pub const PENDING: &str = "pending";
pub const CREATED: &str = "created";
pub const FAILED: &str = "failed";
pub const DELETED: &str = "deleted";

/// A new snapshot, `pending`, of `workload` (of `spec`), to be archived at `path`, deleted by
/// itself at `expires_at` (when given; the caller schedules that).
pub async fn insert(
    db: &impl ConnectionTrait,
    id: &str,
    tenant_id: i32,
    workload: &crate::workload::Model,
    scope: &str,
    path: &str,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<snapshot::Model, DbErr> {
    let now = super::now();
    snapshot::ActiveModel {
        id: Set(id.to_owned()),
        tenant_id: Set(tenant_id),
        spec_id: Set(workload.spec_id.clone()),
        workload_id: Set(workload.id.clone()),
        scope: Set(scope.to_owned()),
        status: Set(PENDING.to_owned()),
        size_bytes: Set(0),
        path: Set(path.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        expires_at: Set(expires_at),
    }
    .insert(db)
    .await
}

/// Removes a snapshot that was never taken (its task was not submitted).
pub async fn remove_pending(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    snapshot::Entity::delete_many().filter(Column::Id.eq(id)).filter(Column::Status.eq(PENDING)).exec(db).await?;
    Ok(())
}

pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<snapshot::Model>, DbErr> {
    snapshot::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The tenant's snapshot, unless it is still being taken.
pub async fn find_of(db: &impl ConnectionTrait, tenant_id: i32, id: &str) -> Result<Option<snapshot::Model>, DbErr> {
    snapshot::Entity::find_by_id(id.to_owned())
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::Status.ne(PENDING))
        .one(db)
        .await
}

/// Moves a snapshot from `from` to `to` (with its size when given); false when it was not in
/// `from` (a compare-and-set: a re-run changes nothing).
pub async fn set_status(
    db: &impl ConnectionTrait,
    id: &str,
    from: &str,
    to: &str,
    size_bytes: Option<i64>,
) -> Result<bool, DbErr> {
    let mut update = snapshot::Entity::update_many()
        .col_expr(Column::Status, Expr::value(to))
        .col_expr(Column::UpdatedAt, Expr::value(super::now()));
    if let Some(size) = size_bytes {
        update = update.col_expr(Column::SizeBytes, Expr::value(size));
    }
    let updated = update.filter(Column::Id.eq(id)).filter(Column::Status.eq(from)).exec(db).await?;
    Ok(updated.rows_affected == 1)
}

/// A keyset page of the tenant's snapshots shown to clients (not pending), newest first, of
/// one scope and, when given, one spec.
pub async fn page(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    scope: Option<&str>,
    spec_id: Option<&str>,
    after: Option<&super::page::Cursor>,
    limit: u64,
) -> Result<super::page::Page<snapshot::Model>, DbErr> {
    let mut select = snapshot::Entity::find().filter(Column::TenantId.eq(tenant_id)).filter(Column::Status.ne(PENDING));
    if let Some(scope) = scope {
        select = select.filter(Column::Scope.eq(scope));
    }
    if let Some(spec) = spec_id {
        select = select.filter(Column::SpecId.eq(spec));
    }
    if let Some(cursor) = after {
        let at = chrono::DateTime::parse_from_rfc3339(&cursor.value)
            .map_err(|_| DbErr::Custom("bad cursor".into()))?
            .with_timezone(&chrono::Utc);
        select =
            select.filter(super::page::after(Column::CreatedAt, Column::Id, at.into(), cursor.id.clone().into(), true));
    }
    let limit = limit.clamp(1, super::page::MAX_LIMIT);
    let rows = select.order_by_desc(Column::CreatedAt).order_by_desc(Column::Id).limit(limit + 1).all(db).await?;
    Ok(super::page::finish(rows, limit, |s| super::page::Cursor {
        sort: CURSOR_SORT.to_owned(),
        descending: true,
        value: s.created_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        id: s.id.clone(),
    }))
}

/// The sort a snapshot page's cursor is made for.
pub const CURSOR_SORT: &str = "created_at";

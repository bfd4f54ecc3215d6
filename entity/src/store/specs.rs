use crate::workload_spec;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};

/// What a jobs file declares about one spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSpec {
    pub name: String,
    pub command: Vec<String>,
    pub working_dir: String,
    /// A JSON object for the faces.
    pub meta: serde_json::Value,
    pub limits: crate::outcome::Limits,
}

/// Inserts the spec (of the default tenant: jobs files belong to it), or updates the one with the
/// same name (its id is kept).
pub async fn upsert_by_name(db: &impl ConnectionTrait, spec: &NewSpec) -> Result<workload_spec::Model, DbErr> {
    let existing = live()
        .filter(workload_spec::Column::TenantId.eq(crate::tenant::DEFAULT))
        .filter(workload_spec::Column::Name.eq(&spec.name))
        .one(db)
        .await?;
    match existing {
        Some(existing) => {
            let mut active = existing.into_active_model();
            fill(&mut active, spec)?;
            active.update(db).await
        }
        None => create(db, crate::tenant::DEFAULT, spec).await,
    }
}

/// Inserts a new spec of the tenant. Fails with a unique violation (`is_name_taken`) when the
/// tenant has a spec of that name already.
pub async fn create(db: &impl ConnectionTrait, tenant_id: i32, spec: &NewSpec) -> Result<workload_spec::Model, DbErr> {
    let mut active = workload_spec::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        tenant_id: Set(tenant_id),
        name: Set(spec.name.clone()),
        created_at: Set(super::now()),
        ..Default::default()
    };
    fill(&mut active, spec)?;
    active.insert(db).await
}

/// Sets everything `spec` declares, and the update time.
fn fill(active: &mut workload_spec::ActiveModel, spec: &NewSpec) -> Result<(), DbErr> {
    let limits = spec.limits;
    active.command = Set(serde_json::to_string(&spec.command).map_err(|e| DbErr::Custom(e.to_string()))?);
    active.working_dir = Set(spec.working_dir.clone());
    active.meta = Set(spec.meta.to_string());
    active.cpu_millis = Set(limits.cpu_millis.and_then(|n| i32::try_from(n).ok()));
    active.memory_bytes = Set(limits.memory_bytes.and_then(|n| i64::try_from(n).ok()));
    active.max_processes = Set(limits.max_processes.and_then(|n| i32::try_from(n).ok()));
    active.updated_at = Set(super::now());
    Ok(())
}

/// The insert failed because the tenant has a spec of that name.
pub fn is_name_taken(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Specs that are not deleted.
fn live() -> sea_orm::Select<workload_spec::Entity> {
    workload_spec::Entity::find().filter(workload_spec::Column::DeletedAt.is_null())
}

/// Every spec, of every tenant (for the engine and operators).
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<workload_spec::Model>, DbErr> {
    live().order_by_asc(workload_spec::Column::Name).all(db).await
}

/// The tenant's specs.
pub async fn list_of(db: &impl ConnectionTrait, tenant_id: i32) -> Result<Vec<workload_spec::Model>, DbErr> {
    live().filter(workload_spec::Column::TenantId.eq(tenant_id)).order_by_asc(workload_spec::Column::Name).all(db).await
}

/// The spec, if it is the tenant's (and not deleted).
pub async fn find_of(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    id: &str,
) -> Result<Option<workload_spec::Model>, DbErr> {
    live().filter(workload_spec::Column::Id.eq(id)).filter(workload_spec::Column::TenantId.eq(tenant_id)).one(db).await
}

/// The tenant's spec called `name` (not deleted).
pub async fn find_named(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    name: &str,
) -> Result<Option<workload_spec::Model>, DbErr> {
    live()
        .filter(workload_spec::Column::Name.eq(name))
        .filter(workload_spec::Column::TenantId.eq(tenant_id))
        .one(db)
        .await
}

/// The spec, whoever owns it, unless deleted (for the engine, acting on a task whose tenant was
/// checked).
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<workload_spec::Model>, DbErr> {
    live().filter(workload_spec::Column::Id.eq(id)).one(db).await
}

/// Deletes the spec, if it has no active workload (else false: stop it first). Its name is
/// freed: it becomes `DESTROYED_<name>_<unix ms>`.
pub async fn mark_deleted(db: &impl ConnectionTrait, spec: &workload_spec::Model) -> Result<bool, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let now = super::now();
    let active = Query::select()
        .expr(Expr::val(1))
        .from(crate::workload::Entity)
        .and_where(Expr::col(crate::workload::Column::ActiveSpecId).eq(spec.id.clone()))
        .to_owned();
    let freed = format!("DESTROYED_{}_{}", spec.name, now.timestamp_millis());
    let updated = workload_spec::Entity::update_many()
        .col_expr(workload_spec::Column::DeletedAt, Expr::value(now))
        .col_expr(workload_spec::Column::Name, Expr::value(freed))
        .col_expr(workload_spec::Column::UpdatedAt, Expr::value(now))
        .filter(workload_spec::Column::Id.eq(spec.id.clone()))
        .filter(workload_spec::Column::DeletedAt.is_null())
        .filter(Expr::exists(active).not())
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

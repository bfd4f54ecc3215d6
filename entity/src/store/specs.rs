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
    let now = super::now();
    let command = serde_json::to_string(&spec.command).map_err(|e| DbErr::Custom(e.to_string()))?;
    let meta = spec.meta.to_string();
    let limits = spec.limits;
    let cpu_millis = limits.cpu_millis.and_then(|n| i32::try_from(n).ok());
    let memory_bytes = limits.memory_bytes.and_then(|n| i64::try_from(n).ok());
    let max_processes = limits.max_processes.and_then(|n| i32::try_from(n).ok());
    match workload_spec::Entity::find().filter(workload_spec::Column::Name.eq(&spec.name)).one(db).await? {
        Some(existing) => {
            let mut active = existing.into_active_model();
            active.command = Set(command);
            active.working_dir = Set(spec.working_dir.clone());
            active.meta = Set(meta);
            active.cpu_millis = Set(cpu_millis);
            active.memory_bytes = Set(memory_bytes);
            active.max_processes = Set(max_processes);
            active.updated_at = Set(now);
            active.update(db).await
        }
        None => {
            workload_spec::ActiveModel {
                id: Set(uuid::Uuid::new_v4().to_string()),
                tenant_id: Set(crate::tenant::DEFAULT),
                name: Set(spec.name.clone()),
                command: Set(command),
                working_dir: Set(spec.working_dir.clone()),
                meta: Set(meta),
                cpu_millis: Set(cpu_millis),
                memory_bytes: Set(memory_bytes),
                max_processes: Set(max_processes),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(db)
            .await
        }
    }
}

/// Every spec, of every tenant (for the engine and operators).
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<workload_spec::Model>, DbErr> {
    workload_spec::Entity::find().order_by_asc(workload_spec::Column::Name).all(db).await
}

/// The tenant's specs.
pub async fn list_of(db: &impl ConnectionTrait, tenant_id: i32) -> Result<Vec<workload_spec::Model>, DbErr> {
    workload_spec::Entity::find()
        .filter(workload_spec::Column::TenantId.eq(tenant_id))
        .order_by_asc(workload_spec::Column::Name)
        .all(db)
        .await
}

/// The spec, if it is the tenant's.
pub async fn find_of(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    id: &str,
) -> Result<Option<workload_spec::Model>, DbErr> {
    workload_spec::Entity::find_by_id(id.to_owned()).filter(workload_spec::Column::TenantId.eq(tenant_id)).one(db).await
}

/// The spec, whoever owns it (for the engine, acting on a task whose tenant was checked).
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<workload_spec::Model>, DbErr> {
    workload_spec::Entity::find_by_id(id.to_owned()).one(db).await
}

use crate::job;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};

/// What a jobs file declares about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub name: String,
    pub job_type: String,
    pub description: String,
    pub command: Vec<String>,
    pub working_dir: String,
}

/// Inserts the job (of the default tenant: jobs files belong to it), or updates the one with the
/// same name (its id is kept).
pub async fn upsert_by_name(db: &impl ConnectionTrait, spec: &JobSpec) -> Result<job::Model, DbErr> {
    let now = super::now();
    let command = serde_json::to_string(&spec.command).map_err(|e| DbErr::Custom(e.to_string()))?;
    match job::Entity::find().filter(job::Column::Name.eq(&spec.name)).one(db).await? {
        Some(existing) => {
            let mut active = existing.into_active_model();
            active.job_type = Set(spec.job_type.clone());
            active.description = Set(spec.description.clone());
            active.command = Set(command);
            active.working_dir = Set(spec.working_dir.clone());
            active.updated_at = Set(now);
            active.update(db).await
        }
        None => {
            job::ActiveModel {
                id: Set(uuid::Uuid::new_v4().to_string()),
                tenant_id: Set(crate::tenant::DEFAULT),
                name: Set(spec.name.clone()),
                job_type: Set(spec.job_type.clone()),
                description: Set(spec.description.clone()),
                command: Set(command),
                working_dir: Set(spec.working_dir.clone()),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(db)
            .await
        }
    }
}

/// Every job, of every tenant (for the engine and operators).
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<job::Model>, DbErr> {
    job::Entity::find().order_by_asc(job::Column::Name).all(db).await
}

/// The tenant's jobs.
pub async fn list_of(db: &impl ConnectionTrait, tenant_id: i32) -> Result<Vec<job::Model>, DbErr> {
    job::Entity::find().filter(job::Column::TenantId.eq(tenant_id)).order_by_asc(job::Column::Name).all(db).await
}

/// The job, if it is the tenant's.
pub async fn find_of(db: &impl ConnectionTrait, tenant_id: i32, id: &str) -> Result<Option<job::Model>, DbErr> {
    job::Entity::find_by_id(id.to_owned()).filter(job::Column::TenantId.eq(tenant_id)).one(db).await
}

/// The job, whoever owns it (for the engine, acting on a task whose tenant was checked).
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<job::Model>, DbErr> {
    job::Entity::find_by_id(id.to_owned()).one(db).await
}

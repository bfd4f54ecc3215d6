use crate::state::{TransitionError, WorkloadEvent, WorkloadState};
use crate::workload::{self, Column};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, sea_query::Expr,
};

/// Inserts a new workload, claiming its spec: fails with a unique violation (`is_spec_taken`)
/// when the spec already has an active workload.
pub async fn insert(db: &impl ConnectionTrait, mut workload: workload::Model) -> Result<workload::Model, DbErr> {
    workload.active_spec_id = (workload.state != WorkloadState::Stopped).then(|| workload.spec_id.clone());
    let mut active = workload.into_active_model();
    active = active.reset_all();
    active.insert(db).await
}

/// The insert failed because the spec already has an active workload.
pub fn is_spec_taken(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// The workload, whoever owns it (for the engine, acting on a task whose tenant was checked).
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<workload::Model>, DbErr> {
    workload::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn find_by_start_task(db: &impl ConnectionTrait, task_id: i32) -> Result<Option<workload::Model>, DbErr> {
    workload::Entity::find().filter(Column::StartTaskId.eq(task_id)).one(db).await
}

/// The workload, if it is the tenant's.
pub async fn find_of(db: &impl ConnectionTrait, tenant_id: i32, id: &str) -> Result<Option<workload::Model>, DbErr> {
    workload::Entity::find_by_id(id.to_owned()).filter(Column::TenantId.eq(tenant_id)).one(db).await
}

/// The tenant's workloads, oldest first.
pub async fn list_of(db: &impl ConnectionTrait, tenant_id: i32) -> Result<Vec<workload::Model>, DbErr> {
    workload::Entity::find()
        .filter(Column::TenantId.eq(tenant_id))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// The workloads of one of the tenant's specs, oldest first.
pub async fn list_for_spec(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    spec_id: &str,
) -> Result<Vec<workload::Model>, DbErr> {
    workload::Entity::find()
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::SpecId.eq(spec_id))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// The spec's newest workload that has not stopped yet.
pub async fn active_of_spec(db: &impl ConnectionTrait, spec_id: &str) -> Result<Option<workload::Model>, DbErr> {
    workload::Entity::find()
        .filter(Column::SpecId.eq(spec_id))
        .filter(Column::State.ne(WorkloadState::Stopped))
        .order_by_desc(Column::CreatedAt)
        .one(db)
        .await
}

/// Workloads of `runner` that have not stopped yet.
pub async fn active_on(db: &impl ConnectionTrait, runner: &str) -> Result<Vec<workload::Model>, DbErr> {
    workload::Entity::find()
        .filter(Column::RunnerId.eq(runner))
        .filter(Column::State.ne(WorkloadState::Stopped))
        .all(db)
        .await
}

/// The one function that changes a workload's state: a compare-and-set on the state the caller saw.
pub async fn transition(
    db: &impl ConnectionTrait,
    seen: &workload::Model,
    event: WorkloadEvent,
) -> Result<workload::Model, TransitionError> {
    if !event.legal_from(seen.state) {
        return Err(TransitionError::Illegal { event: event.name(), from: seen.state.to_string() });
    }
    let mut next = seen.clone();
    next.state = event.target();
    match event {
        WorkloadEvent::Started { pid } => next.pid = Some(pid),
        WorkloadEvent::StopRequested | WorkloadEvent::StopAbandoned => {}
        WorkloadEvent::Ended(end) => {
            next.exit_code = end.exit_code();
            next.ending = Some(end.to_json());
            next.succeeded = Some(end.succeeded());
            next.ended_at = Some(super::now());
            next.active_spec_id = None;
        }
    }
    let updated = workload::Entity::update_many()
        .col_expr(Column::State, Expr::value(next.state))
        .col_expr(Column::Pid, Expr::value(next.pid))
        .col_expr(Column::Ending, Expr::value(next.ending.clone()))
        .col_expr(Column::ExitCode, Expr::value(next.exit_code))
        .col_expr(Column::Succeeded, Expr::value(next.succeeded))
        .col_expr(Column::EndedAt, Expr::value(next.ended_at))
        .col_expr(Column::ActiveSpecId, Expr::value(next.active_spec_id.clone()))
        .filter(Condition::all().add(Column::Id.eq(&seen.id)).add(Column::State.eq(seen.state)))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(TransitionError::Stale { expected: seen.state.to_string() });
    }
    Ok(next)
}

use crate::job_session::{self, Column};
use crate::state::{SessionEvent, TransitionError, WorkloadState};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, sea_query::Expr,
};

/// Inserts a new session, claiming its job: fails with a unique violation (`is_job_taken`) when
/// the job already has an active session.
pub async fn insert(db: &impl ConnectionTrait, mut session: job_session::Model) -> Result<job_session::Model, DbErr> {
    session.active_job_id = (session.state != WorkloadState::Stopped).then(|| session.job_id.clone());
    let mut active = session.into_active_model();
    active = active.reset_all();
    active.insert(db).await
}

/// The insert failed because the job already has an active session.
pub fn is_job_taken(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// The session, whoever owns it (for the engine, acting on a task whose tenant was checked).
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<job_session::Model>, DbErr> {
    job_session::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn find_by_start_task(db: &impl ConnectionTrait, task_id: i32) -> Result<Option<job_session::Model>, DbErr> {
    job_session::Entity::find().filter(Column::StartTaskId.eq(task_id)).one(db).await
}

/// The session, if it is the tenant's.
pub async fn find_of(db: &impl ConnectionTrait, tenant_id: i32, id: &str) -> Result<Option<job_session::Model>, DbErr> {
    job_session::Entity::find_by_id(id.to_owned()).filter(Column::TenantId.eq(tenant_id)).one(db).await
}

/// The tenant's sessions, oldest first.
pub async fn list_of(db: &impl ConnectionTrait, tenant_id: i32) -> Result<Vec<job_session::Model>, DbErr> {
    job_session::Entity::find()
        .filter(Column::TenantId.eq(tenant_id))
        .order_by_asc(Column::CreationTime)
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// The sessions of one of the tenant's jobs, oldest first.
pub async fn list_for_job(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    job_id: &str,
) -> Result<Vec<job_session::Model>, DbErr> {
    job_session::Entity::find()
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::JobId.eq(job_id))
        .order_by_asc(Column::CreationTime)
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// The job's newest session that has not stopped yet.
pub async fn active_of_job(db: &impl ConnectionTrait, job_id: &str) -> Result<Option<job_session::Model>, DbErr> {
    job_session::Entity::find()
        .filter(Column::JobId.eq(job_id))
        .filter(Column::State.ne(WorkloadState::Stopped))
        .order_by_desc(Column::CreationTime)
        .one(db)
        .await
}

/// Sessions of `runner` that have not stopped yet.
pub async fn active_on(db: &impl ConnectionTrait, runner: &str) -> Result<Vec<job_session::Model>, DbErr> {
    job_session::Entity::find()
        .filter(Column::RunnerId.eq(runner))
        .filter(Column::State.ne(WorkloadState::Stopped))
        .all(db)
        .await
}

/// The one function that changes a session's state: a compare-and-set on the state the caller saw.
pub async fn transition(
    db: &impl ConnectionTrait,
    seen: &job_session::Model,
    event: SessionEvent,
) -> Result<job_session::Model, TransitionError> {
    if !event.legal_from(seen.state) {
        return Err(TransitionError::Illegal { event: event.name(), from: seen.state.to_string() });
    }
    let mut next = seen.clone();
    next.state = event.target();
    match event {
        SessionEvent::Started { pid } => next.pid = Some(pid),
        SessionEvent::StopRequested | SessionEvent::StopAbandoned => {}
        SessionEvent::Ended(end) => {
            next.exit_code = end.exit_code();
            next.ending = Some(end.to_json());
            next.end_time = Some(super::now());
            next.active_job_id = None;
        }
    }
    let updated = job_session::Entity::update_many()
        .col_expr(Column::State, Expr::value(next.state))
        .col_expr(Column::Pid, Expr::value(next.pid))
        .col_expr(Column::Ending, Expr::value(next.ending.clone()))
        .col_expr(Column::ExitCode, Expr::value(next.exit_code))
        .col_expr(Column::EndTime, Expr::value(next.end_time))
        .col_expr(Column::ActiveJobId, Expr::value(next.active_job_id.clone()))
        .filter(Condition::all().add(Column::Id.eq(&seen.id)).add(Column::State.eq(seen.state)))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(TransitionError::Stale { expected: seen.state.to_string() });
    }
    Ok(next)
}

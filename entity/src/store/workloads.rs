use super::page::{BadCursor, Cursor, Page};
use crate::state::{TransitionError, WorkloadEvent, WorkloadState};
use crate::workload::{self, Column};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Select, TransactionSession, TransactionTrait, sea_query::Expr,
};

/// Inserts a new workload, claiming its spec: fails with a unique violation (`is_spec_taken`)
/// when the spec already has an active workload; `None` when the spec is deleted. It holds
/// the spec's row lock meanwhile, as `specs::mark_deleted` does, so a spec is never deleted
/// with an active workload, whichever of the two commits first.
pub async fn insert(
    db: &impl TransactionTrait,
    mut workload: workload::Model,
) -> Result<Option<workload::Model>, DbErr> {
    workload.active_spec_id = (workload.state != WorkloadState::Stopped).then(|| workload.spec_id.clone());
    let txn = db.begin().await?;
    if !super::specs::lock(&txn, &workload.spec_id).await? {
        return Ok(None);
    }
    let inserted = workload.into_active_model().reset_all().insert(&txn).await?;
    txn.commit().await?;
    Ok(Some(inserted))
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

/// The tenant's workload `id` with its spec, in one read.
pub async fn find_with_spec_of(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    id: &str,
) -> Result<Option<(workload::Model, crate::workload_spec::Model)>, DbErr> {
    use sea_orm::JoinType;
    let spec = sea_orm::RelationDef::from(
        workload::Entity::belongs_to(crate::workload_spec::Entity)
            .from(Column::SpecId)
            .to(crate::workload_spec::Column::Id),
    );
    let found = workload::Entity::find_by_id(id.to_owned())
        .filter(Column::TenantId.eq(tenant_id))
        .join(JoinType::InnerJoin, spec)
        .select_also(crate::workload_spec::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(workload, spec)| Some((workload, spec?))))
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

/// The active workloads of these specs (at most one each), in one read.
pub async fn active_of_specs(db: &impl ConnectionTrait, spec_ids: &[&str]) -> Result<Vec<workload::Model>, DbErr> {
    if spec_ids.is_empty() {
        return Ok(Vec::new());
    }
    workload::Entity::find().filter(Column::ActiveSpecId.is_in(spec_ids.iter().copied())).all(db).await
}

/// The newest workload of each of these specs (its active one, if it has one: a spec's next
/// workload starts only once the last has stopped), in one read.
fn newest_of_specs_query(spec_ids: &[&str]) -> Select<workload::Entity> {
    let latest = sea_orm::sea_query::Expr::cust(
        "workloads.created_at = (SELECT MAX(later.created_at) FROM workloads later WHERE later.spec_id = workloads.spec_id)",
    );
    workload::Entity::find().filter(Column::SpecId.is_in(spec_ids.iter().copied())).filter(latest)
}

/// The newest workload of each of these specs, whatever its state, in one read.
pub async fn newest_of_specs(db: &impl ConnectionTrait, spec_ids: &[&str]) -> Result<Vec<workload::Model>, DbErr> {
    if spec_ids.is_empty() {
        return Ok(Vec::new());
    }
    newest_of_specs_query(spec_ids).all(db).await
}

/// The newest workload of the spec, whatever its state.
pub async fn newest_of_spec(db: &impl ConnectionTrait, spec_id: &str) -> Result<Option<workload::Model>, DbErr> {
    newest_of_specs_query(&[spec_id]).order_by_desc(Column::Id).one(db).await
}

/// The last workload of each of these specs that has none active (how it ended), in one read.
pub async fn last_ended_of_specs(db: &impl ConnectionTrait, spec_ids: &[&str]) -> Result<Vec<workload::Model>, DbErr> {
    if spec_ids.is_empty() {
        return Ok(Vec::new());
    }
    newest_of_specs_query(spec_ids).filter(Column::State.eq(WorkloadState::Stopped)).all(db).await
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
        WorkloadEvent::Started { pid, containment } => {
            next.pid = Some(pid);
            next.containment = containment;
        }
        WorkloadEvent::StopRequested | WorkloadEvent::StopAbandoned => {}
        WorkloadEvent::Ended(end, usage) => {
            next.exit_code = end.exit_code();
            next.ending = Some(end.to_json());
            next.succeeded = Some(end.succeeded());
            next.ended_at = Some(super::now());
            next.active_spec_id = None;
            next.cpu_usec = usage.cpu_usec;
            next.memory_peak_bytes = usage.memory_peak_bytes;
            next.processes_peak = usage.processes_peak;
        }
    }
    let updated = workload::Entity::update_many()
        .col_expr(Column::State, Expr::value(next.state))
        .col_expr(Column::Pid, Expr::value(next.pid))
        .col_expr(Column::Containment, Expr::value(next.containment.clone()))
        .col_expr(Column::CpuUsec, Expr::value(next.cpu_usec))
        .col_expr(Column::MemoryPeakBytes, Expr::value(next.memory_peak_bytes))
        .col_expr(Column::ProcessesPeak, Expr::value(next.processes_peak))
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

/// What a listing of a tenant's workloads shows, and in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadQuery {
    /// Only workloads in one of these states; empty: any.
    pub states: Vec<WorkloadState>,
    pub spec_id: Option<String>,
    pub name_prefix: Option<String>,
    pub id_prefix: Option<String>,
    /// Only workloads of the tenant's live specs that this query filters in (such as one
    /// face's scope: a Vercel project's sessions).
    pub of_specs: Option<super::specs::SpecQuery>,
    pub sort: WorkloadSort,
    pub descending: bool,
}

/// The sort key of a workload listing; ties are broken by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkloadSort {
    #[default]
    CreatedAt,
    Name,
}

impl WorkloadSort {
    fn key(self) -> &'static str {
        match self {
            WorkloadSort::CreatedAt => "created_at",
            WorkloadSort::Name => "name",
        }
    }

    fn column(self) -> Column {
        match self {
            WorkloadSort::CreatedAt => Column::CreatedAt,
            WorkloadSort::Name => Column::Name,
        }
    }

    fn value_of(self, w: &workload::Model) -> String {
        match self {
            WorkloadSort::CreatedAt => w.created_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            WorkloadSort::Name => w.name.clone(),
        }
    }

    fn sea_value(self, text: &str) -> Option<sea_orm::Value> {
        match self {
            WorkloadSort::CreatedAt => chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| sea_orm::Value::from(t.with_timezone(&chrono::Utc))),
            WorkloadSort::Name => Some(sea_orm::Value::from(text.to_owned())),
        }
    }
}

impl WorkloadQuery {
    /// The cursor `text`, if it was made by a listing with this sort and order.
    pub fn cursor(&self, text: &str) -> Result<Cursor, BadCursor> {
        let cursor = Cursor::decode(text, self.sort.key(), self.descending)?;
        self.sort.sea_value(&cursor.value).map(|_| cursor).ok_or(BadCursor)
    }
}

/// One page of the tenant's workloads: at most `limit` (capped at `page::MAX_LIMIT`), after
/// `after` (a cursor from `WorkloadQuery::cursor`), read along the tenant's listing index.
pub async fn page(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    query: &WorkloadQuery,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Page<workload::Model>, DbErr> {
    let limit = limit.clamp(1, super::page::MAX_LIMIT);
    let rows = page_query(db.get_database_backend(), tenant_id, query, after, limit)?.all(db).await?;
    Ok(super::page::finish(rows, limit, |w| Cursor {
        sort: query.sort.key().to_owned(),
        descending: query.descending,
        value: query.sort.value_of(w),
        id: w.id.clone(),
    }))
}

/// The query `page` runs: `limit + 1` rows, to know whether a next page exists.
pub fn page_query(
    backend: sea_orm::DbBackend,
    tenant_id: i32,
    query: &WorkloadQuery,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Select<workload::Entity>, DbErr> {
    let mut select = workload::Entity::find().filter(Column::TenantId.eq(tenant_id));
    if !query.states.is_empty() {
        select = select.filter(Column::State.is_in(query.states.iter().copied()));
    }
    if let Some(spec) = &query.spec_id {
        select = select.filter(Column::SpecId.eq(spec));
    }
    if let Some(prefix) = &query.name_prefix {
        select = select.filter(Column::Name.like(super::page::starts_with(prefix)));
    }
    if let Some(prefix) = &query.id_prefix {
        select = select.filter(Column::Id.like(super::page::starts_with(prefix)));
    }
    if let Some(specs) = &query.of_specs {
        select = select.filter(Column::SpecId.in_subquery(super::specs::ids_query(backend, tenant_id, specs)));
    }
    let (sort, id) = (query.sort.column(), Column::Id);
    if let Some(cursor) = after {
        let value = query.sort.sea_value(&cursor.value).ok_or_else(|| DbErr::Custom("bad cursor".into()))?;
        select = select.filter(super::page::after(sort, id, value, cursor.id.clone().into(), query.descending));
    }
    let order = if query.descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
    Ok(select.order_by(sort, order.clone()).order_by(id, order).limit(limit + 1))
}

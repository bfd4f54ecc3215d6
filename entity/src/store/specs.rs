use crate::workload_spec;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, TransactionSession, TransactionTrait, sea_query::Expr,
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
    /// What its command's environment adds to the runner's.
    pub env: std::collections::BTreeMap<String, String>,
    /// Recorded, not enforced.
    pub disk_bytes: Option<u64>,
    /// The face that makes it, which keeps its attributes under that key of `meta`.
    pub face: Option<&'static str>,
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
    create_with_id(db, tenant_id, &uuid::Uuid::new_v4().to_string(), spec).await
}

/// `create`, with the id the caller chose (a face that names things after the id before it
/// inserts, e.g. a working directory).
pub async fn create_with_id(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    id: &str,
    spec: &NewSpec,
) -> Result<workload_spec::Model, DbErr> {
    let mut active = workload_spec::ActiveModel {
        id: Set(id.to_owned()),
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
    active.disk_bytes = Set(spec.disk_bytes.and_then(|n| i64::try_from(n).ok()));
    active.env = Set(serde_json::to_string(&spec.env).map_err(|e| DbErr::Custom(e.to_string()))?);
    active.meta = Set(spec.meta.to_string());
    active.face = Set(spec.face.map(str::to_owned));
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

/// These specs (those not deleted), in one read.
pub async fn find_many(db: &impl ConnectionTrait, ids: &[&str]) -> Result<Vec<workload_spec::Model>, DbErr> {
    live().filter(workload_spec::Column::Id.is_in(ids.iter().copied())).all(db).await
}

/// Deletes the spec, if it has no active workload (else false: stop it first). Its name is
/// freed: it becomes `DESTROYED_<name>_<unix ms>`. It holds the spec's row lock while it looks
/// for an active workload, as `workloads::insert` does while it claims the spec: without it, a
/// deletion whose snapshot predates a start's commit could delete a spec that is running.
pub async fn mark_deleted(db: &impl TransactionTrait, spec: &workload_spec::Model) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    if !lock(&txn, &spec.id).await? {
        return Ok(false);
    }
    // A statement after the lock: it sees every workload committed before the lock was taken.
    let active = crate::workload::Entity::find()
        .filter(crate::workload::Column::ActiveSpecId.eq(spec.id.clone()))
        .one(&txn)
        .await?;
    if active.is_some() {
        return Ok(false);
    }
    let now = super::now();
    workload_spec::Entity::update_many()
        .col_expr(workload_spec::Column::DeletedAt, Expr::value(now))
        .col_expr(
            workload_spec::Column::Name,
            Expr::value(format!("DESTROYED_{}_{}", spec.name, now.timestamp_millis())),
        )
        .col_expr(workload_spec::Column::UpdatedAt, Expr::value(now))
        .filter(workload_spec::Column::Id.eq(spec.id.clone()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(true)
}

/// Takes the live spec's row lock until the transaction `db` ends (a write that changes
/// nothing; SQLite takes its one write lock); false if the spec is deleted or unknown.
pub async fn lock(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    let locked = workload_spec::Entity::update_many()
        .col_expr(workload_spec::Column::Name, Expr::col(workload_spec::Column::Name))
        .filter(workload_spec::Column::Id.eq(id))
        .filter(workload_spec::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(locked.rows_affected > 0)
}

/// What a listing of a tenant's specs shows, and in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecQuery {
    /// Only specs whose `meta` has this key (the face that made them).
    pub face: Option<&'static str>,
    /// Case-insensitive prefixes.
    pub id_prefix: Option<String>,
    pub name_prefix: Option<String>,
    /// Only specs whose active workload is in one of these states (`None`: no active workload);
    /// empty: any.
    pub states: Vec<Option<crate::WorkloadState>>,
    /// Only specs with all these labels (`meta.<face>.labels`).
    pub labels: Vec<(String, String)>,
    /// Only specs whose `meta.<face>.scope` is this (a face's own partition of a tenant's
    /// specs, such as Vercel's projects).
    pub scope: Option<String>,
    /// Only specs created at or after this instant, and before that one.
    pub created_from: Option<chrono::DateTime<chrono::Utc>>,
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    pub sort: SpecSort,
    pub descending: bool,
}

/// The sort key of a spec listing; ties are broken by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpecSort {
    #[default]
    UpdatedAt,
    CreatedAt,
    Name,
    /// Resource sizes: a spec without one compares to nothing after a cursor, so only a face
    /// that gives every spec its sizes (Daytona's) sorts by them.
    CpuMillis,
    MemoryBytes,
    DiskBytes,
}

impl SpecSort {
    fn key(self) -> &'static str {
        match self {
            SpecSort::UpdatedAt => "updated_at",
            SpecSort::CreatedAt => "created_at",
            SpecSort::Name => "name",
            SpecSort::CpuMillis => "cpu_millis",
            SpecSort::MemoryBytes => "memory_bytes",
            SpecSort::DiskBytes => "disk_bytes",
        }
    }

    fn column(self) -> workload_spec::Column {
        match self {
            SpecSort::UpdatedAt => workload_spec::Column::UpdatedAt,
            SpecSort::CreatedAt => workload_spec::Column::CreatedAt,
            SpecSort::Name => workload_spec::Column::Name,
            SpecSort::CpuMillis => workload_spec::Column::CpuMillis,
            SpecSort::MemoryBytes => workload_spec::Column::MemoryBytes,
            SpecSort::DiskBytes => workload_spec::Column::DiskBytes,
        }
    }

    fn value_of(self, spec: &workload_spec::Model) -> String {
        let time = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        match self {
            SpecSort::UpdatedAt => time(&spec.updated_at),
            SpecSort::CreatedAt => time(&spec.created_at),
            SpecSort::Name => spec.name.clone(),
            SpecSort::CpuMillis => spec.cpu_millis.unwrap_or_default().to_string(),
            SpecSort::MemoryBytes => spec.memory_bytes.unwrap_or_default().to_string(),
            SpecSort::DiskBytes => spec.disk_bytes.unwrap_or_default().to_string(),
        }
    }

    fn sea_value(self, text: &str) -> Option<sea_orm::Value> {
        match self {
            SpecSort::Name => Some(sea_orm::Value::from(text.to_owned())),
            SpecSort::CpuMillis => text.parse::<i32>().ok().map(sea_orm::Value::from),
            SpecSort::MemoryBytes | SpecSort::DiskBytes => text.parse::<i64>().ok().map(sea_orm::Value::from),
            SpecSort::UpdatedAt | SpecSort::CreatedAt => chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| sea_orm::Value::from(t.with_timezone(&chrono::Utc))),
        }
    }
}

impl SpecQuery {
    /// The cursor `text`, if it was made by a listing with this sort and order.
    pub fn cursor(&self, text: &str) -> Result<super::page::Cursor, super::page::BadCursor> {
        let cursor = super::page::Cursor::decode(text, self.sort.key(), self.descending)?;
        self.sort.sea_value(&cursor.value).map(|_| cursor).ok_or(super::page::BadCursor)
    }
}

/// The ids of the tenant's live specs that `query` filters in, as a subquery.
pub fn ids_query(
    backend: sea_orm::DbBackend,
    tenant_id: i32,
    query: &SpecQuery,
) -> sea_orm::sea_query::SelectStatement {
    filtered(backend, tenant_id, query).select_only().column(workload_spec::Column::Id).into_query()
}

/// The tenant's live specs that `query` filters in (unordered).
fn filtered(backend: sea_orm::DbBackend, tenant_id: i32, query: &SpecQuery) -> sea_orm::Select<workload_spec::Entity> {
    use sea_orm::DbBackend;
    use sea_orm::sea_query::ExprTrait;
    let mut select = live().filter(workload_spec::Column::TenantId.eq(tenant_id));
    if let Some(face) = query.face {
        select = select.filter(workload_spec::Column::Face.eq(face));
    }
    for (prefix, column) in [(&query.id_prefix, "id"), (&query.name_prefix, "name")] {
        if let Some(prefix) = prefix {
            let pattern = super::page::starts_with(&prefix.to_lowercase());
            select = select.filter(Expr::cust(format!("LOWER({column})")).like(pattern));
        }
    }
    if !query.states.is_empty() {
        let mut any = sea_orm::Condition::any();
        for state in &query.states {
            any = any.add(Expr::cust(match state {
                Some(state) => format!(
                    "EXISTS (SELECT 1 FROM workloads w WHERE w.active_spec_id = workload_specs.id AND w.state = '{state}')"
                ),
                None => "NOT EXISTS (SELECT 1 FROM workloads w WHERE w.active_spec_id = workload_specs.id)".to_owned(),
            }));
        }
        select = select.filter(any);
    }
    if let Some(from) = query.created_from {
        select = select.filter(workload_spec::Column::CreatedAt.gte(from));
    }
    if let Some(before) = query.created_before {
        select = select.filter(workload_spec::Column::CreatedAt.lt(before));
    }
    if let (Some(face), Some(scope)) = (query.face, &query.scope) {
        select = select.filter(match backend {
            DbBackend::Postgres => {
                Expr::cust_with_values(format!("(meta::jsonb -> '{face}' ->> 'scope') = $1"), [scope.clone()])
            }
            _ => Expr::cust_with_values("json_extract(meta, ?) = ?", [format!("$.{face}.scope"), scope.clone()]),
        });
    }
    if let Some(face) = query.face {
        for (key, value) in &query.labels {
            select = select.filter(match backend {
                DbBackend::Postgres => Expr::cust_with_values(
                    format!("(meta::jsonb -> '{face}' -> 'labels' ->> $1) = $2"),
                    [key.clone(), value.clone()],
                ),
                _ => Expr::cust_with_values(
                    "json_extract(meta, ?) = ?",
                    [format!("$.{face}.labels.\"{key}\""), value.clone()],
                ),
            });
        }
    }
    select
}

/// One keyset page of the tenant's live specs (see `page`).
pub async fn page(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    query: &SpecQuery,
    after: Option<&super::page::Cursor>,
    limit: u64,
) -> Result<super::page::Page<workload_spec::Model>, DbErr> {
    use sea_orm::QuerySelect;
    let limit = limit.clamp(1, super::page::MAX_LIMIT);
    let mut select = filtered(db.get_database_backend(), tenant_id, query);
    let (sort, id) = (query.sort.column(), workload_spec::Column::Id);
    if let Some(cursor) = after {
        let value = query.sort.sea_value(&cursor.value).ok_or_else(|| DbErr::Custom("bad cursor".into()))?;
        select = select.filter(super::page::after(sort, id, value, cursor.id.clone().into(), query.descending));
    }
    let order = if query.descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
    let rows = select.order_by(sort, order.clone()).order_by(id, order).limit(limit + 1).all(db).await?;
    Ok(super::page::finish(rows, limit, |spec| super::page::Cursor {
        sort: query.sort.key().to_owned(),
        descending: query.descending,
        value: query.sort.value_of(spec),
        id: spec.id.clone(),
    }))
}

/// Page `number` (from 1) of `size` specs, and how many match in all: numbered pages, for a
/// face whose clients ask for them (Daytona's deprecated listing); each costs a count and an
/// offset, so keyset pages (`page`) are the way for everything else.
pub async fn numbered_page(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    query: &SpecQuery,
    number: u64,
    size: u64,
) -> Result<(Vec<workload_spec::Model>, u64), DbErr> {
    use sea_orm::{PaginatorTrait, QuerySelect};
    let select = filtered(db.get_database_backend(), tenant_id, query);
    let total = select.clone().count(db).await?;
    let size = size.clamp(1, super::page::MAX_LIMIT);
    let order = if query.descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
    let rows = select
        .order_by(query.sort.column(), order.clone())
        .order_by(workload_spec::Column::Id, order)
        .offset(number.saturating_sub(1).saturating_mul(size))
        .limit(size)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// `touch` with new limits too (they hold for the spec's next workloads).
pub async fn touch_with_limits(
    db: &impl ConnectionTrait,
    seen: &workload_spec::Model,
    meta: &serde_json::Value,
    limits: &crate::outcome::Limits,
) -> Result<bool, DbErr> {
    let update = workload_spec::Entity::update_many()
        .col_expr(workload_spec::Column::Meta, Expr::value(meta.to_string()))
        .col_expr(workload_spec::Column::CpuMillis, Expr::value(limits.cpu_millis.and_then(|n| i32::try_from(n).ok())))
        .col_expr(
            workload_spec::Column::MemoryBytes,
            Expr::value(limits.memory_bytes.and_then(|n| i64::try_from(n).ok())),
        );
    compare_and_set(db, seen, update).await
}

/// Records a change of the spec now (its `updated_at`, and its `meta` when given), if it is
/// still as `seen` (not changed nor deleted meanwhile): a compare-and-set, so of requests that
/// read the same spec and race to change it, one wins and the others learn they lost.
pub async fn touch(
    db: &impl ConnectionTrait,
    seen: &workload_spec::Model,
    meta: Option<&serde_json::Value>,
) -> Result<bool, DbErr> {
    let mut update = workload_spec::Entity::update_many();
    if let Some(meta) = meta {
        update = update.col_expr(workload_spec::Column::Meta, sea_orm::sea_query::Expr::value(meta.to_string()));
    }
    compare_and_set(db, seen, update).await
}

/// `update`, and `updated_at` now, if the spec is still as `seen`.
async fn compare_and_set(
    db: &impl ConnectionTrait,
    seen: &workload_spec::Model,
    update: sea_orm::UpdateMany<workload_spec::Entity>,
) -> Result<bool, DbErr> {
    let updated = update
        .col_expr(workload_spec::Column::UpdatedAt, sea_orm::sea_query::Expr::value(super::now()))
        .filter(workload_spec::Column::Id.eq(&seen.id))
        .filter(workload_spec::Column::UpdatedAt.eq(seen.updated_at))
        .filter(workload_spec::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// What a tenant's live specs of one face hold: how many run (an active workload, or a start
/// under way), the CPU and memory of those, and the disk of all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub running: i64,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub disk_bytes: i64,
}

/// The most a tenant's specs of one face may hold (see `Footprint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub running: i64,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub disk_bytes: i64,
}

/// Which limit of a `Quota` a footprint is over, and that limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverQuota {
    Running(i64),
    CpuMillis(i64),
    MemoryBytes(i64),
    DiskBytes(i64),
}

impl Quota {
    pub fn check(&self, footprint: &Footprint) -> Result<(), OverQuota> {
        if footprint.running > self.running {
            Err(OverQuota::Running(self.running))
        } else if footprint.cpu_millis > self.cpu_millis {
            Err(OverQuota::CpuMillis(self.cpu_millis))
        } else if footprint.memory_bytes > self.memory_bytes {
            Err(OverQuota::MemoryBytes(self.memory_bytes))
        } else if footprint.disk_bytes > self.disk_bytes {
            Err(OverQuota::DiskBytes(self.disk_bytes))
        } else {
            Ok(())
        }
    }
}

/// The tenant's footprint of `face`'s specs, in two reads (inside a transaction, it counts the
/// transaction's own writes).
pub async fn footprint(db: &impl ConnectionTrait, tenant_id: i32, face: &'static str) -> Result<Footprint, DbErr> {
    use sea_orm::QuerySelect;
    let query = SpecQuery { face: Some(face), ..SpecQuery::default() };
    let total = |column: &str| Expr::cust(format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"));
    // From what runs (active workloads, pending starts: a few, indexed) to their specs, rather
    // than asking of each of the tenant's specs (every sandbox it ever kept) whether it runs.
    let running = Expr::cust(format!(
        "workload_specs.id IN (SELECT w.active_spec_id FROM workloads w WHERE w.active_spec_id IS NOT NULL \
         UNION ALL SELECT t.target_id FROM tasks t WHERE t.operation = '{}' \
         AND t.state IN ('{}', '{}') AND t.not_before IS NULL)",
        crate::Operation::StartWorkload,
        crate::TaskState::Queued,
        crate::TaskState::Running,
    ));
    let backend = db.get_database_backend();
    let (count, cpu_millis, memory_bytes) = filtered(backend, tenant_id, &query)
        .filter(running)
        .select_only()
        .expr_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .expr_as(total("cpu_millis"), "cpu")
        .expr_as(total("memory_bytes"), "memory")
        .into_tuple::<(i64, i64, i64)>()
        .one(db)
        .await?
        .unwrap_or_default();
    let disk_bytes = filtered(backend, tenant_id, &query)
        .select_only()
        .expr_as(total("disk_bytes"), "disk")
        .into_tuple::<i64>()
        .one(db)
        .await?
        .unwrap_or_default();
    Ok(Footprint { running: count, cpu_millis, memory_bytes, disk_bytes })
}

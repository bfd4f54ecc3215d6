use super::page::{BadCursor, Cursor, Page};
use crate::state::{Operation, TaskEvent, TaskState, TransitionError};
use crate::task::{self, Column};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

pub struct NewTask<'a> {
    pub tenant_id: i32,
    pub user_id: i32,
    pub operation: Operation,
    pub target_id: &'a str,
    pub route: Option<String>,
    pub params: crate::outcome::TaskParams,
}

pub async fn insert(db: &impl ConnectionTrait, new: NewTask<'_>) -> Result<task::Model, DbErr> {
    insert_scheduled(db, new, None).await
}

/// Inserts the task, held back until `not_before` (if any): it is not published, claimed or
/// pending before then.
pub async fn insert_scheduled(
    db: &impl ConnectionTrait,
    new: NewTask<'_>,
    not_before: Option<DateTime<Utc>>,
) -> Result<task::Model, DbErr> {
    new_row(new, not_before).insert(db).await
}

/// The row `insert_scheduled` inserts.
pub fn new_row(new: NewTask<'_>, not_before: Option<DateTime<Utc>>) -> task::ActiveModel {
    let now = super::now();
    task::ActiveModel {
        tenant_id: Set(new.tenant_id),
        user_id: Set(new.user_id),
        operation: Set(new.operation),
        target_id: Set(new.target_id.to_owned()),
        state: Set(TaskState::Queued),
        attempt: Set(0),
        route: Set(new.route),
        runner_id: Set(None),
        cancel_requested: Set(false),
        cancel_requested_by: Set(None),
        cancel_requested_at: Set(None),
        params: Set(new.params.to_json()),
        success: Set(None),
        outcome: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        published_at: Set(None),
        not_before: Set(not_before),
        ..Default::default()
    }
}

pub async fn get(db: &impl ConnectionTrait, id: i32) -> Result<Option<task::Model>, DbErr> {
    task::Entity::find_by_id(id).one(db).await
}

/// The tasks of `ids` that exist, in no particular order.
pub async fn get_many(db: &impl ConnectionTrait, ids: &[i32]) -> Result<Vec<task::Model>, DbErr> {
    task::Entity::find().filter(Column::Id.is_in(ids.iter().copied())).all(db).await
}

/// How many tasks user `user_id` has, from the counts the triggers keep (`task_counts`, see
/// the migration that adds it): no scan of the tasks, however many.
pub async fn count_of_user(db: &impl ConnectionTrait, user_id: i32) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let sql = if backend == sea_orm::DbBackend::Postgres {
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM task_counts WHERE user_id = $1"
    } else {
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM task_counts WHERE user_id = ?"
    };
    let row = db.query_one_raw(sea_orm::Statement::from_sql_and_values(backend, sql, [user_id.into()])).await?;
    let n: i64 = row.map(|row| row.try_get("", "n")).transpose()?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

pub async fn list_for_user(db: &impl ConnectionTrait, user_id: i32) -> Result<Vec<task::Model>, DbErr> {
    task::Entity::find().filter(Column::UserId.eq(user_id)).order_by_asc(Column::Id).all(db).await
}

/// The one function that changes a task's state: checks the event is legal from the state the
/// caller saw, then updates `WHERE id = ? AND state = seen AND attempt = seen`, so a duplicate
/// delivery or a fenced-out holder matches no row and gets `Stale`.
pub async fn transition(
    db: &impl ConnectionTrait,
    seen: &task::Model,
    event: TaskEvent,
) -> Result<task::Model, TransitionError> {
    if !event.legal_from(seen.state) {
        return Err(TransitionError::Illegal { event: event.name(), from: seen.state.to_string() });
    }
    let mut guard = Condition::all()
        .add(Column::Id.eq(seen.id))
        .add(Column::State.eq(seen.state))
        .add(Column::Attempt.eq(seen.attempt));
    if let TaskEvent::Readopt { runner } = &event {
        // Only the runner that held the task may take it up again.
        guard = guard.add(Column::RunnerId.eq(runner.clone()));
    }
    let now = super::now();
    let next = event.apply(seen, now);
    let updated = task::Entity::update_many()
        .col_expr(Column::State, Expr::value(next.state))
        .col_expr(Column::Attempt, Expr::value(next.attempt))
        .col_expr(Column::RunnerId, Expr::value(next.runner_id.clone()))
        .col_expr(Column::Success, Expr::value(next.success))
        .col_expr(Column::Outcome, Expr::value(next.outcome.clone()))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .col_expr(Column::StartedAt, Expr::value(next.started_at))
        .col_expr(Column::FinishedAt, Expr::value(next.finished_at))
        .filter(guard)
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(TransitionError::Stale { expected: format!("{} attempt {}", seen.state, seen.attempt) });
    }
    Ok(next)
}

/// `TaskEvent::Finish` of many tasks in one statement, each a compare-and-set as `transition`
/// makes it: for each, the row as it is now, or `Stale` (it was not as seen: a duplicate or a
/// fenced-out attempt) or `Illegal`, in the order given.
pub async fn finish(
    db: &impl ConnectionTrait,
    finishes: &[(task::Model, crate::state::Outcome)],
) -> Result<Vec<Result<task::Model, TransitionError>>, DbErr> {
    let now = super::now();
    let backend = db.get_database_backend();
    let mut values: Vec<sea_orm::Value> = vec![now.into()];
    let mut rows = Vec::new();
    let mut answers = Vec::with_capacity(finishes.len());
    let mut ids = std::collections::HashSet::new();
    for (seen, outcome) in finishes {
        let event = TaskEvent::Finish(outcome.clone());
        if !event.legal_from(seen.state) {
            answers.push(Err(TransitionError::Illegal { event: event.name(), from: seen.state.to_string() }));
            continue;
        }
        if !ids.insert((seen.id, seen.attempt)) {
            // Given twice as seen alike: the first one wins, as if one after the other.
            answers.push(Err(TransitionError::Stale { expected: format!("{} attempt {}", seen.state, seen.attempt) }));
            continue;
        }
        let next = event.apply(seen, now);
        let at = values.len();
        let placeholder = |n: usize| match backend {
            sea_orm::DbBackend::Postgres => format!("${}", at + n),
            _ => format!("?{}", at + n),
        };
        rows.push(format!(
            "({}, {}, {}, {}, {})",
            placeholder(1),
            placeholder(2),
            placeholder(3),
            placeholder(4),
            placeholder(5)
        ));
        values.extend([
            next.id.into(),
            seen.attempt.into(),
            sea_orm::ActiveEnum::to_value(&next.state).into(),
            next.success.into(),
            next.outcome.clone().into(),
        ]);
        answers.push(Ok(next));
    }
    if rows.is_empty() {
        return Ok(answers);
    }
    let now = if backend == sea_orm::DbBackend::Postgres { "$1" } else { "?1" };
    let sql = format!(
        "WITH f (task_id, seen_attempt, state, success, outcome) AS (VALUES {rows}) \
         UPDATE tasks SET state = f.state, success = f.success, outcome = f.outcome, updated_at = {now}, \
         finished_at = {now} FROM f WHERE tasks.id = f.task_id AND tasks.state = 'Running' \
         AND tasks.attempt = f.seen_attempt RETURNING id, attempt",
        rows = rows.join(", "),
    );
    // A finish keeps the attempt: each row done is known by its id and attempt.
    let done: std::collections::HashSet<(i32, i32)> = db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(backend, sql, values))
        .await?
        .iter()
        .map(|row| Ok((row.try_get_by_index::<i32>(0)?, row.try_get_by_index::<i32>(1)?)))
        .collect::<Result<_, DbErr>>()?;
    Ok(answers
        .into_iter()
        .map(|answer| match answer {
            Ok(next) if !done.contains(&(next.id, next.attempt)) => {
                Err(TransitionError::Stale { expected: format!("{} attempt {}", TaskState::Running, next.attempt) })
            }
            other => other,
        })
        .collect())
}

/// `TaskEvent::Claim` of the tasks `ids` in one statement: those that were Queued and due, now
/// Running on `runner` under a new attempt (none of the others: claimed already, cancelled,
/// scheduled for later, gone). A compare-and-set on each task's state, so of racing claims of
/// a task one wins.
pub async fn claim(db: &impl ConnectionTrait, ids: &[i32], runner: &str) -> Result<Vec<task::Model>, DbErr> {
    let now = super::now();
    task::Entity::update_many()
        .col_expr(Column::State, Expr::value(TaskState::Running))
        .col_expr(Column::Attempt, Expr::col(Column::Attempt).add(1))
        .col_expr(Column::RunnerId, Expr::value(runner))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .col_expr(Column::StartedAt, Expr::value(now))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .filter(Column::State.eq(TaskState::Queued))
        .filter(Condition::any().add(Column::NotBefore.is_null()).add(Column::NotBefore.lte(now)))
        .exec_with_returning(db)
        .await
}

/// Records that the broker confirmed the run messages of `ids` (those still queued). Not a
/// state change.
pub async fn mark_published(db: &impl ConnectionTrait, ids: &[i32]) -> Result<(), DbErr> {
    task::Entity::update_many()
        .col_expr(Column::PublishedAt, Expr::value(super::now()))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .filter(Column::State.eq(TaskState::Queued))
        .exec(db)
        .await?;
    Ok(())
}

/// Queued tasks whose run message was never confirmed, or (with `stale_before`) was confirmed
/// before that instant and still has not been claimed.
pub async fn due_for_publish(
    db: &impl ConnectionTrait,
    stale_before: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<task::Model>, DbErr> {
    let mut unpublished = Condition::any().add(Column::PublishedAt.is_null());
    if let Some(before) = stale_before {
        unpublished = unpublished.add(Column::PublishedAt.lt(before));
    }
    queued_and_due(db, unpublished, limit).await
}

/// Queued tasks of the shared queue (no route) whose run message was confirmed before
/// `published_before` and that no runner has claimed since.
pub async fn unclaimed_on_shared_queue(
    db: &impl ConnectionTrait,
    published_before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<task::Model>, DbErr> {
    let unclaimed = Condition::all().add(Column::PublishedAt.lt(published_before)).add(Column::Route.is_null());
    queued_and_due(db, unclaimed, limit).await
}

/// Queued tasks that are not scheduled for later and match `which`, at most `limit`, by id.
async fn queued_and_due(db: &impl ConnectionTrait, which: Condition, limit: u64) -> Result<Vec<task::Model>, DbErr> {
    // Two range reads of (state, not_before, published_at), in its order, never a walk past
    // the tasks scheduled for later: those not scheduled, and those scheduled and now due.
    // (Ordered by id, PostgreSQL walks the primary key and filters: 250 ms at a million
    // scheduled tasks, against 2 ms at ten thousand; see `scripts/bench`.)
    let read = |when: Condition| {
        task::Entity::find()
            .filter(Column::State.eq(TaskState::Queued))
            .filter(when)
            .filter(which.clone())
            .order_by_asc(Column::NotBefore)
            .order_by_asc(Column::PublishedAt)
            .limit(limit)
            .all(db)
    };
    let mut due = read(Condition::all().add(Column::NotBefore.is_null())).await?;
    due.extend(read(Condition::all().add(Column::NotBefore.lte(super::now()))).await?);
    due.sort_by_key(|t| t.id);
    due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(due)
}

/// Records that `by` asked to cancel the task (kept if asked before); false when the task is
/// final already. A queued task is then cancelled by a `Cancel` transition; a running one's
/// runner reads the flag.
pub async fn request_cancel(db: &impl ConnectionTrait, seen: &task::Model, by: i32) -> Result<bool, DbErr> {
    let now = super::now();
    let updated = task::Entity::update_many()
        .col_expr(Column::CancelRequested, Expr::value(true))
        .col_expr(Column::CancelRequestedBy, Expr::col(Column::CancelRequestedBy).if_null(by))
        .col_expr(Column::CancelRequestedAt, Expr::col(Column::CancelRequestedAt).if_null(now))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(seen.id))
        .filter(Column::State.is_in([TaskState::Queued, TaskState::Running]))
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Removes a final (Finished or Cancelled) task; false when it is not final (or not there).
pub async fn delete_finished(db: &impl ConnectionTrait, id: i32) -> Result<bool, DbErr> {
    let deleted = task::Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::State.is_in([TaskState::Finished, TaskState::Cancelled]))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// Running tasks held by `runner`.
pub async fn running_on(db: &impl ConnectionTrait, runner: &str) -> Result<Vec<task::Model>, DbErr> {
    task::Entity::find().filter(Column::State.eq(TaskState::Running)).filter(Column::RunnerId.eq(runner)).all(db).await
}

/// Unfinished tasks that depend on one of `runners`: running on it, or queued for its queue.
pub async fn stranded_on(db: &impl ConnectionTrait, runners: &[String]) -> Result<Vec<task::Model>, DbErr> {
    if runners.is_empty() {
        return Ok(Vec::new());
    }
    task::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(Column::State.eq(TaskState::Running))
                        .add(Column::RunnerId.is_in(runners.iter().cloned())),
                )
                .add(
                    Condition::all()
                        .add(Column::State.eq(TaskState::Queued))
                        .add(Column::Route.is_in(runners.iter().cloned())),
                ),
        )
        .all(db)
        .await
}

/// What a listing of a tenant's tasks shows; tasks are listed in the order they were created
/// (by id), newest first when `descending`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQuery {
    /// Only this user's tasks.
    pub user_id: Option<i32>,
    /// Only tasks in one of these states; empty: any.
    pub states: Vec<TaskState>,
    pub operation: Option<Operation>,
    pub target_id: Option<String>,
    pub descending: bool,
}

const BY_ID: &str = "id";

impl TaskQuery {
    /// The cursor `text`, if it was made by a listing in this order.
    pub fn cursor(&self, text: &str) -> Result<Cursor, BadCursor> {
        let cursor = Cursor::decode(text, BY_ID, self.descending)?;
        cursor.id.parse::<i32>().map(|_| cursor).map_err(|_| BadCursor)
    }
}

/// One page of the tenant's tasks: at most `limit` (capped at `page::MAX_LIMIT`), after `after`
/// (a cursor from `TaskQuery::cursor`), read along the tenant's task index.
pub async fn page(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    query: &TaskQuery,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Page<task::Model>, DbErr> {
    let limit = limit.clamp(1, super::page::MAX_LIMIT);
    let mut select = task::Entity::find().filter(Column::TenantId.eq(tenant_id));
    if let Some(user) = query.user_id {
        select = select.filter(Column::UserId.eq(user));
    }
    if !query.states.is_empty() {
        select = select.filter(Column::State.is_in(query.states.iter().copied()));
    }
    if let Some(operation) = query.operation {
        select = select.filter(Column::Operation.eq(operation));
    }
    if let Some(target) = &query.target_id {
        select = select.filter(Column::TargetId.eq(target));
    }
    if let Some(cursor) = after {
        let last: i32 = cursor.id.parse().map_err(|_| DbErr::Custom("bad cursor".into()))?;
        select = select.filter(if query.descending { Column::Id.lt(last) } else { Column::Id.gt(last) });
    }
    let order = if query.descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
    let rows = select.order_by(Column::Id, order).limit(limit + 1).all(db).await?;
    Ok(super::page::finish(rows, limit, |t| Cursor {
        sort: BY_ID.to_owned(),
        descending: query.descending,
        value: t.id.to_string(),
        id: t.id.to_string(),
    }))
}

/// Not scheduled for later than `now`.
fn due(now: DateTime<Utc>) -> Condition {
    Condition::any().add(Column::NotBefore.is_null()).add(Column::NotBefore.lte(now))
}

/// The newest unfinished task aimed at `target_id` (a spec or a workload), if any; a task
/// scheduled for later is not pending yet.
pub async fn pending_for(db: &impl ConnectionTrait, target_id: &str) -> Result<Option<task::Model>, DbErr> {
    task::Entity::find()
        .filter(Column::TargetId.eq(target_id))
        .filter(Column::State.is_in([TaskState::Queued, TaskState::Running]))
        .filter(due(super::now()))
        .order_by_desc(Column::Id)
        .one(db)
        .await
}

/// The tasks of these operations aimed at these targets, oldest first, in one read.
pub async fn of_targets(
    db: &impl ConnectionTrait,
    target_ids: &[&str],
    operations: &[crate::Operation],
) -> Result<Vec<task::Model>, DbErr> {
    if target_ids.is_empty() {
        return Ok(Vec::new());
    }
    task::Entity::find()
        .filter(Column::TargetId.is_in(target_ids.iter().copied()))
        .filter(Column::Operation.is_in(operations.iter().copied()))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// `pending_for` of each of these targets, in one read: the newest unfinished due task of each
/// that has one; and the earliest time one of them scheduled for later comes due (when the
/// answer changes without a write).
pub async fn pending_for_each(
    db: &impl ConnectionTrait,
    target_ids: &[&str],
) -> Result<(Vec<task::Model>, Option<DateTime<Utc>>), DbErr> {
    if target_ids.is_empty() {
        return Ok((Vec::new(), None));
    }
    let unfinished = task::Entity::find()
        .filter(Column::TargetId.is_in(target_ids.iter().copied()))
        .filter(Column::State.is_in([TaskState::Queued, TaskState::Running]))
        .order_by_desc(Column::Id)
        .all(db)
        .await?;
    let now = super::now();
    let comes_due = unfinished.iter().filter_map(|t| t.not_before.filter(|at| *at > now)).min();
    let mut seen = std::collections::HashSet::new();
    let pending = unfinished
        .into_iter()
        .filter(|t| t.not_before.is_none_or(|at| at <= now))
        .filter(|t| seen.insert(t.target_id.clone()))
        .collect();
    Ok((pending, comes_due))
}

/// Moves a task scheduled for later to `at`; false when it is no longer waiting (it came due,
/// was published, claimed or cancelled meanwhile).
pub async fn move_scheduled(db: &impl ConnectionTrait, id: i32, at: DateTime<Utc>) -> Result<bool, DbErr> {
    let now = super::now();
    let updated = task::Entity::update_many()
        .col_expr(Column::NotBefore, Expr::value(at))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::State.eq(TaskState::Queued))
        .filter(Column::PublishedAt.is_null())
        .filter(Column::NotBefore.gt(now))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// The tasks aimed at `target_id` that are scheduled for later than now.
pub async fn scheduled_for(db: &impl ConnectionTrait, target_id: &str) -> Result<Vec<task::Model>, DbErr> {
    task::Entity::find()
        .filter(Column::TargetId.eq(target_id))
        .filter(Column::State.eq(TaskState::Queued))
        .filter(Column::NotBefore.gt(super::now()))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// Routes a queued task (a scheduled one, when it comes due: its target's owner is known only
/// then). False when it is no longer queued.
pub async fn set_route(db: &impl ConnectionTrait, id: i32, route: Option<String>) -> Result<bool, DbErr> {
    let updated = task::Entity::update_many()
        .col_expr(Column::Route, Expr::value(route))
        .filter(Column::Id.eq(id))
        .filter(Column::State.eq(TaskState::Queued))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

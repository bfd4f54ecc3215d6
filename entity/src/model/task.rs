use crate::state::{Operation, TaskState};
use sea_orm::entity::prelude::*;

/// One requested operation on a workload: the unit clients poll and cancel.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The owner: another tenant's row does not exist for you.
    pub tenant_id: i32,
    pub user_id: i32,
    pub operation: Operation,
    /// The spec id (StartWorkload, StopSpec) or the workload id (StopWorkload).
    pub target_id: String,
    pub state: TaskState,
    /// Lease epoch: raised by every claim, so a stale holder's writes match no row.
    pub attempt: i32,
    /// The runner queue the task is routed to; `None` means any runner.
    pub route: Option<String>,
    /// The runner that holds the current attempt.
    pub runner_id: Option<String>,
    pub cancel_requested: bool,
    /// The user who asked to cancel, and when.
    pub cancel_requested_by: Option<i32>,
    pub cancel_requested_at: Option<DateTimeUtc>,
    /// `TaskParams` as JSON (see `params`); `None` = the defaults.
    pub params: Option<String>,
    /// Set when finished: `outcome.success()`, kept as a column to filter on.
    pub success: Option<bool>,
    /// Set when finished: the `Outcome` as JSON (see `ended`).
    pub outcome: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// When the run message was last confirmed by the broker; `None` = not yet published.
    pub published_at: Option<DateTimeUtc>,
    /// A scheduled task is held back until then: not published, not claimed, not pending.
    pub not_before: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// A task as it is inserted: queued at `at`, for user 1 of tenant 1, nothing done yet (the
    /// tests' fixtures start from it).
    pub fn queued(id: i32, operation: Operation, target_id: &str, at: DateTimeUtc) -> Self {
        Self {
            id,
            tenant_id: 1,
            user_id: 1,
            operation,
            target_id: target_id.to_owned(),
            state: TaskState::Queued,
            attempt: 0,
            route: None,
            runner_id: None,
            cancel_requested: false,
            cancel_requested_by: None,
            cancel_requested_at: None,
            params: None,
            success: None,
            outcome: None,
            created_at: at,
            updated_at: at,
            started_at: None,
            finished_at: None,
            published_at: None,
            not_before: None,
        }
    }

    pub fn params(&self) -> crate::outcome::TaskParams {
        crate::outcome::TaskParams::from_json(self.params.as_deref())
    }

    /// Whether it is scheduled for later than `now`.
    pub fn is_scheduled_after(&self, now: DateTimeUtc) -> bool {
        self.not_before.is_some_and(|at| at > now)
    }

    /// How the task ended, once it has.
    pub fn ended(&self) -> Option<crate::outcome::Outcome> {
        self.outcome.as_deref().map(crate::outcome::Outcome::from_json)
    }
}

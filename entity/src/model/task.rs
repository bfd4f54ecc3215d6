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
    /// The spec (job) id (StartWorkload, StopSpec) or the workload (session) id (StopWorkload).
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
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn params(&self) -> crate::outcome::TaskParams {
        crate::outcome::TaskParams::from_json(self.params.as_deref())
    }

    /// How the task ended, once it has.
    pub fn ended(&self) -> Option<crate::outcome::Outcome> {
        self.outcome.as_deref().map(crate::outcome::Outcome::from_json)
    }

    /// The public id, as Veeam spells it.
    pub fn public_id(&self) -> String {
        format!("task-{}", self.id)
    }

    /// Parses `task-N` (the prefix in any case) into the row id. Only the canonical spelling of
    /// N is accepted: decimal digits without sign or leading zero, so one task has one id.
    pub fn parse_public_id(text: &str) -> Option<i32> {
        let digits = text.get(..5).filter(|p| p.eq_ignore_ascii_case("task-")).map(|_| &text[5..])?;
        if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|id: &i32| *id > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::Model;

    #[test]
    fn only_the_canonical_spelling_of_a_task_id_resolves() {
        assert_eq!(Model::parse_public_id("task-6"), Some(6));
        assert_eq!(Model::parse_public_id("TASK-2147483647"), Some(i32::MAX));
        for other in [
            "task-+6",
            "task-006",
            "task-0",
            "task--6",
            "task- 6",
            "task-6 ",
            "task-",
            "task-2147483648",
            "6",
            "task-٣",
            "tâsk-1",
        ] {
            assert_eq!(Model::parse_public_id(other), None, "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_text_resolves_only_if_it_is_the_canonical_id(text in "(?i:task-)?[-+0-9 ]{0,12}") {
            if let Some(id) = Model::parse_public_id(&text) {
                proptest::prop_assert!(text.eq_ignore_ascii_case(&format!("task-{id}")), "{} -> {}", text, id);
            }
        }

        #[test]
        fn every_canonical_id_resolves(id in 1..=i32::MAX) {
            proptest::prop_assert_eq!(Model::parse_public_id(&format!("task-{id}")), Some(id));
        }
    }
}

use crate::state::WorkloadState;
use sea_orm::entity::prelude::*;

/// A backup job session: one run of a job, a process group owned by one runner.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The owner: another tenant's row does not exist for you.
    pub tenant_id: i32,
    pub job_id: String,
    pub job_name: String,
    pub job_type: String,
    pub name: String,
    pub state: WorkloadState,
    /// Once Stopped: how it ended, as a JSON `outcome::End` (see `ended`).
    pub ending: Option<String>,
    pub creation_time: DateTimeUtc,
    pub end_time: Option<DateTimeUtc>,
    /// The runner that started the process group and alone may signal it.
    pub runner_id: String,
    /// Process id of the group leader, which is also the process group id.
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    /// The StartWorkload task that created this session: makes a re-run of that task idempotent.
    #[sea_orm(unique)]
    pub start_task_id: i32,
    /// The job id while the session is not Stopped, else `None`. Unique: the database holds
    /// at most one active session per job, however many starts race.
    pub active_job_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// How the workload ended, once it has.
    pub fn ended(&self) -> Option<crate::outcome::End> {
        self.ending.as_deref().map(crate::outcome::End::from_json)
    }
}

use crate::state::WorkloadState;
use sea_orm::entity::prelude::*;

/// One run of a spec: a process group owned by one runner. Veeam calls it a backup job session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workloads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The owner: another tenant's row does not exist for you.
    pub tenant_id: i32,
    pub spec_id: String,
    /// The spec's name when the workload started.
    pub spec_name: String,
    /// The name its start task gave it (see `TaskParams::name`), else the spec's name.
    pub name: String,
    pub state: WorkloadState,
    /// Once Stopped: how it ended, as a JSON `outcome::End` (see `ended`).
    pub ending: Option<String>,
    /// Once Stopped: `End::succeeded` of the ending, kept as a column to filter on.
    pub succeeded: Option<bool>,
    pub created_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    /// The runner that started the process group and alone may signal it.
    pub runner_id: String,
    /// Process id of the group leader, which is also the process group id.
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    /// The start task that created this workload: makes a re-run of that task idempotent.
    #[sea_orm(unique)]
    pub start_task_id: i32,
    /// The spec id while the workload is not Stopped, else `None`. Unique: the database holds
    /// at most one active workload per spec, however many starts race.
    pub active_spec_id: Option<String>,
    /// A JSON object of strings, set by whoever created the workload.
    pub labels: String,
    /// What contains its processes, as JSON (the runner's `contain::Handle`); `None` for a
    /// workload of an earlier release: its process group (`pid`).
    pub containment: Option<String>,
    /// Measured once it ended, where the containment provides it (see `outcome::Usage`).
    pub cpu_usec: Option<i64>,
    pub memory_peak_bytes: Option<i64>,
    pub processes_peak: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// How the workload ended, once it has.
    pub fn ended(&self) -> Option<crate::outcome::End> {
        self.ending.as_deref().map(crate::outcome::End::from_json)
    }

    /// What was measured of it, once it ended.
    pub fn usage(&self) -> crate::outcome::Usage {
        crate::outcome::Usage {
            cpu_usec: self.cpu_usec,
            memory_peak_bytes: self.memory_peak_bytes,
            processes_peak: self.processes_peak,
        }
    }
}

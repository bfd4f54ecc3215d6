use sea_orm::entity::prelude::*;

/// A runner (worker process) with a stable identity and its liveness heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runners")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub started_at: DateTimeUtc,
    pub heartbeat_at: DateTimeUtc,
    /// How it contains workloads (e.g. "cgroup2 /sys/fs/cgroup/taskq"), as it said at start.
    pub containment: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;

/// An archive of a spec's working directory (see the migration that creates the table).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "snapshots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: i32,
    /// The spec whose working directory it holds.
    pub spec_id: String,
    /// The workload it was taken from (stopped to take it).
    pub workload_id: String,
    /// The face's partition it belongs to (a Vercel project).
    pub scope: String,
    /// `pending` (being taken), `created`, `failed` or `deleted`.
    pub status: String,
    pub size_bytes: i64,
    /// The archive (a gzipped tar), on the runners' shared sandbox storage.
    pub path: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When it is deleted by itself (a scheduled engine task); none: never.
    pub expires_at: Option<DateTimeUtc>,
}

impl Model {
    /// Whether it is deleted, or past its expiry (deleted by itself, or about to be).
    pub fn is_gone(&self) -> bool {
        self.status == crate::store::snapshots::DELETED || self.expires_at.is_some_and(|at| at <= crate::store::now())
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

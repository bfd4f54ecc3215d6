use sea_orm::entity::prelude::*;

/// A named command that a runner can start as a backup job session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The owner: another tenant's row does not exist for you.
    pub tenant_id: i32,
    #[sea_orm(unique)]
    pub name: String,
    pub job_type: String,
    pub description: String,
    /// The argument vector, as a JSON array of strings.
    pub command: String,
    pub working_dir: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn argv(&self) -> Vec<String> {
        serde_json::from_str(&self.command).unwrap_or_default()
    }
}

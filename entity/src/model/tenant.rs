use sea_orm::entity::prelude::*;

/// Who owns users, API tokens, workload specs, workloads and tasks. Another tenant's rows do
/// not exist for you. The Veeam face's users live in the tenant `default` (id 1).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub name: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The tenant everything belongs to unless said otherwise.
pub const DEFAULT: i32 = 1;

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The owner: another tenant's row does not exist for you.
    pub tenant_id: i32,
    #[sea_orm(unique)]
    pub name: String,
    pub password_hash: String,
    /// What the user may do, in the words of the face that manages users (Veeam's EM roles).
    pub role: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

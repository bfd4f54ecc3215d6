use crate::user;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
};

pub async fn count(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    user::Entity::find().count(db).await
}

pub async fn find_by_name(db: &impl ConnectionTrait, name: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find().filter(user::Column::Name.eq(name)).one(db).await
}

pub async fn find(db: &impl ConnectionTrait, id: i32) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

pub async fn create(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    name: &str,
    password_hash: &str,
    role: &str,
) -> Result<user::Model, DbErr> {
    user::ActiveModel {
        tenant_id: Set(tenant_id),
        name: Set(name.to_owned()),
        password_hash: Set(password_hash.to_owned()),
        role: Set(role.to_owned()),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(db)
    .await
}

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

/// The user that tasks submitted with the tenant's API tokens are recorded for (tasks belong
/// to a user): `api-token@<tenant>`, created on first use, with no password that could match
/// (so it cannot log on) and no role (which no face grants anything).
pub async fn token_user(db: &impl ConnectionTrait, tenant: &crate::tenant::Model) -> Result<user::Model, DbErr> {
    let name = format!("api-token@{}", tenant.name);
    if let Some(user) = find_by_name(db, &name).await? {
        return Ok(user);
    }
    match create(db, tenant.id, &name, "!", "").await {
        Ok(user) => Ok(user),
        // Created meanwhile by another request.
        Err(err) => find_by_name(db, &name).await?.ok_or(err),
    }
}

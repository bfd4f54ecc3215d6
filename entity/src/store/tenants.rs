use crate::{api_token, tenant};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, sea_query::Expr,
};

pub async fn find_by_name(db: &impl ConnectionTrait, name: &str) -> Result<Option<tenant::Model>, DbErr> {
    tenant::Entity::find().filter(tenant::Column::Name.eq(name)).one(db).await
}

/// The tenant called `name`, created if there is none (by this call or, racing it, another:
/// the unique name decides, and the loser reads the winner's).
pub async fn find_or_create(db: &impl ConnectionTrait, name: &str) -> Result<tenant::Model, DbErr> {
    if let Some(tenant) = find_by_name(db, name).await? {
        return Ok(tenant);
    }
    let created =
        tenant::ActiveModel { name: Set(name.to_owned()), created_at: Set(super::now()), ..Default::default() }
            .insert(db)
            .await;
    match created {
        Err(err) if matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            find_by_name(db, name).await?.ok_or(err)
        }
        other => other,
    }
}

pub async fn create_token(
    db: &impl ConnectionTrait,
    tenant_id: i32,
    name: &str,
    token_hash: &str,
) -> Result<api_token::Model, DbErr> {
    api_token::ActiveModel {
        tenant_id: Set(tenant_id),
        name: Set(name.to_owned()),
        token_hash: Set(token_hash.to_owned()),
        created_at: Set(super::now()),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// Every token with its tenant, oldest first.
pub async fn list_tokens(db: &impl ConnectionTrait) -> Result<Vec<(api_token::Model, String)>, DbErr> {
    let tenants = tenant::Entity::find().all(db).await?;
    let tokens = api_token::Entity::find().order_by_asc(api_token::Column::Id).all(db).await?;
    Ok(tokens
        .into_iter()
        .map(|t| {
            let name = tenants.iter().find(|n| n.id == t.tenant_id).map(|n| n.name.clone()).unwrap_or_default();
            (t, name)
        })
        .collect())
}

/// Revokes a token; false when there is no such live token. Returns once no `api` process
/// accepts it (`revocations::settle`).
pub async fn revoke_token(db: &DatabaseConnection, id: i32) -> Result<bool, DbErr> {
    let updated = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(super::now()))
        .filter(api_token::Column::Id.eq(id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected > 0 {
        super::revocations::settle(db).await?;
    }
    Ok(updated.rows_affected > 0)
}

/// The live (not revoked) token whose hash is `token_hash`, and its tenant, in one read.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<(api_token::Model, tenant::Model)>, DbErr> {
    let found = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(token_hash))
        .filter(api_token::Column::RevokedAt.is_null())
        .find_also_related(tenant::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(token, tenant)| Some((token, tenant?))))
}

/// Takes the tenant's row lock until the transaction `db` ends (a write that changes nothing):
/// what counts the tenant's usage and then adds to it runs one at a time per tenant. (SQLite
/// takes its one write lock, which serializes every writer.)
pub async fn lock(db: &impl ConnectionTrait, id: i32) -> Result<(), DbErr> {
    tenant::Entity::update_many()
        .col_expr(tenant::Column::Name, sea_orm::sea_query::Expr::col(tenant::Column::Name))
        .filter(tenant::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn find(db: &impl ConnectionTrait, id: i32) -> Result<Option<tenant::Model>, DbErr> {
    tenant::Entity::find_by_id(id).one(db).await
}

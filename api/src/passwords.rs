//! Password hashing (argon2id, PHC strings) and the user bootstrap.

use crate::veeam::Role;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use base64::Engine;
use entity::store::users;
use sea_orm::DatabaseConnection;

pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// 256 random bits from the operating system.
fn random_bytes() -> Result<[u8; 32], String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the operating system: {e}"))?;
    Ok(bytes)
}

/// A random secret (a logon token, a generated password): 256 bits, base64.
pub fn random_secret() -> Result<String, String> {
    Ok(base64::engine::general_purpose::STANDARD.encode(random_bytes()?))
}

/// A new API token: `tq_` and 256 random bits, base64url (safe in a header as it is).
pub fn api_token() -> Result<String, String> {
    Ok(format!("tq_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes()?)))
}

/// What the database keeps of a session token: its SHA-256, hex. Tokens are 256 random bits, so
/// a fast hash suffices (nothing to brute-force), and a leaked table holds no usable token.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    // The digest's own `LowerHex`: one write, where a `format!` per byte cost every poll 32.
    format!("{:x}", sha2::Sha256::digest(token.as_bytes()))
}

/// On an empty database, creates the admin account: with `password` when given, otherwise
/// with a generated one that is printed once.
pub async fn bootstrap_admin(db: &DatabaseConnection, name: &str, password: Option<&str>) -> Result<(), String> {
    if users::count(db).await.map_err(|e| e.to_string())? > 0 {
        return Ok(());
    }
    let generated;
    let password = match password {
        Some(password) => password,
        None => {
            generated = random_secret()?.chars().filter(char::is_ascii_alphanumeric).take(20).collect::<String>();
            println!("Created user {name:?} with the generated password {generated:?}. It is not shown again.");
            &generated
        }
    };
    add_user(db, entity::tenant::DEFAULT, name, password, Role::PortalAdministrator).await
}

/// Adds a user of `tenant_id` who can log on.
pub async fn add_user(
    db: &DatabaseConnection,
    tenant_id: i32,
    name: &str,
    password: &str,
    role: Role,
) -> Result<(), String> {
    if name.trim().is_empty() || password.is_empty() {
        return Err("a user needs a name and a password".to_owned());
    }
    if users::find_by_name(db, name).await.map_err(|e| e.to_string())?.is_some() {
        return Err(format!("user {name:?} already exists"));
    }
    users::create(db, tenant_id, name, &hash(password)?, role.as_str()).await.map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_token_hash_is_the_lowercase_hex_sha256_of_the_token() {
        assert_eq!(super::token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(super::token_hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}

//! Password hashing (argon2id, PHC strings) and the user bootstrap.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use entity::Role;
use entity::store::users;
use sea_orm::DatabaseConnection;

pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Verifies against `phc`, or, for an unknown user, against a throw-away hash: the same work
/// either way, so response times do not tell which user names exist.
pub fn verify_user(password: &str, phc: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match phc {
        Some(phc) => verify(password, phc),
        None => {
            let dummy = DUMMY.get_or_init(|| hash(&random_secret()).unwrap_or_default());
            let _ = verify(password, dummy);
            false
        }
    }
}

/// A random secret: 32 bytes from two v4 UUIDs (the OS generator), base64.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
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
            generated = random_secret().chars().filter(char::is_ascii_alphanumeric).take(20).collect::<String>();
            println!("Created user {name:?} with the generated password {generated:?}. It is not shown again.");
            &generated
        }
    };
    add_user(db, name, password, Role::PortalAdministrator).await
}

pub async fn add_user(db: &DatabaseConnection, name: &str, password: &str, role: Role) -> Result<(), String> {
    if name.trim().is_empty() || password.is_empty() {
        return Err("a user needs a name and a password".to_owned());
    }
    if users::find_by_name(db, name).await.map_err(|e| e.to_string())?.is_some() {
        return Err(format!("user {name:?} already exists"));
    }
    users::create(db, name, &hash(password)?, role).await.map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = super::hash("s3cret").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(super::verify("s3cret", &phc));
        assert!(!super::verify("S3cret", &phc));
        assert!(!super::verify("s3cret", "not a hash"));
    }
}

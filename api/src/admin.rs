//! The administration commands of the `api` binary: users and API tokens.

use crate::passwords;
use crate::settings::{Command, TokenCommand};
use entity::store::tenants;
use sea_orm::DatabaseConnection;

pub async fn run(db: &DatabaseConnection, command: Command) -> Result<(), String> {
    match command {
        Command::AddUser { name, password, role, tenant } => {
            let password = match password {
                Some(password) => password,
                None => std::io::stdin().lines().next().transpose().map_err(|e| e.to_string())?.unwrap_or_default(),
            };
            let tenant = tenants::find_or_create(db, &tenant).await.map_err(|e| e.to_string())?;
            passwords::add_user(db, tenant.id, &name, password.trim_end_matches(['\r', '\n']), role).await?;
            println!("User {name:?} added to tenant {:?} as {role}.", tenant.name);
        }
        Command::Token(TokenCommand::Create { tenant, name }) => {
            let tenant = tenants::find_or_create(db, &tenant).await.map_err(|e| e.to_string())?;
            let token = passwords::api_token()?;
            let created = tenants::create_token(db, tenant.id, &name, &passwords::token_hash(&token))
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("Token {} ({name:?}) created for tenant {:?}. It is shown once:", created.id, tenant.name);
            println!("{token}");
        }
        Command::Token(TokenCommand::List) => {
            println!("id\ttenant\tname\tcreated\trevoked");
            for (token, tenant) in tenants::list_tokens(db).await.map_err(|e| e.to_string())? {
                let revoked = token.revoked_at.map(|at| at.to_rfc3339()).unwrap_or_else(|| "-".into());
                println!("{}\t{tenant}\t{}\t{}\t{revoked}", token.id, token.name, token.created_at.to_rfc3339());
            }
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            if !tenants::revoke_token(db, id).await.map_err(|e| e.to_string())? {
                return Err(format!("there is no live token {id}"));
            }
            println!("Token {id} revoked.");
        }
    }
    Ok(())
}

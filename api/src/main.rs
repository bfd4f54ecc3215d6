//! `cargo run -p api`: serves the API (embedded mode unless AMQP_URL is set).
//! `cargo run -p api -- add-user NAME`: adds a user.

use api::settings::{Cli, Command};
use api::startup::{Application, database};
use clap::Parser;

#[actix_web::main]
async fn main() -> Result<(), String> {
    worker::startup::init_telemetry();
    let mut cli = Cli::parse();
    let settings = cli.settings()?;
    if let Some(Command::AddUser { name, password, role }) = cli.command {
        let password = match password {
            Some(password) => password,
            None => std::io::stdin().lines().next().transpose().map_err(|e| e.to_string())?.unwrap_or_default(),
        };
        api::passwords::add_user(&database(&settings).await?, &name, password.trim_end_matches(['\r', '\n']), role)
            .await?;
        println!("User {name:?} added as {role}.");
        return Ok(());
    }
    let app = Application::build(settings).await?;
    let stopper = app.stopper();
    actix_web::rt::spawn(async move {
        worker::startup::termination().await;
        stopper.stop().await;
    });
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

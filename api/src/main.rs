//! `cargo run -p api`: serves the API (embedded mode unless AMQP_URL is set).
//! `cargo run -p api -- add-user NAME` and `-- token create|list|revoke`: administration.

use api::settings::Cli;
use api::startup::{Application, database};
use clap::Parser;

/// mimalloc rather than the system's allocator: a poll allocates and frees a few dozen small
/// buffers, and glibc's malloc took an eighth of the `api`'s CPU under polls (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> Result<(), String> {
    worker::startup::init_telemetry();
    let mut cli = Cli::parse();
    let settings = cli.settings()?;
    if let Some(command) = cli.command {
        return api::admin::run(&database(&settings).await?, command).await;
    }
    let app = Application::build(settings).await?;
    let stopper = app.stopper();
    actix_web::rt::spawn(async move {
        worker::startup::termination().await;
        stopper.stop().await;
    });
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

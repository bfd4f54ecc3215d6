//! A distributed runner: `DATABASE_URL=postgres://… AMQP_URL=amqp://… cargo run -p worker`.

use clap::Parser;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use worker::broker::amqp::AmqpBroker;
use worker::events::Subscriptions;
use worker::settings::{RunnerArgs, RunnerSettings, read_toml};
use worker::startup::{connect_database, start_engine};

#[derive(Parser)]
#[command(about = "Runner: consumes tasks from RabbitMQ and performs them on local processes")]
struct Cli {
    /// TOML file with runner settings (the same keys as the flags, in snake_case).
    #[arg(long, env = "WORKER_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "AMQP_URL")]
    amqp_url: String,
    #[command(flatten)]
    runner: RunnerArgs,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    worker::startup::init_telemetry();
    let cli = Cli::parse();
    let mut settings: RunnerSettings = cli.config.as_deref().map(read_toml).transpose()?.unwrap_or_default();
    cli.runner.apply(&mut settings);
    let db = connect_database(&cli.database_url).await?;
    let broker = Arc::new(AmqpBroker::new(&cli.amqp_url, &settings));
    let shutdown = CancellationToken::new();
    let mut subscriptions = Subscriptions::new(&db);
    let (_engine, drained) = start_engine(db, broker, &settings, true, &mut subscriptions, &shutdown).await?;
    subscriptions.follow(shutdown.clone());
    tracing::info!(runner = %settings.runner_id, "runner started");
    worker::startup::termination().await;
    shutdown.cancel();
    drained.wait().await;
    tracing::info!(runner = %settings.runner_id, "runner stopped");
    Ok(())
}

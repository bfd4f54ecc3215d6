//! `cargo run -p migration [up|down|status|fresh]`: applies the migrations to `DATABASE_URL`
//! (default: the embedded SQLite file `./data/taskq.sqlite`).

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::Database;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use tracing_subscriber::prelude::*;
    let quiet_sql = tracing_subscriber::filter::Targets::new()
        .with_default(tracing_subscriber::filter::LevelFilter::INFO)
        .with_target("sqlx", tracing_subscriber::filter::LevelFilter::WARN)
        .with_target("sea_orm", tracing_subscriber::filter::LevelFilter::WARN)
        .with_target("sea_orm_migration", tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_target(false).without_time())
        .with(quiet_sql)
        .init();
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let _ = std::fs::create_dir_all("data");
        "sqlite://data/taskq.sqlite?mode=rwc".to_owned()
    });
    let db = Database::connect(&url).await?;
    match std::env::args().nth(1).as_deref().unwrap_or("up") {
        "up" => Migrator::up(&db, None).await?,
        "down" => Migrator::down(&db, Some(1)).await?,
        "fresh" => Migrator::fresh(&db).await?,
        "status" => Migrator::status(&db).await?,
        other => {
            return Err(format!("unknown command {other:?}: use up, down, status or fresh").into());
        }
    }
    println!("done");
    Ok(())
}

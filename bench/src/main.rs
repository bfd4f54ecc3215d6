//! `scripts/loadbench`: the load benchmark. Starts the system in each mode, drives each face
//! over HTTP, runs the baselines in the same run, and reports every figure with its ratio to
//! its baseline: a JSON file, and (with `--doc`) the results table in `docs/benchmarks.md`.
//! `--smoke` runs every scenario briefly, to check that the command works (no figure is
//! judged).

mod baseline;
mod load;
mod report;
mod scenarios;
mod system;

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(about = "Load benchmark: the system in each mode over HTTP, against baselines run in the same run")]
pub struct Cli {
    /// A short run of every scenario, to check the command works.
    #[arg(long)]
    pub smoke: bool,
    /// Modes to run: embedded, distributed (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "embedded,distributed")]
    pub modes: Vec<String>,
    /// `worker` runners in distributed mode.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Concurrent keep-alive connections (closed loop).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds each timed scenario runs.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Live workloads stopped at once (Daytona sandboxes).
    #[arg(long, default_value_t = 1000)]
    pub live: usize,
    /// Live Vercel sessions stopped (each answered once stopped).
    #[arg(long, default_value_t = 200)]
    pub vercel_live: usize,
    /// Only these groups of scenarios: accepts, polls, live, scale (comma-separated; default
    /// all). The polls still create `--live` sandboxes and `--vercel-live` sessions to read;
    /// scale runs on PostgreSQL only.
    #[arg(long, value_delimiter = ',', default_value = "accepts,polls,live,scale")]
    pub only: Vec<String>,
    /// Where the `api` and `worker` binaries are (default: beside this one), to measure
    /// another build.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/loadbench.json")]
    pub out: PathBuf,
    /// Markdown file whose results table is replaced (between its loadbench markers).
    #[arg(long)]
    pub doc: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Sub>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// (internal) serves the trivial baseline handler on PORT.
    TrivialServer { port: u16 },
}

fn main() -> Result<(), String> {
    let mut cli = Cli::parse();
    if let Some(Sub::TrivialServer { port }) = cli.command {
        return baseline::trivial_server(port).map_err(|e| e.to_string());
    }
    if cli.smoke {
        cli.seconds = cli.seconds.min(1.0);
        cli.connections = cli.connections.min(8);
        cli.live = cli.live.min(10);
        cli.vercel_live = cli.vercel_live.min(4);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<(), String> {
    let window = Duration::from_secs_f64(cli.seconds);
    let mut modes = Vec::new();
    for name in &cli.modes {
        modes.push(match name.as_str() {
            "embedded" => system::Mode::Embedded,
            "distributed" => system::Mode::Distributed,
            other => return Err(format!("unknown mode {other}: embedded or distributed")),
        });
    }
    eprintln!("loadbench: raw pipeline baseline ({} connections, {:.0} s)", cli.connections, cli.seconds);
    let before = scenarios::baselines(cli.connections, window).await?;
    let mut results = Vec::new();
    for mode in modes {
        eprintln!("loadbench: {} mode", mode.name());
        results.push(scenarios::mode(mode, &cli, window).await?);
    }
    eprintln!("loadbench: raw pipeline baseline again");
    let baselines = before.faster(scenarios::baselines(cli.connections, window).await?);
    let report = report::Report::new(&cli, baselines, results);
    report.check()?;
    if let Some(parent) = cli.out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::write(&cli.out, serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let table = report.markdown();
    println!("{table}");
    if let Some(doc) = &cli.doc {
        report::replace_section(doc, &table)?;
    }
    eprintln!("loadbench: results in {}", cli.out.display());
    Ok(())
}

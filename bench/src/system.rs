//! The system under test, as a user runs it: the real `api` (and `worker`) binaries, started
//! in embedded mode (SQLite, the runner in-process) or distributed mode (PostgreSQL and
//! RabbitMQ, one `api` and N `worker` runners), each with its own data directory, database
//! and queues, stopped and cleaned up when dropped.

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: (&str, &str) = ("admin", "bench-password");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Embedded,
    Distributed,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Embedded => "embedded",
            Mode::Distributed => "distributed",
        }
    }
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// A new PostgreSQL database (named `bench_<id>`); its URL. Fails when PostgreSQL is not there.
pub async fn fresh_pg_database() -> Result<String, String> {
    let admin_url = pg_admin_url();
    let admin = Database::connect(&admin_url)
        .await
        .map_err(|e| format!("PostgreSQL is required at {admin_url} (TEST_PG_URL): {e}"))?;
    let name = format!("bench_{}", short_id());
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.map_err(|e| e.to_string())?;
    let (base, _) = admin_url.rsplit_once('/').ok_or("the PostgreSQL URL has no database")?;
    Ok(format!("{base}/{name}"))
}

pub async fn drop_pg_database(url: &str) {
    let Some(name) = url.rsplit('/').next() else { return };
    if let Ok(admin) = Database::connect(&pg_admin_url()).await {
        let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

/// The binary `name` in `dir`, else built beside this one (`target/<profile>/<name>`).
pub fn binary(dir: Option<&Path>, name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = match dir {
        Some(dir) => dir.join(name),
        None => me.parent().ok_or("no directory")?.join(name),
    };
    path.exists()
        .then_some(path.clone())
        .ok_or(format!("{} is not built (cargo build -p api -p worker)", path.display()))
}

pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The Daytona quotas, raised so that a thousand sandboxes can run at once.
const CONFIG: &str = r#"
[daytona]
max_running_sandboxes = 100000
max_total_cpu = 1000000
max_total_memory_gib = 1000000
max_total_disk_gib = 10000000
"#;

/// The job every Veeam stop in the throughput scenarios targets: its command exits at once, so
/// a stop of its session measures the pipeline, not a grace period.
const JOBS: &str = r#"
[[job]]
name = "Bench"
description = "exits at once"
command = ["true"]
"#;

pub struct System {
    pub addr: SocketAddr,
    /// Its `CGROUP_PREFIX` (and queue prefix): its workloads' cgroups, removed with it.
    prefix: String,
    pub db: DatabaseConnection,
    pub dir: PathBuf,
    pub api: Child,
    pub workers: Vec<Child>,
    database_url: Option<String>,
}

impl System {
    /// Starts the system in `mode` (with `workers` runners when distributed), ready to serve;
    /// its binaries from `bin_dir` (to compare builds), else beside this one.
    pub async fn start(mode: Mode, workers: usize, bin_dir: Option<&Path>) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("loadbench-{}", short_id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let jobs = dir.join("jobs.toml");
        let work = dir.join("work");
        let text = JOBS.replace("command = ", &format!("working_dir = \"{}\"\ncommand = ", work.display()));
        std::fs::write(&jobs, text).map_err(|e| e.to_string())?;
        let config = dir.join("api.toml");
        std::fs::write(&config, CONFIG).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let prefix = format!("bench-{}", short_id());
        let database_url = match mode {
            Mode::Embedded => None,
            Mode::Distributed => Some(fresh_pg_database().await?),
        };
        let mut api = Command::new(binary(bin_dir, "api")?);
        api.env("DATA_DIR", dir.join("data"))
            .env("PORT", port.to_string())
            .env("JOBS_FILE", &jobs)
            .env("API_CONFIG", &config)
            .env("ADMIN_USER", ADMIN.0)
            .env("ADMIN_PASSWORD", ADMIN.1)
            .env("QUEUE_PREFIX", &prefix)
            .env("CGROUP_PREFIX", &prefix)
            .env("RUNNER_ID", format!("{prefix}-embedded"))
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .env_remove("AMQP_URL")
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(log(&dir, "api")?);
        if let Some(url) = &database_url {
            api.env("DATABASE_URL", url).env("AMQP_URL", amqp_url());
        }
        let api = api.spawn().map_err(|e| format!("api: {e}"))?;
        let mut system = System {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            prefix: prefix.clone(),
            db: Database::connect(database_url.clone().unwrap_or_else(|| "sqlite::memory:".to_owned()))
                .await
                .map_err(|e| e.to_string())?,
            dir: dir.clone(),
            api,
            workers: Vec::new(),
            database_url: database_url.clone(),
        };
        if let Some(url) = &database_url {
            for n in 0..workers {
                let worker = Command::new(binary(bin_dir, "worker")?)
                    .env("DATABASE_URL", url)
                    .env("AMQP_URL", amqp_url())
                    .env("QUEUE_PREFIX", &prefix)
                    .env("CGROUP_PREFIX", &prefix)
                    .env("RUNNER_ID", format!("{prefix}-worker-{n}"))
                    .env("RUST_LOG", "warn")
                    .current_dir(&dir)
                    .stdout(Stdio::null())
                    .stderr(log(&dir, &format!("worker-{n}"))?)
                    .spawn()
                    .map_err(|e| format!("worker: {e}"))?;
                system.workers.push(worker);
            }
        }
        system.wait_ready().await?;
        if database_url.is_none() {
            let file = dir.join("data").join("taskq.sqlite");
            system.db =
                Database::connect(format!("sqlite://{}?mode=ro", file.display())).await.map_err(|e| e.to_string())?;
        }
        Ok(system)
    }

    /// Waits until the API answers (its database migrated, its jobs loaded).
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let wire = crate::load::request("GET", "/api/", &[("Accept", "application/json")], None);
        loop {
            let mut conn = crate::load::Conn::new(self.addr);
            if conn.send(&wire).await.is_ok_and(|a| a.status == 200) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.api.try_wait() {
                return Err(format!("api exited ({status}); see {}", self.dir.join("api.log").display()));
            }
            if Instant::now() > deadline {
                return Err("the api did not come up within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.is_some()
    }

    /// Peak resident memory (MB) of the api, and of the workers (the largest), so far.
    pub fn peak_rss_mb(&self) -> (f64, Option<f64>) {
        let api = peak_rss_mb(self.api.id()).unwrap_or(0.0);
        let workers = self
            .workers
            .iter()
            .filter_map(|w| peak_rss_mb(w.id()))
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        (api, workers)
    }

    /// A new API token of `tenant` (as `api token create` makes one).
    pub async fn token(&self, tenant: &str) -> Result<String, String> {
        let db = self.writable_db().await?;
        let tenant = entity::store::tenants::find_or_create(&db, tenant).await.map_err(|e| e.to_string())?;
        let token = api::passwords::api_token().map_err(|e| e.to_string())?;
        entity::store::tenants::create_token(&db, tenant.id, "bench", &api::passwords::token_hash(&token))
            .await
            .map_err(|e| e.to_string())?;
        Ok(token)
    }

    async fn writable_db(&self) -> Result<DatabaseConnection, String> {
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.dir.join("data").join("taskq.sqlite").display()),
        };
        Database::connect(url).await.map_err(|e| e.to_string())
    }

    pub async fn stop(mut self) {
        for child in self.workers.iter_mut().chain(std::iter::once(&mut self.api)) {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for child in self.workers.iter_mut().chain(std::iter::once(&mut self.api)) {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Workloads outlive their runner by design: end what this run left.
        kill_processes_under(&self.dir);
        worker::contain::remove_prefix(&self.prefix);
        if let Some(url) = &self.database_url {
            drop_pg_database(url).await;
            let runners = (0..self.workers.len()).map(|n| format!("{}-worker-{n}", self.prefix)).collect();
            delete_queues(&self.prefix, runners).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Deletes what a distributed system of `prefix` declared on RabbitMQ: its shared, dead-letter
/// and runners' queues, and its dead-letter exchange (else every run would leave them behind).
async fn delete_queues(prefix: &str, runners: Vec<String>) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(connection) = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else { return };
    let queues = [format!("{prefix}.tasks"), format!("{prefix}.dead")]
        .into_iter()
        .chain(runners.iter().map(|runner| format!("{prefix}.runner.{runner}")));
    for queue in queues {
        let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    }
    let dlx = format!("{prefix}.dlx");
    let _ = channel.exchange_delete(dlx.as_str().into(), ExchangeDeleteOptions::default()).await;
    let _ = connection.close(0, "done".into()).await;
}

/// SIGKILLs every process whose working directory is under `dir` (the workloads, whatever
/// contains them).
fn kill_processes_under(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        if std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir)) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn log(dir: &Path, name: &str) -> Result<Stdio, String> {
    let file = std::fs::File::create(dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
    Ok(Stdio::from(file))
}

/// A process's peak resident set (VmHWM), in MB.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

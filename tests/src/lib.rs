//! Test harness: the real application on port 0 with its own database (a SQLite file, or a fresh
//! PostgreSQL database) and its own queue names, real `worker` and `api` processes where a test
//! kills them, and helpers to talk Veeam over HTTP and to wait for conditions with a deadline.
//!
//! PostgreSQL and RabbitMQ must be reachable (`TEST_PG_URL`, `TEST_AMQP_URL`); tests that need
//! them fail, never skip, when they are not.

#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod daytona;
pub mod http;
pub mod proxy;
pub mod veeam;
pub mod vercel;
pub mod xml;

use api::settings::ApiSettings;
use api::startup::{Application, Stopper};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use http::Resp;
pub use veeam::Session;

pub const ADMIN: (&str, &str) = ("admin", "admin-password");

/// Test queues expire a minute after their last use.
const QUEUE_EXPIRES_MS: u64 = 60_000;

pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A short random id, to keep names of concurrent tests apart.
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// A new, empty PostgreSQL database; its URL.
pub async fn fresh_pg_database() -> String {
    let admin_url = pg_admin_url();
    let admin = Database::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required at {admin_url} (TEST_PG_URL): {e}"));
    let name = format!("taskq_test_{}", short_id());
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let (base, _) = admin_url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
}

/// A migrated database of each kind (SQLite in memory, a fresh PostgreSQL one), for tests of the
/// store; the PostgreSQL one's URL, to drop with `drop_pg_database`.
pub async fn migrated_databases() -> Vec<(DatabaseConnection, Option<String>)> {
    use migration::MigratorTrait;
    let sqlite = Database::connect("sqlite::memory:").await.expect("sqlite");
    let url = fresh_pg_database().await;
    let pg = Database::connect(&url).await.expect("postgres");
    let all = vec![(sqlite, None), (pg, Some(url))];
    for (db, _) in &all {
        migration::Migrator::up(db, None).await.expect("migrate");
    }
    all
}

/// A spec named `name` that runs `true`, with nothing else set (for tests of the store).
pub fn plain_spec(name: &str) -> entity::store::specs::NewSpec {
    entity::store::specs::NewSpec {
        name: name.into(),
        command: vec!["true".into()],
        working_dir: ".".into(),
        meta: serde_json::json!({}),
        limits: Default::default(),
        env: Default::default(),
        disk_bytes: None,
        face: None,
    }
}

/// How many of this PostgreSQL database's backends are waiting on `condition`, an SQL
/// condition on `pg_stat_activity` (such as `wait_event_type = 'Lock'`): how a test knows a
/// statement it started is held where it means it to be.
pub async fn backends_waiting(db: &DatabaseConnection, condition: &str) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM pg_stat_activity WHERE {condition} AND datname = current_database()");
    db.query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql))
        .await
        .expect("db")
        .and_then(|row| row.try_get::<i64>("", "n").ok())
        .unwrap_or(0)
}

/// A workload of the spec `spec_id` as a start inserts it (Starting, on runner `r`), with
/// nothing else set (for tests of the store).
pub fn plain_workload(spec_id: &str, start_task_id: i32) -> entity::workload::Model {
    entity::workload::Model {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: entity::tenant::DEFAULT,
        spec_id: spec_id.into(),
        spec_name: "Spec".into(),
        name: "Spec".into(),
        state: entity::WorkloadState::Starting,
        ending: None,
        succeeded: None,
        created_at: entity::store::now(),
        ended_at: None,
        runner_id: "r".into(),
        pid: None,
        exit_code: None,
        start_task_id,
        active_spec_id: None,
        labels: "{}".into(),
        containment: None,
        cpu_usec: None,
        memory_peak_bytes: None,
        processes_peak: None,
    }
}

/// Drops a database made by `fresh_pg_database` (tests that do not use `TestApp`).
pub async fn drop_pg_database(url: &str) {
    let name = url.rsplit('/').next().expect("name");
    if let Ok(admin) = Database::connect(&pg_admin_url()).await {
        let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

/// The jobs every test can start.
const JOBS: &str = r#"
[[job]]
name = "Runs"
description = "runs until stopped; the shell and its background child form one group"
command = ["sh", "-c", "sleep 300 & sleep 300"]

[[job]]
name = "Quick"
command = ["sh", "-c", "sleep 0.3; exit 0"]

[[job]]
name = "Broken"
command = ["sh", "-c", "echo broken >&2; exit 3"]

[[job]]
name = "Counter"
description = "ignores SIGTERM but writes a line to terms.log for each one it gets"
command = ["sh", "-c", "trap 'echo term >> terms.log' TERM; while true; do sleep 0.05; done"]

[[job]]
name = "Stubborn"
type = "BackupCopy"
command = ["sh", "-c", "trap '' TERM; sleep 300"]

[[job]]
name = "DoubleFork"
description = "a grandchild whose parent exits at once (reparented), beside the leader"
command = ["sh", "-c", "sh -c 'sleep 300 &'; sleep 300"]

[[job]]
name = "SetsidEscape"
description = "a child in a session and process group of its own"
command = ["sh", "-c", "setsid sleep 300 & sleep 300"]

[[job]]
name = "NohupDaemon"
description = "setsid + nohup, ignoring SIGTERM and SIGHUP"
command = ["sh", "-c", "setsid nohup sh -c 'trap \"\" TERM HUP; sleep 300' >/dev/null 2>&1 & sleep 300"]

[[job]]
name = "ForkStorm"
description = "200 children, every other one in a session of its own"
command = ["sh", "-c", "i=0; while [ $i -lt 200 ]; do if [ $((i % 2)) = 0 ]; then setsid sleep 300 & else sleep 300 & fi; i=$((i+1)); done; wait"]

[[job]]
name = "MemoryHog"
description = "holds 200 MB in one line, under a 32 MB limit"
memory_mb = 32
command = ["sh", "-c", "head -c 200000000 /dev/zero | tail > /dev/null"]

[[job]]
name = "PidCapped"
description = "asks for 50 children, under a limit of 10 processes"
max_processes = 10
command = ["sh", "-c", "i=0; while [ $i -lt 50 ]; do sleep 300 & i=$((i+1)); done; wait"]

[[job]]
name = "CpuCapped"
description = "burns CPU without end, under a tenth of a CPU"
cpus = 0.1
command = ["sh", "-c", "while :; do :; done"]

[[job]]
name = "Burner"
description = "burns CPU in the shell for a while, then sleeps (exec: the same process)"
command = ["sh", "-c", "i=0; while [ $i -lt 1500000 ]; do i=$((i+1)); done; exec sleep 300"]
"#;

#[derive(Clone)]
pub struct Options {
    pub distributed: bool,
    pub grace_period_ms: u64,
    pub runner_deadline_ms: u64,
    pub session_idle_timeout_secs: u64,
    pub relay_interval_ms: u64,
    pub public_base_url: Option<String>,
    pub trusted_proxies: Vec<String>,
    pub heartbeat_interval_ms: u64,
    /// The AMQP URL of the api (e.g. through a proxy); runners always use the real broker.
    pub api_amqp_url: Option<String>,
    pub amqp_heartbeat_secs: u16,
    /// The runners' `CONTAINMENT`.
    pub containment: &'static str,
    /// How long a minute of a Daytona sandbox's auto-stop and auto-delete intervals lasts.
    pub daytona_minute_ms: u64,
    /// What a Daytona sandbox runs, if not the default `sleep infinity`.
    pub daytona_command: Option<Vec<String>>,
    /// What a Vercel session runs, if not the default `sleep infinity`.
    pub vercel_command: Option<Vec<String>>,
    /// The Daytona face's quotas and maxima, if not the defaults.
    pub daytona_limits: Option<api::daytona::DaytonaSettings>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            distributed: false,
            grace_period_ms: 1_500,
            runner_deadline_ms: 60_000,
            session_idle_timeout_secs: 900,
            relay_interval_ms: 200,
            public_base_url: None,
            trusted_proxies: Vec::new(),
            heartbeat_interval_ms: 200,
            api_amqp_url: None,
            amqp_heartbeat_secs: 10,
            containment: "auto",
            daytona_minute_ms: 60_000,
            daytona_command: None,
            daytona_limits: None,
            vercel_command: None,
        }
    }
}

pub struct TestApp {
    pub base: String,
    /// The app's engine, to drive it as a face does.
    pub engine: worker::engine::Engine,
    pub db: DatabaseConnection,
    pub dir: PathBuf,
    pub settings: ApiSettings,
    stopper: Stopper,
    /// Runners started with the app (distributed mode), killed with it.
    workers: Vec<Proc>,
    /// Every runner identity used, for the queue clean-up.
    runner_ids: std::sync::Mutex<Vec<String>>,
}

/// The two deployment modes, for tests that must hold in both.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// SQLite, the runner in-process.
    Embedded,
    /// PostgreSQL + RabbitMQ, one `worker` process.
    Distributed,
}

impl TestApp {
    pub async fn embedded() -> Self {
        Self::spawn(Options::default()).await
    }

    /// PostgreSQL + RabbitMQ, no runner in the API: start `worker` processes with `start_worker`.
    pub async fn distributed() -> Self {
        Self::spawn(Options { distributed: true, ..Options::default() }).await
    }

    /// Another `api` instance on the same database and queues (distributed mode), with its
    /// own engine, memory and listeners, as a second `api` process has: its base URL.
    pub async fn another_api(&self) -> String {
        assert!(self.settings.amqp_url.is_some(), "a second api needs distributed mode");
        let settings = ApiSettings { port: 0, ..self.settings.clone() };
        let app = Application::build(settings).await.expect("second api starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        actix_web::rt::spawn(app.run_until_stopped());
        base
    }

    /// An app in `mode` with `options`; in distributed mode with one running worker.
    pub async fn in_mode(mode: Mode, options: Options) -> Self {
        let mut app = Self::spawn(Options { distributed: matches!(mode, Mode::Distributed), ..options }).await;
        if let Mode::Distributed = mode {
            let worker = app.start_worker(&format!("w-{}", short_id()));
            app.workers.push(worker);
        }
        app
    }

    pub async fn spawn(options: Options) -> Self {
        let dir = std::env::temp_dir().join(format!("taskq-test-{}", short_id()));
        std::fs::create_dir_all(&dir).expect("test dir");
        let settings = settings_for(&dir, &options).await;
        let app = Application::build(settings.clone()).await.expect("application starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let engine = app.engine();
        let stopper = app.stopper();
        actix_web::rt::spawn(app.run_until_stopped());
        let db = api::startup::database(&settings).await.expect("test database");
        Self { base, engine, db, dir, settings, stopper, workers: Vec::new(), runner_ids: std::sync::Mutex::default() }
    }

    pub async fn logon(&self) -> Session {
        Session::logon(&self.base, ADMIN.0, ADMIN.1).await
    }

    pub async fn job_id(&self, name: &str) -> String {
        entity::store::specs::list(&self.db)
            .await
            .expect("jobs")
            .into_iter()
            .find(|j| j.name == name)
            .expect("job exists")
            .id
    }

    /// A `worker` process with this runner identity, sharing the test's database and queues.
    pub fn start_worker(&self, runner_id: &str) -> Proc {
        self.start_worker_with(runner_id, &[])
    }

    /// `start_worker` with extra environment variables.
    pub fn start_worker_with(&self, runner_id: &str, env: &[(&str, &str)]) -> Proc {
        self.runner_ids.lock().expect("lock").push(runner_id.to_owned());
        let mut command = Command::new(binary("worker"));
        command
            .env("DATABASE_URL", self.settings.database_url.as_deref().expect("distributed test"))
            .env("AMQP_URL", amqp_url())
            .env("AMQP_HEARTBEAT_SECS", self.settings.runner.amqp_heartbeat_secs.to_string())
            .env("RUNNER_ID", runner_id)
            .env("QUEUE_PREFIX", &self.settings.runner.queue_prefix)
            .env("GRACE_PERIOD_MS", self.settings.runner.grace_period_ms.to_string())
            .env("HEARTBEAT_INTERVAL_MS", self.settings.runner.heartbeat_interval_ms.to_string())
            .env("RUNNER_DEADLINE_MS", self.settings.runner.runner_deadline_ms.to_string())
            .env("RELAY_INTERVAL_MS", self.settings.runner.relay_interval_ms.to_string())
            .env("QUEUE_EXPIRES_MS", QUEUE_EXPIRES_MS.to_string())
            .env("CONTAINMENT", &self.settings.runner.containment)
            .env("CGROUP_PREFIX", &self.settings.runner.cgroup_prefix)
            .envs(env.iter().copied())
            .current_dir(&self.dir);
        Proc::spawn(command, &self.dir.join(format!("worker-{runner_id}.log")))
    }

    pub async fn stop(&self) {
        self.stopper.stop().await;
    }
}

/// Writes `JOBS` into `dir/jobs.toml`, with every job working under `dir/work`; its path.
pub fn write_jobs_file(dir: &Path) -> PathBuf {
    let jobs = dir.join("jobs.toml");
    let work = dir.join("work");
    std::fs::write(&jobs, JOBS.replace("command = ", &format!("working_dir = \"{}\"\ncommand = ", work.display())))
        .expect("jobs file");
    jobs
}

async fn settings_for(dir: &Path, options: &Options) -> ApiSettings {
    let jobs = write_jobs_file(dir);
    let mut settings = ApiSettings {
        port: 0,
        data_dir: dir.join("data"),
        public_base_url: options.public_base_url.clone(),
        trusted_proxies: options.trusted_proxies.clone(),
        ..ApiSettings::default()
    };
    settings.veeam.jobs_file = Some(jobs);
    settings.veeam.admin_user = ADMIN.0.to_owned();
    settings.veeam.admin_password = Some(ADMIN.1.to_owned());
    settings.veeam.session_idle_timeout_secs = options.session_idle_timeout_secs;
    if let Some(limits) = &options.daytona_limits {
        settings.daytona = limits.clone();
    }
    settings.daytona.minute_ms = options.daytona_minute_ms;
    if let Some(command) = &options.vercel_command {
        settings.vercel.session_command = command.clone();
    }
    if let Some(command) = &options.daytona_command {
        settings.daytona.sandbox_command = command.clone();
    }
    settings.runner.runner_id = format!("embedded-{}", short_id());
    settings.runner.grace_period_ms = options.grace_period_ms;
    settings.runner.runner_deadline_ms = options.runner_deadline_ms;
    settings.runner.relay_interval_ms = options.relay_interval_ms;
    settings.runner.heartbeat_interval_ms = options.heartbeat_interval_ms;
    settings.runner.amqp_heartbeat_secs = options.amqp_heartbeat_secs;
    settings.runner.queue_prefix = format!("test-{}", short_id());
    settings.runner.containment = options.containment.to_owned();
    // Each test's workloads in cgroups of their own, which its clean-up kills and removes.
    settings.runner.cgroup_prefix = format!("taskq-test/{}", short_id());
    // A safety net for tests that die before their clean-up: RabbitMQ drops idle queues.
    settings.runner.queue_expires_ms = Some(QUEUE_EXPIRES_MS);
    if options.distributed {
        settings.database_url = Some(fresh_pg_database().await);
        settings.amqp_url = Some(options.api_amqp_url.clone().unwrap_or_else(amqp_url));
    }
    settings
}

impl Drop for TestApp {
    /// Kills the test's runners and the workload processes it left (those whose working
    /// directory is inside the test's directory), then deletes its queues and its database:
    /// the broker and the database server are shared, and quorum queues are not free.
    fn drop(&mut self) {
        self.workers.clear();
        kill_processes_under(&self.dir);
        worker::contain::remove_prefix(&self.settings.runner.cgroup_prefix);
        let Some(database_url) = self.settings.database_url.clone() else { return };
        let prefix = self.settings.runner.queue_prefix.clone();
        let mut queues = vec![format!("{prefix}.tasks"), format!("{prefix}.dead")];
        queues.extend(
            self.runner_ids
                .lock()
                .map(|ids| ids.clone())
                .unwrap_or_default()
                .iter()
                .map(|id| format!("{prefix}.runner.{id}")),
        );
        let cleanup = move || -> Option<()> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                if let Ok(connection) =
                    lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await
                    && let Ok(channel) = connection.create_channel().await
                {
                    for queue in &queues {
                        let _ = channel
                            .queue_delete(queue.as_str().into(), lapin::options::QueueDeleteOptions::default())
                            .await;
                    }
                    let dlx = format!("{prefix}.dlx");
                    let _ = channel
                        .exchange_delete(dlx.as_str().into(), lapin::options::ExchangeDeleteOptions::default())
                        .await;
                }
                let name = database_url.rsplit('/').next()?.to_owned();
                let admin = Database::connect(&pg_admin_url()).await.ok()?;
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok()?;
                Some(())
            })
        };
        let _ = std::thread::spawn(cleanup).join();
    }
}

/// Live (not zombie) processes whose working directory is under `dir/work`: the workloads a
/// test started.
pub fn workload_processes(dir: &Path) -> Vec<i32> {
    let work = dir.join("work");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&work)))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit(')').next().map(|rest| !rest.trim_start().starts_with('Z')))
                .unwrap_or(false)
        })
        .collect()
}

/// Live (not zombie) processes whose environment carries the workload's marker
/// (`TASKQ_WORKLOAD=<id>`, which every process of a workload inherits): seen from `/proc`,
/// whatever contains them.
pub fn marked_processes(workload_id: &str) -> Vec<i32> {
    let tag = format!("{}={workload_id}", worker::contain::MARKER);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == tag.as_bytes()))
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit(')').next().map(|rest| !rest.trim_start().starts_with('Z')))
                .unwrap_or(false)
        })
        .collect()
}

/// The live processes of a running workload, once any is seen (within 10 s). A workload is
/// answered running once its process has passed its gate, and that process may still be in the
/// `exec` of its command: for that instant its environment (the marker `marked_processes` looks
/// for) reads empty, so a single look right after a start can miss it.
pub async fn running_processes(workload_id: &str) -> Vec<i32> {
    wait_until("the workload's processes to be seen", Duration::from_secs(10), || async {
        !marked_processes(workload_id).is_empty()
    })
    .await;
    marked_processes(workload_id)
}

pub fn kill_processes_under(dir: &Path) {
    for pid in workload_processes(dir) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

/// The real `api` binary in embedded mode, as a process of its own (to kill it, or to measure it).
pub struct EmbeddedServer {
    pub dir: PathBuf,
    pub port: u16,
    /// Its `CGROUP_PREFIX`: its workloads' cgroups, removed with it.
    pub cgroup_prefix: String,
}

impl Default for EmbeddedServer {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedServer {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("taskq-embedded-{}", short_id()));
        std::fs::create_dir_all(&dir).expect("dir");
        write_jobs_file(&dir);
        Self { dir, port: free_port(), cgroup_prefix: format!("taskq-test/{}", short_id()) }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn start(&self) -> Proc {
        let mut command = self.command();
        command.env("ADMIN_PASSWORD", ADMIN.1);
        self.start_with(command).await
    }

    /// The `api` binary with this server's data directory and settings.
    pub fn command(&self) -> Command {
        let mut command = Command::new(binary("api"));
        command
            .env("DATA_DIR", self.dir.join("data"))
            .env("PORT", self.port.to_string())
            .env("JOBS_FILE", self.dir.join("jobs.toml"))
            .env("RUNNER_ID", "embedded-fault-test")
            .env("GRACE_PERIOD_MS", "3000")
            .env("HEARTBEAT_INTERVAL_MS", "200")
            .env("CGROUP_PREFIX", &self.cgroup_prefix)
            .env_remove("DATABASE_URL")
            .env_remove("AMQP_URL")
            .env_remove("ADMIN_PASSWORD")
            .current_dir(&self.dir);
        command
    }

    pub async fn start_with(&self, command: Command) -> Proc {
        let proc = Proc::spawn(command, &self.dir.join("api.log"));
        let url = format!("{}/api/", self.base());
        wait_until("the api to listen", Duration::from_secs(20), || {
            let url = url.clone();
            async move {
                std::net::TcpStream::connect(
                    url.trim_start_matches("http://").trim_end_matches("/api/"),
                )
                .is_ok()
            }
        })
        .await;
        assert_eq!(http::request("GET", &url, &[]).await.status, 200);
        proc
    }

    pub async fn db(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(format!("sqlite://{}/data/taskq.sqlite", self.dir.display())).await.expect("sqlite")
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        kill_processes_under(&self.dir);
        worker::contain::remove_prefix(&self.cgroup_prefix);
    }
}

/// A binary of this workspace, built next to the test binary (`cargo build --workspace`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(Path::parent).expect("target dir").join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` first (scripts/test does)", path.display());
    path
}

/// A child process that is killed when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    pub fn spawn(mut command: Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command.stdin(Stdio::null()).stdout(out).stderr(err).spawn().expect("spawn");
        Self { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGSTOP: the process is paused (as by a debugger, or a VM stall) until `resume`.
    pub fn pause(&self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), nix::sys::signal::Signal::SIGSTOP);
    }

    pub fn resume(&self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), nix::sys::signal::Signal::SIGCONT);
    }

    /// SIGTERM: what systemd, a container runtime or `kill` send to stop a service.
    pub fn terminate(&self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), nix::sys::signal::Signal::SIGTERM);
    }

    /// Waits up to `timeout` for the process to end; its exit status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// True once the process has ended (and it is reaped).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `check` until it holds; fails the test naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Live (not zombie) members of a process group.
pub fn live_members(pgid: i32) -> Vec<i32> {
    worker::process::Pgid::new(pgid).map(worker::process::group_members).unwrap_or_default()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Runs one scenario (`async fn(Mode)`) as two tests: `embedded` and `distributed`.
#[macro_export]
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn embedded() {
                super::$name($crate::Mode::Embedded).await;
            }
            #[actix_web::test]
            async fn distributed() {
                super::$name($crate::Mode::Distributed).await;
            }
        }
    )*};
}

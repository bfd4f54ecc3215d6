//! The scenarios: what each mode is asked to do, and the baselines.

use crate::Cli;
use crate::baseline::{self, Pipeline};
use crate::load::{self, Plan, Run, Wire, request};
use crate::system::{ADMIN, Mode, System};
use base64::Engine as _;
use entity::{Operation, task, workload};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many slices of a poll scenario take turns with as many of its baseline (see `measure`).
const SLICES: u32 = 4;

/// A measured scenario: answers a second and their latencies.
#[derive(Debug, Clone, Default)]
pub struct Measure {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub count: u64,
    /// Answers that were not 2xx, and requests with no answer.
    pub failed: u64,
    /// For the HTTP figures: the trivial handler's rate in the slices that took turns with this
    /// scenario's, its baseline.
    pub trivial_beside: Option<f64>,
}

impl Measure {
    pub fn of(mut run: Run) -> Self {
        let ok: u64 = run.statuses.iter().filter(|(s, _)| (200..300).contains(*s)).map(|(_, n)| n).sum();
        Measure {
            rate: ok as f64 / run.elapsed.as_secs_f64().max(1e-9),
            p50_ms: run.quantile_ms(0.5),
            p99_ms: run.quantile_ms(0.99),
            max_ms: run.quantile_ms(1.0),
            count: ok,
            failed: run.answered() - ok + run.errors,
            trivial_beside: None,
        }
    }

    pub fn of_pipeline(mut pipeline: Pipeline) -> Self {
        Measure {
            rate: pipeline.rate,
            p50_ms: load::quantile_ms(&mut pipeline.latencies_us, 0.5),
            p99_ms: load::quantile_ms(&mut pipeline.latencies_us, 0.99),
            max_ms: load::quantile_ms(&mut pipeline.latencies_us, 1.0),
            count: pipeline.finished,
            failed: 0,
            trivial_beside: None,
        }
    }
}

/// The raw pipeline, run before and after the modes.
pub struct Baselines {
    /// The faster run.
    pub pipeline: Measure,
    /// The rate of every run, in order.
    pub runs: Vec<f64>,
}

impl Baselines {
    /// The faster run of the two: this machine's speed drifts within a run, and a ratio to a
    /// baseline that happened to run slow would flatter every figure.
    pub fn faster(self, other: Baselines) -> Baselines {
        let runs = self.runs.into_iter().chain(other.runs).collect();
        let pipeline = if other.pipeline.rate > self.pipeline.rate { other.pipeline } else { self.pipeline };
        Baselines { pipeline, runs }
    }
}

pub async fn baselines(connections: usize, window: Duration) -> Result<Baselines, String> {
    let pipeline = Measure::of_pipeline(baseline::raw_pipeline(connections, window).await?);
    Ok(Baselines { runs: vec![pipeline.rate], pipeline })
}

/// What one mode measured, by figure name (see `report`).
pub struct ModeResult {
    pub mode: Mode,
    pub figures: Vec<(&'static str, Measure)>,
    /// Seconds from the first stop request until every live workload was stopped.
    pub live_stop_secs: f64,
    pub live: usize,
    pub rss_api_mb: f64,
    pub rss_worker_mb: Option<f64>,
}

pub async fn mode(mode: Mode, cli: &Cli, window: Duration) -> Result<ModeResult, String> {
    let system = System::start(mode, cli.workers, cli.bin_dir.as_deref()).await?;
    let measured = measure(&system, cli, window).await;
    let (rss_api_mb, rss_worker_mb) = system.peak_rss_mb();
    let log = system.dir.join("api.log");
    let tail = std::fs::read_to_string(&log).unwrap_or_default();
    system.stop().await;
    let (figures, live_stop_secs) = measured.map_err(|e| {
        let last: Vec<&str> = tail.lines().rev().take(20).collect();
        format!("{} mode: {e}\napi log (last lines, newest first):\n{}", mode.name(), last.join("\n"))
    })?;
    Ok(ModeResult { mode, figures, live_stop_secs, live: cli.live, rss_api_mb, rss_worker_mb })
}

struct Clients {
    veeam: String,
    bearer: String,
}

impl Clients {
    fn veeam(&self, method: &str, path: &str, accept: &str) -> Wire {
        request(method, path, &[("X-RestSvcSessionId", &self.veeam), ("Accept", accept)], None)
    }

    fn bearer(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Wire {
        let auth = format!("Bearer {}", self.bearer);
        let mut headers = vec![("Authorization", auth.as_str()), ("Accept", "application/json")];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        request(method, path, &headers, body.map(|b| b.to_string()).as_deref())
    }
}

async fn one(system: &System, wire: &Wire) -> Result<load::Answer, String> {
    load::Conn::new(system.addr).send(wire).await.map_err(|e| e.to_string())
}

async fn measure(system: &System, cli: &Cli, window: Duration) -> Result<(Vec<(&'static str, Measure)>, f64), String> {
    let c = cli.connections;
    let basic =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ADMIN.0, ADMIN.1)));
    let logon = one(system, &request("POST", "/api/sessionMngr/?v=latest", &[("Authorization", &basic)], None)).await?;
    let clients = Clients {
        veeam: logon.header("X-RestSvcSessionId").ok_or(format!("logon: {}", logon.status))?.to_owned(),
        bearer: system.token("bench").await?,
    };
    let mut figures = Vec::new();

    // Veeam: sessions of a job whose command exits at once, stopped again and again: every stop
    // is a whole task through the pipeline, with no grace period in it.
    let job = entity::store::specs::list(&system.db)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| s.name == "Bench")
        .ok_or("the Bench job is not loaded")?;
    let sessions = if cli.smoke { 2 } else { 16 };
    for _ in 0..sessions {
        let started =
            one(system, &clients.veeam("POST", &format!("/api/jobs/{}?action=start", job.id), "application/json"))
                .await?;
        let task = started.json()["TaskId"].as_str().ok_or(format!("start: {}", started.status))?.to_owned();
        wait_veeam_task(system, &clients, &task).await?;
    }
    let sessions: Vec<String> = workload::Entity::find()
        .filter(workload::Column::SpecId.eq(job.id.as_str()))
        .all(&system.db)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|w| w.id)
        .collect();
    if sessions.is_empty() {
        return Err("no Veeam session to stop".into());
    }
    let stop_plan = |clients: &Clients, sessions: &[String]| -> Plan {
        let (token, sessions) = (clients.veeam.clone(), sessions.to_vec());
        Arc::new(move |n, _| {
            let path = format!("/api/backupSessions/{}?action=stop", sessions[n as usize % sessions.len()]);
            request("POST", &path, &[("X-RestSvcSessionId", &token), ("Accept", "application/json")], None)
        })
    };
    let group = |name: &str| cli.only.iter().any(|g| g == name);
    if group("accepts") {
        let since = chrono::Utc::now();
        let accepts = load::closed_loop(system.addr, c, window, stop_plan(&clients, &sessions)).await;
        let accepts = Measure::of(accepts);
        let e2e = finished_since(system, since, Operation::StopWorkload).await?;
        figures.push(("veeam_accept", accepts.clone()));
        figures.push(("veeam_e2e", Measure::of_pipeline(e2e)));
        // The same stops at a fixed rate, half the sustained one: latency without coordinated
        // omission.
        let rate = (accepts.rate / 2.0).max(1.0);
        let open = load::open_loop(system.addr, c, rate, window, stop_plan(&clients, &sessions)).await;
        figures.push(("veeam_accept_open", Measure::of(open)));
        finished_since(system, since, Operation::StopWorkload).await?;
    }

    // Polls of a finished task and of live sandboxes.
    let stop = one(
        system,
        &clients.veeam("POST", &format!("/api/backupSessions/{}?action=stop", sessions[0]), "application/json"),
    )
    .await?;
    let veeam_task = stop.json()["TaskId"].as_str().ok_or(format!("stop: {}", stop.status))?.to_owned();
    wait_veeam_task(system, &clients, &veeam_task).await?;

    // Vercel sessions and Daytona sandboxes, live (`sleep infinity`), created in a batch.
    let vercel_creates: Vec<Wire> = (0..cli.vercel_live)
        .map(|n| {
            let body = json!({"projectId": "bench", "name": format!("v-{n}"), "persistent": false, "ports": []});
            clients.bearer("POST", "/v3/sandboxes?teamId=bench", Some(&body))
        })
        .collect();
    let (run, answers) = load::batch(system.addr, c, vercel_creates).await;
    let vercel_sessions: Vec<String> = answers
        .iter()
        .filter_map(|a| a.as_ref().filter(|a| a.status == 200))
        .filter_map(|a| a.json()["session"]["id"].as_str().map(str::to_owned))
        .collect();
    let bearer_task = answers
        .iter()
        .flatten()
        .find_map(|a| a.header("Operation-Location").map(str::to_owned))
        .and_then(|l| l.find("/api/tasks/").map(|at| l[at..].to_owned()))
        .ok_or(format!("no Vercel session was created: {:?}", run.statuses))?;
    if vercel_sessions.len() != cli.vercel_live {
        return Err(format!(
            "{} of {} Vercel sessions created: {:?}",
            vercel_sessions.len(),
            cli.vercel_live,
            run.statuses
        ));
    }
    let daytona_creates: Vec<Wire> = (0..cli.live)
        .map(|n| clients.bearer("POST", "/api/sandbox", Some(&json!({"name": format!("d-{n}")}))))
        .collect();
    let (run, answers) = load::batch(system.addr, c, daytona_creates).await;
    let sandboxes: Vec<String> = answers
        .iter()
        .filter_map(|a| a.as_ref().filter(|a| a.status == 200))
        .filter(|a| a.json()["state"] == "started")
        .filter_map(|a| a.json()["id"].as_str().map(str::to_owned))
        .collect();
    if sandboxes.len() != cli.live {
        return Err(format!("{} of {} Daytona sandboxes started: {:?}", sandboxes.len(), cli.live, run.statuses));
    }

    let polls: [(&'static str, Wire); 5] = [
        ("poll_veeam_json", clients.veeam("GET", &format!("/api/tasks/{veeam_task}"), "application/json")),
        ("poll_veeam_xml", clients.veeam("GET", &format!("/api/tasks/{veeam_task}"), "application/xml")),
        ("poll_bearer_task", clients.bearer("GET", &bearer_task, None)),
        ("poll_daytona_sandbox", clients.bearer("GET", &format!("/api/sandbox/{}", sandboxes[0]), None)),
        (
            "poll_vercel_session",
            clients.bearer("GET", &format!("/v2/sandboxes/sessions/{}?teamId=bench", vercel_sessions[0]), None),
        ),
    ];
    // Each poll scenario takes turns with the trivial handler, its baseline, in slices of a
    // quarter of the window (ABBA: in pairs, the order swapped from pair to pair): this
    // machine's speed drifts by half within minutes and by a tenth within seconds, and both
    // must see the same drift for their ratio to measure the server rather than the machine.
    if group("polls") {
        let trivial = baseline::Trivial::start().await?;
        let trivial_plan: Plan = Arc::new(|_, _| request("GET", "/", &[], None));
        let slice = window / SLICES;
        for (name, wire) in polls {
            let plan: Plan = Arc::new(move |_, _| wire.clone());
            let (mut ours, mut theirs) = (Run::default(), Run::default());
            for pair in 0..SLICES {
                for ours_now in if pair % 2 == 0 { [false, true] } else { [true, false] } {
                    if ours_now {
                        ours.then(load::closed_loop(system.addr, c, slice, plan.clone()).await);
                    } else {
                        theirs.then(load::closed_loop(trivial.addr, c, slice, trivial_plan.clone()).await);
                    }
                }
            }
            let theirs = Measure::of(theirs);
            if theirs.failed > 0 || theirs.count == 0 {
                return Err(format!("the trivial handler failed beside {name}: {theirs:?}"));
            }
            figures.push((name, Measure { trivial_beside: Some(theirs.rate), ..Measure::of(ours) }));
        }
    }

    // Every live Daytona sandbox stopped at once: accepted stops, and the time until the last
    // one's processes are gone (its task finished). (Left running otherwise: the system's stop
    // ends them.)
    let mut live_stop_secs = 0.0;
    if group("live") {
        let since = chrono::Utc::now();
        let started = Instant::now();
        let stops: Vec<Wire> =
            sandboxes.iter().map(|id| clients.bearer("POST", &format!("/api/sandbox/{id}/stop"), None)).collect();
        let (run, _) = load::batch(system.addr, c, stops).await;
        figures.push(("daytona_accept", Measure::of(run)));
        let stopped = finished_since(system, since, Operation::StopSpec).await?;
        live_stop_secs = started.elapsed().as_secs_f64();
        if stopped.finished != sandboxes.len() as u64 {
            return Err(format!("{} of {} live sandboxes stopped", stopped.finished, sandboxes.len()));
        }
        figures.push(("daytona_stop_e2e", Measure::of_pipeline(stopped)));

        // Every live Vercel session stopped: each answered once stopped.
        let stops: Vec<Wire> = vercel_sessions
            .iter()
            .map(|id| clients.bearer("POST", &format!("/v2/sandboxes/sessions/{id}/stop?teamId=bench"), None))
            .collect();
        let (run, _) = load::batch(system.addr, c, stops).await;
        figures.push(("vercel_stop", Measure::of(run)));
    }
    // Last: it leaves a million tasks behind.
    if group("scale") && system.is_postgres() {
        figures.extend(scale(system, &clients, cli, window).await?);
    }
    Ok((figures, live_stop_secs))
}

/// Polls of stored tasks (random ones) and the first page of the task query, with `SMALL`
/// then `LARGE` finished tasks stored (PostgreSQL; seeded with SQL, as `scripts/bench` does).
async fn scale(
    system: &System,
    clients: &Clients,
    cli: &Cli,
    window: Duration,
) -> Result<Vec<(&'static str, Measure)>, String> {
    use sea_orm::ConnectionTrait;
    let (small, large) = if cli.smoke { (1_000, 10_000) } else { (10_000, 1_000_000) };
    let admin = entity::store::users::find_by_name(&system.db, ADMIN.0)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no admin user")?;
    let seed = |from: u64, to: u64| {
        format!(
            "INSERT INTO tasks (tenant_id, user_id, operation, target_id, state, attempt, cancel_requested, \
             created_at, updated_at, not_before) \
             SELECT {tenant}, {user}, 'stop_workload', md5(n::text)::uuid::text, 'Queued', 0, false, \
             timestamptz '2026-01-01' + n * interval '1 second', timestamptz '2026-01-01' + n * interval '1 second', \
             timestamptz '9999-01-01' FROM generate_series({from}, {to}) AS n; ANALYZE tasks",
            tenant = admin.tenant_id,
            user = admin.id,
        )
    };
    let mut figures = Vec::new();
    let mut seeded = 0;
    for (rows, poll_key, list_key) in
        [(small, "scale_poll_small", "scale_list_small"), (large, "scale_poll_large", "scale_list_large")]
    {
        system.db.execute_unprepared(&seed(seeded + 1, rows)).await.map_err(|e| e.to_string())?;
        seeded = rows;
        let (first, last): (i32, i32) = {
            let row = system
                .db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT min(id), max(id) FROM tasks WHERE created_at < timestamptz '2026-02-01'",
                ))
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no tasks")?;
            (row.try_get_by_index(0).map_err(|e| e.to_string())?, row.try_get_by_index(1).map_err(|e| e.to_string())?)
        };
        let token = clients.veeam.clone();
        // Spread over the seeded tasks (contiguous ids, created in January). They are scheduled
        // for the year 9999, so unfinished: no process keeps them, and every poll at either size
        // reads the database (finished ones would be answered from memory at 10,000 and mostly
        // read at a million, which measures the memory, not the scale).
        let plan: Plan = Arc::new(move |n, _| {
            let span = u64::try_from(last - first + 1).unwrap_or(1).max(1);
            let id = i64::from(first) + i64::try_from(n.wrapping_mul(2_654_435_761) % span).unwrap_or(0);
            request(
                "GET",
                &format!("/api/tasks/task-{id}"),
                &[("X-RestSvcSessionId", &token), ("Accept", "application/json")],
                None,
            )
        });
        figures.push((poll_key, Measure::of(load::closed_loop(system.addr, cli.connections, window, plan).await)));
        let list = clients.veeam("GET", "/api/query?type=Task&pageSize=100", "application/json");
        let plan: Plan = Arc::new(move |_, _| list.clone());
        figures.push((list_key, Measure::of(load::closed_loop(system.addr, cli.connections, window, plan).await)));
    }
    Ok(figures)
}

async fn wait_veeam_task(system: &System, clients: &Clients, task: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let wire = clients.veeam("GET", &format!("/api/tasks/{task}"), "application/json");
    loop {
        let answer = one(system, &wire).await?;
        if answer.json()["State"] == "Finished" {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("task {task} did not finish: {}", String::from_utf8_lossy(&answer.body)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every `operation` task created since `since` has finished (up to 5 minutes);
/// their rate and latency from their own timestamps.
async fn finished_since(
    system: &System,
    since: chrono::DateTime<chrono::Utc>,
    operation: Operation,
) -> Result<Pipeline, String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let tasks = task::Entity::find()
            .filter(task::Column::CreatedAt.gte(since))
            .filter(task::Column::Operation.eq(operation))
            .all(&system.db)
            .await
            .map_err(|e| e.to_string())?;
        if tasks.iter().all(|t| t.finished_at.is_some()) {
            let secs = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros() as f64 / 1e6;
            let rows: Vec<(f64, f64)> =
                tasks.iter().filter_map(|t| Some((secs(t.created_at), secs(t.finished_at?)))).collect();
            return Ok(Pipeline::of(&rows));
        }
        if Instant::now() > deadline {
            let open = tasks.iter().filter(|t| t.finished_at.is_none()).count();
            return Err(format!("{open} {operation} tasks did not finish within 5 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! What a listing or a task read costs as the tables grow: each operation is timed (median of
//! many runs) against PostgreSQL holding 10,000 workloads and 10,000 tasks, then again after
//! the same tables grow to 1,000,000 each (and as many tasks scheduled for later; a Daytona
//! organisation's 101 sandboxes stay), in one run on one machine. The figure that matters is
//! the ratio (1M / 10k): 1.0 means the cost does not depend on the table size.
//!
//! Run it with `scripts/bench` (PostgreSQL and RabbitMQ as for the tests).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use entity::store::page::Cursor;
use entity::store::tasks::TaskQuery;
use entity::store::workloads::{WorkloadQuery, WorkloadSort};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::time::{Duration, Instant};
use tests::TestApp;
use tests::veeam::Session;

const SMALL: i64 = 10_000;
const LARGE: i64 = 1_000_000;
const RUNS: usize = 200;

#[derive(Clone, Copy)]
enum Op {
    VeeamTaskGet,
    EngineTaskPage,
    EngineWorkloadPageByTime,
    EngineWorkloadPageByName,
    VeeamQueryTaskById,
    VeeamQueryFirstPage,
    RelayPass,
    DaytonaGet,
    DaytonaListPage,
}

const OPS: [(Op, &str); 9] = [
    (Op::VeeamTaskGet, "GET /api/tasks/{id} (Veeam, HTTP)"),
    (Op::EngineTaskPage, "engine: tasks page of 100 after a cursor halfway down"),
    (Op::EngineWorkloadPageByTime, "engine: workloads page of 100 after a cursor halfway down, by time"),
    (Op::EngineWorkloadPageByName, "engine: workloads page of 100 after a cursor halfway down, by name"),
    (Op::VeeamQueryTaskById, "GET /api/query?type=Task&filter=TaskId==task-N (Veeam, HTTP)"),
    (Op::VeeamQueryFirstPage, "GET /api/query?type=BackupJobSession&pageSize=100 (Veeam, HTTP; counts every match)"),
    (Op::RelayPass, "relay: the due tasks to publish, none due, among as many scheduled for later"),
    (Op::DaytonaGet, "GET /api/sandbox/{id} (Daytona, HTTP)"),
    (Op::DaytonaListPage, "GET /api/sandbox?limit=100 (Daytona, HTTP)"),
];

/// The Daytona organisation's client and its one running sandbox (beside 100 stopped ones).
struct Sandboxes {
    client: tests::daytona::Daytona,
    running: String,
}

/// What the operations act on at the current size: a task in the middle, cursors halfway down.
struct Targets {
    task_id: i32,
    task_cursor: Cursor,
    by_time: Cursor,
    by_name: Cursor,
}

async fn seed(db: &DatabaseConnection, from: i64, to: i64, user: i32, spec: &str) {
    db.execute_unprepared(&format!(
        "INSERT INTO workloads (id, tenant_id, spec_id, spec_name, name, state, ending, succeeded, created_at, ended_at, runner_id, start_task_id, labels)
         SELECT md5(n::text)::uuid::text, 1, '{spec}', 'Runs', 'Runs@' || n, 'Stopped', '{{\"kind\":\"exited\",\"code\":0,\"signal\":null,\"during_stop\":false}}', true,
                timestamptz '2026-01-01' + n * interval '1 second', timestamptz '2026-01-01' + n * interval '1 second', 'r', n + 1000000000, '{{}}'
         FROM generate_series({from}, {to}) AS n;
         INSERT INTO tasks (tenant_id, user_id, operation, target_id, state, attempt, cancel_requested, success, outcome, created_at, updated_at, finished_at)
         SELECT 1, {user}, 'stop_workload', md5(n::text)::uuid::text, 'Finished', 1, false, true, '{{\"kind\":\"already_stopped\",\"workload\":\"w\",\"workload_name\":\"n\"}}',
                timestamptz '2026-01-01' + n * interval '1 second', timestamptz '2026-01-01' + n * interval '1 second', timestamptz '2026-01-01' + n * interval '1 second'
         FROM generate_series({from}, {to}) AS n;
         INSERT INTO tasks (tenant_id, user_id, operation, target_id, state, attempt, cancel_requested, created_at, updated_at, not_before)
         SELECT 1, {user}, 'stop_spec', md5(n::text)::uuid::text, 'Queued', 0, false,
                timestamptz '2026-01-01', timestamptz '2026-01-01', timestamptz '2100-01-01' + n * interval '1 second'
         FROM generate_series({from}, {to}) AS n;
         ANALYZE workloads; ANALYZE tasks;"
    ))
    .await
    .expect("seed");
}

async fn one_value(db: &DatabaseConnection, sql: &str) -> (String, String) {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await
        .expect("query")
        .expect("row");
    (row.try_get_by_index(0).expect("value"), row.try_get_by_index(1).expect("id"))
}

async fn targets(db: &DatabaseConnection, rows: i64) -> Targets {
    let half = rows / 2;
    let (task_id, _) =
        one_value(db, &format!("SELECT id::text, id::text FROM tasks ORDER BY id DESC OFFSET {half} LIMIT 1")).await;
    let (time, time_id) = one_value(
        db,
        &format!("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), id FROM workloads WHERE tenant_id = 1 ORDER BY created_at DESC, id DESC OFFSET {half} LIMIT 1"),
    )
    .await;
    let (name, name_id) = one_value(
        db,
        &format!("SELECT name, id FROM workloads WHERE tenant_id = 1 ORDER BY name, id OFFSET {half} LIMIT 1"),
    )
    .await;
    let cursor =
        |sort: &str, descending: bool, value: String, id: String| Cursor { sort: sort.into(), descending, value, id };
    Targets {
        task_id: task_id.parse().expect("id"),
        task_cursor: cursor("id", true, task_id.clone(), task_id),
        by_time: cursor("created_at", true, time, time_id),
        by_name: cursor("name", false, name, name_id),
    }
}

async fn run(op: Op, db: &DatabaseConnection, session: &Session, t: &Targets, d: &Sandboxes) {
    match op {
        Op::DaytonaGet => {
            assert_eq!(d.client.call("GET", &format!("/api/sandbox/{}", d.running), None).await.status, 200);
        }
        Op::DaytonaListPage => {
            let page = d.client.ok("GET", "/api/sandbox?limit=100", None).await;
            assert_eq!(page["items"].as_array().map(Vec::len), Some(100));
        }
        Op::VeeamTaskGet => assert_eq!(
            session.call("GET", &format!("/api/tasks/task-{}", t.task_id), "application/json").await.status,
            200
        ),
        Op::EngineTaskPage => {
            let query = TaskQuery { descending: true, ..TaskQuery::default() };
            let page = entity::store::tasks::page(db, 1, &query, Some(&t.task_cursor), 100).await.expect("page");
            assert_eq!(page.items.len(), 100);
        }
        Op::EngineWorkloadPageByTime | Op::EngineWorkloadPageByName => {
            let (sort, descending, cursor) = match op {
                Op::EngineWorkloadPageByTime => (WorkloadSort::CreatedAt, true, &t.by_time),
                _ => (WorkloadSort::Name, false, &t.by_name),
            };
            let query = WorkloadQuery { sort, descending, ..WorkloadQuery::default() };
            let page = entity::store::workloads::page(db, 1, &query, Some(cursor), 100).await.expect("page");
            assert_eq!(page.items.len(), 100);
        }
        Op::VeeamQueryTaskById => {
            let path = format!("/api/query?type=Task&filter=TaskId%3D%3Dtask-{}", t.task_id);
            assert_eq!(session.call("GET", &path, "application/json").await.status, 200);
        }
        Op::VeeamQueryFirstPage => {
            let resp = session.call("GET", "/api/query?type=BackupJobSession&pageSize=100", "application/json").await;
            assert_eq!(resp.status, 200);
        }
        Op::RelayPass => {
            let stale_before = entity::store::now() - chrono::TimeDelta::seconds(30);
            let due = entity::store::tasks::due_for_publish(db, Some(stale_before), 200).await.expect("due");
            assert!(due.is_empty(), "{due:?}");
        }
    }
}

/// How many timed runs an operation gets: fewer for one that reads a whole page of sandboxes.
fn runs(op: Op) -> usize {
    if matches!(op, Op::DaytonaListPage) { RUNS / 10 } else { RUNS }
}

async fn median(op: Op, db: &DatabaseConnection, session: &Session, t: &Targets, d: &Sandboxes) -> Duration {
    let runs = runs(op);
    for _ in 0..runs / 10 {
        run(op, db, session, t, d).await;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        run(op, db, session, t, d).await;
        times.push(started.elapsed());
    }
    times.sort();
    times[runs / 2]
}

#[actix_web::main]
async fn main() {
    let app = TestApp::distributed().await;
    let session = app.logon().await;
    let db = app.db.clone();
    let (user, _) = one_value(&db, "SELECT id::text, name FROM users LIMIT 1").await;
    let (spec, _) = one_value(&db, "SELECT id, name FROM workload_specs WHERE name = 'Runs'").await;
    let user: i32 = user.parse().expect("user id");
    let client = tests::daytona::Daytona::for_tenant(&app.base, &db, "bench").await;
    let created = client.ok("POST", "/api/sandbox", Some(&serde_json::json!({"name": "running"}))).await;
    let running = created["id"].as_str().expect("id").to_owned();
    db.execute_unprepared(&format!(
        "INSERT INTO workload_specs (id, tenant_id, name, command, working_dir, meta, created_at, updated_at, env, face)
         SELECT md5(n::text || 'sandbox'), (SELECT tenant_id FROM workload_specs WHERE id = '{running}'), 'stopped-' || n,
                '[\"sleep\",\"infinity\"]', '/tmp', '{{\"daytona\":{{}}}}', now(), now(), '{{}}', 'daytona'
         FROM generate_series(1, 100) AS n"
    ))
    .await
    .expect("sandboxes");
    let sandboxes = Sandboxes { client, running };
    let mut results = Vec::new();
    let mut seeded = 0;
    for rows in [SMALL, LARGE] {
        seed(&db, seeded + 1, rows, user, &spec).await;
        seeded = rows;
        let t = targets(&db, rows).await;
        let mut at_size = Vec::new();
        for (op, _) in OPS {
            at_size.push(median(op, &db, &session, &t, &sandboxes).await);
        }
        results.push(at_size);
    }
    println!("| operation | {SMALL} rows | {LARGE} rows | ratio |");
    println!("|---|---:|---:|---:|");
    for (i, (_, name)) in OPS.iter().enumerate() {
        let (small, large) = (results[0][i], results[1][i]);
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} |",
            small.as_secs_f64() * 1e3,
            large.as_secs_f64() * 1e3,
            large.as_secs_f64() / small.as_secs_f64()
        );
    }
    app.stop().await;
}

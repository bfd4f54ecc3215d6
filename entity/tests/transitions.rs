#![allow(clippy::expect_used)]
//! The compare-and-set transitions against a real (SQLite, in-memory) database: duplicate and
//! stale writers change nothing.

use entity::state::{Outcome, TaskEvent, TransitionError};
use entity::store::{tasks, users};
use entity::{Operation, TaskState};
use migration::{Migrator, MigratorTrait};
use sea_orm::{Database, DatabaseConnection};

async fn db() -> DatabaseConnection {
    let db = Database::connect("sqlite::memory:").await.expect("sqlite");
    Migrator::up(&db, None).await.expect("migrations");
    db
}

async fn queued_task(db: &DatabaseConnection) -> entity::task::Model {
    let user = users::create(db, entity::tenant::DEFAULT, "alice", "x", "PortalAdministrator").await.expect("user");
    tasks::insert(
        db,
        tasks::NewTask {
            tenant_id: user.tenant_id,
            user_id: user.id,
            operation: Operation::StopWorkload,
            target_id: "s",
            route: None,
            params: Default::default(),
        },
    )
    .await
    .expect("task")
}

#[tokio::test]
async fn a_duplicate_claim_of_the_same_delivery_changes_nothing() {
    let db = db().await;
    let seen = queued_task(&db).await;
    let claimed = tasks::claim(&db, &[seen.id], "r1").await.expect("db").pop().expect("first claim");
    // The claim has the state machine's effects (`TaskEvent::Claim`), at the claim's instant.
    let expected = TaskEvent::Claim { runner: "r1".into() }.apply(&seen, claimed.updated_at);
    assert_eq!(claimed, expected);
    assert_eq!((claimed.state, claimed.attempt), (TaskState::Running, 1));
    assert_eq!(tasks::claim(&db, &[seen.id], "r2").await.expect("db"), [], "claimed already");
    let stored = tasks::get(&db, seen.id).await.expect("db").expect("row");
    assert_eq!(stored.runner_id.as_deref(), Some("r1"));
    assert_eq!(stored.attempt, 1);
}

#[tokio::test]
async fn a_fenced_out_attempt_cannot_finish_the_task() {
    let db = db().await;
    let seen = queued_task(&db).await;
    let first = tasks::claim(&db, &[seen.id], "r1").await.expect("db").pop().expect("claim");
    let readopted = tasks::transition(&db, &first, TaskEvent::Readopt { runner: "r1".into() }).await.expect("readopt");
    assert_eq!(readopted.attempt, 2);
    let old = Outcome::NothingToStop { spec_name: "old holder".into() };
    let stale = tasks::transition(&db, &first, TaskEvent::Finish(old)).await;
    assert!(matches!(stale, Err(TransitionError::Stale { .. })), "{stale:?}");
    let new = Outcome::NothingToStop { spec_name: "new holder".into() };
    let done = tasks::transition(&db, &readopted, TaskEvent::Finish(new.clone())).await.expect("finish");
    assert_eq!(done.state, TaskState::Finished);
    let stored = tasks::get(&db, seen.id).await.expect("db").expect("row");
    assert_eq!(stored.ended(), Some(new));
    assert_eq!(stored.success, Some(true));
}

#[tokio::test]
async fn another_runner_cannot_readopt_a_task_and_finished_is_final() {
    let db = db().await;
    let seen = queued_task(&db).await;
    let running = tasks::claim(&db, &[seen.id], "r1").await.expect("db").pop().expect("claim");
    let theft = tasks::transition(&db, &running, TaskEvent::Readopt { runner: "r2".into() }).await;
    assert!(matches!(theft, Err(TransitionError::Stale { .. })), "{theft:?}");
    let done = tasks::transition(&db, &running, TaskEvent::Abandon(Outcome::Internal { runner: "r1".into() }))
        .await
        .expect("abandon");
    let again = tasks::transition(
        &db,
        &done,
        TaskEvent::Cancel(Outcome::CancelledBeforeStart { queued: true, workload: None }),
    )
    .await;
    assert!(matches!(again, Err(TransitionError::Illegal { .. })), "{again:?}");
}

#[tokio::test]
async fn a_cancelled_queued_task_can_no_longer_be_claimed() {
    let db = db().await;
    let seen = queued_task(&db).await;
    tasks::transition(&db, &seen, TaskEvent::Cancel(Outcome::CancelledBeforeStart { queued: true, workload: None }))
        .await
        .expect("cancel");
    assert_eq!(tasks::claim(&db, &[seen.id], "r1").await.expect("db"), [], "nothing to claim");
    assert_eq!(tasks::get(&db, seen.id).await.expect("db").expect("row").success, Some(false));
}

fn new_workload(spec_id: &str, start_task_id: i32) -> entity::workload::Model {
    entity::workload::Model {
        id: format!("workload-{start_task_id}"),
        tenant_id: entity::tenant::DEFAULT,
        spec_id: spec_id.into(),
        spec_name: "Job".into(),
        name: "Job@now".into(),
        state: entity::WorkloadState::Starting,
        ending: None,
        succeeded: None,
        created_at: entity::store::now(),
        ended_at: None,
        runner_id: "r1".into(),
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

#[tokio::test]
async fn the_database_holds_at_most_one_active_workload_per_spec() {
    use entity::state::WorkloadEvent;
    use entity::store::workloads;
    let db = db().await;
    let spec = |name: &str| entity::store::specs::NewSpec {
        name: name.into(),
        command: vec!["true".into()],
        working_dir: ".".into(),
        meta: serde_json::json!({}),
        limits: Default::default(),
        env: Default::default(),
        disk_bytes: None,
        face: None,
    };
    let one = entity::store::specs::upsert_by_name(&db, &spec("one")).await.expect("spec").id;
    let other = entity::store::specs::upsert_by_name(&db, &spec("other")).await.expect("spec").id;
    let first = workloads::insert(&db, new_workload(&one, 1)).await.expect("db").expect("the first claims the spec");
    let second = workloads::insert(&db, new_workload(&one, 2)).await.expect_err("the spec is taken");
    assert!(workloads::is_spec_taken(&second), "{second}");
    workloads::insert(&db, new_workload(&other, 3)).await.expect("db").expect("another spec is free");
    let usage = entity::outcome::Usage { cpu_usec: Some(1500), memory_peak_bytes: None, processes_peak: Some(3) };
    let ended =
        WorkloadEvent::Ended(entity::outcome::End::Exited { code: Some(0), signal: None, during_stop: false }, usage);
    let stopped = workloads::transition(&db, &first, ended.clone()).await.expect("ended");
    assert_eq!(stopped.active_spec_id, None, "a stopped workload releases its spec");
    assert_eq!(stopped.succeeded, Some(true), "and says it succeeded");
    assert_eq!(stopped.usage(), usage, "with what was measured");
    assert_eq!(workloads::find(&db, &first.id).await.expect("db").expect("row"), stopped, "as stored");
    workloads::insert(&db, new_workload(&one, 4)).await.expect("db").expect("the spec is free again");

    // A spec is deleted only without an active workload, and a deleted one cannot be claimed.
    let spec = entity::store::specs::find(&db, &other).await.expect("db").expect("spec");
    assert!(!entity::store::specs::mark_deleted(&db, &spec).await.expect("db"), "not while its workload is active");
    let active = workloads::active_of_spec(&db, &other).await.expect("db").expect("active");
    workloads::transition(&db, &active, ended).await.expect("ended");
    assert!(entity::store::specs::mark_deleted(&db, &spec).await.expect("db"), "once it has ended");
    assert!(!entity::store::specs::mark_deleted(&db, &spec).await.expect("db"), "once");
    assert_eq!(
        workloads::insert(&db, new_workload(&other, 5)).await.expect("db"),
        None,
        "a deleted spec is not claimed"
    );
}

/// A database written by the previous release, holding the defect this release closes (two
/// active sessions of one job) and a live logon session, upgrades without failing: the newest
/// session holds the job, both stay readable, and logon sessions are cleared (tokens are hashed
/// now, and a hash cannot be made from what was not kept).
#[tokio::test]
async fn a_database_of_the_previous_release_upgrades_even_with_two_active_sessions_of_one_job() {
    use sea_orm::ConnectionTrait;
    let db = Database::connect("sqlite::memory:").await.expect("sqlite");
    Migrator::up(&db, Some(1)).await.expect("the previous release's schema");
    for statement in [
        "INSERT INTO users (name, password_hash, role, created_at) VALUES ('admin', 'x', 'PortalAdministrator', '2026-11-30T10:00:00Z')",
        "INSERT INTO logon_sessions (id, token, user_id, created_at, last_seen_at) VALUES ('l1', 'secret', 1, '2026-11-30T10:00:00Z', '2026-11-30T10:00:00Z')",
        "INSERT INTO jobs (id, name, job_type, description, command, working_dir, created_at, updated_at) VALUES ('j1', 'Job', 'Backup', '', '[\"true\"]', '.', '2026-11-30T10:00:00Z', '2026-11-30T10:00:00Z')",
        "INSERT INTO job_sessions (id, job_id, job_name, job_type, name, state, result, progress, creation_time, runner_id, pid, start_task_id) VALUES ('older', 'j1', 'Job', 'Backup', 'Job@1', 'Working', 'None', 0, '2026-11-30T10:00:00Z', 'r1', 101, 1)",
        "INSERT INTO job_sessions (id, job_id, job_name, job_type, name, state, result, progress, creation_time, runner_id, pid, start_task_id) VALUES ('newer', 'j1', 'Job', 'Backup', 'Job@2', 'Working', 'None', 0, '2026-11-30T10:00:01Z', 'r1', 102, 2)",
        "INSERT INTO job_sessions (id, job_id, job_name, job_type, name, state, result, progress, creation_time, runner_id, pid, start_task_id) VALUES ('done', 'j1', 'Job', 'Backup', 'Job@0', 'Stopped', 'Success', 100, '2026-11-30T09:00:00Z', 'r1', 100, 3)",
        "INSERT INTO tasks (user_id, operation, target_id, state, attempt, cancel_requested, success, message, related_session_id, created_at, updated_at) VALUES (1, 'StopJobSession', 'done', 'Finished', 1, false, true, 'Job Session \"Job@0\" stopped: its processes exited after SIGTERM.', 'done', '2026-11-30T09:00:00Z', '2026-11-30T09:00:00Z')",
        "INSERT INTO tasks (user_id, operation, target_id, state, attempt, cancel_requested, created_at, updated_at) VALUES (1, 'StopJobSession', 'newer', 'Queued', 0, false, '2026-11-30T09:00:00Z', '2026-11-30T09:00:00Z')",
    ] {
        db.execute_unprepared(statement).await.expect(statement);
    }
    Migrator::up(&db, None).await.expect("the upgrade");
    let read = |id: &'static str| entity::store::workloads::find(&db, id);
    assert_eq!(read("newer").await.expect("db").expect("row").active_spec_id.as_deref(), Some("j1"));
    assert_eq!(read("older").await.expect("db").expect("row").active_spec_id, None);
    assert_eq!(read("done").await.expect("db").expect("row").active_spec_id, None);
    assert_eq!(
        read("done").await.expect("db").expect("row").ended(),
        Some(entity::outcome::End::Legacy { message: None }),
        "a stopped session's (absent) words are kept"
    );
    assert!(
        read("done").await.expect("db").expect("row").ended().is_some_and(|end| end.succeeded()),
        "and its success"
    );
    assert_eq!(read("newer").await.expect("db").expect("row").ended(), None);
    assert_eq!(
        read("newer").await.expect("db").expect("row").state,
        entity::WorkloadState::Running,
        "Working is Running"
    );
    assert_eq!(entity::store::workloads::active_on(&db, "r1").await.expect("db").len(), 2, "both still stoppable");
    assert!(entity::store::logons::list_for_user(&db, 1).await.expect("db").is_empty());
    // A finished task keeps its words and its link as a legacy outcome; a queued one has none.
    let finished = tasks::get(&db, 1).await.expect("db").expect("row");
    assert_eq!(
        finished.ended(),
        Some(Outcome::Legacy {
            success: true,
            message: "Job Session \"Job@0\" stopped: its processes exited after SIGTERM.".into(),
            workload: Some("done".into()),
        })
    );
    assert_eq!(tasks::get(&db, 2).await.expect("db").expect("row").ended(), None);
    assert_eq!(finished.operation, Operation::StopWorkload, "operations are in the engine's words");
    // Everything written before tenants existed belongs to the default tenant.
    assert_eq!(finished.tenant_id, entity::tenant::DEFAULT);
    assert_eq!(read("newer").await.expect("db").expect("row").tenant_id, entity::tenant::DEFAULT);
    let specs = entity::store::specs::list_of(&db, entity::tenant::DEFAULT).await.expect("db");
    assert_eq!(specs.len(), 1);
    // Jobs became specs, their type in the faces' metadata; sessions became workloads.
    assert_eq!((specs[0].meta_text("jobType"), specs[0].meta_text("description")), ("Backup".into(), String::new()));
    let done = read("done").await.expect("db").expect("row");
    assert_eq!((done.spec_id.as_str(), done.spec_name.as_str(), done.name.as_str()), ("j1", "Job", "Job@0"));
    assert_eq!(done.succeeded, Some(true), "success is kept as a column to filter on");
    assert_eq!(read("newer").await.expect("db").expect("row").succeeded, None);
    assert_eq!(users::find_by_name(&db, "admin").await.expect("db").expect("row").tenant_id, entity::tenant::DEFAULT);
    // The rebuilt spec table (SQLite cannot drop a column's UNIQUE) kept its indexes and the
    // workloads that refer to it.
    let sqlite = sea_orm::DbBackend::Sqlite;
    let dangling = db.query_all_raw(sea_orm::Statement::from_string(sqlite, "PRAGMA foreign_key_check")).await;
    assert_eq!(dangling.expect("check").len(), 0, "no workload refers to a missing spec");
    let indexes = db
        .query_all_raw(sea_orm::Statement::from_string(
            sqlite,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'workload_specs' AND sql IS NOT NULL",
        ))
        .await
        .expect("indexes");
    let names: Vec<String> = indexes.iter().map(|r| r.try_get("", "name").expect("name")).collect();
    assert!(names.contains(&"ix_workload_specs_tenant_name".to_owned()), "{names:?}");
    assert!(names.contains(&"ix_jobs_tenant".to_owned()), "{names:?}");
    let other = entity::store::tenants::find_or_create(&db, "other").await.expect("a second tenant");
    assert_ne!(other.id, entity::tenant::DEFAULT);
}

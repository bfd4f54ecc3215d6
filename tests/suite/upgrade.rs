//! Upgrading in place: a database written by the previous release (schema of migration 1), with a
//! real workload running, is migrated by the new binaries at start; nothing is lost, and the
//! workload is re-adopted and stoppable — embedded (SQLite) and distributed (PostgreSQL).

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use std::process::Command;
use std::time::Duration;
use tests::{ADMIN, EmbeddedServer, Proc, Session, live_members};

const RUNNER: &str = "embedded-fault-test";
const T: Duration = Duration::from_secs(30);

/// A process group like the ones the previous release started: `sh` and a background `sleep`.
fn running_workload(dir: &std::path::Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    Command::new("sh").args(["-c", "sleep 300 & sleep 300"]).current_dir(work).process_group(0).spawn().expect("spawn")
}

/// The previous release's schema, holding an admin, a job, a Working session of `pid` owned by
/// `RUNNER`, and a finished stop task of an earlier session.
async fn previous_release(db: &DatabaseConnection, pid: u32) {
    use migration::MigratorTrait;
    migration::Migrator::up(db, Some(1)).await.expect("the previous release's schema");
    let hash = api::passwords::hash(ADMIN.1).expect("hash");
    for statement in [
        format!("INSERT INTO users (name, password_hash, role, created_at) VALUES ('{}', '{hash}', 'PortalAdministrator', '2026-11-30T10:00:00Z')", ADMIN.0),
        "INSERT INTO jobs (id, name, job_type, description, command, working_dir, created_at, updated_at) VALUES ('11111111-1111-1111-1111-111111111111', 'Old Job', 'Backup', '', '[\"sleep\",\"300\"]', 'work', '2026-11-30T10:00:00Z', '2026-11-30T10:00:00Z')".to_owned(),
        format!("INSERT INTO job_sessions (id, job_id, job_name, job_type, name, state, result, progress, creation_time, runner_id, pid, start_task_id) VALUES ('22222222-2222-2222-2222-222222222222', '11111111-1111-1111-1111-111111111111', 'Old Job', 'Backup', 'Old Job@2026-11-30 10:00:00', 'Working', 'None', 0, '2026-11-30T10:00:00Z', '{RUNNER}', {pid}, 1)"),
        "INSERT INTO tasks (user_id, operation, target_id, state, attempt, runner_id, cancel_requested, success, message, related_session_id, created_at, updated_at) VALUES (1, 'StartJob', '11111111-1111-1111-1111-111111111111', 'Finished', 1, 'embedded-fault-test', false, true, 'Job \"Old Job\" triggered to start.', '22222222-2222-2222-2222-222222222222', '2026-11-30T10:00:00Z', '2026-11-30T10:00:00Z')".to_owned(),
    ] {
        db.execute_unprepared(&statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// After the upgrade: the old task reads as before, the session is Working, and a stop ends it.
async fn upgraded(base: &str, mut workload: std::process::Child) {
    let pid = i32::try_from(workload.id()).expect("pid");
    let session = Session::logon(base, ADMIN.0, ADMIN.1).await;
    let old = session.task("task-1").await;
    assert_eq!(old["Result"]["Message"], "Job \"Old Job\" triggered to start.", "{old}");
    assert_eq!(old["Operation"], "StartJob");
    assert_eq!(tests::veeam::related_session(&old), "22222222-2222-2222-2222-222222222222");
    let id = "22222222-2222-2222-2222-222222222222";
    assert_eq!(session.session(id).await["State"], "Working");
    let stop = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    let done = session.wait_finished(stop["TaskId"].as_str().expect("id"), T).await;
    assert_eq!(done["Result"]["Success"], true, "re-adopted and stopped: {done}");
    let _ = workload.wait();
    assert!(live_members(pid).is_empty(), "left: {:?}", live_members(pid));
    let stopped = session.session(id).await;
    assert_eq!((stopped["State"].as_str(), stopped["Result"].as_str()), (Some("Stopped"), Some("Failed")));
    // The task query's page count: the tasks the upgrade counted, and the stop since.
    let listed = session.get_json("/api/tasks").await["Tasks"].as_array().expect("tasks").len();
    assert_eq!(listed, 2, "the previous release's task and the stop");
    let pages = session.get_json("/api/query?type=Task&pageSize=1").await;
    assert_eq!(pages["PagingInfo"]["PagesCount"], 2, "{pages}");
}

#[actix_web::test]
async fn an_embedded_database_of_the_previous_release_upgrades_and_its_workload_is_still_stoppable() {
    let server = EmbeddedServer::new();
    std::fs::create_dir_all(server.dir.join("data")).expect("data dir");
    let file = server.dir.join("data/taskq.sqlite");
    let workload = running_workload(&server.dir);
    {
        let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display())).await.expect("sqlite");
        previous_release(&db, workload.id()).await;
        db.close().await.expect("close");
    }
    let _api = server.start().await;
    upgraded(&server.base(), workload).await;
}

#[actix_web::test]
async fn a_postgresql_database_of_the_previous_release_upgrades_and_its_workload_is_still_stoppable() {
    let server = EmbeddedServer::new();
    let database = tests::fresh_pg_database().await;
    let workload = running_workload(&server.dir);
    {
        let db = Database::connect(&database).await.expect("PostgreSQL");
        previous_release(&db, workload.id()).await;
    }
    let prefix = format!("test-{}", tests::short_id());
    let distributed = |mut command: Command| {
        command
            .env("DATABASE_URL", &database)
            .env("AMQP_URL", tests::amqp_url())
            .env("QUEUE_PREFIX", &prefix)
            .env("QUEUE_EXPIRES_MS", "60000");
        command
    };
    let _api = server.start_with(distributed(server.command())).await;
    let mut worker = Command::new(tests::binary("worker"));
    worker.env("RUNNER_ID", RUNNER).env("HEARTBEAT_INTERVAL_MS", "200").current_dir(&server.dir);
    let _worker = Proc::spawn(distributed(worker), &server.dir.join("worker.log"));
    upgraded(&server.base(), workload).await;
    tests::drop_pg_database(&database).await;
}

/// Migration 24 records on each spec the face that made it, read from the key of its `meta`, on
/// both databases; a spec that no face made (a jobs file's) has none. Creates and listings by
/// face read the column from then on, and the quota counts exactly the face's specs.
#[actix_web::test]
async fn specs_made_before_faces_were_recorded_get_the_face_of_their_meta() {
    use entity::store::specs;
    use migration::MigratorTrait;
    for (db, url) in [(Database::connect("sqlite::memory:").await.expect("sqlite"), None), {
        let url = tests::fresh_pg_database().await;
        (Database::connect(&url).await.expect("postgres"), Some(url))
    }] {
        migration::Migrator::up(&db, Some(23)).await.expect("the schema before faces");
        let metas = [
            ("daytona", r#"{"daytona":{"labels":{"a":"b"}}}"#, Some("daytona")),
            ("vercel", r#"{"vercel":{"memory":2048}}"#, Some("vercel")),
            ("vercel-v1", r#"{"vercel_v1":{}}"#, Some("vercel_v1")),
            ("job", r#"{"jobType":"Backup","description":"daytona"}"#, None),
            ("bare", "{}", None),
        ];
        for (name, meta, _) in metas {
            db.execute_unprepared(&format!(
                "INSERT INTO workload_specs (id, tenant_id, name, command, working_dir, meta, created_at, updated_at, env, disk_bytes) \
                 VALUES ('{name}', 1, '{name}', '[\"true\"]', '.', '{meta}', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z', '{{}}', 1024)"
            ))
            .await
            .expect("a spec of the old schema");
        }
        migration::Migrator::up(&db, None).await.expect("migrate");
        for (name, _, face) in metas {
            let spec = specs::find_of(&db, 1, name).await.expect("db").expect("kept");
            assert_eq!(spec.face.as_deref(), face, "{name}");
        }
        let footprint = specs::footprint(&db, 1, "daytona").await.expect("footprint");
        assert_eq!(footprint, specs::Footprint { running: 0, cpu_millis: 0, memory_bytes: 0, disk_bytes: 1024 });
        if let Some(url) = url {
            db.close().await.expect("close");
            tests::drop_pg_database(&url).await;
        }
    }
}

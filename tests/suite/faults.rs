//! Crash points in embedded mode, with the real `api` binary killed with SIGKILL.

use std::time::Duration;
use tests::{ADMIN, EmbeddedServer as Embedded, Session, live_members};

#[actix_web::test]
async fn an_embedded_server_killed_mid_stop_re_adopts_its_processes_and_finishes_after_restart() {
    let server = Embedded::new();
    let mut api = server.start().await;
    let session = Session::logon(&server.base(), ADMIN.0, ADMIN.1).await;
    let db = server.db().await;
    let job = entity::store::specs::list(&db)
        .await
        .expect("jobs")
        .into_iter()
        .find(|j| j.name == "Stubborn")
        .expect("job")
        .id;
    let id = session.start_job(&job).await;
    let pid = session.pid_of(&db, &id).await;
    let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
    session.wait_session_state(&id, "Stopping", Duration::from_secs(10)).await;

    api.kill9();
    assert!(!live_members(pid).is_empty(), "the workload outlives its runner");
    let _api = server.start().await;
    // The logon session lives in the database, so the same token still works.
    let done = session.wait_finished(task["TaskId"].as_str().expect("id"), Duration::from_secs(30)).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert!(done["Result"]["Message"].as_str().expect("message").contains("SIGKILL"), "{done}");
    assert!(live_members(pid).is_empty(), "left: {:?}", live_members(pid));
    assert_eq!(session.session(&id).await["State"], "Stopped");
    let row = entity::store::tasks::get(&db, done["TaskId"].as_str().expect("id")[5..].parse().expect("n"))
        .await
        .expect("db")
        .expect("row");
    assert_eq!(row.attempt, 2, "re-adopted under a new attempt");
}

#[actix_web::test]
async fn queued_work_survives_a_restart_of_the_embedded_server() {
    let server = Embedded::new();
    let mut api = server.start().await;
    let db = server.db().await;
    api.kill9();
    // Work that was queued when the server went down: committed, never run.
    let admin = entity::store::users::find_by_name(&db, ADMIN.0).await.expect("db").expect("admin");
    let job =
        entity::store::specs::list(&db).await.expect("jobs").into_iter().find(|j| j.name == "Quick").expect("job").id;
    let new = entity::store::tasks::NewTask {
        tenant_id: entity::tenant::DEFAULT,
        user_id: admin.id,
        operation: entity::Operation::StartWorkload,
        target_id: &job,
        route: None,
        params: Default::default(),
    };
    let task = entity::store::tasks::insert(&db, new).await.expect("insert");
    let _api = server.start().await;
    let session = Session::logon(&server.base(), ADMIN.0, ADMIN.1).await;
    let done = session.wait_finished(&api::veeam::ids::task_id(&task), Duration::from_secs(20)).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
}

#[actix_web::test]
async fn the_first_start_creates_an_admin_with_a_password_printed_once_and_add_user_adds_users() {
    let server = Embedded::new();
    let api = server.start_with(server.command()).await;
    let log = std::fs::read_to_string(server.dir.join("api.log")).expect("log");
    let password = log
        .split("generated password \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no generated password in the log:\n{log}"))
        .to_owned();
    Session::logon(&server.base(), ADMIN.0, &password).await;
    drop(api);

    let add = |name: &str| {
        server
            .command()
            .args(["add-user", name, "--password", "bob-password", "--role", "portaluser"])
            .output()
            .expect("add-user")
    };
    let added = add("bob");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(!add("bob").status.success(), "a name is taken once");

    let _api = server.start_with(server.command()).await;
    let log = std::fs::read_to_string(server.dir.join("api.log")).expect("log");
    assert!(!log.contains("generated password"), "printed once only:\n{log}");
    let bob = Session::logon(&server.base(), "bob", "bob-password").await;
    let job = entity::store::specs::list(&server.db().await).await.expect("jobs")[0].id.clone();
    assert_eq!(
        bob.call("POST", &format!("/api/jobs/{job}?action=start"), "").await.status,
        403,
        "added as a Portal User"
    );
    Session::logon(&server.base(), ADMIN.0, &password).await;
}

/// A Daytona sandbox's auto-stop is a row: an embedded server killed before it is due and
/// restarted after runs it then, once.
#[actix_web::test]
async fn a_sandbox_auto_stop_due_while_the_embedded_server_was_down_runs_after_restart() {
    let server = Embedded::new();
    let config = server.dir.join("daytona.toml");
    std::fs::write(&config, "[daytona]\nminute_ms = 1000\n").expect("config");
    let start = || {
        let mut command = server.command();
        command.env("ADMIN_PASSWORD", ADMIN.1).env("API_CONFIG", &config);
        server.start_with(command)
    };
    let mut api = start().await;
    let db = server.db().await;
    let acme = tests::daytona::Daytona::for_tenant(&server.base(), &db, "acme").await;
    // Due in an hour; made due while the server is down (nothing races the schedule).
    let body = serde_json::json!({"name": "sleepy", "autoStopInterval": 3600});
    let id = acme.ok("POST", "/api/sandbox", Some(&body)).await["id"].as_str().expect("id").to_owned();
    let workload = entity::store::workloads::active_of_spec(&db, &id).await.expect("db").expect("active").id;

    api.kill9();
    assert_eq!(tests::daytona::make_due(&db, &id).await, 1, "the auto-stop");
    assert!(!tests::running_processes(&workload).await.is_empty(), "due, but nobody ran it: the sandbox still runs");
    let _api = start().await;
    acme.wait_state(&id, "stopped", Duration::from_secs(30)).await;
    assert_eq!(tests::marked_processes(&workload), Vec::<i32>::new());
    let stops: Vec<_> = tests::daytona::tasks_of(&db, &id)
        .await
        .into_iter()
        .filter(|t| t.operation == entity::Operation::StopSpec)
        .collect();
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!((stops[0].attempt, stops[0].success), (1, Some(true)), "{stops:?}");
}

/// Processes that open a fresh SQLite database at once (a starting server and `api token
/// create`s beside it) migrate it once, one after the other: none fails on a migration another
/// applied meanwhile.
#[actix_web::test]
async fn processes_opening_a_fresh_sqlite_database_at_once_all_start() {
    let server = Embedded::new();
    let creates: Vec<std::process::Child> = (0..4)
        .map(|n| {
            let mut command = server.command();
            command.args(["token", "create", "--tenant", "acme", "--name", &format!("t{n}")]);
            command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            command.spawn().expect("token create")
        })
        .collect();
    let _api = server.start().await;
    for create in creates {
        let output = tokio::task::spawn_blocking(move || create.wait_with_output()).await.expect("join").expect("wait");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).starts_with("tq_"), "a token is printed");
    }
    let db = server.db().await;
    assert_eq!(entity::store::tenants::list_tokens(&db).await.expect("db").len(), 4);
}

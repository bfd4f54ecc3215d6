//! The Vercel Sandbox face (v2) over HTTP, as `@vercel/sandbox` 3.x calls it: named sandboxes
//! and their sessions, stop answered once stopped, resume into a new session with the files
//! kept, session timeouts as scheduled stops, Vercel's errors, in both modes.

use serde_json::json;
use std::time::Duration;
use tests::vercel::{Vercel, assert_error, assert_strict_session};
use tests::{Mode, Options, TestApp, in_both_modes, marked_processes};

const T: Duration = Duration::from_secs(30);

/// The workload a session id names.
fn workload_of(session: &serde_json::Value) -> String {
    let simple = session["id"].as_str().expect("id").strip_prefix("sbx_").expect("sbx_");
    uuid::Uuid::try_parse(simple).expect("uuid").hyphenated().to_string()
}

async fn create(client: &Vercel, body: serde_json::Value) -> serde_json::Value {
    client.ok("POST", "/v3/sandboxes", Some(&body)).await
}

async fn a_named_sandbox_is_created_stopped_resumed_and_deleted_with_its_files_kept(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let team = Vercel::for_team(&app.base, &app.db, "acme").await;
    let created = create(&team, json!({"projectId": "prj", "name": "box-a", "ports": [], "env": {"A": "1"}})).await;
    let session = &created["session"];
    assert_strict_session(session);
    assert_eq!((session["status"].as_str(), session["cwd"].as_str()), (Some("running"), Some("/vercel/sandbox")));
    assert_eq!((session["vcpus"].as_i64(), session["memory"].as_i64()), (Some(2), Some(4096)), "2048 MB a vCPU");
    let sandbox = &created["sandbox"];
    assert_eq!((sandbox["name"].as_str(), sandbox["persistent"].as_bool()), (Some("box-a"), Some(true)));
    assert_eq!(sandbox["currentSessionId"], session["id"]);
    assert_eq!(created["routes"], json!([]));
    let first = workload_of(session);
    assert!(!marked_processes(&first).is_empty(), "it runs");

    // Its working directory is its own, kept across sessions.
    let spec = entity::store::specs::find_named(
        &app.db,
        entity::store::tenants::find_by_name(&app.db, "acme").await.expect("db").expect("tenant").id,
        "box-a",
    )
    .await
    .expect("db")
    .expect("spec");
    let home = std::path::PathBuf::from(&spec.working_dir);
    std::fs::write(home.join("kept.txt"), "from the first session").expect("write");

    // Stop: answered once stopped, with what the kernel measured; nothing of it alive.
    let path = format!("/v2/sandboxes/sessions/{}/stop", session["id"].as_str().expect("id"));
    let stopped = team.ok("POST", &path, None).await;
    let after = &stopped["session"];
    assert_strict_session(after);
    assert_eq!(after["status"], "stopped", "{stopped}");
    for key in ["requestedStopAt", "stoppedAt", "duration", "activeCpuDurationMs"] {
        assert!(after[key].is_number(), "{key}: {after}");
    }
    assert_eq!(after["networkTransfer"], json!({"ingress": 0, "egress": 0}));
    assert_eq!(stopped["sandbox"]["status"], "stopped");
    assert_eq!(marked_processes(&first), Vec::<i32>::new(), "no process of the session is alive");
    // A second stop changes nothing and says so: 200, the session as it is.
    let again = team.ok("POST", &path, None).await;
    assert_eq!(
        (again["session"]["status"].as_str(), &again["session"]["stoppedAt"]),
        (Some("stopped"), &after["stoppedAt"])
    );
    // Calls on a stopped session: 410, so that the SDK resumes.
    let extend = format!("/v2/sandboxes/sessions/{}/extend-timeout", session["id"].as_str().expect("id"));
    assert_error(&team.call("POST", &extend, Some(&json!({"duration": 1000}))).await, 410, "sandbox_stopped");

    // Without resume, a get starts nothing; with it, a new session, the files kept.
    let got = team.ok("GET", "/v2/sandboxes/box-a?projectId=prj", None).await;
    assert_eq!((got["session"]["status"].as_str(), got.get("resumed")), (Some("stopped"), None));
    let resumed = team.ok("GET", "/v2/sandboxes/box-a?projectId=prj&resume=true", None).await;
    assert_eq!((resumed["resumed"].as_bool(), resumed["session"]["status"].as_str()), (Some(true), Some("running")));
    assert_ne!(resumed["session"]["id"], session["id"], "a new session");
    let second = workload_of(&resumed["session"]);
    let pid = marked_processes(&second)[0];
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd"), home);
    assert_eq!(std::fs::read_to_string(home.join("kept.txt")).expect("kept"), "from the first session");
    let running = team.ok("GET", "/v2/sandboxes/box-a?resume=true", None).await;
    assert_eq!((running["resumed"].as_bool(), &running["session"]["id"]), (Some(false), &resumed["session"]["id"]));
    let sessions = team.ok("GET", "/v2/sandboxes/sessions?project=prj&name=box-a&sortOrder=asc", None).await;
    let ids: Vec<&str> =
        sessions["sessions"].as_array().expect("sessions").iter().map(|s| s["id"].as_str().expect("id")).collect();
    assert_eq!(ids, [session["id"].as_str().expect("id"), resumed["session"]["id"].as_str().expect("id")]);
    assert_eq!(sessions["pagination"], json!({"count": 2, "next": null}));
    let one = team.ok("GET", &format!("/v2/sandboxes/sessions/{}", ids[0]), None).await;
    assert_eq!((one["session"]["status"].as_str(), &one["routes"]), (Some("stopped"), &json!([])));

    // Delete: answered once done; its session stopped, its files gone, then a 404.
    let deleted = team.ok("DELETE", "/v2/sandboxes/box-a?projectId=prj", None).await;
    assert_eq!(deleted["sandbox"]["name"], "box-a");
    assert_eq!(marked_processes(&second), Vec::<i32>::new());
    assert!(!home.exists(), "{} is left", home.display());
    assert_error(&team.call("GET", "/v2/sandboxes/box-a", None).await, 404, "not_found");
}

/// A session's timeout stops it by itself (a scheduled stop of its workload), and
/// `extend-timeout` moves that stop instead of adding one.
async fn session_timeouts_stop_sessions_and_extend_timeout_moves_them(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let team = Vercel::for_team(&app.base, &app.db, "acme").await;
    let short = create(&team, json!({"projectId": "prj", "name": "short", "timeout": 1000})).await;
    let id = short["session"]["id"].as_str().expect("id").to_owned();
    tests::wait_until("the session's timeout to stop it", T, || {
        let (team, path) = (&team, format!("/v2/sandboxes/sessions/{id}"));
        async move { team.ok("GET", &path, None).await["session"]["status"] == "stopped" }
    })
    .await;
    assert_eq!(marked_processes(&workload_of(&short["session"])), Vec::<i32>::new());

    let long = create(&team, json!({"projectId": "prj", "name": "long", "timeout": 600000})).await;
    let workload = workload_of(&long["session"]);
    let scheduled = entity::store::tasks::scheduled_for(&app.db, &workload).await.expect("db");
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    let path = format!("/v2/sandboxes/sessions/{}/extend-timeout", long["session"]["id"].as_str().expect("id"));
    let extended = team.ok("POST", &path, Some(&json!({"duration": 60000}))).await;
    assert_eq!(extended["session"]["timeout"], 660000);
    let moved = entity::store::tasks::scheduled_for(&app.db, &workload).await.expect("db");
    assert_eq!(moved.iter().map(|t| t.id).collect::<Vec<_>>(), [scheduled[0].id], "moved, not added");
    let by = moved[0].not_before.expect("at") - scheduled[0].not_before.expect("at");
    assert_eq!(by.num_milliseconds(), 60000);
    for bad in [json!({}), json!({"duration": 0}), json!({"duration": "1"}), json!({"duration": 90000000})] {
        assert_error(&team.call("POST", &path, Some(&bad)).await, 400, "bad_request");
    }
}

/// Stops racing on one session: one stop of the workload, every answer the stopped session.
async fn racing_stops_of_one_session_have_one_effect_and_all_answer_stopped(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let team = Vercel::for_team(&app.base, &app.db, "acme").await;
    let created = create(&team, json!({"projectId": "prj", "name": "raced"})).await;
    let path = format!("/v2/sandboxes/sessions/{}/stop", created["session"]["id"].as_str().expect("id"));
    let answers = futures_util::future::join_all((0..4).map(|_| team.call("POST", &path, None))).await;
    let stopped_at: Vec<serde_json::Value> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(a.json()["session"]["status"], "stopped", "{}", a.body);
            a.json()["session"]["stoppedAt"].clone()
        })
        .collect();
    assert!(stopped_at.iter().all(|at| *at == stopped_at[0]), "one stop: {stopped_at:?}");
    let workload = workload_of(&created["session"]);
    assert_eq!(marked_processes(&workload), Vec::<i32>::new());
    let ended = entity::store::workloads::find(&app.db, &workload).await.expect("db").expect("workload");
    assert!(
        matches!(
            ended.ended(),
            Some(entity::outcome::End::Exited { during_stop: true, .. } | entity::outcome::End::Stopped { .. })
        ),
        "ended by the stop: {ended:?}"
    );
    let stops = entity::store::tasks::of_targets(&app.db, &[workload.as_str()], entity::Operation::StopWorkload)
        .await
        .expect("db");
    let stops: Vec<&entity::task::Model> = stops.iter().filter(|t| t.not_before.is_none()).collect();
    assert_eq!(stops.len(), 4, "four stop tasks");
    assert!(stops.iter().all(|t| t.success == Some(true)), "all report the one outcome: {stops:?}");
}

async fn vercel_errors_listing_and_tenancy(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let team = Vercel::for_team(&app.base, &app.db, "acme").await;
    let other = Vercel::for_team(&app.base, &app.db, "globex").await;
    for n in 0..5 {
        let tags = if n % 2 == 0 { json!({"parity": "even"}) } else { json!({"parity": "odd"}) };
        create(&team, json!({"projectId": "prj", "name": format!("sb-{n}"), "tags": tags, "resources": {"vcpus": 1}}))
            .await;
    }
    create(&team, json!({"projectId": "elsewhere", "name": "other-project"})).await;

    // One a page, by name, to the end: every sandbox of the project once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page =
            team.ok("GET", &format!("/v2/sandboxes?project=prj&limit=1&sortBy=name&sortOrder=asc{after}"), None).await;
        assert_eq!(page["pagination"]["count"], page["sandboxes"].as_array().expect("page").len());
        seen.extend(
            page["sandboxes"].as_array().expect("page").iter().map(|s| s["name"].as_str().expect("name").to_owned()),
        );
        match page["pagination"]["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["sb-0", "sb-1", "sb-2", "sb-3", "sb-4"]);
    let even = team.ok("GET", "/v2/sandboxes?project=prj&tags=parity:even&sortBy=name&sortOrder=asc", None).await;
    let names: Vec<&str> =
        even["sandboxes"].as_array().expect("list").iter().map(|s| s["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["sb-0", "sb-2", "sb-4"]);
    let prefix = team.ok("GET", "/v2/sandboxes?namePrefix=other&sortBy=name", None).await;
    assert_eq!(prefix["sandboxes"].as_array().map(Vec::len), Some(1));
    assert_eq!(other.ok("GET", "/v2/sandboxes", None).await["sandboxes"], json!([]), "another team sees none");

    // Authentication and teams.
    let forged = Vercel { base: app.base.clone(), token: "tq_forged".into(), team: "acme".into() };
    assert_error(&forged.call("GET", "/v2/sandboxes", None).await, 401, "unauthorized");
    let wrong_team = Vercel { base: app.base.clone(), token: team.token.clone(), team: "globex".into() };
    assert_error(&wrong_team.call("GET", "/v2/sandboxes", None).await, 403, "forbidden");
    // Another team's sandbox and session do not exist for you.
    let theirs = create(&other, json!({"projectId": "prj", "name": "theirs"})).await;
    let session = theirs["session"]["id"].as_str().expect("id");
    assert_error(&team.call("GET", "/v2/sandboxes/theirs", None).await, 404, "not_found");
    for (method, path) in [
        ("GET", format!("/v2/sandboxes/sessions/{session}")),
        ("POST", format!("/v2/sandboxes/sessions/{session}/stop")),
        ("POST", format!("/v2/sandboxes/sessions/{session}/extend-timeout")),
    ] {
        assert_error(&team.call(method, &path, Some(&json!({"duration": 1000}))).await, 404, "not_found");
    }
    assert_eq!(other.ok("GET", "/v2/sandboxes/theirs", None).await["session"]["status"], "running", "untouched");
    assert_error(&team.call("GET", "/v2/sandboxes/sb-0?projectId=elsewhere", None).await, 404, "not_found");

    // Bad input: Vercel's 400s, nothing created; a taken name is a 409.
    for bad in [
        json!({"name": "no-project"}),
        json!({"projectId": "prj", "name": "sessions"}),
        json!({"projectId": "prj", "name": "has space"}),
        json!({"projectId": "prj", "name": "x".repeat(129)}),
        json!({"projectId": "prj", "timeout": 10}),
        json!({"projectId": "prj", "timeout": "1"}),
        json!({"projectId": "prj", "resources": {"vcpus": 64}}),
        json!({"projectId": "prj", "env": {"LD_PRELOAD": "/x.so"}}),
        json!({"projectId": "prj", "tags": {"a:b": "c"}}),
        json!({"projectId": "prj", "source": {"type": "snapshot", "snapshotId": "snap_x"}}),
        json!([{"projectId": "prj"}]),
    ] {
        assert_error(&team.call("POST", "/v3/sandboxes", Some(&bad)).await, 400, "bad_request");
    }
    assert_error(
        &team.call("POST", "/v3/sandboxes", Some(&json!({"projectId": "prj", "name": "sb-0"}))).await,
        409,
        "conflict",
    );
    for query in ["limit=0", "limit=51", "sortOrder=up", "sortBy=size", "tags=nocolon", "cursor=junk", "resume=maybe"] {
        let path = if query.starts_with("resume") {
            format!("/v2/sandboxes/sb-0?{query}")
        } else {
            format!("/v2/sandboxes?{query}")
        };
        assert_error(&team.call("GET", &path, None).await, 400, "bad_request");
    }
    assert_error(&team.call("GET", "/v2/sandboxes/sessions?project=prj", None).await, 400, "bad_request");
    for unknown in ["/v2/sandboxes/sessions/sbx_nope", "/v2/sandboxes/sessions/nope/stop", "/v2/sandboxes/sb-0/nothing"]
    {
        assert_error(&team.call("GET", unknown, None).await, 404, "not_found");
    }
    assert_eq!(team.ok("GET", "/v2/sandboxes?project=prj", None).await["sandboxes"].as_array().map(Vec::len), Some(5));
}

in_both_modes!(
    a_named_sandbox_is_created_stopped_resumed_and_deleted_with_its_files_kept,
    session_timeouts_stop_sessions_and_extend_timeout_moves_them,
    racing_stops_of_one_session_have_one_effect_and_all_answer_stopped,
    vercel_errors_listing_and_tenancy,
);

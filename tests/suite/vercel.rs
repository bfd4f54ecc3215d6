//! The Vercel Sandbox face over HTTP, as `@vercel/sandbox` calls it: v2 (3.x) named sandboxes
//! and their sessions, stop answered once stopped, resume into a new session with the files
//! kept, snapshots restored into new sandboxes, session timeouts as scheduled stops; v1 (1.x)
//! sandboxes paged by time; Vercel's errors; in both modes. (The SDKs themselves run in
//! `compat`.)

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
    tests::running_processes(&first).await; // It runs (else this fails).

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

    // Every change is an engine task, named in `Operation-Location` and readable there.
    let resp = team.call("GET", "/v2/sandboxes/box-a?resume=false", None).await;
    assert_eq!(resp.header("Operation-Location"), None, "a read submits nothing");
    // Stop: answered once stopped, with what the kernel measured; nothing of it alive.
    let path = format!("/v2/sandboxes/sessions/{}/stop", session["id"].as_str().expect("id"));
    let resp = team.call("POST", &path, None).await;
    let location = resp.header("Operation-Location").expect("Operation-Location").to_owned();
    let task = tests::daytona::Daytona { base: app.base.clone(), token: team.token.clone() };
    let task = task.ok("GET", location.strip_prefix(&app.base).expect("same base"), None).await;
    // A persistent sandbox (the default) snapshots its directory as it stops.
    assert_eq!(
        (task["operation"].as_str(), task["state"].as_str()),
        (Some("SnapshotWorkload"), Some("Finished")),
        "{task}"
    );
    let stopped = resp.json();
    let snapshot = stopped["snapshot"].clone();
    assert_eq!(
        (snapshot["status"].as_str(), &snapshot["sourceSessionId"]),
        (Some("created"), &session["id"]),
        "{stopped}"
    );
    assert!(snapshot["sizeBytes"].as_i64().is_some_and(|n| n > 0), "{snapshot}");
    assert_eq!(stopped["sandbox"]["currentSnapshotId"], snapshot["id"]);
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
    let pid = tests::running_processes(&second).await[0];
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

    // The snapshot: read, listed, and a new sandbox from it starts with its files; deleted,
    // it can no longer be a source (410 snapshot_not_found).
    let snap_id = snapshot["id"].as_str().expect("id").to_owned();
    assert_eq!(team.ok("GET", &format!("/v2/sandboxes/snapshots/{snap_id}"), None).await["snapshot"], snapshot);
    let listed = team.ok("GET", "/v2/sandboxes/snapshots?project=prj&name=box-a", None).await;
    assert_eq!(
        (listed["snapshots"][0]["id"].as_str(), &listed["pagination"]["next"]),
        (Some(snap_id.as_str()), &json!(null))
    );
    let source =
        json!({"projectId": "prj", "name": "from-snap", "source": {"type": "snapshot", "snapshotId": snap_id}});
    let copy = create(&team, source.clone()).await;
    let copy_spec =
        entity::store::specs::find_named(&app.db, spec.tenant_id, "from-snap").await.expect("db").expect("spec");
    let copy_home = std::path::PathBuf::from(&copy_spec.working_dir);
    assert_ne!(copy_home, home);
    assert_eq!(std::fs::read_to_string(copy_home.join("kept.txt")).expect("restored"), "from the first session");
    assert_eq!(copy["session"]["status"], "running");
    let archive = entity::store::snapshots::find(&app.db, &snap_id).await.expect("db").expect("row").path;
    assert!(std::path::Path::new(&archive).exists(), "{archive}");
    // Deleting it is an engine task too: answered once done, its archive removed.
    let resp = team.call("DELETE", &format!("/v2/sandboxes/snapshots/{snap_id}"), None).await;
    let location = resp.header("Operation-Location").expect("Operation-Location").to_owned();
    assert_eq!(resp.json()["snapshot"]["status"], "deleted");
    let task = tests::daytona::Daytona { base: app.base.clone(), token: team.token.clone() };
    let task = task.ok("GET", location.strip_prefix(&app.base).expect("same base"), None).await;
    assert_eq!((task["operation"].as_str(), task["state"].as_str()), (Some("DeleteSnapshot"), Some("Finished")));
    assert!(!std::path::Path::new(&archive).exists(), "{archive} is left");
    let twice = team.call("DELETE", &format!("/v2/sandboxes/snapshots/{snap_id}"), None).await;
    assert_eq!((twice.status, twice.header("Operation-Location")), (200, None), "deleted already: nothing to do");
    let again = json!({"projectId": "prj", "name": "from-gone", "source": {"type": "snapshot", "snapshotId": snap_id}});
    assert_error(&team.call("POST", "/v3/sandboxes", Some(&again)).await, 410, "snapshot_not_found");
    let theirs = Vercel::for_team(&app.base, &app.db, "globex").await;
    assert_error(&theirs.call("GET", &format!("/v2/sandboxes/snapshots/{snap_id}"), None).await, 404, "not_found");

    // Delete: answered once done; its session stopped, its files gone, then a 404.
    let deleted = team.ok("DELETE", "/v2/sandboxes/box-a?projectId=prj", None).await;
    assert_eq!(deleted["sandbox"]["name"], "box-a");
    assert_eq!(marked_processes(&second), Vec::<i32>::new());
    assert!(!home.exists(), "{} is left", home.display());
    assert_error(&team.call("GET", "/v2/sandboxes/box-a", None).await, 404, "not_found");
}

/// A snapshot's `expiration` (asked for, or its sandbox's `snapshotExpiration` for the
/// snapshots its stops take) schedules its deletion: once due, it is deleted by itself, its
/// archive removed, and it can no longer be a source. Bad expirations are 400s.
async fn snapshots_expire_by_themselves(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let team = Vercel::for_team(&app.base, &app.db, "acme").await;
    let body = json!({"projectId": "prj", "name": "keeps-a-day", "snapshotExpiration": 86_400_000});
    let created = create(&team, body).await;
    assert_eq!(created["sandbox"]["snapshotExpiration"], 86_400_000);
    let session = created["session"]["id"].as_str().expect("id").to_owned();
    for bad in [json!({"expiration": -1}), json!({"expiration": "1"}), json!({"expiration": 1e20}), json!([1])] {
        let path = format!("/v2/sandboxes/sessions/{session}/snapshot");
        assert_error(&team.call("POST", &path, Some(&bad)).await, 400, "bad_request");
    }
    let patch = json!({"snapshotExpiration": -5});
    assert_error(&team.call("PATCH", "/v2/sandboxes/keeps-a-day", Some(&patch)).await, 400, "bad_request");
    assert_eq!(
        tests::running_processes(&workload_of(&created["session"])).await.len(),
        1,
        "bad requests stopped nothing"
    );

    // The stop's snapshot expires a day after it was taken.
    let stopped = team.ok("POST", &format!("/v2/sandboxes/sessions/{session}/stop"), None).await;
    let snapshot = &stopped["snapshot"];
    let expires = snapshot["expiresAt"].as_i64().expect("expiresAt");
    assert!((expires - snapshot["createdAt"].as_i64().expect("createdAt") - 86_400_000).abs() < 5_000, "{snapshot}");
    // Asked for by the snapshot call itself: an hour; 0 is never.
    let resumed = team.ok("GET", "/v2/sandboxes/keeps-a-day?resume=true", None).await;
    let path = format!("/v2/sandboxes/sessions/{}/snapshot", resumed["session"]["id"].as_str().expect("id"));
    let hourly = team.ok("POST", &path, Some(&json!({"expiration": 3_600_000}))).await["snapshot"].clone();
    assert!(hourly["expiresAt"].is_number(), "{hourly}");
    let resumed = team.ok("GET", "/v2/sandboxes/keeps-a-day?resume=true", None).await;
    let path = format!("/v2/sandboxes/sessions/{}/snapshot", resumed["session"]["id"].as_str().expect("id"));
    let forever = team.ok("POST", &path, Some(&json!({"expiration": 0}))).await["snapshot"].clone();
    assert_eq!(forever.get("expiresAt"), None, "{forever}");

    // Once its deletion is due, the hourly one is deleted by itself, with its archive.
    let id = hourly["id"].as_str().expect("id").to_owned();
    let archive = entity::store::snapshots::find(&app.db, &id).await.expect("db").expect("row").path;
    assert!(std::path::Path::new(&archive).exists());
    assert_eq!(tests::daytona::make_due(&app.db, &id).await, 1, "one scheduled deletion");
    let team = &team;
    tests::wait_until("the expired snapshot is deleted", T, || async {
        team.ok("GET", &format!("/v2/sandboxes/snapshots/{id}"), None).await["snapshot"]["status"] == "deleted"
    })
    .await;
    tests::wait_until("its archive is removed", T, || async { !std::path::Path::new(&archive).exists() }).await;
    let source = json!({"projectId": "prj", "source": {"type": "snapshot", "snapshotId": id}});
    assert_error(&team.call("POST", "/v3/sandboxes", Some(&source)).await, 410, "snapshot_not_found");
    let kept = forever["id"].as_str().expect("id");
    let copy = json!({"projectId": "prj", "name": "from-forever", "source": {"type": "snapshot", "snapshotId": kept}});
    assert_eq!(create(team, copy).await["session"]["status"], "running", "the one kept for ever still restores");
    // One that expires while it is being taken (1 ms): the deletion and the snapshot task race,
    // and whichever comes second, it ends deleted with no archive left.
    let resumed = team.ok("GET", "/v2/sandboxes/keeps-a-day?resume=true", None).await;
    let path = format!("/v2/sandboxes/sessions/{}/snapshot", resumed["session"]["id"].as_str().expect("id"));
    let brief = team.ok("POST", &path, Some(&json!({"expiration": 1}))).await["snapshot"].clone();
    assert_eq!(brief["status"], "deleted", "past its expiry: {brief}");
    let brief = entity::store::snapshots::find(&app.db, brief["id"].as_str().expect("id")).await.expect("db");
    let brief = brief.expect("row");
    tests::wait_until("the brief snapshot's deletion runs", T, || async {
        let row = entity::store::snapshots::find(&app.db, &brief.id).await.expect("db").expect("row");
        row.status == "deleted" && !std::path::Path::new(&brief.path).exists()
    })
    .await;
    let day = snapshot["id"].as_str().expect("id");
    let listed = team.ok("GET", &format!("/v2/sandboxes/snapshots/{day}"), None).await;
    assert_eq!(listed["snapshot"]["status"], "created", "the day-long one is still there");
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
    let created = create(&team, json!({"projectId": "prj", "name": "raced", "persistent": false})).await;
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
    let stops = entity::store::tasks::of_targets(&app.db, &[workload.as_str()], &[entity::Operation::StopWorkload])
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
        json!({"projectId": "prj", "source": {"type": "git", "url": "https://example.com/x.git"}}),
        json!([{"projectId": "prj"}]),
    ] {
        assert_error(&team.call("POST", "/v3/sandboxes", Some(&bad)).await, 400, "bad_request");
    }
    assert_error(
        &team.call("POST", "/v3/sandboxes", Some(&json!({"projectId": "prj", "name": "sb-0"}))).await,
        409,
        "conflict",
    );
    let unknown = json!({"projectId": "prj", "source": {"type": "snapshot", "snapshotId": "snap_x"}});
    assert_error(&team.call("POST", "/v3/sandboxes", Some(&unknown)).await, 410, "snapshot_not_found");
    for query in ["limit=0", "limit=51", "sortOrder=up", "sortBy=size", "tags=nocolon", "cursor=junk", "resume=maybe"] {
        let path = if query.starts_with("resume") {
            format!("/v2/sandboxes/sb-0?{query}")
        } else {
            format!("/v2/sandboxes?{query}")
        };
        assert_error(&team.call("GET", &path, None).await, 400, "bad_request");
    }
    // Sessions without a sandbox's name: the project's, two a page to the end; none of another
    // project's or team's.
    let mut sessions = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = team.ok("GET", &format!("/v2/sandboxes/sessions?project=prj&limit=2{after}"), None).await;
        for session in page["sessions"].as_array().expect("page") {
            assert_strict_session(session);
            sessions.push(session["sourceSandboxName"].as_str().expect("name").to_owned());
        }
        match page["pagination"]["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(sessions, ["sb-4", "sb-3", "sb-2", "sb-1", "sb-0"], "newest first, each once");
    let everywhere = team.ok("GET", "/v2/sandboxes/sessions", None).await;
    assert_eq!(everywhere["sessions"].as_array().map(Vec::len), Some(6), "the team's, every project");
    assert_eq!(other.ok("GET", "/v2/sandboxes/sessions?project=elsewhere", None).await["sessions"], json!([]));
    assert_error(&team.call("GET", "/v2/sandboxes/sessions?name=has%20space", None).await, 400, "bad_request");
    for unknown in ["/v2/sandboxes/sessions/sbx_nope", "/v2/sandboxes/sessions/nope/stop", "/v2/sandboxes/sb-0/nothing"]
    {
        assert_error(&team.call("GET", unknown, None).await, 404, "not_found");
    }
    assert_eq!(team.ok("GET", "/v2/sandboxes?project=prj", None).await["sandboxes"].as_array().map(Vec::len), Some(5));

    // PATCH: tags replaced whole; vCPUs with their memory, for the next sessions (its limits).
    let patched = team
        .ok(
            "PATCH",
            "/v2/sandboxes/sb-1?projectId=prj",
            Some(&json!({"tags": {"x": "y"}, "resources": {"vcpus": 3}, "timeout": 900000})),
        )
        .await;
    let sandbox = &patched["sandbox"];
    assert_eq!(
        (&sandbox["tags"], sandbox["vcpus"].as_i64(), sandbox["memory"].as_i64()),
        (&json!({"x": "y"}), Some(3), Some(6144))
    );
    assert_eq!(sandbox["timeout"], 900000);
    let tenant = entity::store::tenants::find_by_name(&app.db, "acme").await.expect("db").expect("tenant").id;
    let spec = entity::store::specs::find_named(&app.db, tenant, "sb-1").await.expect("db").expect("spec");
    assert_eq!((spec.cpu_millis, spec.memory_bytes), (Some(3000), Some(6144 << 20)));
    for bad in [json!({"resources": {"vcpus": 0}}), json!({"timeout": 5}), json!({"tags": {"a:b": "c"}}), json!([1])] {
        assert_error(&team.call("PATCH", "/v2/sandboxes/sb-1", Some(&bad)).await, 400, "bad_request");
    }
    assert_error(&team.call("PATCH", "/v2/sandboxes/nope", Some(&json!({}))).await, 404, "not_found");
    assert_error(&other.call("PATCH", "/v2/sandboxes/sb-1", Some(&json!({"tags": {}}))).await, 404, "not_found");
}

/// v1 (`@vercel/sandbox` 1.x): a sandbox is one session; stop answers at once and a get then
/// shows it stopped; lists are newest first, paged by `until`, and sandboxes created in the same
/// millisecond are neither lost nor repeated across pages, whatever the page size.
async fn v1_sandboxes_are_created_stopped_and_listed_by_time_without_losing_any(mode: Mode) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let app = TestApp::in_mode(mode, Options::default()).await;
    let team = Vercel::for_team(&app.base, &app.db, "acme").await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        let created = team
            .ok("POST", "/v1/sandboxes", Some(&json!({"projectId": "prj", "ports": [], "runtime": "node22"})))
            .await;
        assert_strict_session(&created["sandbox"]);
        assert_eq!((created["sandbox"]["runtime"].as_str(), created["routes"].clone()), (Some("node22"), json!([])));
        ids.push(created["sandbox"]["id"].as_str().expect("id").to_owned());
    }
    // Four of them in one millisecond (as under load), two older ones apart.
    let specs: Vec<String> = {
        let mut specs = Vec::new();
        for id in &ids {
            let workload = workload_of(&json!({"id": id}));
            specs
                .push(entity::store::workloads::find(&app.db, &workload).await.expect("db").expect("workload").spec_id);
        }
        specs
    };
    let same = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    for (n, spec) in specs.iter().enumerate() {
        let at = if n < 4 { same } else { same - chrono::TimeDelta::seconds(10 * n as i64) };
        entity::workload_spec::Entity::update_many()
            .col_expr(entity::workload_spec::Column::CreatedAt, Expr::value(at))
            .filter(entity::workload_spec::Column::Id.eq(spec.clone()))
            .exec(&app.db)
            .await
            .expect("db");
    }
    for limit in [1, 2, 3, 5, 10] {
        let (mut seen, mut until) = (Vec::new(), None::<i64>);
        for _ in 0..20 {
            let after = until.map(|u| format!("&until={u}")).unwrap_or_default();
            let page = team.ok("GET", &format!("/v1/sandboxes?project=prj&limit={limit}{after}"), None).await;
            let items = page["sandboxes"].as_array().expect("sandboxes");
            assert_eq!(page["pagination"]["count"], items.len());
            seen.extend(items.iter().map(|s| s["id"].as_str().expect("id").to_owned()));
            match page["pagination"]["next"].as_i64() {
                Some(next) => until = Some(next),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!((seen.len(), sorted.len()), (6, 6), "limit {limit}: each once: {seen:?}");
        assert_eq!(seen[4..], [ids[4].clone(), ids[5].clone()], "limit {limit}: newest first");
    }
    let other = team.ok("GET", "/v1/sandboxes?project=elsewhere", None).await;
    assert_eq!(other["sandboxes"], json!([]));
    for query in ["limit=0", "limit=101", "until=abc", "since=-5", "until=99999999999999999"] {
        assert_error(&team.call("GET", &format!("/v1/sandboxes?{query}"), None).await, 400, "bad_request");
    }

    // Stop: at once; then stopped, and nothing of it alive.
    let stop = team.ok("POST", &format!("/v1/sandboxes/{}/stop", ids[0]), None).await;
    assert!(["stopping", "stopped"].contains(&stop["sandbox"]["status"].as_str().unwrap_or_default()), "{stop}");
    tests::wait_until("the v1 sandbox to be stopped", T, || {
        let (team, path) = (&team, format!("/v1/sandboxes/{}", ids[0]));
        async move { team.ok("GET", &path, None).await["sandbox"]["status"] == "stopped" }
    })
    .await;
    assert_eq!(marked_processes(&workload_of(&json!({"id": ids[0]}))), Vec::<i32>::new());
    let extend = format!("/v1/sandboxes/{}/extend-timeout", ids[0]);
    assert_error(&team.call("POST", &extend, Some(&json!({"duration": 1000}))).await, 400, "bad_request");
    let extended =
        team.ok("POST", &format!("/v1/sandboxes/{}/extend-timeout", ids[1]), Some(&json!({"duration": 1000}))).await;
    assert_eq!(extended["sandbox"]["timeout"], 301000);
    // A v1 snapshot: the sandbox stops, its archive is made; read, listed, deleted.
    let snap = team.ok("POST", &format!("/v1/sandboxes/{}/snapshot", ids[2]), None).await;
    assert_eq!(
        (snap["snapshot"]["status"].as_str(), snap["snapshot"]["sourceSandboxId"].as_str()),
        (Some("created"), Some(ids[2].as_str()))
    );
    assert!(snap["snapshot"].get("sourceSessionId").is_none(), "v1's shape: {snap}");
    assert_eq!(snap["sandbox"]["status"], "stopped");
    let snap_id = snap["snapshot"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        team.ok("GET", &format!("/v1/sandboxes/snapshots/{snap_id}"), None).await["snapshot"]["id"],
        snap_id.as_str()
    );
    let listed = team.ok("GET", "/v1/sandboxes/snapshots?project=prj", None).await;
    assert_eq!(
        (listed["snapshots"][0]["id"].as_str(), &listed["pagination"]["next"]),
        (Some(snap_id.as_str()), &json!(null))
    );
    let before = snap["snapshot"]["createdAt"].as_i64().expect("ms");
    let earlier = team.ok("GET", &format!("/v1/sandboxes/snapshots?project=prj&until={before}"), None).await;
    assert_eq!(earlier["snapshots"], json!([]), "until is exclusive");
    assert_eq!(
        team.ok("DELETE", &format!("/v1/sandboxes/snapshots/{snap_id}"), None).await["snapshot"]["status"],
        "deleted"
    );
    assert_error(&team.call("POST", &format!("/v1/sandboxes/{}/snapshot", ids[2]), None).await, 400, "bad_request");

    // v1 and v2 keep apart: a v1 sandbox is no v2 session, nor listed there.
    assert_error(&team.call("GET", &format!("/v2/sandboxes/sessions/{}", ids[1]), None).await, 404, "not_found");
    assert_eq!(team.ok("GET", "/v2/sandboxes", None).await["sandboxes"], json!([]));
    let theirs = Vercel::for_team(&app.base, &app.db, "globex").await;
    assert_error(&theirs.call("GET", &format!("/v1/sandboxes/{}", ids[1]), None).await, 404, "not_found");
}

/// While a session stops (one that ignores SIGTERM, in its grace period), calls that need it
/// running answer 422 `sandbox_stopping`, which the SDK treats as "resume and retry"; once
/// stopped, 410 `sandbox_stopped`.
async fn calls_on_a_stopping_session_get_422_and_on_a_stopped_one_410(mode: Mode) {
    let stubborn = ["sh", "-c", "trap '' TERM; : > trapped; while :; do sleep 0.1; done"].map(String::from).to_vec();
    let options = Options { grace_period_ms: 10_000, vercel_command: Some(stubborn), ..Options::default() };
    let app = TestApp::in_mode(mode, options).await;
    let team = Vercel::for_team(&app.base, &app.db, "acme").await;
    let created = create(&team, json!({"projectId": "prj", "name": "slow", "persistent": false})).await;
    let id = created["session"]["id"].as_str().expect("id").to_owned();
    let spec = entity::store::workloads::find(&app.db, &workload_of(&created["session"]))
        .await
        .expect("db")
        .expect("workload")
        .spec_id;
    // Stopped before its trap is set, it would end at once: wait for it (see the Daytona suite).
    crate::daytona::trapped(&app, &spec).await;
    let stop = {
        let (base, token) = (app.base.clone(), team.token.clone());
        let path = format!("/v2/sandboxes/sessions/{id}/stop");
        actix_web::rt::spawn(async move { Vercel { base, token, team: "acme".into() }.call("POST", &path, None).await })
    };
    tests::wait_until("the session to be stopping", T, || {
        let (team, path) = (&team, format!("/v2/sandboxes/sessions/{id}"));
        async move { team.ok("GET", &path, None).await["session"]["status"] == "stopping" }
    })
    .await;
    let extend = format!("/v2/sandboxes/sessions/{id}/extend-timeout");
    assert_error(&team.call("POST", &extend, Some(&json!({"duration": 1000}))).await, 422, "sandbox_stopping");
    assert_error(
        &team.call("POST", &format!("/v2/sandboxes/sessions/{id}/snapshot"), None).await,
        422,
        "sandbox_stopping",
    );
    let stopped = stop.await.expect("join");
    assert_eq!(
        (stopped.status, stopped.json()["session"]["status"].as_str()),
        (200, Some("stopped")),
        "{}",
        stopped.body
    );
    assert_error(&team.call("POST", &extend, Some(&json!({"duration": 1000}))).await, 410, "sandbox_stopped");
}

in_both_modes!(
    calls_on_a_stopping_session_get_422_and_on_a_stopped_one_410,
    v1_sandboxes_are_created_stopped_and_listed_by_time_without_losing_any,
    a_named_sandbox_is_created_stopped_resumed_and_deleted_with_its_files_kept,
    session_timeouts_stop_sessions_and_extend_timeout_moves_them,
    racing_stops_of_one_session_have_one_effect_and_all_answer_stopped,
    vercel_errors_listing_and_tenancy,
    snapshots_expire_by_themselves,
);

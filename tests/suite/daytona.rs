//! The Daytona face over HTTP, as Daytona's generated clients call it: create, get (by id and by
//! name), stop (graceful and forced), start, delete, with the exact `Sandbox` JSON and Daytona's
//! errors and states; every stop leaves no process of the sandbox alive. (The official clients
//! and SDKs themselves run in `compat`.)

use serde_json::json;
use std::time::Duration;
use tests::daytona::{Daytona, assert_error, assert_problem, assert_strict_sandbox};
use tests::{Mode, Options, TestApp, in_both_modes, marked_processes};

/// The processes of the sandbox's active workload, if it has one.
async fn processes(app: &TestApp, id: &str) -> Vec<i32> {
    match entity::store::workloads::active_of_spec(&app.db, id).await.expect("db") {
        Some(workload) => marked_processes(&workload.id),
        None => Vec::new(),
    }
}

async fn a_sandbox_is_created_stopped_started_and_deleted_as_daytonas_clients_expect(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;

    let body = json!({"name": "dev-1", "labels": {"team": "a"}, "env": {"A": "1"}, "cpu": 1, "memory": 1});
    let created = acme.ok("POST", "/api/sandbox", Some(&body)).await;
    assert_strict_sandbox(&created);
    assert_eq!((created["state"].as_str(), created["desiredState"].as_str()), (Some("started"), Some("started")));
    assert_eq!((created["name"].as_str(), created["organizationId"].as_str()), (Some("dev-1"), Some("acme")));
    assert_eq!(created["labels"], json!({"team": "a"}));
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(acme.ok("GET", &format!("/api/sandbox/{id}"), None).await["name"], "dev-1");
    assert_eq!(acme.ok("GET", "/api/sandbox/dev-1", None).await["id"], id.as_str(), "found by name too");
    assert!(!processes(&app, &id).await.is_empty(), "it runs");
    let unnamed = acme.ok("POST", "/api/sandbox", Some(&json!({}))).await;
    assert_eq!(unnamed["name"], unnamed["id"], "named after its id, as on Daytona");
    let taken = acme.call("POST", "/api/sandbox", Some(&json!({"name": "dev-1"}))).await;
    assert_error(&taken, 409, "already exists");

    // Stop: 200 at once, already stopping; then stopped, and nothing of it left.
    let workload = entity::store::workloads::active_of_spec(&app.db, &id).await.expect("db").expect("active").id;
    let stopping = acme.ok("POST", &format!("/api/sandbox/{id}/stop"), None).await;
    assert_strict_sandbox(&stopping);
    assert_eq!((stopping["state"].as_str(), stopping["desiredState"].as_str()), (Some("stopping"), Some("stopped")));
    let stopped = acme.wait_state(&id, "stopped", Duration::from_secs(30)).await;
    assert_eq!(stopped["desiredState"], "stopped");
    assert_eq!(marked_processes(&workload), Vec::<i32>::new(), "no process of the sandbox is alive");
    assert_error(&acme.call("POST", &format!("/api/sandbox/{id}/stop"), None).await, 400, "not in a stoppable state");
    assert_error(&acme.call("POST", &format!("/api/sandbox/{id}/stop?force=yes"), None).await, 400, "boolean");

    // Start again, in the same working directory (what it left there is still there), then a
    // forced stop.
    let spec = entity::store::specs::find(&app.db, &id).await.expect("db").expect("spec");
    let home = std::path::PathBuf::from(&spec.working_dir);
    assert!(home.ends_with(&id), "its own directory: {}", home.display());
    std::fs::write(home.join("kept.txt"), "from the first run").expect("write");
    let started = acme.ok("POST", &format!("/api/sandbox/{id}/start"), None).await;
    assert_eq!(started["state"], "started", "{started}");
    let second = entity::store::workloads::active_of_spec(&app.db, &id).await.expect("db").expect("active").id;
    let pid = tests::running_processes(&second).await[0];
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd"), home);
    assert_eq!(std::fs::read_to_string(home.join("kept.txt")).expect("kept"), "from the first run");
    let again = acme.ok("POST", &format!("/api/sandbox/{id}/start"), None).await;
    assert_eq!(again["state"], "started", "starting a started sandbox changes nothing");
    let forced = acme.ok("POST", &format!("/api/sandbox/{id}/stop?force=true"), None).await;
    assert_eq!(forced["state"], "stopping");
    acme.wait_state(&id, "stopped", Duration::from_secs(30)).await;

    // Delete: 200 destroying, then a 404 in Daytona's body; the name is free again.
    acme.ok("POST", &format!("/api/sandbox/{id}/start"), None).await;
    let destroying = acme.ok("DELETE", &format!("/api/sandbox/{id}"), None).await;
    assert_eq!(
        (destroying["state"].as_str(), destroying["desiredState"].as_str()),
        (Some("destroying"), Some("destroyed"))
    );
    tests::wait_until("the sandbox to be gone", Duration::from_secs(30), || {
        let acme = &acme;
        let path = format!("/api/sandbox/{id}");
        async move { acme.call("GET", &path, None).await.status == 404 }
    })
    .await;
    // Its files, and its workloads' logs in them, go with it once its delete has finished.
    let deleted = tests::daytona::tasks_of(&app.db, &id)
        .await
        .into_iter()
        .rev()
        .find(|t| t.operation == entity::Operation::DeleteSpec);
    app.engine.wait_finished(deleted.expect("the delete").id, Duration::from_secs(30)).await.expect("db");
    assert!(!home.exists(), "{} is left", home.display());
    assert_error(
        &acme.call("GET", &format!("/api/sandbox/{id}"), None).await,
        404,
        &format!("Sandbox with ID or name {id} not found"),
    );
    assert!(processes(&app, &id).await.is_empty());
    acme.ok("POST", "/api/sandbox", Some(&json!({"name": "dev-1"}))).await;
}

async fn daytona_errors_tokens_and_organisations(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let other = Daytona::for_tenant(&app.base, &app.db, "globex").await;
    let id =
        acme.ok("POST", "/api/sandbox", Some(&json!({"name": "mine"}))).await["id"].as_str().expect("id").to_owned();

    let url = format!("{}/api/sandbox/{id}", app.base);
    assert_error(&tests::http::request("GET", &url, &[]).await, 401, "Unauthorized");
    assert_error(&tests::http::request("GET", &url, &[("Authorization", "Bearer tq_nope")]).await, 401, "Unauthorized");
    assert_error(&tests::http::request("GET", &url, &[("Authorization", "Basic YTpi")]).await, 401, "Unauthorized");
    let wrong_org =
        [("Authorization", format!("Bearer {}", acme.token)), ("X-Daytona-Organization-ID", "globex".into())];
    let wrong_org: Vec<(&str, &str)> = wrong_org.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_error(&tests::http::request("GET", &url, &wrong_org).await, 403, "Invalid authentication context");

    // Another organisation's sandbox does not exist for it, whatever it tries.
    for (method, path) in [
        ("GET", format!("/api/sandbox/{id}")),
        ("GET", "/api/sandbox/mine".into()),
        ("POST", format!("/api/sandbox/{id}/stop")),
        ("POST", format!("/api/sandbox/{id}/start")),
        ("DELETE", format!("/api/sandbox/{id}")),
    ] {
        assert_error(&other.call(method, &path, None).await, 404, "not found");
    }
    assert_eq!(
        acme.ok("GET", &format!("/api/sandbox/{id}"), None).await["state"],
        "started",
        "and nothing was touched"
    );
    // The same name in another organisation is another sandbox.
    let theirs = other.ok("POST", "/api/sandbox", Some(&json!({"name": "mine"}))).await;
    assert_ne!(theirs["id"].as_str(), Some(id.as_str()));

    // A revoked token is refused.
    let row = entity::store::tenants::list_tokens(&app.db).await.expect("db");
    let (token, _) = row.iter().find(|(_, tenant)| tenant == "globex").expect("token");
    entity::store::tenants::revoke_token(&app.db, token.id).await.expect("revoke");
    assert_error(&other.call("GET", "/api/sandbox/mine", None).await, 401, "Unauthorized");

    // Bad input: Daytona's error body, never a 5xx.
    assert_error(&acme.call("GET", "/api/sandbox/x/y/z", None).await, 404, "Cannot GET");
    let garbage = tests::http::request_with_body(
        "POST",
        &format!("{}/api/sandbox", app.base),
        &[("Authorization", &format!("Bearer {}", acme.token)), ("Content-Type", "application/json")],
        Some("{not json"),
    )
    .await;
    assert_error(&garbage, 400, "");
    assert_error(&acme.call("POST", "/api/sandbox", Some(&json!({"cpu": 0}))).await, 400, "cpu");
    assert_error(&acme.call("POST", "/api/sandbox", Some(&json!({"name": "a/b"}))).await, 400, "name");
    assert_error(&acme.call("POST", "/api/sandbox", Some(&json!({"name": "x".repeat(300)}))).await, 400, "name");
    let huge = json!({"name": "big", "labels": {"k": "v".repeat(200_000)}});
    assert_error(&acme.call("POST", "/api/sandbox", Some(&huge)).await, 400, "");
    // A NUL, which PostgreSQL holds in no text nor JSON: refused, and listings still work.
    assert_error(&acme.call("GET", "/api/sandbox/a%00b", None).await, 404, "not found");
    assert_error(&acme.call("GET", "/api/sandbox?name=a%00", None).await, 400, "NUL");
    assert_error(&acme.call("GET", "/api/sandbox/paginated?labels=%7B%22a%22%3A%22%00%22%7D", None).await, 400, "NUL");
    let nul = json!({"name": "nul", "labels": {"k": "a\u{0}b"}});
    assert_error(&acme.call("POST", "/api/sandbox", Some(&nul)).await, 400, "NUL");
    let nul = json!({"name": "nul", "snapshot": "\u{0}"});
    assert_error(&acme.call("POST", "/api/sandbox", Some(&nul)).await, 400, "NUL");
    assert_eq!(acme.ok("GET", "/api/sandbox?labels=%7B%22k%22%3A%22v%22%7D", None).await["items"], json!([]));
    // Intervals past what a date can hold: never, not a crash; not a whole number: a 400.
    let forever = json!({"name": "forever", "autoStopInterval": i64::MAX, "autoDeleteInterval": i64::MAX});
    assert_eq!(acme.ok("POST", "/api/sandbox", Some(&forever)).await["autoStopInterval"], i64::MAX);
    let forever = acme.ok("POST", "/api/sandbox/forever/stop", None).await;
    assert_eq!(forever["state"], "stopping");
    let fractional = json!({"name": "f", "autoStopInterval": 1.5});
    assert_error(&acme.call("POST", "/api/sandbox", Some(&fractional)).await, 400, "");
    let too_big = r#"{"name": "g", "autoStopInterval": 1e30}"#;
    let auth = format!("Bearer {}", acme.token);
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let url = format!("{}/api/sandbox", app.base);
    assert_error(&tests::http::request_with_body("POST", &url, &headers, Some(too_big)).await, 400, "");
    for query in ["page=99999999999999999999", "page=4294967295&limit=200"] {
        let resp = acme.call("GET", &format!("/api/sandbox/paginated?{query}"), None).await;
        assert!(resp.status == 200 || resp.status == 400, "{query}: {}", resp.body);
    }
}

/// `GET /api/sandbox`: `{items, nextCursor}` keyset pages that list each of the organisation's
/// sandboxes once, in order, filtered by name prefix, state and labels.
async fn sandboxes_are_listed_in_keyset_pages_with_filters(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let other = Daytona::for_tenant(&app.base, &app.db, "globex").await;
    other.ok("POST", "/api/sandbox", Some(&json!({"name": "theirs"}))).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let body = json!({
            "name": format!("sb-{n}"), "labels": {"parity": (n % 2).to_string()}, "cpu": 5 - n, "memory": n + 1,
            "disk": 10 - n,
        });
        ids.push(acme.ok("POST", "/api/sandbox", Some(&body)).await["id"].as_str().expect("id").to_owned());
    }
    for id in &ids[..2] {
        acme.ok("POST", &format!("/api/sandbox/{id}/stop"), None).await;
        acme.wait_state(id, "stopped", Duration::from_secs(30)).await;
    }
    let names = |page: &serde_json::Value| -> Vec<String> {
        page["items"].as_array().expect("items").iter().map(|i| i["name"].as_str().expect("name").to_owned()).collect()
    };
    // Pages of two, by name, following the cursors.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/sandbox?limit=2&sort=name&order=asc&cursor={c}"),
            None => "/api/sandbox?limit=2&sort=name&order=asc".to_owned(),
        };
        let page = acme.ok("GET", &path, None).await;
        assert!(page["items"].as_array().expect("items").len() <= 2);
        for item in page["items"].as_array().expect("items") {
            assert!(item["networkBlockAll"].is_boolean() && item["cpu"].is_i64(), "{item}");
        }
        seen.extend(names(&page));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["sb-0", "sb-1", "sb-2", "sb-3", "sb-4"]);
    let all = acme.ok("GET", "/api/sandbox", None).await;
    assert_eq!(all["nextCursor"], serde_json::Value::Null);
    assert_eq!(names(&all).len(), 5, "the default page; no other organisation's");
    let stopped = acme.ok("GET", "/api/sandbox?states=stopped&sort=name&order=asc", None).await;
    assert_eq!(names(&stopped), ["sb-0", "sb-1"]);
    let started = acme.ok("GET", "/api/sandbox?states=started&states=stopping&sort=name&order=asc", None).await;
    assert_eq!(names(&started), ["sb-2", "sb-3", "sb-4"]);
    let labelled = acme.ok("GET", "/api/sandbox?labels=%7B%22parity%22%3A%220%22%7D&sort=name&order=asc", None).await;
    assert_eq!(names(&labelled), ["sb-0", "sb-2", "sb-4"]);
    let prefixed = acme.ok("GET", "/api/sandbox?name=SB-&sort=name&order=desc", None).await;
    assert_eq!(names(&prefixed), ["sb-4", "sb-3", "sb-2", "sb-1", "sb-0"], "a case-insensitive prefix");
    assert_eq!(names(&acme.ok("GET", "/api/sandbox?states=archived", None).await).len(), 0);
    let by_cpu = acme.ok("GET", "/api/sandbox?sort=cpu&order=asc", None).await;
    assert_eq!(names(&by_cpu), ["sb-4", "sb-3", "sb-2", "sb-1", "sb-0"]);
    let by_disk = acme.ok("GET", "/api/sandbox?sort=diskGib&order=desc&limit=3", None).await;
    assert_eq!(names(&by_disk), ["sb-0", "sb-1", "sb-2"]);
    assert_eq!(by_disk["items"][0]["disk"], 10);
    let (mut by_memory, mut cursor) = (Vec::new(), String::new());
    loop {
        let page =
            acme.ok("GET", &format!("/api/sandbox?sort=memoryGib&order=desc&limit=2&cursor={cursor}"), None).await;
        by_memory.extend(names(&page));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(by_memory, ["sb-4", "sb-3", "sb-2", "sb-1", "sb-0"], "keyset pages by memory");

    // The deprecated numbered pages, of full sandboxes.
    let page = acme.ok("GET", "/api/sandbox/paginated?page=2&limit=2&sort=name&order=asc", None).await;
    assert_eq!(names(&page), ["sb-2", "sb-3"]);
    assert_eq!(
        (page["total"].as_u64(), page["page"].as_u64(), page["totalPages"].as_u64()),
        (Some(5), Some(2), Some(3))
    );
    page["items"].as_array().expect("items").iter().for_each(assert_strict_sandbox);
    let last = acme.ok("GET", "/api/sandbox/paginated?page=3&limit=2&sort=name&order=asc&states=started", None).await;
    assert_eq!((names(&last).len(), last["total"].as_u64(), last["totalPages"].as_u64()), (0, Some(3), Some(2)));
    let default = acme.ok("GET", "/api/sandbox/paginated", None).await;
    assert_eq!((names(&default).len(), default["page"].as_u64()), (5, Some(1)));
    for query in ["page=0", "page=x", "limit=0", "limit=201"] {
        assert_error(&acme.call("GET", &format!("/api/sandbox/paginated?{query}"), None).await, 400, "must not be");
    }
    for (query, says) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=bm9wZQ", "cursor"),
        ("labels=%7Bnope", "labels"),
        ("states=destroyed", "destroyed"),
        ("states=flying", "flying"),
        ("sort=colour", "sort"),
        ("order=sideways", "order"),
    ] {
        assert_error(&acme.call("GET", &format!("/api/sandbox?{query}"), None).await, 400, says);
    }
}

/// What Daytona's high-level SDKs call beyond the generated clients: the toolbox's URL (absolute,
/// on the server's base, in every Sandbox and at `toolbox-proxy-url`), labels replaced whole, and
/// a JSON 404 in Daytona's body for an `/api` path no face serves (the SDKs' socket.io connect).
async fn labels_are_replaced_whole_and_the_toolbox_url_is_on_the_servers_base(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let other = Daytona::for_tenant(&app.base, &app.db, "globex").await;
    let body = json!({"name": "labelled", "labels": {"a": "1", "b": "2"}, "autoStopInterval": 0});
    let created = acme.ok("POST", "/api/sandbox", Some(&body)).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let toolbox = format!("{}/toolbox", app.base);
    assert_eq!(created["toolboxProxyUrl"], toolbox.as_str());
    let url = acme.ok("GET", &format!("/api/sandbox/{id}/toolbox-proxy-url"), None).await;
    assert_eq!(url, json!({"url": toolbox}));
    assert_eq!(acme.ok("GET", "/api/sandbox/labelled/toolbox-proxy-url", None).await["url"], toolbox.as_str());
    assert_error(&other.call("GET", &format!("/api/sandbox/{id}/toolbox-proxy-url"), None).await, 404, "not found");
    let listed = acme.ok("GET", "/api/sandbox", None).await;
    assert_eq!(listed["items"][0]["toolboxProxyUrl"], toolbox.as_str());

    // Replaced, not merged; 200 with the whole sandbox; the schedules untouched.
    let scheduled = entity::store::tasks::scheduled_for(&app.db, &id).await.expect("db").len();
    let replaced = acme.ok("PUT", &format!("/api/sandbox/{id}/labels"), Some(&json!({"labels": {"c": "3"}}))).await;
    assert_strict_sandbox(&replaced);
    assert_eq!((replaced["labels"].clone(), replaced["state"].as_str()), (json!({"c": "3"}), Some("started")));
    assert_eq!(acme.ok("GET", &format!("/api/sandbox/{id}"), None).await["labels"], json!({"c": "3"}));
    let found = acme.ok("GET", &format!("/api/sandbox?labels={}", urlencode(r#"{"c":"3"}"#)), None).await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "the listing filters by the new set");
    let gone = acme.ok("GET", &format!("/api/sandbox?labels={}", urlencode(r#"{"a":"1"}"#)), None).await;
    assert_eq!(gone["items"], json!([]));
    let emptied = acme.ok("PUT", "/api/sandbox/labelled/labels", Some(&json!({"labels": {}}))).await;
    assert_eq!(emptied["labels"], json!({}));
    assert_eq!(entity::store::tasks::scheduled_for(&app.db, &id).await.expect("db").len(), scheduled);

    // Bad input: Daytona's 400, and nothing changed.
    let path = format!("/api/sandbox/{id}/labels");
    for (bad, says) in [
        (json!({}), "labels"),
        (json!({"labels": null}), "labels"),
        (json!({"labels": ["a"]}), "labels"),
        (json!({"labels": {"k": 1}}), "labels"),
        (json!({"labels": {"": "v"}}), "label keys"),
        (json!({"labels": {"q\"uote": "v"}}), "label keys"),
        (json!({"labels": {"k": "nul\u{0}"}}), "NUL"),
        (json!([{"labels": {}}]), "labels"),
    ] {
        assert_error(&acme.call("PUT", &path, Some(&bad)).await, 400, says);
    }
    assert_eq!(acme.ok("GET", &path.replace("/labels", ""), None).await["labels"], json!({}));
    assert_error(&acme.call("PUT", "/api/sandbox/nobody/labels", Some(&json!({"labels": {}}))).await, 404, "not found");
    let theirs = other.call("PUT", &path, Some(&json!({"labels": {"x": "y"}}))).await;
    assert_error(&theirs, 404, "not found");

    // A path under /api that no face serves: Daytona's JSON 404 to a token caller, the Veeam
    // face's to anyone else.
    for unserved in ["/api/socket.io/?EIO=4&transport=websocket", "/api/config", "/api/nothing/here"] {
        let resp = acme.call("GET", unserved, None).await;
        assert_error(&resp, 404, "Cannot GET");
        assert!(resp.header("Content-Type").is_some_and(|t| t.starts_with("application/json")), "{unserved}");
    }
    let veeam = tests::http::request("GET", &format!("{}/api/socket.io/", app.base), &[]).await;
    assert_eq!(veeam.status, 404);
    assert!(veeam.body.contains("<Error"), "the Veeam face's XML: {}", veeam.body);
}

/// Intervals far past any date (2147483647 minutes: year 6000 and beyond) mean never: the
/// sandbox stays started and can be stopped, nothing is due, nothing is pending. Activity and
/// interval changes move the schedules, so they leave no task rows behind however often they
/// come.
async fn schedules_past_the_horizon_are_never_and_activity_leaves_no_rows(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let id =
        acme.ok("POST", "/api/sandbox", Some(&json!({"name": "far"}))).await["id"].as_str().expect("id").to_owned();
    for path in ["autostop", "autodelete"] {
        let set = acme.ok("POST", &format!("/api/sandbox/{id}/{path}/2147483647"), None).await;
        assert_eq!(set["state"], "started", "{set}");
    }
    assert_eq!(
        entity::store::tasks::scheduled_for(&app.db, &id).await.expect("db"),
        vec![],
        "never: nothing scheduled"
    );
    let due = entity::store::tasks::due_for_publish(&app.db, None, 100).await.expect("db");
    assert!(due.iter().all(|t| t.target_id != id), "nothing due: {due:?}");
    let sandbox = acme.ok("GET", &format!("/api/sandbox/{id}"), None).await;
    assert_eq!((sandbox["state"].as_str(), sandbox["desiredState"].as_str()), (Some("started"), Some("started")));

    // Back to minutes: activity, many times, keeps one auto-stop and one delete, moved each time.
    acme.ok("POST", &format!("/api/sandbox/{id}/autostop/30"), None).await;
    acme.ok("POST", &format!("/api/sandbox/{id}/autodelete/60"), None).await;
    let before = tests::daytona::tasks_of(&app.db, &id).await.len();
    for _ in 0..40 {
        let touch = acme.call("POST", &format!("/api/sandbox/{id}/last-activity"), None).await;
        assert_eq!(touch.status, 201, "{}", touch.body);
    }
    let after = tests::daytona::tasks_of(&app.db, &id).await;
    assert_eq!(after.len(), before, "no rows added: {after:#?}");
    let scheduled = entity::store::tasks::scheduled_for(&app.db, &id).await.expect("db");
    let operations: Vec<entity::Operation> = scheduled.iter().map(|t| t.operation).collect();
    assert_eq!(operations, [entity::Operation::StopSpec, entity::Operation::DeleteSpec]);

    // And the sandbox stops as ever.
    assert_eq!(acme.ok("POST", &format!("/api/sandbox/{id}/stop"), None).await["state"], "stopping");
    acme.wait_state(&id, "stopped", Duration::from_secs(30)).await;
    for _ in 0..10 {
        assert_eq!(acme.call("POST", &format!("/api/sandbox/{id}/last-activity"), None).await.status, 201);
    }
    let stopped = entity::store::tasks::scheduled_for(&app.db, &id).await.expect("db");
    assert_eq!(stopped.iter().filter(|t| t.operation == entity::Operation::DeleteSpec).count(), 1, "{stopped:#?}");
    assert!(tests::daytona::tasks_of(&app.db, &id).await.len() <= before + 2, "the stop, and at most one more row");
}

/// The honest state of a sandbox that fails: one whose command cannot start is `error` with its
/// `errorReason`, and its start task failed; one whose command exits with an error by itself is
/// `error` too, and can be started again. Bad create bodies are 400s that create nothing.
async fn a_sandbox_that_cannot_start_is_in_error_and_its_start_failed(mode: Mode) {
    let broken = Options { daytona_command: Some(vec!["/nonexistent/sandbox".into()]), ..Options::default() };
    let app = TestApp::in_mode(mode, broken).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let created = acme.call("POST", "/api/sandbox", Some(&json!({"name": "broken"}))).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let location =
        created.header("Operation-Location").expect("Operation-Location").trim_start_matches(&app.base).to_owned();
    let sandbox = created.json();
    assert_strict_sandbox(&sandbox);
    assert_eq!(
        (sandbox["state"].as_str(), sandbox["desiredState"].as_str()),
        (Some("error"), Some("stopped")),
        "{sandbox}"
    );
    assert!(sandbox["errorReason"].as_str().is_some_and(|r| r.contains("not found")), "{sandbox}");
    let task = acme.ok("GET", &location, None).await;
    assert_eq!((task["state"].as_str(), task["success"].as_bool()), (Some("Finished"), Some(false)), "{task}");
    assert_eq!(acme.ok("GET", "/api/sandbox/broken", None).await["state"], "error");
    assert_eq!(acme.ok("GET", "/api/sandbox", None).await["items"][0]["state"], "error");
    app.stop().await;

    let flaky = ["sh", "-c", "if [ -n \"$FAIL\" ]; then exit \"$FAIL\"; fi; exec sleep infinity"];
    let options = Options { daytona_command: Some(flaky.map(String::from).to_vec()), ..Options::default() };
    let app = TestApp::in_mode(mode, options).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let body = json!({"name": "exits", "env": {"FAIL": "3"}});
    let id = acme.ok("POST", "/api/sandbox", Some(&body)).await["id"].as_str().expect("id").to_owned();
    let failed = acme.wait_state(&id, "error", Duration::from_secs(30)).await;
    assert_eq!(failed["errorReason"], "the sandbox's process exited with code 3", "{failed}");
    assert_eq!(
        acme.call("POST", &format!("/api/sandbox/{id}/start"), None).await.status,
        200,
        "it may be started again"
    );
    let healthy = acme.ok("POST", "/api/sandbox", Some(&json!({"name": "fine"}))).await;
    assert_eq!(healthy["state"], "started");
    assert!(healthy.get("errorReason").is_none(), "{healthy}");

    // Negative counts and a body that is not an object: 400, nothing created.
    for (bad, says) in [
        (json!({"name": "n1", "autoStopInterval": -1}), "autoStopInterval"),
        (json!({"name": "n2", "autoArchiveInterval": -5}), "autoArchiveInterval"),
        (json!({"name": "n3", "gpu": -1}), "gpu"),
        (json!([{"name": "n4"}]), "object"),
        (json!(["n5"]), "object"),
        (json!("n6"), "object"),
    ] {
        assert_error(&acme.call("POST", "/api/sandbox", Some(&bad)).await, 400, says);
    }
    let names: Vec<String> = acme.ok("GET", "/api/sandbox", None).await["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(names.len(), 2, "only exits and fine: {names:?}");
    let never = acme.ok("POST", "/api/sandbox", Some(&json!({"name": "keep", "autoDeleteInterval": -7}))).await;
    assert_eq!(never["autoDeleteInterval"], -7, "a negative auto-delete means never");
}

/// An organisation's quotas (running sandboxes, total CPU, memory, disk) and the per-sandbox
/// maxima are refused with Daytona's 403 and message, and counted exactly when creates and
/// starts race; another organisation has its own.
async fn quotas_are_refused_as_daytona_does_and_counted_exactly_under_races(mode: Mode) {
    let limits = api::daytona::DaytonaSettings {
        max_running_sandboxes: 3,
        max_total_cpu: 3,
        max_total_memory_gib: 4,
        max_total_disk_gib: 12,
        max_cpu_per_sandbox: 2,
        max_memory_per_sandbox_gib: 3,
        max_disk_per_sandbox_gib: 6,
        ..api::daytona::DaytonaSettings::default()
    };
    let app = TestApp::in_mode(mode, Options { daytona_limits: Some(limits), ..Options::default() }).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let create = |body: serde_json::Value| {
        let acme = &acme;
        async move { acme.call("POST", "/api/sandbox", Some(&body)).await }
    };
    for (body, says) in [
        (json!({"name": "big-cpu", "cpu": 3}), "CPU request 3 exceeds maximum allowed per sandbox (2)."),
        (json!({"name": "big-mem", "memory": 4}), "Memory request 4GB exceeds maximum allowed per sandbox (3GB)."),
        (json!({"name": "big-disk", "disk": 7}), "Disk request 7GB exceeds maximum allowed per sandbox (6GB)."),
    ] {
        assert_error(&create(body).await, 403, says);
    }

    // Ten creates at once, 1 CPU, 1 GiB and 3 GiB of disk each: exactly three run.
    let answers = futures_util::future::join_all(
        (0..10).map(|n| create(json!({"name": format!("r{n}"), "autoStopInterval": 0}))),
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    for refused in answers.iter().filter(|a| a.status != 200) {
        assert_error(refused, 403, "Total running sandboxes limit exceeded. Maximum allowed: 3.");
    }
    let listed = acme.ok("GET", "/api/sandbox", None).await["items"].as_array().expect("items").len();
    assert_eq!(listed, 3, "a refused create leaves nothing behind");
    let running: Vec<String> =
        answers.iter().filter(|a| a.status == 200).map(|a| a.json()["id"].as_str().expect("id").to_owned()).collect();

    // Stopped, a sandbox frees its CPU and memory but keeps its disk: 3 + 3 + 3 + 3 = 12 GiB.
    acme.ok("POST", &format!("/api/sandbox/{}/stop", running[0]), None).await;
    acme.wait_state(&running[0], "stopped", Duration::from_secs(30)).await;
    let fourth = create(json!({"name": "fourth", "autoStopInterval": 0})).await;
    assert_eq!(fourth.status, 200, "{}", fourth.body);
    assert_error(&create(json!({"name": "fifth"})).await, 403, "Total running sandboxes limit exceeded");
    // With room to run again but not for more disk.
    acme.ok("POST", &format!("/api/sandbox/{}/stop", running[1]), None).await;
    acme.wait_state(&running[1], "stopped", Duration::from_secs(30)).await;
    assert_error(
        &create(json!({"name": "sixth", "disk": 1})).await,
        403,
        "Total disk limit exceeded. Maximum allowed: 12GiB.",
    );
    // CPU and memory, with two running of 1 CPU and 1 GiB each.
    let cpu = json!({"name": "two-cpus", "cpu": 2, "disk": 1});
    let memory = json!({"name": "three-gib", "memory": 3, "disk": 1});
    acme.ok("DELETE", &format!("/api/sandbox/{}", running[1]), None).await;
    tests::wait_until("the delete to free its disk", Duration::from_secs(30), || {
        let (acme, path) = (&acme, format!("/api/sandbox/{}", running[1]));
        async move { acme.call("GET", &path, None).await.status == 404 }
    })
    .await;
    assert_error(&create(cpu).await, 403, "Total CPU limit exceeded. Maximum allowed: 3.");
    assert_error(&create(memory).await, 403, "Total memory limit exceeded. Maximum allowed: 4GiB.");

    // Starts race too: of two stopped sandboxes started at once with room for one, one starts.
    let memory = json!({"name": "one-more", "memory": 1, "disk": 1, "autoStopInterval": 0});
    let one_more = acme.ok("POST", "/api/sandbox", Some(&memory)).await["id"].as_str().expect("id").to_owned();
    acme.ok("POST", &format!("/api/sandbox/{one_more}/stop"), None).await;
    acme.wait_state(&one_more, "stopped", Duration::from_secs(30)).await;
    let starts = [running[0].clone(), one_more.clone()].map(|id| {
        let acme = &acme;
        async move { acme.call("POST", &format!("/api/sandbox/{id}/start"), None).await }
    });
    let starts = futures_util::future::join_all(starts).await;
    let statuses: Vec<u16> = starts.iter().map(|a| a.status).collect();
    assert_eq!(
        (statuses.iter().filter(|s| **s == 200).count(), statuses.iter().filter(|s| **s == 403).count()),
        (1, 1),
        "{statuses:?}"
    );

    // Another organisation has its own quota.
    let globex = Daytona::for_tenant(&app.base, &app.db, "globex").await;
    assert_eq!(globex.ok("POST", "/api/sandbox", Some(&json!({"name": "theirs"}))).await["state"], "started");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

in_both_modes!(
    quotas_are_refused_as_daytona_does_and_counted_exactly_under_races,
    a_sandbox_that_cannot_start_is_in_error_and_its_start_failed,
    schedules_past_the_horizon_are_never_and_activity_leaves_no_rows,
    labels_are_replaced_whole_and_the_toolbox_url_is_on_the_servers_base,
    sandboxes_are_listed_in_keyset_pages_with_filters,
    a_sandbox_is_created_stopped_started_and_deleted_as_daytonas_clients_expect,
    daytona_errors_tokens_and_organisations,
    operation_locations_name_tasks_the_token_can_read_and_env_reaches_the_command,
    schedules_stop_idle_sandboxes_and_delete_stopped_ones,
    changes_in_progress_are_409_and_racing_changes_have_one_winner,
);

/// Every answer that submits a task names it in `Operation-Location`; the same token reads it
/// there in JSON (another organisation's token gets a 404; a Veeam caller reaches the Veeam
/// face) and can cancel a task that has not run. The env given at creation reaches the command.
async fn operation_locations_name_tasks_the_token_can_read_and_env_reaches_the_command(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let other = Daytona::for_tenant(&app.base, &app.db, "globex").await;
    let body = json!({"name": "env", "env": {"GREETING": "hello world", "EMPTY": ""}});
    let created = acme.call("POST", "/api/sandbox", Some(&body)).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(created.json()["env"], json!({"GREETING": "hello world", "EMPTY": ""}));

    let location = created.header("Operation-Location").expect("Operation-Location").to_owned();
    let path = location.strip_prefix(&app.base).expect("on the same server").to_owned();
    assert!(path.starts_with("/api/tasks/"), "{path}");
    let task = acme.ok("GET", &path, None).await;
    assert_eq!((task["operation"].as_str(), task["targetId"].as_str()), (Some("StartWorkload"), Some(id.as_str())));
    assert_eq!((task["state"].as_str(), task["success"].as_bool()), (Some("Finished"), Some(true)), "{task}");
    assert_eq!(acme.call("GET", &path, None).await.header("Retry-After"), None, "final: nothing to wait for");
    assert!(task["createdAt"].is_string() && task["finishedAt"].is_string(), "{task}");
    // The task resource is every token face's: its errors are problem details, no vendor's.
    assert_problem(&other.call("GET", &path, None).await, 404, "not found");
    for bad in ["/api/tasks/0", "/api/tasks/007", "/api/tasks/task-1", "/api/tasks/99999999999"] {
        assert_problem(&acme.call("GET", bad, None).await, 404, "not found");
    }
    let forged = Daytona { base: app.base.clone(), token: "tq_forged".into() };
    assert_problem(&forged.call("GET", &path, None).await, 401, "not a live API token");
    let put = acme.call("PUT", &path, None).await;
    assert_problem(&put, 405, "GET and DELETE");
    assert_eq!(put.header("Allow"), Some("GET, DELETE"));
    let veeam = tests::http::request("GET", &location, &[]).await;
    assert_eq!(veeam.status, 401, "without a bearer token it is the Veeam face's: {}", veeam.body);
    // A token reaches only what tokens of its tenant submitted: not its tenant's Veeam users'
    // tasks (EM keeps tasks per user), which it can neither read nor cancel.
    let insider = Daytona::for_tenant(&app.base, &app.db, "default").await;
    let session = app.logon().await;
    let job_task = session.act(&format!("/api/jobs/{}?action=start", app.job_id("Runs").await)).await;
    let job_task = job_task["TaskId"].as_str().expect("id").to_owned();
    for method in ["GET", "DELETE"] {
        assert_problem(&insider.call(method, &format!("/api/tasks/{}", &job_task[5..]), None).await, 404, "not found");
    }
    let theirs = session.wait_finished(&job_task, Duration::from_secs(30)).await;
    assert_eq!(theirs["Result"]["Success"], true, "not cancelled: {theirs}");

    // The environment reached the sandbox's command, over the runner's.
    let workload = entity::store::workloads::active_of_spec(&app.db, &id).await.expect("db").expect("active");
    let pids = tests::running_processes(&workload.id).await;
    let environ = std::fs::read(format!("/proc/{}/environ", pids[0])).expect("environ");
    let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    assert!(vars.contains(&b"GREETING=hello world".as_slice()) && vars.contains(&b"EMPTY=".as_slice()));
    // On a fixed base, with nothing of the server's own environment (its settings, its secrets).
    let path = format!("PATH={}", entity::environment::PATH);
    assert!(vars.contains(&path.as_bytes()), "the fixed PATH");
    let names: Vec<String> = vars
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v.split(|b| *b == b'=').next().unwrap_or_default()).into_owned())
        .collect();
    let allowed = ["PATH", "HOME", "LANG", "PWD", "OLDPWD", "SHLVL", "TASKQ_WORKLOAD", "GREETING", "EMPTY"];
    assert!(names.iter().all(|n| allowed.contains(&n.as_str())), "only the base, the spec's and the marker: {names:?}");
    let bad_env = json!({"name": "bad", "env": {"A=B": "x"}});
    assert_error(&acme.call("POST", "/api/sandbox", Some(&bad_env)).await, 400, "env");
    // What steers the loader, a shell or command lookup is refused, in any case; nothing is created.
    for name in ["LD_PRELOAD", "LD_DEBUG_OUTPUT", "ld_library_path", "PATH", "BASH_ENV", "IFS", "GCONV_PATH"] {
        let body = json!({"name": "hostile", "env": {name: "/tmp/x"}});
        assert_error(&acme.call("POST", "/api/sandbox", Some(&body)).await, 400, name);
    }
    assert_error(&acme.call("GET", "/api/sandbox/hostile", None).await, 404, "not found");

    // The auto-stop is a scheduled task, readable and cancellable like any other.
    let scheduled = tests::daytona::tasks_of(&app.db, &id).await;
    let auto_stop = scheduled.iter().find(|t| t.not_before.is_some()).expect("a scheduled auto-stop");
    let minutes = (auto_stop.not_before.expect("at") - auto_stop.created_at).num_seconds();
    assert!((14 * 60..=15 * 60).contains(&minutes), "15 minutes by default, not {minutes} s");
    let path = format!("/api/tasks/{}", auto_stop.id);
    let seen = acme.call("GET", &path, None).await;
    let retry: i64 = seen.header("Retry-After").expect("Retry-After while not final").parse().expect("seconds");
    assert!((14 * 60..=15 * 60).contains(&retry), "ask again when it is due: {retry}");
    let seen = seen.json();
    assert_eq!((seen["operation"].as_str(), seen["state"].as_str()), (Some("StopSpec"), Some("Queued")));
    assert!(seen["notBefore"].is_string(), "{seen}");
    assert_eq!(acme.ok("GET", &format!("/api/sandbox/{id}"), None).await["state"], "started", "not pending yet");
    let cancelled = acme.ok("DELETE", &path, None).await;
    assert_eq!(cancelled["state"], "Cancelled", "{cancelled}");
    assert_eq!(acme.ok("DELETE", &path, None).await["state"], "Cancelled", "a second cancel changes nothing");

    // A stop's task, followed to its end.
    let stop = acme.call("POST", &format!("/api/sandbox/{id}/stop"), None).await;
    assert_eq!(stop.status, 200);
    let path = stop.header("Operation-Location").expect("Operation-Location").trim_start_matches(&app.base).to_owned();
    tests::wait_until("the stop task to finish", Duration::from_secs(30), || {
        let (acme, path) = (&acme, path.clone());
        async move { acme.ok("GET", &path, None).await["state"] == "Finished" }
    })
    .await;
    assert_eq!(acme.ok("GET", &format!("/api/sandbox/{id}"), None).await["state"], "stopped");
    assert_eq!(marked_processes(&workload.id), Vec::<i32>::new());
    let start = acme.call("POST", &format!("/api/sandbox/{id}/start"), None).await;
    assert!(start.header("Operation-Location").is_some_and(|l| l.contains("/api/tasks/")));
    let delete = acme.call("DELETE", &format!("/api/sandbox/{id}"), None).await;
    assert!(delete.header("Operation-Location").is_some_and(|l| l.contains("/api/tasks/")));
}

/// The schedules, with a minute of 1 s: an idle started sandbox stops after `autoStopInterval`
/// and a stopped one is deleted `autoDeleteInterval` later; 0 disables the auto-stop and makes
/// a stop a delete; a manual stop or start replaces the schedules; activity postpones them.
async fn schedules_stop_idle_sandboxes_and_delete_stopped_ones(mode: Mode) {
    let app = TestApp::in_mode(mode, Options { daytona_minute_ms: 1_000, ..Options::default() }).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let create = |name: &'static str, stop: i64, delete: i64| {
        let acme = &acme;
        async move {
            let body = json!({"name": name, "autoStopInterval": stop, "autoDeleteInterval": delete});
            let created = acme.ok("POST", "/api/sandbox", Some(&body)).await;
            assert_eq!(created["state"], "started", "{created}");
            created["id"].as_str().expect("id").to_owned()
        }
    };
    let workload_of = |id: String| {
        let db = app.db.clone();
        async move { entity::store::workloads::active_of_spec(&db, &id).await.expect("db").expect("active").id }
    };
    // Nothing here races its own schedules: what a check needs is read before the schedule can
    // fire (`idle` gets its 1 s auto-stop once its workload is read), and what must not fire
    // yet has room (`manual` 10 s for one stop request; `touched` ten minutes, shortened later).
    let idle = create("idle", 0, 1).await;
    let idle_workload = workload_of(idle.clone()).await;
    let idle_home = entity::store::specs::find(&app.db, &idle).await.expect("db").expect("spec").working_dir;
    let set = acme.ok("POST", &format!("/api/sandbox/{idle}/autostop/1"), None).await;
    assert_eq!(set["autoStopInterval"], 1);
    let kept = create("kept", 0, -1).await;
    let ephemeral = create("ephemeral", 0, 0).await;
    let manual = create("manual", 10, -1).await;
    let touched = create("touched", 600, -1).await;
    let later = create("later", 0, -1).await;

    // Intervals set afterwards count from then: `later` stops a second after it gets one.
    let set = acme.ok("POST", &format!("/api/sandbox/{later}/autostop/1"), None).await;
    assert_eq!((set["autoStopInterval"].as_i64(), set["state"].as_str()), (Some(1), Some("started")));
    let set = acme.ok("POST", &format!("/api/sandbox/{later}/autodelete/0"), None).await;
    assert_eq!(set["autoDeleteInterval"], 0, "ephemeral now: its auto-stop deletes it");
    for (path, says) in [
        (format!("/api/sandbox/{later}/autostop/-1"), "non-negative"),
        (format!("/api/sandbox/{later}/autostop/abc"), "whole number"),
        (format!("/api/sandbox/{later}/autodelete/1.5"), "whole number"),
        ("/api/sandbox/nobody/autostop/5".to_owned(), "not found"),
    ] {
        let status = if says == "not found" { 404 } else { 400 };
        assert_error(&acme.call("POST", &path, None).await, status, says);
    }

    // Manual stop: the auto-stop stays scheduled (were the stop cancelled, it would still stop
    // the sandbox); on a stopped sandbox it does nothing.
    acme.ok("POST", &format!("/api/sandbox/{manual}/stop"), None).await;
    acme.wait_state(&manual, "stopped", Duration::from_secs(30)).await;
    let tasks = tests::daytona::tasks_of(&app.db, &manual).await;
    let auto_stop = tasks.iter().find(|t| t.not_before.is_some()).expect("the auto-stop was scheduled").id;
    let scheduled = entity::store::tasks::scheduled_for(&app.db, &manual).await.expect("db");
    assert_eq!(scheduled.iter().map(|t| t.id).collect::<Vec<_>>(), [auto_stop]);

    // Ephemeral: a stop is a delete.
    let destroying = acme.ok("POST", &format!("/api/sandbox/{ephemeral}/stop"), None).await;
    assert_eq!(
        (destroying["state"].as_str(), destroying["desiredState"].as_str()),
        (Some("destroying"), Some("destroyed"))
    );

    // Activity postpones `touched`'s auto-stop: each use replaces it with one counted from then
    // (no timer raced: the scheduled rows say it). `idle` stops by itself, then is deleted.
    let due = |id: String| {
        let db = app.db.clone();
        async move {
            let scheduled = entity::store::tasks::scheduled_for(&db, &id).await.expect("db");
            assert_eq!(scheduled.len(), 1, "one auto-stop: {scheduled:?}");
            scheduled[0].not_before.expect("due")
        }
    };
    let mut before = due(touched.clone()).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let touch = acme.call("POST", &format!("/api/sandbox/{touched}/last-activity"), None).await;
        assert_eq!(touch.status, 201, "{}", touch.body);
        let after = due(touched.clone()).await;
        assert!(after > before, "activity postponed it: {before} -> {after}");
        before = after;
    }
    assert_eq!(acme.ok("GET", &format!("/api/sandbox/{touched}"), None).await["state"], "started");
    for gone in [&idle, &ephemeral, &later] {
        tests::wait_until("the sandbox to be deleted", Duration::from_secs(30), || {
            let (acme, path) = (&acme, format!("/api/sandbox/{gone}"));
            async move { acme.call("GET", &path, None).await.status == 404 }
        })
        .await;
    }
    assert_eq!(marked_processes(&idle_workload), Vec::<i32>::new(), "the auto-stop left nothing alive");
    tests::wait_until("the auto-deleted sandbox's files to go", Duration::from_secs(30), || {
        let home = std::path::PathBuf::from(&idle_home);
        async move { !home.exists() }
    })
    .await;
    let idle_tasks = tests::daytona::tasks_of(&app.db, &idle).await;
    let ran: Vec<(entity::Operation, bool)> =
        idle_tasks.iter().filter(|t| t.not_before.is_some()).map(|t| (t.operation, t.success == Some(true))).collect();
    assert_eq!(ran, [(entity::Operation::StopSpec, true), (entity::Operation::DeleteSpec, true)], "{idle_tasks:?}");
    assert!(idle_tasks.iter().all(|t| t.attempt <= 1), "each ran once");

    // Nothing stops `kept`; `touched` stops once left alone (with a second's interval now);
    // `manual`'s auto-stop fired on it stopped and did nothing, and restarted it stops again.
    acme.ok("POST", &format!("/api/sandbox/{touched}/autostop/1"), None).await;
    tests::wait_until("manual's auto-stop to fire", Duration::from_secs(30), || {
        let db = app.db.clone();
        async move { entity::store::tasks::get(&db, auto_stop).await.expect("db").is_some_and(|t| t.state.is_final()) }
    })
    .await;
    let fired = entity::store::tasks::get(&app.db, auto_stop).await.expect("db").expect("task");
    assert_eq!(fired.ended(), Some(entity::outcome::Outcome::NothingToStop { spec_name: "manual".into() }));
    acme.ok("POST", &format!("/api/sandbox/{manual}/autostop/1"), None).await;
    acme.ok("POST", &format!("/api/sandbox/{manual}/start"), None).await;
    acme.wait_state(&touched, "stopped", Duration::from_secs(30)).await;
    acme.wait_state(&manual, "stopped", Duration::from_secs(30)).await;
    assert_eq!(acme.ok("GET", &format!("/api/sandbox/{kept}"), None).await["state"], "started");
    assert!(entity::store::tasks::scheduled_for(&app.db, &kept).await.expect("db").is_empty());
}

/// A schedule is a row, not a timer: with the api that scheduled it gone, the runners' relays
/// publish it when due, and with two runners it still runs exactly once.
async fn a_schedule_runs_once_across_processes_and_outlives_the_api_that_made_it() {
    let app = TestApp::in_mode(Mode::Distributed, Options { daytona_minute_ms: 1_000, ..Options::default() }).await;
    let _second = app.start_worker(&format!("w-{}", tests::short_id()));
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    // Due in an hour; made due once the api is gone (nothing races the schedule).
    let body = json!({"name": "orphan", "autoStopInterval": 3600});
    let id = acme.ok("POST", "/api/sandbox", Some(&body)).await["id"].as_str().expect("id").to_owned();
    let workload = entity::store::workloads::active_of_spec(&app.db, &id).await.expect("db").expect("active").id;
    app.stop().await;
    assert_eq!(tests::daytona::make_due(&app.db, &id).await, 1, "the auto-stop");
    tests::wait_until("the auto-stop to run without the api", Duration::from_secs(30), || {
        let (db, id) = (app.db.clone(), id.clone());
        async move {
            let tasks = tests::daytona::tasks_of(&db, &id).await;
            tasks.iter().any(|t| t.operation == entity::Operation::StopSpec && t.state.is_final())
        }
    })
    .await;
    let found = entity::store::workloads::find(&app.db, &workload).await.expect("db").expect("workload");
    assert_eq!(found.state, entity::WorkloadState::Stopped);
    assert_eq!(marked_processes(&workload), Vec::<i32>::new());
    let tasks = tests::daytona::tasks_of(&app.db, &id).await;
    let stops: Vec<&entity::task::Model> =
        tasks.iter().filter(|t| t.operation == entity::Operation::StopSpec).collect();
    assert_eq!(stops.len(), 1, "{tasks:?}");
    assert_eq!((stops[0].state, stops[0].attempt, stops[0].success), (entity::TaskState::Finished, 1, Some(true)));
}

#[actix_web::test]
async fn a_schedule_runs_once_across_processes_and_outlives_the_api() {
    a_schedule_runs_once_across_processes_and_outlives_the_api_that_made_it().await;
}

/// Waits until the stubborn command of the spec `id` has set its trap (its `trapped` file).
pub async fn trapped(app: &TestApp, id: &str) {
    let spec = entity::store::specs::find(&app.db, id).await.expect("db").expect("spec");
    let file = std::path::Path::new(&spec.working_dir).join("trapped");
    tests::wait_until("the command to ignore SIGTERM", Duration::from_secs(30), || {
        let file = file.clone();
        async move { file.exists() }
    })
    .await;
}

/// A sandbox that ignores SIGTERM takes its grace period to stop: meanwhile every change is a
/// 409 and it shows `stopping`; a forced stop kills it at once. Requests racing to change one
/// sandbox: exactly one wins, the others get a 409, and one task is submitted.
async fn changes_in_progress_are_409_and_racing_changes_have_one_winner(mode: Mode) {
    // It ignores SIGTERM once its trap is set, and says so (`trapped`): a stop that came before
    // would end it at once (seen under load), so the test waits for the file before stopping.
    let stubborn = ["sh", "-c", "trap '' TERM; : > trapped; while :; do sleep 0.1; done"].map(String::from).to_vec();
    let options = Options {
        grace_period_ms: 6_000,
        daytona_command: Some(stubborn),
        daytona_minute_ms: 1_000,
        ..Options::default()
    };
    let app = TestApp::in_mode(mode, options).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let body = json!({"name": "stubborn", "autoStopInterval": 0});
    let id = acme.ok("POST", "/api/sandbox", Some(&body)).await["id"].as_str().expect("id").to_owned();
    let workload = entity::store::workloads::active_of_spec(&app.db, &id).await.expect("db").expect("active").id;
    trapped(&app, &id).await;

    // A graceful stop cancelled in its grace period through its Operation-Location: no SIGKILL
    // follows, the sandbox is started again, its process alive; the delete its stop scheduled
    // leaves it running, and its auto-stop is still there.
    let body = json!({"name": "revived", "autoStopInterval": 60, "autoDeleteInterval": 1});
    let revived = acme.ok("POST", "/api/sandbox", Some(&body)).await["id"].as_str().expect("id").to_owned();
    trapped(&app, &revived).await;
    let stop = acme.call("POST", &format!("/api/sandbox/{revived}/stop"), None).await;
    assert_eq!(stop.status, 200);
    let task = stop.header("Operation-Location").expect("Operation-Location").trim_start_matches(&app.base).to_owned();
    tests::wait_until("the stop to be running", Duration::from_secs(10), || {
        let (acme, task) = (&acme, task.clone());
        async move { acme.ok("GET", &task, None).await["state"] == "Running" }
    })
    .await;
    acme.ok("DELETE", &task, None).await;
    tests::wait_until("the stop to be cancelled", Duration::from_secs(10), || {
        let (acme, task) = (&acme, task.clone());
        async move { acme.ok("GET", &task, None).await["state"] == "Cancelled" }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    let sandbox = acme.ok("GET", &format!("/api/sandbox/{revived}"), None).await;
    assert_eq!(sandbox["state"], "started", "the stop was abandoned, and the delete after it did nothing");
    let revived_workload =
        entity::store::workloads::active_of_spec(&app.db, &revived).await.expect("db").expect("active").id;
    assert!(
        !tests::running_processes(&revived_workload).await.is_empty(),
        "and no SIGKILL came after the grace period"
    );
    let tasks = tests::daytona::tasks_of(&app.db, &revived).await;
    // (The delete scheduled at creation, after the 60 s auto-stop, is not due.)
    let kept = tasks
        .iter()
        .filter(|t| t.operation == entity::Operation::DeleteSpec)
        .min_by_key(|t| t.not_before)
        .expect("the delete the stop scheduled");
    assert_eq!(kept.ended(), Some(entity::outcome::Outcome::KeptRunning { spec_name: "revived".into() }));
    let scheduled = entity::store::tasks::scheduled_for(&app.db, &revived).await.expect("db");
    assert!(scheduled.iter().any(|t| t.operation == entity::Operation::StopSpec), "{scheduled:?}");

    // A graceful stop of a process that ignores SIGTERM: stopping for the grace period.
    let began = std::time::Instant::now();
    assert_eq!(acme.ok("POST", &format!("/api/sandbox/{id}/stop"), None).await["state"], "stopping");
    for (method, path) in [
        ("POST", format!("/api/sandbox/{id}/stop")),
        ("POST", format!("/api/sandbox/{id}/start")),
        ("DELETE", format!("/api/sandbox/{id}")),
    ] {
        assert_error(&acme.call(method, &path, None).await, 409, "Sandbox state change in progress");
    }
    assert_eq!(acme.ok("GET", &format!("/api/sandbox/{id}"), None).await["state"], "stopping");
    assert!(!tests::running_processes(&workload).await.is_empty(), "still in its grace period");
    acme.wait_state(&id, "stopped", Duration::from_secs(30)).await;
    assert!(began.elapsed() >= Duration::from_millis(5_500), "it took the grace period: {:?}", began.elapsed());
    assert_eq!(marked_processes(&workload), Vec::<i32>::new());

    // Eight starts at once: one task; every answer a 200 (the winner, or a sandbox already
    // started) or a 409.
    let path = format!("/api/sandbox/{id}/start");
    let answers = futures_util::future::join_all((0..8).map(|_| acme.call("POST", &path, None))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    let tasks = tests::daytona::tasks_of(&app.db, &id).await;
    let starts = tasks.iter().filter(|t| t.operation == entity::Operation::StartWorkload).count();
    assert_eq!(starts, 2, "the create's start and one more: {statuses:?} {tasks:#?}");
    acme.wait_state(&id, "started", Duration::from_secs(30)).await;

    // Eight forced stops at once: one wins and kills at once, well inside the grace period.
    let workload = entity::store::workloads::active_of_spec(&app.db, &id).await.expect("db").expect("active").id;
    let path = format!("/api/sandbox/{id}/stop?force=true");
    let began = std::time::Instant::now();
    let answers = futures_util::future::join_all((0..8).map(|_| acme.call("POST", &path, None))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "one winner: {statuses:?}");
    // The others lost the race (409), or came once the forced stop was over (400: stopped).
    assert!(statuses.iter().all(|s| [200, 409, 400].contains(s)), "{statuses:?}");
    acme.wait_state(&id, "stopped", Duration::from_secs(30)).await;
    assert!(began.elapsed() < Duration::from_millis(3_000), "a forced stop does not wait: {:?}", began.elapsed());
    assert_eq!(marked_processes(&workload), Vec::<i32>::new());
    let tasks = tests::daytona::tasks_of(&app.db, &id).await;
    // (Each start also scheduled an auto-stop, which each stop cancelled.)
    let stops = tasks.iter().filter(|t| t.operation == entity::Operation::StopSpec && t.not_before.is_none()).count();
    assert_eq!(stops, 2, "the graceful stop and one forced stop: {tasks:?}");
}

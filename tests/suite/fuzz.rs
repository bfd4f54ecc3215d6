//! Property-based tests over HTTP: generated hostile input for every parser of the Veeam face
//! (filter grammar, ids, Accept, Basic auth, query parameters) and of the Daytona face (ids,
//! listing parameters, create bodies) against the real app. Whatever
//! comes in, the answer is never a 5xx, always parses in the negotiated format, and every 4xx is
//! a Veeam `Error` carrying its own status. Inputs come from a deterministic proptest runner, so
//! a failure names an input that reproduces.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use tests::http::{JSON, XML, request};
use tests::{Mode, Options, TestApp, in_both_modes, xml};

const CASES: usize = 40;

fn samples<S: Strategy>(strategy: S) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..CASES).map(|_| strategy.new_tree(&mut runner).expect("value").current()).collect()
}

/// Every byte outside the unreserved set, percent-encoded: any text can travel in a path.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The properties every answer must have.
fn check(what: &str, accept: &str, status: u16, body: &str) {
    assert!(status < 500, "{what}: {status} {body}");
    let json = accept.contains("json");
    if json {
        let value: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
        if status >= 400 {
            assert_eq!(value["StatusCode"], status, "{what}: {body}");
        }
    } else {
        xml::well_formed(body).unwrap_or_else(|e| panic!("{what}: {e}: {body:?}"));
        if status >= 400 {
            assert_eq!(xml::attr(body, "Error", "StatusCode"), Some(status.to_string()), "{what}: {body}");
        }
    }
}

fn soup() -> impl Strategy<Value = String> {
    let token = proptest::sample::select(vec![
        "(",
        ")",
        ";",
        ",",
        "name",
        "result",
        "state",
        "creationtime",
        "==",
        "!=",
        ">=",
        "<",
        "\"",
        "a",
        " ",
        "Failed",
        "2026-11-22",
        "%",
        "\u{1}",
        "\0",
        "é",
    ]);
    proptest::collection::vec(token, 0..600).prop_map(|t| t.concat())
}

async fn generated_filters_and_query_parameters_never_get_a_5xx(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let filters = samples(proptest::prop_oneof![soup(), "\\PC{0,200}", "[\\x00-\\x7f]{0,100}"]);
    let kinds = ["BackupJobSession", "Task", "task", "Job", ""];
    for (n, filter) in filters.iter().enumerate() {
        let accept = if n % 2 == 0 { JSON } else { XML };
        let query = serde_urlencoded::to_string([("type", kinds[n % kinds.len()]), ("filter", filter)]).expect("query");
        let resp = session.call("GET", &format!("/api/query?{query}"), accept).await;
        check(&format!("filter {filter:?}"), accept, resp.status, &resp.body);
    }
    let names = ["page", "pageSize", "sortAsc", "sortDesc", "format", "type", "PAGE", "filter"];
    let values = samples("\\PC{0,30}|-?[0-9]{1,25}");
    for (n, value) in values.iter().enumerate() {
        let accept = if n % 2 == 0 { JSON } else { XML };
        let query = serde_urlencoded::to_string([("type", "BackupJobSession"), (names[n % names.len()], value)])
            .expect("query");
        for path in ["/api/query", "/api/backupSessions", "/api/jobs"] {
            let resp = session.call("GET", &format!("{path}?{query}"), accept).await;
            check(&format!("{path}?{query}"), accept, resp.status, &resp.body);
        }
    }
    // Raw query strings, stray and broken percent escapes included (only characters a URI holds).
    for raw in samples("[A-Za-z0-9%=&;,()+*!$'.:@/?_~-]{0,60}") {
        let resp = session.call("GET", &format!("/api/query?{raw}"), JSON).await;
        check(&format!("raw query {raw:?}"), JSON, resp.status, &resp.body);
    }
}

async fn generated_ids_and_actions_never_get_a_5xx(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let ids = samples(proptest::prop_oneof!["\\PC{1,80}", "[\\x00-\\x1f]{1,10}", "(?i:task-)[-+0 9]{0,12}"]);
    for (n, id) in ids.iter().enumerate() {
        let accept = if n % 2 == 0 { JSON } else { XML };
        let id = encode(id);
        for (method, path) in [
            ("GET", format!("/api/tasks/{id}")),
            ("DELETE", format!("/api/tasks/{id}")),
            ("GET", format!("/api/backupSessions/{id}?format=Entity")),
            ("POST", format!("/api/backupSessions/{id}?action=stop")),
            ("GET", format!("/api/jobs/{id}/backupSessions")),
            ("POST", format!("/api/jobs/{id}?action={id}")),
            ("GET", format!("/api/logonSessions/{id}")),
        ] {
            let resp = session.call(method, &path, accept).await;
            check(&format!("{method} {path}"), accept, resp.status, &resp.body);
            assert!(resp.status == 404 || resp.status == 400, "{method} {path}: {}", resp.status);
        }
    }
    let job = app.job_id("Runs").await;
    for action in samples("\\PC{0,40}") {
        let path = format!("/api/jobs/{job}?action={}", encode(&action));
        let resp = session.call("POST", &path, JSON).await;
        check(&path, JSON, resp.status, &resp.body);
    }
}

async fn generated_accept_and_authorization_headers_never_get_a_5xx(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let url = format!("{}/api/tasks", app.base);
    for accept in samples("[ -~]{0,200}") {
        let resp = request("GET", &url, &[("X-RestSvcSessionId", &session.token), ("Accept", &accept)]).await;
        assert!(resp.status == 200 || resp.status == 406, "Accept {accept:?}: {} {}", resp.status, resp.body);
        let answered = if resp.content_type().starts_with("application/json") { JSON } else { XML };
        check(&format!("Accept {accept:?}"), answered, resp.status, &resp.body);
    }
    let logon = format!("{}/api/sessionMngr/?v=latest", app.base);
    let encoded = proptest::collection::vec(proptest::num::u8::ANY, 0..80).prop_map(|bytes| {
        format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes))
    });
    for header in samples(proptest::prop_oneof!["[ -~]{0,120}", encoded, "(?i:basic) [ -~]{0,60}"]) {
        let resp = request("POST", &logon, &[("Authorization", &header), ("Accept", JSON)]).await;
        assert!([401, 429].contains(&resp.status), "Authorization {header:?}: {} {}", resp.status, resp.body);
        check(&format!("Authorization {header:?}"), JSON, resp.status, &resp.body);
    }
    for token in samples("[!-~]{0,100}") {
        let resp = request("GET", &url, &[("X-RestSvcSessionId", &token)]).await;
        assert_eq!(resp.status, 401, "token {token:?}");
        check(&format!("token {token:?}"), XML, resp.status, &resp.body);
    }
}

/// The properties every Daytona answer must have: JSON, never a 5xx, and a 4xx in Daytona's
/// error body with its own status and a string message.
fn check_daytona(what: &str, status: u16, body: &str) {
    assert!(status < 500, "{what}: {status} {body}");
    if status == 201 && body.is_empty() {
        return;
    }
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
    if status >= 400 {
        assert_eq!(value["statusCode"], status, "{what}: {body}");
        assert!(value["message"].is_string(), "{what}: {body}");
    }
}

/// Generated ids, query parameters and create bodies for the Daytona face.
async fn generated_daytona_input_never_gets_a_5xx(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let acme = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    acme.ok("POST", "/api/sandbox", Some(&serde_json::json!({"name": "one"}))).await;
    for id in samples(proptest::prop_oneof!["\\PC{1,80}", "[\\x00-\\x1f]{1,10}", "[-+0 9]{1,12}"]) {
        let id = encode(&id);
        for (method, path) in [
            ("GET", format!("/api/sandbox/{id}")),
            ("DELETE", format!("/api/sandbox/{id}")),
            ("POST", format!("/api/sandbox/{id}/stop?force={id}")),
            ("POST", format!("/api/sandbox/{id}/start")),
            ("POST", format!("/api/sandbox/{id}/last-activity")),
            ("POST", format!("/api/sandbox/{id}/autostop/{id}")),
        ] {
            let resp = acme.call(method, &path, None).await;
            check_daytona(&format!("{method} {path}"), resp.status, &resp.body);
            assert!(resp.status == 404 || resp.status == 400, "{method} {path}: {}", resp.status);
        }
        // The token callers' task resource answers in problem details.
        for method in ["GET", "DELETE"] {
            let resp = acme.call(method, &format!("/api/tasks/{id}"), None).await;
            assert!(resp.status == 404 || resp.status == 400, "{method} /api/tasks/{id}: {}", resp.status);
            let body: serde_json::Value =
                serde_json::from_str(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.body));
            assert_eq!(body["status"], resp.status, "{body}");
        }
    }
    // Generated intervals for an existing sandbox: set (a whole number) or a 400.
    for interval in samples("\\PC{1,20}|-?[0-9]{1,25}(\\.[0-9]{0,3})?|[0-9e.+-]{1,10}") {
        let path = format!("/api/sandbox/one/autodelete/{}", encode(&interval));
        let resp = acme.call("POST", &path, None).await;
        check_daytona(&path, resp.status, &resp.body);
        assert!([200, 400, 404].contains(&resp.status), "{path}: {} {}", resp.status, resp.body);
    }
    let names = ["cursor", "limit", "id", "name", "labels", "states", "sort", "order", "page", "states[]"];
    for (n, value) in samples("\\PC{0,30}|-?[0-9]{1,25}|\\{[ -~]{0,30}").iter().enumerate() {
        let query = serde_urlencoded::to_string([(names[n % names.len()], value)]).expect("query");
        for path in ["/api/sandbox", "/api/sandbox/paginated"] {
            let resp = acme.call("GET", &format!("{path}?{query}"), None).await;
            check_daytona(&format!("{path}?{query}"), resp.status, &resp.body);
        }
    }
    // Filters of every size, to thousands of labels or repeated states (once a 500: "Expression
    // tree is too large"): an answer, or a 400 past what a listing accepts.
    let sizes = samples(0usize..1200).into_iter().chain([100, 101, 995, 996, 1000, 1001]);
    for (n, size) in sizes.enumerate() {
        let labels: serde_json::Map<String, serde_json::Value> =
            (0..size).map(|i| (format!("k{i}"), serde_json::json!("v"))).collect();
        let labels = serde_json::Value::Object(labels).to_string();
        let state = ["started", "stopped", "error", "starting"][n % 4];
        let states = vec![("states", state); size];
        for query in [
            serde_urlencoded::to_string([("labels", labels.as_str())]).expect("query"),
            serde_urlencoded::to_string(&states).expect("query"),
        ] {
            for path in ["/api/sandbox", "/api/sandbox/paginated"] {
                let resp = acme.call("GET", &format!("{path}?{query}"), None).await;
                let what = format!("{path} with {size} filters");
                check_daytona(&what, resp.status, &resp.body);
                let fits = query.starts_with("states") || size <= 100;
                assert_eq!(resp.status, if fits { 200 } else { 400 }, "{what}: {}", resp.body);
            }
        }
    }
    let values = proptest::sample::select(vec![
        serde_json::json!(null),
        serde_json::json!(-1),
        serde_json::json!(0),
        serde_json::json!(1),
        serde_json::json!(1.5),
        serde_json::json!(1e300),
        serde_json::json!(i64::MAX),
        serde_json::json!(u64::MAX),
        serde_json::json!("x"),
        serde_json::json!(""),
        serde_json::json!("a/b\u{0}"),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!({"A": "1", "B=": "2"}),
        serde_json::json!({"k": 1}),
        serde_json::json!(true),
    ]);
    let fields = [
        "name",
        "snapshot",
        "user",
        "env",
        "labels",
        "public",
        "networkBlockAll",
        "target",
        "cpu",
        "gpu",
        "memory",
        "disk",
        "autoStopInterval",
        "autoArchiveInterval",
        "autoDeleteInterval",
        "volumes",
    ];
    let bodies = proptest::collection::vec((proptest::sample::select(fields.to_vec()), values), 0..6);
    for (n, pairs) in samples(bodies).into_iter().enumerate() {
        let mut body: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        // A name of its own unless it is under test, so that taken names do not hide the rest.
        body.entry("name").or_insert_with(|| serde_json::json!(format!("gen-{n}")));
        let body = serde_json::Value::Object(body);
        let resp = acme.call("POST", "/api/sandbox", Some(&body)).await;
        check_daytona(&format!("create {body}"), resp.status, &resp.body);
        // 403: past a per-sandbox maximum or the organisation's quota.
        assert!([200, 400, 403, 409].contains(&resp.status), "create {body}: {} {}", resp.status, resp.body);
    }
    // The server lives on, and the first sandbox is as it was.
    assert_eq!(acme.ok("GET", "/api/sandbox/one", None).await["state"], "started");
}

/// A Vercel answer: never a 5xx (the SDK would retry it), and errors in Vercel's body.
fn check_vercel(what: &str, status: u16, body: &str) {
    assert!(status < 500 && status != 429, "{what}: {status} {body}");
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
    if status >= 400 {
        assert!(value["error"]["code"].is_string() && value["error"]["message"].is_string(), "{what}: {body}");
    }
}

/// Generated names, session ids, query parameters and create bodies for the Vercel face.
async fn generated_vercel_input_never_gets_a_5xx(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let team = tests::vercel::Vercel::for_team(&app.base, &app.db, "acme").await;
    let one = team.ok("POST", "/v3/sandboxes", Some(&serde_json::json!({"projectId": "prj", "name": "one"}))).await;
    let session = one["session"]["id"].as_str().expect("id").to_owned();
    for id in samples(proptest::prop_oneof!["\\PC{1,80}", "[\\x00-\\x1f]{1,10}", "sbx_[0-9a-fA-F]{0,40}"]) {
        let id = encode(&id);
        for (method, path) in [
            ("GET", format!("/v2/sandboxes/{id}")),
            ("DELETE", format!("/v2/sandboxes/{id}")),
            ("GET", format!("/v2/sandboxes/sessions/{id}")),
            ("POST", format!("/v2/sandboxes/sessions/{id}/stop")),
            ("POST", format!("/v2/sandboxes/sessions/{id}/extend-timeout")),
            ("GET", format!("/v2/sandboxes/sessions?name={id}")),
        ] {
            let resp = team.call(method, &path, Some(&serde_json::json!({"duration": 1000}))).await;
            check_vercel(&format!("{method} {path}"), resp.status, &resp.body);
            assert!([400, 404].contains(&resp.status), "{method} {path}: {} {}", resp.status, resp.body);
        }
    }
    let names = ["limit", "cursor", "sortBy", "sortOrder", "namePrefix", "tags", "project", "resume", "projectId"];
    for (n, value) in samples("\\PC{0,30}|-?[0-9]{1,25}|[a-z]{1,8}:[a-z]{0,8}").iter().enumerate() {
        let query = serde_urlencoded::to_string([(names[n % names.len()], value)]).expect("query");
        for path in [
            format!("/v2/sandboxes?{query}"),
            format!("/v2/sandboxes/one?{query}"),
            format!("/v2/sandboxes/sessions?name=one&{query}"),
            format!("/v2/sandboxes/sessions?{query}"),
        ] {
            let resp = team.call("GET", &path, None).await;
            check_vercel(&path, resp.status, &resp.body);
        }
    }
    let values = proptest::sample::select(vec![
        serde_json::json!(null),
        serde_json::json!(-1),
        serde_json::json!(0),
        serde_json::json!(1.5),
        serde_json::json!(1e300),
        serde_json::json!(i64::MAX),
        serde_json::json!("x"),
        serde_json::json!("a/b\u{0}"),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!({"vcpus": 9}),
        serde_json::json!({"A": "1", "B=": "2"}),
        serde_json::json!(true),
    ]);
    let fields = [
        "projectId",
        "name",
        "persistent",
        "timeout",
        "resources",
        "runtime",
        "env",
        "tags",
        "ports",
        "source",
        "snapshotExpiration",
    ];
    let bodies = proptest::collection::vec((proptest::sample::select(fields.to_vec()), values), 0..5);
    for (n, pairs) in samples(bodies).into_iter().enumerate() {
        let mut body: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        body.entry("name").or_insert_with(|| serde_json::json!(format!("gen-{n}")));
        body.entry("projectId").or_insert_with(|| serde_json::json!("prj"));
        let body = serde_json::Value::Object(body);
        let resp = team.call("POST", "/v3/sandboxes", Some(&body)).await;
        check_vercel(&format!("create {body}"), resp.status, &resp.body);
        assert!([200, 400, 409].contains(&resp.status), "create {body}: {} {}", resp.status, resp.body);
    }
    // Snapshot bodies: a bad expiration is a 400; a good one stops the session (then 410).
    let two = team.ok("POST", "/v3/sandboxes", Some(&serde_json::json!({"projectId": "prj", "name": "two"}))).await;
    let path = format!("/v2/sandboxes/sessions/{}/snapshot", two["session"]["id"].as_str().expect("id"));
    let expirations = proptest::prop_oneof![
        proptest::sample::select(vec![serde_json::json!(-1), serde_json::json!(1.5), serde_json::json!("x")]),
        proptest::num::i64::ANY.prop_map(|n| serde_json::json!(n)),
    ];
    for expiration in samples(expirations) {
        let body = serde_json::json!({"expiration": expiration});
        let resp = team.call("POST", &path, Some(&body)).await;
        check_vercel(&format!("snapshot {body}"), resp.status, &resp.body);
        assert!([200, 400, 410].contains(&resp.status), "snapshot {body}: {} {}", resp.status, resp.body);
    }
    // The server lives on, and the first sandbox is as it was.
    let got = team.ok("GET", "/v2/sandboxes/one", None).await;
    assert_eq!(
        (got["session"]["id"].as_str(), got["session"]["status"].as_str()),
        (Some(session.as_str()), Some("running"))
    );
}

in_both_modes!(
    generated_vercel_input_never_gets_a_5xx,
    generated_filters_and_query_parameters_never_get_a_5xx,
    generated_ids_and_actions_never_get_a_5xx,
    generated_accept_and_authorization_headers_never_get_a_5xx,
    generated_daytona_input_never_gets_a_5xx,
);

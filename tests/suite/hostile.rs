//! Hostile input: what an attacker sends, answered with the face's own errors, never a 5xx, a
//! crash or a forged link; the session cookie and its cross-site use; logon floods.

use std::time::Duration;
use tests::http::{JSON, XML, request};
use tests::veeam::basic;
use tests::{ADMIN, EmbeddedServer, Mode, Options, Session, TestApp, in_both_modes, xml};

async fn a_filter_nested_thousands_deep_is_a_400_and_the_server_lives_on(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    for depth in [33, 3_000] {
        let filter = format!("{}name==a{}", "(".repeat(depth), ")".repeat(depth));
        let path = format!("/api/query?type=BackupJobSession&filter={filter}");
        let resp = session.call("GET", &path, JSON).await;
        assert_eq!(resp.status, 400, "depth {depth}: {}", resp.body);
        assert!(resp.json()["Message"].as_str().expect("message").contains("deeper than 32"), "{}", resp.body);
        let resp = session.call("GET", &path, "").await;
        assert_eq!(xml::attr(&resp.body, "Error", "StatusCode").as_deref(), Some("400"));
    }
    let ok = format!("{}name==a{}", "(".repeat(32), ")".repeat(32));
    assert_eq!(session.call("GET", &format!("/api/query?type=BackupJobSession&filter={ok}"), JSON).await.status, 200);
    assert_eq!(session.call("GET", "/api/tasks", "").await.status, 200, "the server lives on");
}

async fn every_answer_is_well_formed_and_a_404_whatever_an_id_holds(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    for id in ["%00", "a%01b", "%1b%5b31m", "%ef%bf%bf", "%3c%2fError%3e", "x%26y%22z", "task-1%00"] {
        for collection in ["tasks", "backupSessions", "jobs", "logonSessions", "jobs/%00/backupSessions"] {
            let path = format!("/api/{collection}/{id}");
            let resp = session.call("GET", &path, XML).await;
            assert_eq!(resp.status, 404, "{path}: {}", resp.body);
            xml::well_formed(&resp.body).unwrap_or_else(|e| panic!("{path}: {e}: {:?}", resp.body));
            let resp = session.call("GET", &path, JSON).await;
            assert_eq!(resp.status, 404, "{path}: {}", resp.body);
            assert_eq!(resp.json()["StatusCode"], 404);
        }
        let resp = session.call("POST", &format!("/api/backupSessions/{id}?action=stop"), XML).await;
        assert_eq!(resp.status, 404);
        xml::well_formed(&resp.body).unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    let resp = session.call("GET", "/api/query?type=Task%01&filter=name%3D%3D%00", XML).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    xml::well_formed(&resp.body).expect("well-formed");
}

async fn only_the_canonical_task_id_resolves(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let task = session.act(&format!("/api/jobs/{}?action=start", app.job_id("Quick").await)).await;
    let id = task["TaskId"].as_str().expect("id");
    let n: i32 = id[5..].parse().expect("number");
    assert_eq!(session.call("GET", &format!("/api/tasks/{id}"), JSON).await.status, 200);
    assert_eq!(session.call("GET", &format!("/api/tasks/TASK-{n}"), JSON).await.status, 200, "paths ignore case");
    for other in [format!("task-%2B{n}"), format!("task-00{n}"), format!("task-{n}%20"), format!("task--{n}")] {
        let resp = session.call("GET", &format!("/api/tasks/{other}"), JSON).await;
        assert_eq!(resp.status, 404, "{other} is not {id}");
        assert_eq!(session.call("DELETE", &format!("/api/tasks/{other}"), JSON).await.status, 404);
    }
}

async fn the_session_cookie_is_http_only_and_strict_and_logging_off_expires_it(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let cookie = session.logon.header("set-cookie").expect("cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/api"] {
        assert!(cookie.contains(flag), "{flag}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP here: {cookie}");
    let own =
        session.get_json("/api/logonSessions").await["LogonSessions"][0]["SessionId"].as_str().expect("id").to_owned();
    let resp = session.call("DELETE", &format!("/api/logonSessions/{own}"), JSON).await;
    assert_eq!(resp.status, 204);
    let expired = resp.header("set-cookie").expect("the cookie is expired");
    assert!(expired.starts_with("X-RestSvcSessionId=;"), "{expired}");
    assert!(expired.contains("Max-Age=0"), "{expired}");

    let https =
        TestApp::spawn(Options { public_base_url: Some("https://em.example".into()), ..Options::default() }).await;
    let cookie = https.logon().await.logon.header("set-cookie").expect("cookie").to_owned();
    assert!(cookie.contains("Secure"), "served as https: {cookie}");
}

async fn a_cross_site_request_carrying_only_the_cookie_is_refused_and_writes_nothing(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let cookie = format!("X-RestSvcSessionId={}", session.token);
    let start = format!("{}/api/jobs/{}?action=start", app.base, app.job_id("Runs").await);
    for browser in [
        ("Origin", "https://evil.example"),
        ("Referer", "https://evil.example/page"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "null"),
    ] {
        let resp = request("POST", &start, &[("Cookie", &cookie), ("Accept", JSON), browser]).await;
        assert_eq!(resp.status, 403, "{browser:?}: {}", resp.body);
        assert!(resp.json()["Message"].as_str().expect("message").contains("Cross-site"), "{}", resp.body);
    }
    assert_eq!(session.get_json("/api/tasks").await["Tasks"].as_array().expect("tasks").len(), 0, "nothing written");
    // Reads are not refused, and neither are requests a page of another site could not make.
    let tasks = format!("{}/api/tasks", app.base);
    assert_eq!(request("GET", &tasks, &[("Cookie", &cookie), ("Origin", "https://evil.example")]).await.status, 200);
    let with_header =
        [("Cookie", cookie.as_str()), ("X-RestSvcSessionId", &session.token), ("Origin", "https://evil.example")];
    assert_eq!(request("POST", &start, &with_header).await.status, 202, "the header cannot be forged cross-site");
    let same_site = format!("http://{}", app.base.trim_start_matches("http://"));
    assert_eq!(request("POST", &start, &[("Cookie", &cookie), ("Origin", &same_site)]).await.status, 202);
    assert_eq!(request("POST", &start, &[("Cookie", &cookie)]).await.status, 202, "not a browser");
    let task = session.get_json("/api/tasks").await["Tasks"][0]["TaskId"].as_str().expect("id").to_owned();
    let delete = format!("{}/api/tasks/{task}", app.base);
    assert_eq!(
        request("DELETE", &delete, &[("Cookie", &cookie), ("Origin", "https://evil.example")]).await.status,
        403
    );
    assert_eq!(session.call("GET", &format!("/api/tasks/{task}"), JSON).await.status, 200, "still there");
}

async fn an_empty_cookie_does_not_hide_a_valid_header_token(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let tasks = format!("{}/api/tasks", app.base);
    for cookie in ["X-RestSvcSessionId=", "X-RestSvcSessionId=\"\""] {
        let resp = request("GET", &tasks, &[("Cookie", cookie), ("X-RestSvcSessionId", &session.token)]).await;
        assert_eq!(resp.status, 200, "{cookie}: {}", resp.body);
    }
}

async fn logon_tokens_are_stored_only_as_hashes(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let rows = entity::store::logons::list_for_user(&app.db, 1).await.expect("db");
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].token_hash, session.token);
    assert!(!rows[0].token_hash.contains(&session.token));
    assert_eq!(rows[0].token_hash, api::passwords::token_hash(&session.token));
    assert_eq!(rows[0].token_hash.len(), 64, "SHA-256, hex");
}

async fn repeated_failed_logons_are_throttled_per_user_and_per_address(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    api::passwords::add_user(&app.db, entity::tenant::DEFAULT, "bob", "bob-password", api::veeam::Role::PortalUser)
        .await
        .expect("user");
    let url = format!("{}/api/sessionMngr/?v=latest", app.base);
    let logon = |user: &str, password: &str| {
        let (url, credentials) = (url.clone(), basic(user, password));
        async move { request("POST", &url, &[("Authorization", &credentials), ("Accept", JSON)]).await }
    };
    for _ in 0..api::veeam::logon_gate::FAILURES_PER_USER {
        assert_eq!(logon("bob", "guess").await.status, 401);
    }
    let throttled = logon("bob", "guess").await;
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    let wait: u64 = throttled.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=61).contains(&wait), "{wait}");
    assert_eq!(throttled.json()["StatusCode"], 429);
    assert_eq!(logon("bob", "bob-password").await.status, 429, "the name is throttled, whatever the password");
    assert_eq!(logon(ADMIN.0, ADMIN.1).await.status, 201, "other names are not");
    for n in api::veeam::logon_gate::FAILURES_PER_USER..api::veeam::logon_gate::FAILURES_PER_ADDRESS {
        assert_eq!(logon(&format!("nobody{n}"), "guess").await.status, 401, "per-user counts are per name");
    }
    assert_eq!(logon(ADMIN.0, ADMIN.1).await.status, 429, "the address is throttled now");
}

/// A flood of wrong logons: memory stays flat, answers stay quick and well-formed (401, 429, or
/// 503 with Retry-After), and a logged-on client keeps being served.
#[actix_web::test]
async fn a_logon_flood_keeps_memory_flat_and_logged_on_clients_served() {
    let server = EmbeddedServer::new();
    let api = server.start().await;
    let session = Session::logon(&server.base(), ADMIN.0, ADMIN.1).await;
    let url = format!("{}/api/sessionMngr/?v=latest", server.base());
    let flood = (0..400).map(|n| {
        let url = url.clone();
        async move {
            let user = format!("user{}", n % 50);
            request("POST", &url, &[("Authorization", &basic(&user, "wrong")), ("Accept", JSON)]).await
        }
    });
    let reads = async {
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(session.call("GET", "/api/tasks", JSON).await.status);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        statuses
    };
    let (answers, reads) = tokio::join!(futures_util::future::join_all(flood), reads);
    assert!(reads.iter().all(|s| *s == 200), "a logged-on client got {reads:?}");
    for answer in &answers {
        assert!([401, 429, 503].contains(&answer.status), "{}: {}", answer.status, answer.body);
        assert!(answer.json()["StatusCode"].is_u64(), "{}", answer.body);
        if answer.status != 401 {
            assert!(answer.header("retry-after").is_some(), "{} without Retry-After", answer.status);
        }
    }
    let peak_kib = status_kib(api.pid(), "VmHWM");
    assert!(peak_kib < 256 * 1024, "peak memory {} MiB under the flood", peak_kib / 1024);
}

fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field")
}

/// Client mistakes are not server errors: none of them writes an ERROR line (in distributed mode
/// too, where PostgreSQL refuses strings that SQLite accepts).
#[actix_web::test]
async fn client_garbage_writes_no_error_log_line() {
    let server = EmbeddedServer::new();
    let database = tests::fresh_pg_database().await;
    let mut command = server.command();
    command
        .env("ADMIN_PASSWORD", ADMIN.1)
        .env("DATABASE_URL", &database)
        .env("QUEUE_PREFIX", format!("test-{}", tests::short_id()))
        .env("QUEUE_EXPIRES_MS", "60000")
        .env("AMQP_URL", tests::amqp_url());
    let mut api = server.start_with(command).await;
    let base = server.base();
    let session = Session::logon(&base, ADMIN.0, ADMIN.1).await;
    let sessions = format!("{base}/api/sessionMngr/");
    for headers in [
        vec![("Authorization", "Basic !!!".to_owned())],
        vec![("Authorization", basic("a\0b", "x"))],
        vec![("Authorization", "Bearer x".to_owned())],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(request("POST", &sessions, &headers).await.status, 401);
    }
    for (token, path) in [
        ("garbage", "/api/tasks"),
        (session.token.as_str(), "/api/backupSessions/%00"),
        (session.token.as_str(), "/api/jobs/%00/backupSessions"),
        (session.token.as_str(), "/api/logonSessions/%00"),
        (session.token.as_str(), "/api/query?type=BackupJobSession&filter=name==%00"),
        (session.token.as_str(), "/api/query?type=Task&page=-1"),
    ] {
        let resp = request("GET", &format!("{base}{path}"), &[("X-RestSvcSessionId", token)]).await;
        assert!(resp.status < 500, "{path}: {} {}", resp.status, resp.body);
    }
    let resp = request("GET", &format!("{base}/api/tasks"), &[("Cookie", "X-RestSvcSessionId=%00")]).await;
    assert_eq!(resp.status, 401);
    api.kill9();
    tests::drop_pg_database(&database).await;
    let log = std::fs::read_to_string(server.dir.join("api.log")).expect("log");
    assert!(!log.contains("ERROR"), "{log}");
}

in_both_modes!(
    a_filter_nested_thousands_deep_is_a_400_and_the_server_lives_on,
    every_answer_is_well_formed_and_a_404_whatever_an_id_holds,
    only_the_canonical_task_id_resolves,
    the_session_cookie_is_http_only_and_strict_and_logging_off_expires_it,
    a_cross_site_request_carrying_only_the_cookie_is_refused_and_writes_nothing,
    an_empty_cookie_does_not_hide_a_valid_header_token,
    logon_tokens_are_stored_only_as_hashes,
    repeated_failed_logons_are_throttled_per_user_and_per_address,
);

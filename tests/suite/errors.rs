//! Errors in the face's own format: unknown ids, bad actions, methods, Accept.

use tests::http::{JSON, XML, request};
use tests::{Mode, Options, TestApp, in_both_modes, xml};

async fn unknown_ids_are_404_in_the_negotiated_error_format(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    for path in [
        "/api/tasks/task-999",
        "/api/tasks/not-a-task",
        "/api/backupSessions/00000000-0000-0000-0000-000000000000",
        "/api/backupSessions/nope?format=Entity",
        "/api/jobs/nope",
        "/api/logonSessions/nope",
        "/api/nothing-here",
    ] {
        let resp = session.call("GET", path, JSON).await;
        assert_eq!(resp.status, 404, "{path}: {}", resp.body);
        assert_eq!(resp.json()["StatusCode"], 404, "{path}");
        let resp = session.call("GET", path, "").await;
        assert_eq!(resp.status, 404);
        assert_eq!(xml::attr(&resp.body, "Error", "StatusCode").as_deref(), Some("404"), "{path}");
    }
    let resp = session.call("GET", "/api/tasks/task-999", JSON).await;
    assert_eq!(resp.json()["Message"], "There is no backup task with id [task-999] in current rest session");
    assert_eq!(session.call("DELETE", "/api/tasks/task-999", "").await.status, 404);
    assert_eq!(session.call("POST", "/api/backupSessions/nope?action=stop", "").await.status, 404);
}

async fn an_accept_that_allows_neither_xml_nor_json_is_406(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    for accept in ["text/html", "application/json;q=0, application/xml;q=0", "image/png"] {
        let resp = session.call("GET", "/api/tasks", accept).await;
        assert_eq!(resp.status, 406, "{accept}");
        assert_eq!(xml::attr(&resp.body, "Error", "StatusCode").as_deref(), Some("406"));
    }
    assert_eq!(request("GET", &format!("{}/api/", app.base), &[("Accept", "text/plain")]).await.status, 406);
    assert_eq!(
        session.call("GET", "/api/tasks", "application/json;q=0.4, application/xml;q=0.9").await.content_type(),
        "application/xml; charset=utf-8"
    );
    assert_eq!(session.call("GET", "/api/tasks", XML).await.status, 200);
}

async fn bad_actions_and_methods_get_400_and_405_and_create_nothing(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let job = app.job_id("Runs").await;
    for (method, path, status) in [
        ("POST", format!("/api/jobs/{job}?action=explode"), 400),
        ("POST", format!("/api/jobs/{job}"), 400),
        ("PUT", format!("/api/jobs/{job}"), 405),
        ("DELETE", "/api/jobs".to_owned(), 405),
        ("POST", "/api/tasks".to_owned(), 405),
    ] {
        let resp = session.call(method, &path, JSON).await;
        assert_eq!(resp.status, status, "{method} {path}: {}", resp.body);
        assert_eq!(resp.json()["StatusCode"], status);
    }
    assert_eq!(
        session.get_json("/api/tasks").await["Tasks"].as_array().expect("list").len(),
        0,
        "nothing half-written"
    );
}

async fn a_role_that_may_not_start_or_stop_gets_403_and_nothing_is_written(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    api::passwords::add_user(
        &app.db,
        entity::tenant::DEFAULT,
        "operator",
        "operator-password",
        api::veeam::Role::RestoreOperator,
    )
    .await
    .expect("user");
    let admin = app.logon().await;
    let id = admin.start_job(&app.job_id("Runs").await).await;
    let operator = tests::Session::logon(&app.base, "operator", "operator-password").await;
    let job = app.job_id("Runs").await;
    for path in [
        format!("/api/jobs/{job}?action=start"),
        format!("/api/jobs/{job}?action=stop"),
        format!("/api/backupSessions/{id}?action=stop"),
    ] {
        let resp = operator.call("POST", &path, JSON).await;
        assert_eq!(resp.status, 403, "{path}: {}", resp.body);
        assert_eq!(resp.json()["Message"], "Access denied.");
        let resp = operator.call("POST", &path, "").await;
        assert_eq!(xml::attr(&resp.body, "Error", "StatusCode").as_deref(), Some("403"));
    }
    assert_eq!(
        operator.get_json(&format!("/api/backupSessions/{id}?format=Entity")).await["State"],
        "Working",
        "reads are allowed"
    );
    assert_eq!(
        operator.get_json("/api/tasks").await["Tasks"].as_array().expect("list").len(),
        0,
        "no task was created"
    );
}

async fn paths_and_parameters_are_matched_case_insensitively(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let job = app.job_id("Runs").await;
    assert_eq!(session.call("GET", &format!("/API/Jobs/{job}?FORMAT=entity"), JSON).await.json()["Type"], "Job");
    assert_eq!(session.call("GET", "/api/backupsessions?format=ENTITIES", JSON).await.status, 200);
    assert_eq!(session.call("GET", "/api/LogonSessions/", JSON).await.status, 200);
}

async fn links_ignore_host_and_forwarded_headers_unless_from_a_trusted_proxy(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let own = format!("{}/api/", app.base);
    let token = session.token.as_str();
    for spoof in [
        ("Host", "evil.example:9398"),
        ("X-Forwarded-Host", "evil.example"),
        ("Forwarded", "host=evil.example;proto=https"),
        ("X-Forwarded-Proto", "https"),
    ] {
        let headers = [("X-RestSvcSessionId", token), ("Accept", JSON), spoof];
        let jobs = request("GET", &format!("{}/api/jobs", app.base), &headers).await;
        let href = jobs.json()["Refs"][0]["Href"].as_str().expect("href").to_owned();
        assert!(href.starts_with(&own), "{spoof:?} shaped a link: {href}");
        let task =
            request("POST", &format!("{}/api/jobs/{}?action=start", app.base, app.job_id("Quick").await), &headers)
                .await;
        assert_eq!(task.status, 202, "{}", task.body);
        assert!(
            task.header("location").expect("location").starts_with(&own),
            "{spoof:?}: {:?}",
            task.header("location")
        );
    }

    // Behind a configured proxy its forwarded headers are believed, and only then.
    let proxied = TestApp::spawn(Options { trusted_proxies: vec!["127.0.0.0/8".into()], ..Options::default() }).await;
    let session = proxied.logon().await;
    let headers = [
        ("X-RestSvcSessionId", session.token.as_str()),
        ("Accept", JSON),
        ("X-Forwarded-Host", "em.example.com:9398"),
        ("X-Forwarded-Proto", "https"),
    ];
    let jobs = request("GET", &format!("{}/api/jobs", proxied.base), &headers).await;
    assert!(
        jobs.json()["Refs"][0]["Href"].as_str().expect("href").starts_with("https://em.example.com:9398/api/jobs/"),
        "{}",
        jobs.body
    );

    let configured =
        TestApp::spawn(Options { public_base_url: Some("https://em.example.com:9398/".into()), ..Default::default() })
            .await;
    let session = configured.logon().await;
    let task = session.act(&format!("/api/jobs/{}?action=start", configured.job_id("Quick").await)).await;
    assert!(task["Href"].as_str().expect("href").starts_with("https://em.example.com:9398/api/tasks/task-"), "{task}");
}

/// Each face answers its own paths in its own dialect; a path of no face gets a plain 404.
async fn a_path_that_belongs_to_no_face_gets_a_plain_404(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    for path in ["/", "/nothing", "/v0/sandboxes", "/v4/sandboxes", "/apis"] {
        let resp = request("GET", &format!("{}{path}", app.base), &[("Accept", JSON)]).await;
        assert_eq!(resp.status, 404, "{path}");
        assert!(resp.body.is_empty(), "{path}: no face's error body: {}", resp.body);
    }
    // `/api/sandbox` is the Daytona face's: its own errors, in its own body.
    let daytona = request("GET", &format!("{}/api/sandbox", app.base), &[("Accept", JSON)]).await;
    tests::daytona::assert_error(&daytona, 401, "Unauthorized");
    let acme = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    tests::daytona::assert_error(&acme.call("GET", "/api/sandbox/x/stop", None).await, 404, "Cannot GET");
    tests::daytona::assert_error(&acme.call("PUT", "/api/sandbox", None).await, 404, "Cannot PUT");
    // `/v2/sandboxes...` is the Vercel face's: its own 404, in its own body.
    let vercel = request("GET", &format!("{}/v2/sandboxes/x/stop", app.base), &[("Accept", JSON)]).await;
    tests::vercel::assert_error(&vercel, 404, "not_found");
    let veeam = request("GET", &format!("{}/API/Nothing-Here/", app.base), &[("Accept", JSON)]).await;
    assert_eq!((veeam.status, veeam.json()["StatusCode"].as_u64()), (404, Some(404)), "Veeam's own 404");
}

in_both_modes!(
    a_path_that_belongs_to_no_face_gets_a_plain_404,
    a_role_that_may_not_start_or_stop_gets_403_and_nothing_is_written,
    unknown_ids_are_404_in_the_negotiated_error_format,
    an_accept_that_allows_neither_xml_nor_json_is_406,
    bad_actions_and_methods_get_400_and_405_and_create_nothing,
    paths_and_parameters_are_matched_case_insensitively,
    links_ignore_host_and_forwarded_headers_unless_from_a_trusted_proxy,
);

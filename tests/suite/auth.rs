//! Logon sessions: Basic → token (header and cookie), expiry, logon session resources.

use std::time::Duration;
use tests::http::{JSON, request};
use tests::veeam::basic;
use tests::{ADMIN, Mode, Options, Session, TestApp, in_both_modes, xml};

async fn the_entry_point_is_anonymous_and_lists_the_logon_links(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let resp = request("GET", &format!("{}/api/", app.base), &[]).await;
    assert_eq!(resp.status, 200);
    assert!(resp.content_type().starts_with("application/xml"), "{}", resp.content_type());
    assert_eq!(xml::root_namespace(&resp.body).as_deref(), Some("http://www.veeam.com/ent/v1.0"));
    assert_eq!(xml::attr(&resp.body, "SupportedVersion", "Name").as_deref(), Some("v1_4"));
    let json = request("GET", &format!("{}/api", app.base), &[("Accept", JSON)]).await.json();
    let versions = json["SupportedVersions"]["SupportedVersions"].as_array().expect("versions");
    assert!(versions.iter().any(|v| v["Name"] == "v1_7"));
}

async fn logon_answers_201_with_the_token_as_header_and_cookie_and_a_logon_session(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    for version in ["latest", "v1_4", "v1_7"] {
        let resp = request(
            "POST",
            &format!("{}/api/sessionMngr/?v={version}", app.base),
            &[("Authorization", &basic(ADMIN.0, ADMIN.1))],
        )
        .await;
        assert_eq!(resp.status, 201, "{}", resp.body);
        let token = resp.header("X-RestSvcSessionId").expect("token");
        let cookie = resp.header("set-cookie").expect("cookie");
        assert!(cookie.starts_with(&format!("X-RestSvcSessionId={token}")), "{cookie}");
        assert!(cookie.contains("Path=/api"), "{cookie}");
        assert_eq!(xml::text(&resp.body, "UserName").as_deref(), Some(ADMIN.0));
        assert!(xml::text(&resp.body, "SessionId").is_some());
    }
}

async fn bad_or_missing_credentials_get_401_with_the_basic_challenge(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let url = format!("{}/api/sessionMngr/?v=latest", app.base);
    for headers in
        [vec![("Authorization", basic(ADMIN.0, "wrong"))], vec![("Authorization", basic("nobody", "x"))], vec![]]
    {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = request("POST", &url, &headers).await;
        assert_eq!(resp.status, 401, "{}", resp.body);
        assert_eq!(resp.header("www-authenticate"), Some("Basic Realm=RestSvc"));
        assert_eq!(xml::attr(&resp.body, "Error", "StatusCode").as_deref(), Some("401"));
    }
    let resp = request("POST", &url, &[("Authorization", &basic(ADMIN.0, "wrong")), ("Accept", JSON)]).await;
    assert_eq!(resp.json()["StatusCode"], 401);
    assert!(resp.json()["Message"].as_str().expect("message").contains("Invalid"));
}

async fn every_other_route_needs_a_live_token_and_the_cookie_wins_over_the_header(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let tasks = format!("{}/api/tasks", app.base);
    assert_eq!(request("GET", &tasks, &[]).await.status, 401);
    assert_eq!(request("GET", &tasks, &[("X-RestSvcSessionId", "forged")]).await.status, 401);
    let session = app.logon().await;
    assert_eq!(request("GET", &tasks, &[("X-RestSvcSessionId", &session.token)]).await.status, 200);
    let cookie = format!("X-RestSvcSessionId={}", session.token);
    assert_eq!(request("GET", &tasks, &[("Cookie", &cookie)]).await.status, 200);
    let bad_cookie = "X-RestSvcSessionId=forged";
    let resp = request("GET", &tasks, &[("Cookie", bad_cookie), ("X-RestSvcSessionId", &session.token)]).await;
    assert_eq!(resp.status, 401, "the cookie is used and the header ignored");
}

async fn a_session_idle_for_longer_than_the_timeout_expires(mode: Mode) {
    let app = TestApp::in_mode(mode, tests::Options { session_idle_timeout_secs: 1, ..Default::default() }).await;
    let session = app.logon().await;
    assert_eq!(session.call("GET", "/api/tasks", "").await.status, 200);
    // The passing of idle time is what is under test.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let resp = session.call("GET", "/api/tasks", JSON).await;
    assert_eq!(resp.status, 401, "{}", resp.body);
    assert_eq!(resp.json()["StatusCode"], 401);
    // An expired session that is never used again is pruned all the same.
    let _idle = app.logon().await;
    tests::wait_until("expired logon sessions to be pruned", Duration::from_secs(10), || async {
        entity::store::logons::list_for_user(&app.db, 1).await.expect("db").is_empty()
    })
    .await;
}

async fn logon_sessions_list_the_callers_own_first_and_delete_gives_204(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let first = app.logon().await;
    let second = app.logon().await;
    let list = second.get_json("/api/logonSessions").await;
    let sessions = list["LogonSessions"].as_array().expect("list");
    assert_eq!(sessions.len(), 2);
    let own_id = xml::text(&second.logon.body, "SessionId").expect("id");
    assert_eq!(sessions[0]["SessionId"], own_id.as_str());
    assert_eq!(second.get_json(&format!("/api/logonSessions/{own_id}")).await["UserName"], ADMIN.0);
    let first_id = xml::text(&first.logon.body, "SessionId").expect("id");
    assert_eq!(second.call("DELETE", &format!("/api/logonSessions/{first_id}"), "").await.status, 204);
    assert_eq!(first.call("GET", "/api/tasks", "").await.status, 401, "a deleted session is logged off");
    assert_eq!(second.call("GET", &format!("/api/logonSessions/{first_id}"), "").await.status, 404);
}

async fn the_veeam_python_client_flow_works_with_json_and_v1_4(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = Session::logon(&app.base, ADMIN.0, ADMIN.1).await;
    let list = session.get_json("/api/logonSessions").await;
    let id = list["LogonSessions"][0]["SessionId"].as_str().expect("id").to_owned();
    assert_eq!(session.call("DELETE", &format!("/api/logonSessions/{id}"), JSON).await.status, 204);
    assert_eq!(session.call("GET", "/api/jobs", JSON).await.status, 401);
}

in_both_modes!(
    the_entry_point_is_anonymous_and_lists_the_logon_links,
    logon_answers_201_with_the_token_as_header_and_cookie_and_a_logon_session,
    bad_or_missing_credentials_get_401_with_the_basic_challenge,
    every_other_route_needs_a_live_token_and_the_cookie_wins_over_the_header,
    logon_sessions_list_the_callers_own_first_and_delete_gives_204,
    the_veeam_python_client_flow_works_with_json_and_v1_4,
    a_session_idle_for_longer_than_the_timeout_expires,
);

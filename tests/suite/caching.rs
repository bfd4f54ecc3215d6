//! What is kept in memory changes no answer: two `api` instances on one database (distributed
//! mode), each with its own memory of finished tasks and credentials, agree with the database.
//! A poll never reports a state older than one the client saw; a task deleted on one is gone on
//! both once the delete returns; another user's task stays a 404 however often it was read; a
//! revoked token or a deleted logon session is refused by both once its revocation returns.

use std::time::Duration;
use tests::http::{JSON, request};
use tests::{Mode, Options, Session, TestApp, in_both_modes, wait_until};

const T: Duration = Duration::from_secs(30);

/// The order a task's states come in: a poll may only ever move forward.
fn rank(state: &str) -> u8 {
    match state {
        "Queued" => 0,
        "Running" => 1,
        "Finished" => 2,
        other => panic!("unknown state {other}"),
    }
}

#[actix_web::test]
async fn two_api_processes_never_answer_an_older_state_and_forget_a_deleted_task_together() {
    let app = TestApp::in_mode(Mode::Distributed, Options::default()).await;
    let other_base = app.another_api().await;
    let a = app.logon().await;
    // The same logon session reaches the other instance (it is in the database).
    let b = a.on(&other_base);

    // A stop polled on both, alternately, from submission to its end: never backwards.
    let session = a.start_job(&app.job_id("Runs").await).await;
    let task = a.act(&format!("/api/backupSessions/{session}?action=stop")).await;
    let id = task["TaskId"].as_str().expect("id").to_owned();
    let mut seen = 0;
    let mut polls = 0;
    loop {
        let client = if polls % 2 == 0 { &a } else { &b };
        let state = client.task(&id).await["State"].as_str().expect("state").to_owned();
        assert!(rank(&state) >= seen, "poll {polls} went back to {state}");
        seen = rank(&state);
        polls += 1;
        if state == "Finished" {
            break;
        }
        assert!(polls < 2_000, "the stop did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Both now answer it from memory, many times over, the same.
    let fields = |task: serde_json::Value| (task["State"].clone(), task["Result"].clone(), task["Operation"].clone());
    for _ in 0..20 {
        assert_eq!(fields(a.task(&id).await), fields(b.task(&id).await));
    }

    // Another user never gets it, cached or not.
    api::passwords::add_user(
        &app.db,
        entity::tenant::DEFAULT,
        "eve",
        "eve-password",
        api::veeam::Role::PortalAdministrator,
    )
    .await
    .expect("user");
    for base in [&app.base, &other_base] {
        let eve = Session::logon(base, "eve", "eve-password").await;
        assert_eq!(eve.call("GET", &format!("/api/tasks/{id}"), JSON).await.status, 404);
    }

    // Deleted on one instance while both are polled: gone on both once the delete has returned
    // (no time-based expiry: a finished task is kept for ever otherwise).
    let polled = |base: &str| {
        let headers = vec![("X-RestSvcSessionId".to_owned(), a.token.clone()), ("Accept".to_owned(), JSON.to_owned())];
        (format!("{base}/api/tasks/{id}"), headers)
    };
    gone_at_once_everywhere(vec![polled(&app.base), polled(&other_base)], 404, async {
        assert_eq!(b.call("DELETE", &format!("/api/tasks/{id}"), "").await.status, 204);
    })
    .await;
}

/// Credentials kept in memory stop working at once on every `api` process when they stop
/// being valid: a token revoked in the database (as `api token revoke` does, from another
/// process), a logon session logged off. The instances (two in distributed mode, the one in
/// embedded mode) are polled without pause, before, during and after: every request sent after
/// the revocation returned is a 401. (A revocation returns once every process has heard of it;
/// without that, an instance answers 200 until the notification, or its read of the last sync,
/// reaches it.)
async fn a_revoked_token_and_a_deleted_logon_session_stop_working_at_once_on_every_api_process(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let mut bases = vec![app.base.clone()];
    if let Mode::Distributed = mode {
        bases.push(app.another_api().await);
    }
    let here = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let kept = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let bearer = format!("Bearer {}", here.token);
    let polled = |base: &String| (format!("{base}/api/sandbox"), vec![("Authorization".to_owned(), bearer.clone())]);
    let hash = api::passwords::token_hash(&here.token);
    let (row, _) = entity::store::tenants::authenticate(&app.db, &hash).await.expect("db").expect("live");
    // Every instance answers from memory: each holds its lease.
    wait_until("every instance holds a lease", T, || async { leases(&app).await == bases.len() as i64 }).await;
    gone_at_once_everywhere(bases.iter().map(polled).collect(), 401, async {
        assert!(entity::store::tenants::revoke_token(&app.db, row.id).await.expect("db"));
    })
    .await;
    // Another token of the tenant is untouched.
    for base in &bases {
        let kept = tests::daytona::Daytona { base: base.clone(), token: kept.token.clone() };
        assert_eq!(kept.call("GET", "/api/sandbox", None).await.status, 200);
    }

    // A logon session used on every instance, logged off on the last.
    let a = app.logon().await;
    let b = a.on(bases.last().expect("an instance"));
    let polled = |base: &String| {
        let headers = vec![("X-RestSvcSessionId".to_owned(), a.token.clone()), ("Accept".to_owned(), JSON.to_owned())];
        (format!("{base}/api/tasks"), headers)
    };
    let id = tests::xml::text(&a.logon.body, "SessionId").expect("id");
    gone_at_once_everywhere(bases.iter().map(polled).collect(), 401, async {
        assert_eq!(b.call("DELETE", &format!("/api/logonSessions/{id}"), "").await.status, 204);
    })
    .await;
}

/// The leases held now.
async fn leases(app: &TestApp) -> i64 {
    // Every lease is behind a sync not taken yet.
    let last = entity::store::revocations::last_sync(&app.db).await.expect("db");
    entity::store::revocations::behind(&app.db, last + 1).await.expect("db")
}

/// Polls each of `polled` (a URL and its headers) without pause from two clients each, until
/// `revoke` has returned and each client has sent 20 more requests: every request answered
/// before the revocation began is a 200, and every one sent after it returned a `gone`. (One
/// sent before and answered after it began may be either.) The revocation begins once every
/// client has had a 200.
async fn gone_at_once_everywhere(
    polled: Vec<(String, Vec<(String, String)>)>,
    gone: u16,
    revoke: impl Future<Output = ()>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    // (began, returned) of the revocation.
    let window: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
    let ready = Arc::new(AtomicUsize::new(0));
    let mut pollers = Vec::new();
    for (url, headers) in polled.iter().flat_map(|p| [p.clone(), p.clone()]) {
        let (window, ready) = (window.clone(), ready.clone());
        pollers.push(actix_web::rt::spawn(async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut after = 0;
            let mut before = 0;
            while after < 20 {
                let sent = Instant::now();
                let status = request("GET", &url, &headers).await.status;
                let answered = Instant::now();
                let (began, returned) = *window.lock().expect("window");
                if returned.is_some_and(|at| sent > at) {
                    assert_eq!(status, gone, "{url}: a request sent after the revocation returned");
                    after += 1;
                } else if began.is_none_or(|at| answered < at) {
                    assert_eq!(status, 200, "{url}: a request answered before the revocation began");
                    if before == 0 {
                        ready.fetch_add(1, Ordering::SeqCst);
                    }
                    before += 1;
                }
            }
        }));
    }
    let clients = pollers.len();
    wait_until("every client has been answered", T, || async { ready.load(Ordering::SeqCst) == clients }).await;
    window.lock().expect("window").0 = Some(Instant::now());
    revoke.await;
    window.lock().expect("window").1 = Some(Instant::now());
    for poller in pollers {
        poller.await.expect("poller");
    }
}

/// A process that holds a lease but never hears a revocation (stalled, or cut off from the
/// database's notifications) delays the revocation until its lease has lapsed, and is refused
/// a new lease until it has heard it: it can never answer from memory after the revocation
/// returned.
async fn a_revocation_outwaits_the_lease_of_a_process_that_does_not_hear_it(mode: Mode) {
    use entity::store::revocations;
    let app = TestApp::in_mode(mode, Options::default()).await;
    let synced = revocations::last_sync(&app.db).await.expect("db");
    assert!(revocations::hold(&app.db, "stalled", synced).await.expect("db"), "a lease for a process up to date");
    let client = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    assert_eq!(client.call("GET", "/api/sandbox", None).await.status, 200);
    let hash = api::passwords::token_hash(&client.token);
    let (row, _) = entity::store::tenants::authenticate(&app.db, &hash).await.expect("db").expect("live");
    assert!(entity::store::tenants::revoke_token(&app.db, row.id).await.expect("revoked, and settled"));
    let now = revocations::last_sync(&app.db).await.expect("db");
    assert!(now > synced);
    assert_eq!(
        revocations::behind(&app.db, now).await.expect("db"),
        0,
        "it returned once the stalled lease had lapsed"
    );
    assert!(!revocations::hold(&app.db, "stalled", synced).await.expect("db"), "no lease before it has heard");
    assert_eq!(client.call("GET", "/api/sandbox", None).await.status, 401);
    assert!(revocations::hold(&app.db, "stalled", now).await.expect("db"), "a lease again once it has heard");
}

in_both_modes!(
    a_revoked_token_and_a_deleted_logon_session_stop_working_at_once_on_every_api_process,
    a_revocation_outwaits_the_lease_of_a_process_that_does_not_hear_it,
);

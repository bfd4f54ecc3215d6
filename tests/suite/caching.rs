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

/// A finished task's answer is rendered once and kept (`api::answers`), and still each request
/// gets its own: the format it asks for, links under its own base (behind a trusted proxy, the
/// host the proxy forwarded), its own `ETag`; and once the task is deleted, a 404.
async fn a_finished_tasks_kept_answer_is_still_each_requests_own(mode: Mode) {
    let app =
        TestApp::in_mode(mode, Options { trusted_proxies: vec!["127.0.0.0/8".into()], ..Options::default() }).await;
    let a = app.logon().await;
    let task = a.act(&format!("/api/jobs/{}?action=start", app.job_id("Quick").await)).await;
    let id = task["TaskId"].as_str().expect("id").to_owned();
    a.wait_finished(&id, T).await;
    let url = format!("{}/api/tasks/{id}", app.base);
    let get = |host: &'static str, accept: &'static str| {
        let headers = [
            ("X-RestSvcSessionId", a.token.clone()),
            ("Accept", accept.to_owned()),
            ("X-Forwarded-Host", host.to_owned()),
        ];
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            request("GET", &url, &headers).await
        }
    };
    for _ in 0..3 {
        for host in ["a.example", "b.example:9398"] {
            let href = format!("http://{host}/api/tasks/{id}");
            let json = get(host, JSON).await;
            assert_eq!((json.status, json.content_type()), (200, "application/json; charset=utf-8"), "{}", json.body);
            assert_eq!(json.json()["Href"], href.as_str());
            assert_eq!(json.json()["State"], "Finished");
            let xml = get(host, "application/xml").await;
            assert_eq!((xml.status, xml.content_type()), (200, "application/xml; charset=utf-8"), "{}", xml.body);
            assert!(xml.body.contains(&format!("Href=\"{href}\"")), "{}", xml.body);
            assert!(xml.body.contains("<State>Finished</State>"), "{}", xml.body);
            assert_ne!(json.header("etag"), xml.header("etag"));
        }
    }
    assert_eq!(a.call("DELETE", &format!("/api/tasks/{id}"), "").await.status, 204);
    for accept in [JSON, "application/xml"] {
        assert_eq!(get("a.example", accept).await.status, 404);
    }
}

in_both_modes!(
    a_revoked_token_and_a_deleted_logon_session_stop_working_at_once_on_every_api_process,
    a_revocation_outwaits_the_lease_of_a_process_that_does_not_hear_it,
    a_finished_tasks_kept_answer_is_still_each_requests_own,
);

/// A view kept in memory (a sandbox's, a session's) is never answered once a change of its spec
/// has committed, however soon after: here the change is committed by another connection (on
/// PostgreSQL, as another process would) and the view asked for right after, a hundred times.
/// (The process hears of changes by notification, which may come later than a client that saw
/// the change elsewhere: what it answers from memory waits for a barrier first. On SQLite it
/// reads the versions the triggers bump.)
#[actix_web::test]
async fn a_kept_view_is_never_answered_after_a_change_of_its_spec_has_committed() {
    use entity::store::specs;
    use sea_orm::ConnectionTrait;
    for (db, url) in tests::migrated_databases().await {
        let writer = match &url {
            Some(url) => sea_orm::Database::connect(url).await.expect("postgres"),
            None => db.clone(),
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut subscriptions = worker::events::Subscriptions::new(&db);
        let views = api::views::Views::following(&db, &mut subscriptions, shutdown.clone());
        subscriptions.follow(shutdown.clone());
        let spec = specs::create(&writer, entity::tenant::DEFAULT, &tests::plain_spec("kept")).await.expect("spec");
        // Once it listens (PostgreSQL), what is offered is answered.
        wait_until("the views to follow changes", T, || async {
            views.offer(&spec.id, 0_u32, views.epoch());
            views.fresh::<u32>(&spec.id).await.is_some()
        })
        .await;
        let change = format!("UPDATE workload_specs SET updated_at = CURRENT_TIMESTAMP WHERE id = '{}'", spec.id);
        for round in 1..=100_u32 {
            views.offer(&spec.id, round, views.epoch());
            assert_eq!(views.fresh::<u32>(&spec.id).await.as_deref(), Some(&round), "unchanged: answered from memory");
            writer.execute_unprepared(&change).await.expect("change");
            assert!(views.fresh::<u32>(&spec.id).await.is_none(), "round {round}: answered after its spec changed");
        }
        shutdown.cancel();
        if let Some(url) = url {
            drop((db, writer));
            tests::drop_pg_database(&url).await;
        }
    }
}

/// The order a sandbox's states come in while it is stopped, then started: a poll may only
/// ever move forward.
fn sandbox_rank(state: &str, starting_again: bool) -> u8 {
    match (state, starting_again) {
        ("started", false) => 0,
        ("stopping", false) => 1,
        ("stopped", _) => 2,
        ("starting", true) => 3,
        ("started", true) => 4,
        (other, _) => panic!("unexpected state {other}"),
    }
}

/// Two `api` processes answer a sandbox's and a session's polls from memory, and neither ever
/// answers a state older than one either has answered: polled alternately, from before a stop
/// to after the next start. Another tenant's sandbox stays a 404 on both, however often it was
/// read.
#[actix_web::test]
async fn two_api_processes_never_answer_an_older_sandbox_or_session_state() {
    let app = TestApp::in_mode(Mode::Distributed, Options::default()).await;
    let other_base = app.another_api().await;
    let a = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let b = tests::daytona::Daytona { base: other_base.clone(), token: a.token.clone() };
    let id = a.ok("POST", "/api/sandbox", Some(&serde_json::json!({"name": "polled"}))).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/sandbox/{id}");
    for client in [&a, &b] {
        assert_eq!(client.ok("GET", &path, None).await["state"], "started");
    }
    let mut seen = 0;
    let poll_until = async |to: &str, starting_again: bool, seen: &mut u8| {
        for polls in 0..4_000 {
            let client = if polls % 2 == 0 { &a } else { &b };
            let state = client.ok("GET", &path, None).await["state"].as_str().expect("state").to_owned();
            let rank = sandbox_rank(&state, starting_again);
            assert!(rank >= *seen, "poll {polls} went back to {state}");
            *seen = rank;
            if state == to {
                return;
            }
        }
        panic!("not {to}");
    };
    b.ok("POST", &format!("{path}/stop"), None).await;
    poll_until("stopped", false, &mut seen).await;
    a.ok("POST", &format!("{path}/start"), None).await;
    poll_until("started", true, &mut seen).await;

    let eve = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "eve").await;
    for base in [&app.base, &other_base] {
        let eve = tests::daytona::Daytona { base: base.clone(), token: eve.token.clone() };
        assert_eq!(eve.call("GET", &path, None).await.status, 404, "another tenant's sandbox");
    }

    // A Vercel session: running on both, then stopped on one; once the stop has answered, never
    // running again on either.
    let team = tests::vercel::Vercel::for_team(&app.base, &app.db, "acme").await;
    let body = serde_json::json!({"projectId": "p", "name": "polled-session", "persistent": false, "ports": []});
    let session = team.ok("POST", "/v3/sandboxes", Some(&body)).await["session"]["id"].as_str().expect("id").to_owned();
    let path = format!("/v2/sandboxes/sessions/{session}");
    let other = tests::vercel::Vercel { base: other_base.clone(), token: team.token.clone(), team: team.team.clone() };
    for client in [&team, &other] {
        for _ in 0..3 {
            assert_eq!(client.ok("GET", &path, None).await["session"]["status"], "running");
        }
    }
    other.ok("POST", &format!("{path}/stop"), None).await;
    for client in [&team, &other, &team, &other] {
        let status = client.ok("GET", &path, None).await["session"]["status"].as_str().expect("status").to_owned();
        assert_eq!(status, "stopped", "answered once stopped, so stopped everywhere after");
    }
}

/// A sandbox's kept view lasts only until a task scheduled for it comes due (its state changes
/// then, with no write): here its auto-stop comes due while the relay, which would publish it,
/// is not looking.
async fn a_kept_sandbox_view_ends_when_a_scheduled_task_comes_due(mode: Mode) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let app = TestApp::in_mode(mode, Options { relay_interval_ms: 120_000, ..Options::default() }).await;
    let acme = tests::daytona::Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let id = acme.ok("POST", "/api/sandbox", Some(&serde_json::json!({"name": "due"}))).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let scheduled = entity::store::tasks::scheduled_for(&app.db, &id).await.expect("db");
    assert_eq!(scheduled.len(), 1, "the auto-stop");
    let due = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    entity::task::Entity::update_many()
        .col_expr(entity::task::Column::NotBefore, Expr::value(due))
        .filter(entity::task::Column::Id.eq(scheduled[0].id))
        .exec(&app.db)
        .await
        .expect("db");
    let path = format!("/api/sandbox/{id}");
    for _ in 0..3 {
        assert_eq!(acme.ok("GET", &path, None).await["state"], "started", "not due yet");
    }
    tokio::time::sleep((due - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100)).await;
    assert_eq!(acme.ok("GET", &path, None).await["state"], "stopping", "due: its stop is pending");
}

in_both_modes!(a_kept_sandbox_view_ends_when_a_scheduled_task_comes_due);

/// What a task's life announces on PostgreSQL: its insert and its end change what a kept view
/// shows, and its end is what waiters and the finished-task cache wait for; its claim changes
/// neither, and announcing it cost every claim a turn on the database-wide lock that notifying
/// commits take (migration 22). Heard in commit order, so once the end is heard, everything
/// before it has been.
#[actix_web::test]
async fn a_task_announces_its_insert_and_its_end_but_not_its_claim() {
    use entity::state::{Outcome, TaskEvent};
    use entity::store::{specs, tasks};
    use migration::MigratorTrait;
    let url = tests::fresh_pg_database().await;
    let db = sea_orm::Database::connect(&url).await.expect("postgres");
    migration::Migrator::up(&db, None).await.expect("migrate");

    let spec = specs::create(&db, entity::tenant::DEFAULT, &tests::plain_spec("announced")).await.expect("spec");
    let user = entity::store::users::create(&db, entity::tenant::DEFAULT, "u", "x", "PortalAdministrator")
        .await
        .expect("user")
        .id;
    // Listening from here: the spec's creation is not counted.
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (listening_tx, mut listening) = tokio::sync::mpsc::unbounded_channel();
    let mut subscriptions = worker::events::Subscriptions::new(&db);
    for channel in [worker::events::CHANNEL, "taskq_view_changed"] {
        let (heard_tx, listening_tx) = (heard_tx.clone(), listening_tx.clone());
        subscriptions.on(channel, move |notice| match notice {
            worker::events::Notice::Payload { channel, payload } => {
                let _ = heard_tx.send((channel.to_owned(), payload.to_owned()));
            }
            worker::events::Notice::Listening => {
                let _ = listening_tx.send(());
            }
            worker::events::Notice::Lost => {}
        });
    }
    subscriptions.follow(shutdown.clone());
    tokio::time::timeout(T, listening.recv()).await.expect("listening").expect("listener");
    let new = tasks::NewTask {
        tenant_id: entity::tenant::DEFAULT,
        user_id: user,
        operation: entity::Operation::StopSpec,
        target_id: &spec.id,
        route: None,
        params: Default::default(),
    };
    let queued = tasks::insert(&db, new).await.expect("insert");
    let running = tasks::claim(&db, &[queued.id], "r").await.expect("claim").pop().expect("claimed");
    assert_eq!(
        (running.state, running.attempt, running.runner_id.as_deref()),
        (entity::TaskState::Running, 1, Some("r"))
    );
    assert_eq!(tasks::claim(&db, &[queued.id], "r2").await.expect("claim"), [], "claimed once");
    let outcome = Outcome::SpecGone { spec: spec.id.clone() };
    tasks::transition(&db, &running, TaskEvent::Finish(outcome)).await.expect("finish");

    // A last notification, committed after all of the above: once it is heard, so are they.
    let last = ("taskq_view_changed".to_owned(), "last".to_owned());
    sea_orm::ConnectionTrait::execute_unprepared(&db, "SELECT pg_notify('taskq_view_changed', 'last')")
        .await
        .expect("last");
    let mut told = Vec::new();
    while told.last() != Some(&last) {
        told.push(tokio::time::timeout(T, heard.recv()).await.expect("heard").expect("listener"));
    }
    told.pop();
    shutdown.cancel();
    let on = |channel: &str| told.iter().filter(|(c, _)| c == channel).map(|(_, p)| p.clone()).collect::<Vec<_>>();
    assert_eq!(on(worker::events::CHANNEL), vec![queued.id.to_string()], "the end alone: {told:?}");
    assert_eq!(on("taskq_view_changed"), vec![spec.id.clone(), spec.id.clone()], "insert and end: {told:?}");
    db.close().await.expect("close");
    tests::drop_pg_database(&url).await;
}

/// What the kept views' barrier stands on: a follower's sync answers only once every
/// notification committed before it was asked has been told, however soon after the commit it
/// is asked, while other connections notify too. When its connection is killed, what it may
/// have missed is announced (`Lost`, then `Listening`) before a sync succeeds again. (On
/// several threads, as in the `api`: the one asking is not the one relaying.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followers_sync_has_heard_everything_committed_before_it() {
    use sea_orm::ConnectionTrait;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use worker::events::Notice;
    let url = tests::fresh_pg_database().await;
    let db = sea_orm::Database::connect(&url).await.expect("postgres");
    let (heard, listened) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut subscriptions = worker::events::Subscriptions::new(&db);
    let follower = {
        let (heard, listened) = (heard.clone(), listened.clone());
        subscriptions
            .on("taskq_sync_test", move |notice| match notice {
                Notice::Payload { payload, .. } => {
                    heard.fetch_max(payload.parse().expect("a number"), Ordering::SeqCst);
                }
                Notice::Listening => {
                    listened.fetch_add(1, Ordering::SeqCst);
                }
                Notice::Lost => {}
            })
            .expect("PostgreSQL is followed")
    };
    subscriptions.follow(shutdown.clone());
    let noise = tokio::spawn({
        let db = db.clone();
        async move {
            loop {
                let _ = db.execute_unprepared("SELECT pg_notify('taskq_sync_noise', 'x')").await;
            }
        }
    });
    // Fifty at a time (one transaction), so that some are still on their way when a sync is asked.
    let notify = |n: u64| {
        let db = db.clone();
        async move {
            let (first, last) = (n * 50 - 49, n * 50);
            let sql =
                format!("SELECT pg_notify('taskq_sync_test', i::text) FROM generate_series({first}, {last}) AS i");
            db.execute_unprepared(&sql).await.expect("notify");
        }
    };
    wait_until("the follower to listen", T, || follower.sync()).await;
    for n in 1..=300 {
        notify(n).await;
        assert!(follower.sync().await, "sync {n}");
        assert_eq!(
            heard.load(Ordering::SeqCst),
            n * 50,
            "a sync answered before the notifications committed before it"
        );
    }

    let told = listened.load(Ordering::SeqCst);
    assert_eq!(kill_followers(&db).await, 1, "the follower's connection");
    wait_until("a sync after the connection was killed", T, || follower.sync()).await;
    assert!(listened.load(Ordering::SeqCst) > told, "listening again is announced");
    for n in 301..=400 {
        notify(n).await;
        assert!(follower.sync().await, "sync {n}");
        assert_eq!(heard.load(Ordering::SeqCst), n * 50, "after the reconnection");
    }
    noise.abort();
    shutdown.cancel();
    drop(db);
    tests::drop_pg_database(&url).await;
}

/// A process follows all its channels on one listening connection (every notifying commit
/// wakes each listening backend of the database): each channel's notifications go to its own
/// handlers only, in commit order, and when that one connection is lost, every handler is told
/// so, then told it listens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_every_channel_on_one_connection() {
    use sea_orm::ConnectionTrait;
    use std::sync::{Arc, Mutex};
    use worker::events::{Notice, Subscriptions};
    let url = tests::fresh_pg_database().await;
    let db = sea_orm::Database::connect(&url).await.expect("postgres");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let told: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut subscriptions = Subscriptions::new(&db);
    let mut followers = Vec::new();
    for (channel, name) in [("taskq_test_a", "a"), ("taskq_test_b", "b"), ("taskq_test_a", "a2")] {
        let told = told.clone();
        let follower = subscriptions.on(channel, move |notice| {
            let line = match notice {
                Notice::Payload { channel, payload } => format!("{name} {channel} {payload}"),
                Notice::Listening => format!("{name} listening"),
                Notice::Lost => format!("{name} lost"),
            };
            told.lock().expect("told").push(line);
        });
        followers.push(follower.expect("PostgreSQL is followed"));
    }
    subscriptions.follow(shutdown.clone());
    let follower = followers.pop().expect("a follower");
    wait_until("the subscriptions to listen", T, || follower.sync()).await;
    let take = || std::mem::take(&mut *told.lock().expect("told"));
    assert_eq!(take(), ["a listening", "b listening", "a2 listening"]);

    db.execute_unprepared("SELECT pg_notify('taskq_test_b', '1'), pg_notify('taskq_test_a', '2')").await.expect("one");
    db.execute_unprepared("SELECT pg_notify('taskq_test_c', '3')").await.expect("unfollowed");
    db.execute_unprepared("SELECT pg_notify('taskq_test_a', '4')").await.expect("two");
    assert!(follower.sync().await, "caught up");
    assert_eq!(
        take(),
        ["b taskq_test_b 1", "a taskq_test_a 2", "a2 taskq_test_a 2", "a taskq_test_a 4", "a2 taskq_test_a 4"]
    );

    assert_eq!(kill_followers(&db).await, 1, "one listening connection for every channel");
    wait_until("a sync after the connection was killed", T, || followers[0].sync()).await;
    let told_then = take();
    for name in ["a", "b", "a2"] {
        let (lost, listening) = (format!("{name} lost"), format!("{name} listening"));
        let at = |line: &String| told_then.iter().position(|told| told == line);
        assert!(at(&lost) < at(&listening) && at(&lost).is_some(), "{name} told of the loss first: {told_then:?}");
    }
    db.execute_unprepared("SELECT pg_notify('taskq_test_b', '5')").await.expect("again");
    assert!(followers[1].sync().await, "caught up again");
    assert_eq!(take(), ["b taskq_test_b 5"]);
    shutdown.cancel();
    drop(db);
    tests::drop_pg_database(&url).await;
}

/// Kills the connections of `db`'s database that synced a follower (other tests' databases are
/// left alone); how many. Then commits a notification no one follows: while nothing commits, a
/// sync is answered by the snapshot alone (nothing committed, nothing missed), and this one
/// must be heard, so the next sync waits for the follower to listen again.
async fn kill_followers(db: &sea_orm::DatabaseConnection) -> u64 {
    use sea_orm::ConnectionTrait;
    let killed = db
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE '%pg_notify($1%' AND pid <> pg_backend_pid()",
        )
        .await
        .expect("kill");
    db.execute_unprepared("SELECT pg_notify('taskq_test_unfollowed', 'after the kill')").await.expect("notify");
    killed.rows_affected()
}

/// The kept views' quiet barrier on PostgreSQL's own snapshots: a sync's quiet ends when a
/// transaction that was in progress at the sync commits, though it takes no new id.
#[tokio::test]
async fn a_syncs_quiet_ends_when_a_transaction_in_progress_commits() {
    use sea_orm::sqlx::{self, Connection, PgConnection};
    use worker::events::Quiet;
    let url = tests::fresh_pg_database().await;
    let (mut writer, mut syncing) =
        (PgConnection::connect(&url).await.expect("writer"), PgConnection::connect(&url).await.expect("syncing"));
    sqlx::query("BEGIN").execute(&mut writer).await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut writer).await.expect("an id in progress");
    // Another id may be handed out on the server between a sync's snapshot and its own id.
    let mut quiet = None;
    for _ in 0..1_000 {
        let (snapshot, xid): (String, String) =
            sqlx::query_as("SELECT pg_current_snapshot()::text, pg_current_xact_id()::text FROM pg_notify('x', '')")
                .fetch_one(&mut syncing)
                .await
                .expect("sync");
        quiet = Quiet::after(&snapshot, &xid);
        if quiet.is_some() {
            break;
        }
    }
    let quiet = quiet.expect("a sync with no other id between its snapshot and its own");
    sqlx::query("COMMIT").execute(&mut writer).await.expect("commit");
    let now: String =
        sqlx::query_scalar("SELECT pg_current_snapshot()::text").fetch_one(&mut syncing).await.expect("now");
    assert!(!quiet.still(&now), "{now}: the writer's commit ended the quiet");
    drop((writer, syncing));
    tests::drop_pg_database(&url).await;
}

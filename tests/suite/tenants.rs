//! Tenants and API tokens: tokens are created once, stored as hashes, listed without the secret
//! and revoked; another tenant's jobs, sessions and tasks do not exist for you.

use tests::http::JSON;
use tests::{EmbeddedServer, Mode, Options, Session, TestApp, in_both_modes};

#[actix_web::test]
async fn api_tokens_are_shown_once_stored_as_hashes_listed_without_the_secret_and_revoked() {
    let server = EmbeddedServer::new();
    let admin = |args: &[&str]| {
        let output = server.command().args(args).output().expect("api");
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let (ok, token) = admin(&["token", "create", "--tenant", "acme", "--name", "ci"]);
    assert!(ok, "{token}");
    let token = token.trim().to_owned();
    let secret = token.strip_prefix("tq_").expect("tq_ prefix");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret).expect("base64url");
    assert_eq!(bytes.len(), 32, "256 random bits");

    let db = server.db().await;
    let hash = api::passwords::token_hash(&token);
    let (row, tenant) = entity::store::tenants::authenticate(&db, &hash).await.expect("db").expect("a live token");
    let acme = entity::store::tenants::find_by_name(&db, "acme").await.expect("db").expect("tenant created");
    assert_eq!((row.tenant_id, tenant.id), (acme.id, acme.id));
    assert_ne!(row.token_hash, token, "only the hash is stored");

    let (ok, listing) = admin(&["token", "list"]);
    assert!(ok);
    assert!(
        listing.lines().any(|l| l.starts_with(&format!("{}\tacme\tci\t", row.id)) && l.ends_with("\t-")),
        "{listing}"
    );
    assert!(!listing.contains(secret), "the secret is never shown again");

    let (ok, _) = admin(&["token", "revoke", &row.id.to_string()]);
    assert!(ok);
    assert!(entity::store::tenants::authenticate(&db, &hash).await.expect("db").is_none(), "revoked");
    let (ok, _) = admin(&["token", "revoke", &row.id.to_string()]);
    assert!(!ok, "a token is revoked once");
    let (_, listing) = admin(&["token", "list"]);
    assert!(!listing.lines().any(|l| l.starts_with(&format!("{}\t", row.id)) && l.ends_with("\t-")), "{listing}");
}

async fn another_tenants_jobs_sessions_and_tasks_do_not_exist_for_you(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let admin = app.logon().await;
    let job = app.job_id("Runs").await;
    let id = admin.start_job(&job).await;
    let task = admin.get_json("/api/tasks").await["Tasks"][0]["TaskId"].as_str().expect("id").to_owned();

    let other = entity::store::tenants::find_or_create(&app.db, "other").await.expect("tenant");
    api::passwords::add_user(&app.db, other.id, "mallory", "mallory-password", api::veeam::Role::PortalAdministrator)
        .await
        .expect("user");
    let mallory = Session::logon(&app.base, "mallory", "mallory-password").await;
    assert_eq!(mallory.get_json("/api/jobs").await["Refs"].as_array().map(Vec::len), Some(0));
    assert_eq!(mallory.get_json("/api/backupSessions").await["Refs"].as_array().map(Vec::len), Some(0));
    for (method, path) in [
        ("GET", format!("/api/jobs/{job}")),
        ("GET", format!("/api/jobs/{job}/backupSessions")),
        ("POST", format!("/api/jobs/{job}?action=start")),
        ("POST", format!("/api/jobs/{job}?action=stop")),
        ("GET", format!("/api/backupSessions/{id}?format=Entity")),
        ("POST", format!("/api/backupSessions/{id}?action=stop")),
        ("GET", format!("/api/tasks/{task}")),
        ("DELETE", format!("/api/tasks/{task}")),
    ] {
        let resp = mallory.call(method, &path, JSON).await;
        assert_eq!(resp.status, 404, "{method} {path}: {}", resp.body);
        assert_eq!(resp.json()["StatusCode"], 404);
    }
    for kind in ["BackupJobSession", "Task"] {
        let result = mallory.get_json(&format!("/api/query?type={kind}&format=Entities")).await;
        assert!(!result.to_string().contains(&id), "{kind}: {result}");
        assert!(!result.to_string().contains(&task), "{kind}: {result}");
    }
    assert_eq!(mallory.get_json("/api/tasks").await["Tasks"].as_array().map(Vec::len), Some(0), "nothing was created");
    assert_eq!(admin.session(&id).await["State"], "Working", "and nothing was touched");
}

in_both_modes!(another_tenants_jobs_sessions_and_tasks_do_not_exist_for_you);

#[actix_web::test]
async fn spec_names_are_unique_within_a_tenant_not_across_tenants() {
    for (db, url) in tests::migrated_databases().await {
        let other = entity::store::tenants::find_or_create(&db, "other").await.expect("tenant").id;
        let spec = tests::plain_spec("shared name");
        let mine = entity::store::specs::upsert_by_name(&db, &spec).await.expect("the default tenant's");
        let theirs = entity::store::specs::create(&db, other, &spec).await.expect("another tenant may use the name");
        assert_ne!(mine.id, theirs.id);
        let again = entity::store::specs::create(&db, other, &spec).await.expect_err("but not twice");
        assert!(entity::store::specs::is_name_taken(&again), "{again}");
        // The jobs file updates the default tenant's spec of that name, not the other's.
        let updated = entity::store::specs::upsert_by_name(&db, &spec).await.expect("upsert");
        assert_eq!(updated.id, mine.id);
        if let Some(url) = url {
            tests::drop_pg_database(&url).await;
        }
    }
}

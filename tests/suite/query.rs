//! The query service: filters as real clients send them, sorting, paging, formats, errors.

use std::time::Duration;
use tests::{Mode, Options, Session, TestApp, in_both_modes, xml};

/// Percent-encodes a query value the way `requests` does (`;,()=` left as they are).
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b';' | b',' | b'(' | b')' | b'=' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn three_sessions(app: &TestApp, session: &Session) {
    for job in ["Quick", "Broken"] {
        let id = session.start_job(&app.job_id(job).await).await;
        session.wait_session_state(&id, "Stopped", Duration::from_secs(20)).await;
    }
    session.start_job(&app.job_id("Runs").await).await;
}

fn entities(result: &serde_json::Value) -> Vec<serde_json::Value> {
    result["Entities"]["BackupJobSessions"]["BackupJobSessions"].as_array().expect("entities").clone()
}

async fn filters_combine_and_or_groups_quoted_values_and_times_as_real_clients_send_them(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    three_sessions(&app, &session).await;
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let q = |filter: String| format!("/api/query?type=BackupJobSession&format=entities&filter={}", enc(&filter));

    let failed = session.get_json(&q(format!("result==\"Failed\";creationtime>\"{since}\""))).await;
    assert_eq!(entities(&failed).iter().map(|e| e["JobName"].clone()).collect::<Vec<_>>(), ["Broken"]);
    let ok = session
        .get_json(&q(format!("jobname==\"Quick\";(result==\"Success\",result==\"Warning\");creationtime>\"{since}\"")))
        .await;
    assert_eq!(entities(&ok).len(), 1);
    assert_eq!(entities(&session.get_json(&q("State==Working".into())).await)[0]["JobName"], "Runs");
    assert_eq!(
        entities(&session.get_json(&q("Result>Success".into())).await).len(),
        1,
        "enum order: Failed only (Runs is None)"
    );
    assert_eq!(entities(&session.get_json(&q(format!("CreationTime<{since}"))).await).len(), 0);
    assert_eq!(entities(&session.get_json(&q("jobname!=Quick".into())).await).len(), 2);
}

async fn results_are_sorted_and_paged_with_paging_links(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    three_sessions(&app, &session).await;
    let all = session.get_json("/api/query?type=BackupJobSession").await;
    assert_eq!(all["PagingInfo"]["PageSize"], 100, "the default page size");
    assert_eq!(all["Refs"]["Refs"].as_array().expect("refs").len(), 3);
    assert_eq!(all["Refs"]["Refs"][0]["Type"], "BackupJobSessionReference");

    let page = session
        .get_json("/api/query?type=BackupJobSession&format=Entities&sortDesc=CreationTime&pageSize=1&page=2")
        .await;
    assert_eq!(entities(&page)[0]["JobName"], "Broken");
    assert_eq!((page["PagingInfo"]["PageNum"].as_i64(), page["PagingInfo"]["PagesCount"].as_i64()), (Some(2), Some(3)));
    let rels: Vec<_> = page["PagingInfo"]["Links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["Rel"].as_str().expect("rel").to_owned())
        .collect();
    assert_eq!(rels, ["First", "Previous", "Next", "Last"]);
    let next = page["PagingInfo"]["Links"][2]["Href"].as_str().expect("href").to_owned();
    let next_page = session.get_json(next.strip_prefix(&app.base).expect("absolute href")).await;
    assert_eq!(entities(&next_page)[0]["JobName"], "Quick");
    let asc = session.get_json("/api/query?type=BackupJobSession&format=Entities&sortAsc=jobname").await;
    assert_eq!(
        entities(&asc).iter().map(|e| e["JobName"].as_str().expect("name").to_owned()).collect::<Vec<_>>(),
        ["Broken", "Quick", "Runs"]
    );
}

async fn task_queries_and_the_xml_query_result(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    three_sessions(&app, &session).await;
    let finished = session.get_json("/api/query?type=Task&filter=State==Finished&sortAsc=TaskId").await;
    assert_eq!(finished["Resources"]["Tasks"]["Tasks"].as_array().expect("tasks").len(), 3);
    let resp = session.call("GET", "/api/query?type=BackupJobSession&format=Entities&pageSize=2", "").await;
    assert_eq!(resp.status, 200);
    let names = xml::element_names(&resp.body);
    assert_eq!(names[..3], ["QueryResult", "Entities", "BackupJobSessions"]);
    assert_eq!(xml::attr(&resp.body, "PagingInfo", "PagesCount").as_deref(), Some("2"));
}

async fn malformed_queries_get_400_errors_that_say_why(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    for (query, says) in [
        ("type=BackupJobSession&filter=colour==red", "Unknown field"),
        ("type=BackupJobSession&filter=(result==Failed", "Missing ')'"),
        ("type=BackupJobSession&filter=result=Failed", "Expected =="),
        ("type=BackupJobSession&filter=creationtime>yesterday", "not a valid value"),
        ("type=BackupJobSession&pageSize=0", "pageSize"),
        ("type=BackupJobSession&page=x", "page"),
        ("type=BackupJobSession&sortAsc=colour", "Unknown field"),
        ("type=Spaceship", "not supported"),
        ("format=Entities", "'type'"),
    ] {
        let query = query.replace('>', "%3E");
        let resp = session.call("GET", &format!("/api/query?{query}"), tests::http::JSON).await;
        assert_eq!(resp.status, 400, "{query}: {}", resp.body);
        assert!(resp.json()["Message"].as_str().expect("message").contains(says), "{query}: {}", resp.body);
    }
}

/// Quotes a filter value (a quote doubled).
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// The database filters every field as the representation shows it: each session is found by
/// `Field==` its own value (in another letter case for text) and not by `Field!=` it; times
/// (shown to the millisecond) bracket it; nulls equal nothing; constant fields hold for all.
async fn every_field_filters_in_the_database_as_the_representation_shows_it(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    three_sessions(&app, &session).await;
    let uids = |filter: &str| {
        let path = format!("/api/query?type=BackupJobSession&format=Entities&filter={}", enc(filter));
        let session = &session;
        async move {
            let result = session.get_json(&path).await;
            entities(&result).iter().map(|e| e["UID"].as_str().expect("uid").to_owned()).collect::<Vec<_>>()
        }
    };
    let all = entities(&session.get_json("/api/query?type=BackupJobSession&format=Entities").await);
    assert_eq!(all.len(), 3);
    for entity in &all {
        let uid = entity["UID"].as_str().expect("uid").to_owned();
        for (field, key) in [
            ("Name", "Name"),
            ("JobName", "JobName"),
            ("JobType", "JobType"),
            ("JobUid", "JobUid"),
            ("Uid", "UID"),
            ("State", "State"),
            ("Result", "Result"),
            ("Progress", "Progress"),
            ("IsRetry", "IsRetry"),
        ] {
            let value = match &entity[key] {
                serde_json::Value::String(text) => text.to_uppercase(),
                other => other.to_string(),
            };
            let equal = uids(&format!("{field}=={}", quoted(&value))).await;
            assert!(equal.contains(&uid), "{field}=={value} finds {uid}: {equal:?}");
            let unequal = uids(&format!("{field}!={}", quoted(&value))).await;
            assert!(!unequal.contains(&uid), "{field}!={value} does not: {unequal:?}");
            assert_eq!(equal.len() + unequal.len(), 3, "{field}: == and != split the sessions");
        }
        let created = entity["CreationTimeUTC"].as_str().expect("time");
        assert!(uids(&format!("CreationTime>={created}")).await.contains(&uid));
        assert!(!uids(&format!("CreationTime<{created}")).await.contains(&uid));
        match entity["EndTimeUTC"].as_str() {
            Some(ended) => assert!(uids(&format!("EndTime>={ended}")).await.contains(&uid)),
            None => {
                // A running session has no end: it matches != anything and nothing else.
                assert!(uids("EndTime!=2000-01-01").await.contains(&uid));
                assert!(!uids("EndTime>2000-01-01").await.contains(&uid));
                assert!(!uids("EndTime<2999-01-01").await.contains(&uid));
            }
        }
    }
    assert!(uids("IsRetry==true").await.is_empty());
    assert_eq!(uids("Progress<100").await.len(), 1, "the running one");
    assert_eq!(uids("JobType==backup;JobName>quick").await.len(), 1, "Runs");
    let by_type = session.get_json("/api/query?type=BackupJobSession&format=Entities&sortDesc=JobType").await;
    assert_eq!(entities(&by_type).len(), 3, "sorting on a field of the job");
    let ended_last = session.get_json("/api/query?type=BackupJobSession&format=Entities&sortDesc=EndTime").await;
    assert_eq!(entities(&ended_last)[2]["EndTimeUTC"], serde_json::Value::Null, "nulls last when descending");
    let ended_first = session.get_json("/api/query?type=BackupJobSession&format=Entities&sortAsc=EndTime").await;
    assert_eq!(entities(&ended_first)[0]["EndTimeUTC"], serde_json::Value::Null, "and first when ascending");
    // Pages far past the end, and page sizes past any integer the database holds.
    for query in
        ["page=1000000000000&pageSize=1000000000000", "pageSize=18446744073709551615", "page=18446744073709551615"]
    {
        let result = session.get_json(&format!("/api/query?type=BackupJobSession&format=Entities&{query}")).await;
        assert!(result["PagingInfo"]["PagesCount"].as_i64().is_some(), "{query}: {result}");
    }
    let tasks = session.get_json("/api/query?type=Task&filter=Operation==startjob;TaskId==TASK-1").await;
    let tasks = tasks["Resources"]["Tasks"]["Tasks"].as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["TaskId"], "task-1");
}

/// The unfiltered task query's `PagesCount` (one task a page) is every task of the user, from
/// the counts the database keeps rather than a scan: right after starts submitted all at once,
/// after deletes racing more starts, and never another user's; a filtered query still counts
/// its matches.
async fn the_task_querys_page_count_is_every_task_of_the_user_exactly(mode: Mode) {
    use futures_util::future::join_all;
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let quick = app.job_id("Quick").await;
    let user = entity::store::users::find_by_name(&app.db, tests::ADMIN.0).await.expect("db").expect("admin").id;
    let stored = || async { entity::store::tasks::list_for_user(&app.db, user).await.expect("db").len() as u64 };
    let pages = |filter: &str| {
        let path = format!("/api/query?type=Task&pageSize=1{filter}");
        let session = &session;
        async move { session.get_json(&path).await["PagingInfo"]["PagesCount"].as_u64().expect("PagesCount") }
    };
    let start_path = format!("/api/jobs/{quick}?action=start");
    let start = || session.act(&start_path);
    let started: Vec<_> = join_all((0..12).map(|_| start())).await;
    assert_eq!(pages("").await, stored().await);
    assert_eq!(stored().await, 12);

    let ids: Vec<String> = started.iter().map(|t| t["TaskId"].as_str().expect("TaskId").to_owned()).collect();
    for id in &ids {
        session.wait_finished(id, Duration::from_secs(20)).await;
    }
    let paths: Vec<String> = ids.iter().take(6).map(|id| format!("/api/tasks/{id}")).collect();
    let deletes = join_all(paths.iter().map(|path| session.call("DELETE", path, "")));
    let (deleted, more) = futures_util::join!(deletes, join_all((0..5).map(|_| start())));
    assert!(deleted.iter().all(|r| r.status == 204));
    assert_eq!(more.len(), 5);
    assert_eq!(stored().await, 11);
    assert_eq!(pages("").await, 11);
    assert_eq!(
        entity::store::tasks::count_of_user(&app.db, user).await.expect("db"),
        11,
        "the kept count, as the stored rows"
    );

    // Another user's count is their own; a filter counts its matches.
    api::passwords::add_user(&app.db, entity::tenant::DEFAULT, "eve", "eve-pw", api::veeam::Role::PortalAdministrator)
        .await
        .expect("user");
    let eve = Session::logon(&app.base, "eve", "eve-pw").await;
    assert_eq!(eve.get_json("/api/query?type=Task&pageSize=1").await["PagingInfo"]["PagesCount"], 1, "none: one page");
    for id in &ids[6..] {
        assert_eq!(session.task(id).await["State"], "Finished");
    }
    let finished = entity::store::tasks::list_for_user(&app.db, user)
        .await
        .expect("db")
        .iter()
        .filter(|t| t.state == entity::TaskState::Finished)
        .count() as u64;
    assert_eq!(pages(&format!("&filter={}", enc("State==Finished"))).await, finished.max(1));
}

in_both_modes!(
    the_task_querys_page_count_is_every_task_of_the_user_exactly,
    every_field_filters_in_the_database_as_the_representation_shows_it,
    filters_combine_and_or_groups_quoted_values_and_times_as_real_clients_send_them,
    results_are_sorted_and_paged_with_paging_links,
    task_queries_and_the_xml_query_result,
    malformed_queries_get_400_errors_that_say_why,
);

//! Reference and entity representations, XSD element order, JSON nulls.

use std::time::Duration;
use tests::http::JSON;
use tests::{Mode, Options, TestApp, in_both_modes, xml};

async fn a_session_has_a_reference_and_an_entity_representation_in_xsd_order(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Runs").await).await;

    let reference = session.call("GET", &format!("/api/backupSessions/{id}"), "").await.body;
    assert_eq!(xml::element_names(&reference)[0], "EntityRef");
    assert_eq!(xml::attr(&reference, "EntityRef", "Type").as_deref(), Some("BackupJobSessionReference"));
    assert_eq!(xml::attr(&reference, "EntityRef", "UID"), Some(format!("urn:veeam:BackupJobSession:{id}")));

    let entity = session.call("GET", &format!("/api/backupSessions/{id}?format=Entity"), "").await.body;
    let children: Vec<String> = xml::element_names(&entity).into_iter().filter(|n| n != "Link").collect();
    // A running session has no EndTimeUTC and no FailureMessage (both minOccurs=0).
    assert_eq!(
        children,
        [
            "BackupJobSession",
            "Links",
            "JobUid",
            "JobName",
            "JobType",
            "CreationTimeUTC",
            "State",
            "Result",
            "Progress",
            "IsRetry"
        ]
    );
    assert_eq!(xml::attr(&entity, "Link", "Rel").as_deref(), Some("Up"));
    assert!(entity.contains(&format!("backupSessions/{id}?action=stop")), "a Stop link: {entity}");

    let json = session.get_json(&format!("/api/backupSessions/{id}?format=Entity")).await;
    let keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys[..3], ["IsRetry", "JobUid", "JobName"], "most-derived members first");
    assert_eq!(keys[keys.len() - 3..], ["Links", "Href", "Type"], "ResourceType members last");
    assert!(json["EndTimeUTC"].is_null() && json["FailureMessage"].is_null(), "absent members are null: {json}");
    assert_eq!(json["Links"].as_array().expect("array")[0]["Name"], "Runs");

    let refs = session.get_json("/api/backupSessions").await;
    assert_eq!(refs["Refs"][0]["Type"], "BackupJobSessionReference");
    let list = session.call("GET", "/api/backupSessions", "").await.body;
    assert_eq!(xml::element_names(&list)[..2], ["EntityReferences", "Ref"]);
    let entities = session.call("GET", "/api/backupSessions?format=Entity", JSON).await.json();
    assert_eq!(entities["BackupJobSessions"][0]["UID"], format!("urn:veeam:BackupJobSession:{id}"));
}

async fn a_finished_task_has_a_result_and_times_are_utc_with_z(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let id = session.start_job(&app.job_id("Quick").await).await;
    let stopped = session.wait_session_state(&id, "Stopped", Duration::from_secs(20)).await;
    for field in ["CreationTimeUTC", "EndTimeUTC"] {
        let at = stopped[field].as_str().expect("time");
        assert!(at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{field}: {at}");
    }
    assert_eq!(stopped["Progress"], 100);
    let tasks = session.call("GET", "/api/tasks", "").await.body;
    assert_eq!(xml::element_names(&tasks)[..2], ["Tasks", "Task"]);
    assert_eq!(xml::attr(&tasks, "Result", "Success").as_deref(), Some("true"));
    assert_eq!(xml::text(&tasks, "Message").as_deref(), Some("Job \"Quick\" triggered to start."));
}

in_both_modes!(
    a_session_has_a_reference_and_an_entity_representation_in_xsd_order,
    a_finished_task_has_a_result_and_times_are_utc_with_z,
);

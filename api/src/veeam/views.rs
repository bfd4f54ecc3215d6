//! Veeam representations. Each view renders itself twice, side by side: JSON (PascalCase keys
//! identical to the XML names, most-derived members first, `null` for absent members, `Links` as
//! an array, lists as `{"<Plural>":[...]}`) and XML (attributes and children in XSD order).

use super::xml::Xml;
use chrono::{DateTime, Utc};
use entity::{logon_session, task, workload, workload_spec};
use serde_json::{Value, json};

pub trait Representation {
    fn json(&self) -> Value;
    fn xml(&self, x: &mut Xml);
    /// The JSON as text (a view on a hot path writes it without building a `Value`).
    fn json_text(&self) -> String {
        self.json().to_string()
    }
}

/// Absolute URLs under the public base (`http://host:port`).
#[derive(Clone)]
pub struct Hrefs {
    pub base: String,
}

impl Hrefs {
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/{path}", self.base)
    }
    pub fn task(&self, task: &task::Model) -> String {
        self.api(&format!("tasks/{}", super::ids::task_id(task)))
    }
    pub fn session(&self, id: &str) -> String {
        self.api(&format!("backupSessions/{id}"))
    }
    pub fn job(&self, id: &str) -> String {
        self.api(&format!("jobs/{id}"))
    }
}

/// Veeam's `xs:dateTime`: UTC with `Z`, trailing fractional zeros dropped.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    let text = at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    format!("{}Z", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A link; in JSON `{"Rel", "Href", "Name", "Type"}`.
#[derive(Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Link {
    pub rel: &'static str,
    pub href: String,
    pub name: Option<String>,
    #[serde(rename = "Type")]
    pub kind: Option<&'static str>,
}

impl Link {
    pub fn new(rel: &'static str, kind: Option<&'static str>, href: String) -> Self {
        Self { rel, href, name: None, kind }
    }
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
}

pub fn links_json(links: &[Link]) -> Value {
    serde_json::to_value(links).unwrap_or_default()
}

pub fn links_xml(x: &mut Xml, links: &[Link]) {
    x.element("Links", &[], |x| {
        for l in links {
            x.empty(
                "Link",
                &[("Rel", Some(l.rel)), ("Type", l.kind), ("Href", Some(&l.href)), ("Name", l.name.as_deref())],
            );
        }
    });
}

/// A list resource: `{"<key>":[...]}` in JSON, `<root>` with the items as children in XML.
pub struct List<T> {
    pub root: &'static str,
    pub key: &'static str,
    pub items: Vec<T>,
}

impl<T: Representation> Representation for List<T> {
    fn json(&self) -> Value {
        json!({ self.key: self.items.iter().map(Representation::json).collect::<Vec<_>>() })
    }
    fn xml(&self, x: &mut Xml) {
        x.element(self.root, &[], |x| self.items.iter().for_each(|item| item.xml(x)));
    }
}

// ---------------------------------------------------------------------------------------------
// Error

pub struct ErrorView {
    pub status: u16,
    pub message: String,
}

impl Representation for ErrorView {
    fn json(&self) -> Value {
        json!({"FirstChanceExceptionMessage": null, "Message": self.message, "StackTrace": null, "Status": null, "StatusCode": self.status})
    }
    fn xml(&self, x: &mut Xml) {
        x.element("Error", &[("Message", Some(&self.message)), ("StatusCode", Some(&self.status.to_string()))], |_| {});
    }
}

// ---------------------------------------------------------------------------------------------
// Task

/// Enterprise Manager's name of a workload state: a running session is "Working".
pub fn state_name(state: entity::WorkloadState) -> &'static str {
    match state {
        entity::WorkloadState::Starting => "Starting",
        entity::WorkloadState::Running => "Working",
        entity::WorkloadState::Stopping => "Stopping",
        entity::WorkloadState::Stopped => "Stopped",
    }
}

/// A session's `Result`: None until it has stopped, then Success when its command succeeded by
/// itself, else Failed (EM's Warning is never produced).
pub fn result_name(session: &workload::Model) -> &'static str {
    match session.succeeded {
        None => "None",
        Some(true) => "Success",
        Some(false) => "Failed",
    }
}

/// A session's `Progress`: it has no stages, so 0 until it has stopped, then 100.
pub fn progress(session: &workload::Model) -> i32 {
    if session.state == entity::WorkloadState::Stopped { 100 } else { 0 }
}

/// Enterprise Manager's name of an engine operation.
pub fn operation_name(operation: entity::Operation) -> &'static str {
    match operation {
        entity::Operation::StartWorkload => "StartJob",
        entity::Operation::StopSpec => "StopJob",
        entity::Operation::StopWorkload => "StopJobSession",
        entity::Operation::DeleteSpec => "DeleteJob",
        entity::Operation::SnapshotWorkload => "SnapshotJobSession",
        entity::Operation::DeleteSnapshot => "DeleteSnapshot",
    }
}

pub struct TaskView {
    pub task_id: String,
    pub state: &'static str,
    pub operation: String,
    /// `(Success, Message)` once the task is finished.
    pub result: Option<(bool, Option<String>)>,
    pub links: Vec<Link>,
    pub href: String,
}

impl TaskView {
    pub fn new(task: &task::Model, hrefs: &Hrefs) -> Self {
        let href = hrefs.task(task);
        let mut links = vec![Link::new("Delete", Some("Task"), href.clone())];
        let finished = task.state.is_final();
        let ended = task.ended();
        if let Some(session) = ended.as_ref().and_then(|outcome| outcome.workload()) {
            links.push(Link::new(
                "Related",
                Some("BackupJobSession"),
                format!("{}?format=Entity", hrefs.session(session)),
            ));
        }
        Self {
            task_id: super::ids::task_id(task),
            // Veeam has no queued state: a task is Running until it is Finished.
            state: if finished { "Finished" } else { "Running" },
            operation: operation_name(task.operation).to_owned(),
            result: ended.as_ref().map(|outcome| {
                let (success, message) = super::messages::result(outcome, task);
                (success, Some(message))
            }),
            links,
            href,
        }
    }
}

/// A task in JSON, written straight from the view (the most polled answer).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct TaskJson<'a> {
    task_id: &'a str,
    state: &'a str,
    operation: &'a str,
    result: Option<TaskResultJson<'a>>,
    links: &'a [Link],
    href: &'a str,
    #[serde(rename = "Type")]
    kind: &'static str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct TaskResultJson<'a> {
    message: Option<&'a str>,
    success: bool,
    credentials_needed: bool,
    confirmation_needed: bool,
}

impl TaskView {
    fn wire(&self) -> TaskJson<'_> {
        TaskJson {
            task_id: &self.task_id,
            state: self.state,
            operation: &self.operation,
            result: self.result.as_ref().map(|(success, message)| TaskResultJson {
                message: message.as_deref(),
                success: *success,
                credentials_needed: false,
                confirmation_needed: false,
            }),
            links: &self.links,
            href: &self.href,
            kind: "Task",
        }
    }
}

impl Representation for TaskView {
    fn json(&self) -> Value {
        serde_json::to_value(self.wire()).unwrap_or_default()
    }
    fn json_text(&self) -> String {
        serde_json::to_string(&self.wire()).unwrap_or_default()
    }
    fn xml(&self, x: &mut Xml) {
        x.element("Task", &[("Type", Some("Task")), ("Href", Some(&self.href))], |x| {
            links_xml(x, &self.links);
            x.text("TaskId", Some(&self.task_id));
            x.text("State", Some(self.state));
            x.text("Operation", Some(&self.operation));
            if let Some((success, message)) = &self.result {
                let success = success.to_string();
                x.element("Result", &[("Success", Some(&success))], |x| x.text("Message", message.as_deref()));
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Backup job sessions

fn session_uid(id: &str) -> String {
    format!("urn:veeam:BackupJobSession:{id}")
}

fn session_links(s: &workload::Model, hrefs: &Hrefs, alternate: Link) -> Vec<Link> {
    let href = hrefs.session(&s.id);
    vec![
        Link::new("Up", Some("JobReference"), hrefs.job(&s.spec_id)).named(&s.spec_name),
        alternate,
        Link::new("Down", Some("BackupTaskSessionReferenceList"), format!("{href}/taskSessions")),
        Link::new("Stop", None, format!("{href}?action=stop")),
    ]
}

pub struct BackupJobSessionView<'a> {
    pub session: &'a workload::Model,
    /// Its job's `JobType` (see `JobTypes`).
    pub job_type: &'a str,
    pub hrefs: &'a Hrefs,
}

impl BackupJobSessionView<'_> {
    fn href(&self) -> String {
        format!("{}?format=Entity", self.hrefs.session(&self.session.id))
    }
    fn links(&self) -> Vec<Link> {
        let s = self.session;
        let alternate =
            Link::new("Alternate", Some("BackupJobSessionReference"), self.hrefs.session(&s.id)).named(&s.name);
        session_links(s, self.hrefs, alternate)
    }
}

impl Representation for BackupJobSessionView<'_> {
    fn json(&self) -> Value {
        let s = self.session;
        json!({
            "IsRetry": false,
            "JobUid": job_uid(&s.spec_id), "JobName": s.spec_name, "JobType": self.job_type,
            "CreationTimeUTC": timestamp(&s.created_at), "EndTimeUTC": s.ended_at.as_ref().map(timestamp),
            "State": state_name(s.state), "Result": result_name(s), "Progress": progress(s),
            "FailureMessage": super::messages::failure_message(s),
            "Name": s.name, "UID": session_uid(&s.id),
            "Links": links_json(&self.links()), "Href": self.href(), "Type": "BackupJobSession",
        })
    }
    fn xml(&self, x: &mut Xml) {
        let s = self.session;
        let (href, uid) = (self.href(), session_uid(&s.id));
        let attrs = [
            ("Type", Some("BackupJobSession")),
            ("Href", Some(href.as_str())),
            ("Name", Some(s.name.as_str())),
            ("UID", Some(uid.as_str())),
        ];
        x.element("BackupJobSession", &attrs, |x| {
            links_xml(x, &self.links());
            x.text("JobUid", Some(&job_uid(&s.spec_id)));
            x.text("JobName", Some(&s.spec_name));
            x.text("JobType", Some(self.job_type));
            x.text("CreationTimeUTC", Some(&timestamp(&s.created_at)));
            x.text("EndTimeUTC", s.ended_at.as_ref().map(timestamp).as_deref());
            x.text("State", Some(state_name(s.state)));
            x.text("Result", Some(result_name(s)));
            x.text("Progress", Some(&progress(s).to_string()));
            x.text("FailureMessage", super::messages::failure_message(s).as_deref());
            x.text("IsRetry", Some("false"));
        });
    }
}

/// The reference representation (`EntityRef`, or `Ref` inside `EntityReferences`).
pub struct EntityRefView {
    pub element: &'static str,
    pub kind: &'static str,
    pub href: String,
    pub name: String,
    pub uid: String,
    pub links: Vec<Link>,
}

impl EntityRefView {
    pub fn session(s: &workload::Model, hrefs: &Hrefs) -> Self {
        let alternate =
            Link::new("Alternate", Some("BackupJobSession"), format!("{}?format=Entity", hrefs.session(&s.id)))
                .named(&s.name);
        Self {
            element: "EntityRef",
            kind: "BackupJobSessionReference",
            href: hrefs.session(&s.id),
            name: s.name.clone(),
            uid: session_uid(&s.id),
            links: session_links(s, hrefs, alternate),
        }
    }

    pub fn job(j: &workload_spec::Model, hrefs: &Hrefs) -> Self {
        let mut links = job_links(j, hrefs);
        links.insert(
            0,
            Link::new("Alternate", Some("Job"), format!("{}?format=Entity", hrefs.job(&j.id))).named(&j.name),
        );
        Self {
            element: "EntityRef",
            kind: "JobReference",
            href: hrefs.job(&j.id),
            name: j.name.clone(),
            uid: job_uid(&j.id),
            links,
        }
    }

    pub fn in_list(mut self) -> Self {
        self.element = "Ref";
        self
    }
}

impl Representation for EntityRefView {
    fn json(&self) -> Value {
        json!({"Links": links_json(&self.links), "UID": self.uid, "Name": self.name, "Href": self.href, "Type": self.kind})
    }
    fn xml(&self, x: &mut Xml) {
        let attrs = [
            ("Type", Some(self.kind)),
            ("Href", Some(self.href.as_str())),
            ("Name", Some(self.name.as_str())),
            ("UID", Some(self.uid.as_str())),
        ];
        x.element(self.element, &attrs, |x| links_xml(x, &self.links));
    }
}

pub fn references(items: Vec<EntityRefView>) -> List<EntityRefView> {
    List { root: "EntityReferences", key: "Refs", items: items.into_iter().map(EntityRefView::in_list).collect() }
}

// ---------------------------------------------------------------------------------------------
// Jobs

/// A job's `JobType`: the spec's `meta.jobType` (the jobs file's `type`), else "Backup".
pub fn job_type(spec: &workload_spec::Model) -> String {
    Some(spec.meta_text("jobType")).filter(|t| !t.is_empty()).unwrap_or_else(|| "Backup".to_owned())
}

/// The `JobType` of each of a tenant's jobs, for rendering their sessions.
pub struct JobTypes(std::collections::HashMap<String, String>);

impl JobTypes {
    pub async fn of(db: &impl sea_orm::ConnectionTrait, tenant_id: i32) -> Result<Self, sea_orm::DbErr> {
        let specs = entity::store::specs::list_of(db, tenant_id).await?;
        Ok(Self(specs.iter().map(|spec| (spec.id.clone(), job_type(spec))).collect()))
    }

    pub fn of_session(&self, session: &workload::Model) -> &str {
        self.0.get(&session.spec_id).map_or("Backup", String::as_str)
    }

    /// (job id, JobType) of every job, as the query service compares them.
    pub fn all_text(&self) -> Vec<(String, super::query::Value)> {
        self.0.iter().map(|(id, t)| (id.clone(), super::query::Value::Text(t.clone()))).collect()
    }
}

pub fn job_uid(id: &str) -> String {
    format!("urn:veeam:Job:{id}")
}

fn job_links(j: &workload_spec::Model, hrefs: &Hrefs) -> Vec<Link> {
    let href = hrefs.job(&j.id);
    vec![
        Link::new("Down", Some("BackupJobSessionReferenceList"), format!("{href}/backupSessions")),
        Link::new("Start", None, format!("{href}?action=start")),
        Link::new("Stop", None, format!("{href}?action=stop")),
    ]
}

pub struct JobView<'a> {
    pub job: &'a workload_spec::Model,
    pub hrefs: &'a Hrefs,
}

impl JobView<'_> {
    fn links(&self) -> Vec<Link> {
        let mut links = job_links(self.job, self.hrefs);
        links.insert(
            0,
            Link::new("Alternate", Some("JobReference"), self.hrefs.job(&self.job.id)).named(&self.job.name),
        );
        links
    }
}

impl Representation for JobView<'_> {
    fn json(&self) -> Value {
        let j = self.job;
        json!({
            "JobType": job_type(j), "Platform": "Linux", "Description": j.meta_text("description"),
            "ScheduleConfigured": false, "ScheduleEnabled": false,
            "Name": j.name, "UID": job_uid(&j.id),
            "Links": links_json(&self.links()), "Href": format!("{}?format=Entity", self.hrefs.job(&j.id)), "Type": "Job",
        })
    }
    fn xml(&self, x: &mut Xml) {
        let j = self.job;
        let (href, uid) = (format!("{}?format=Entity", self.hrefs.job(&j.id)), job_uid(&j.id));
        let attrs = [
            ("Type", Some("Job")),
            ("Href", Some(href.as_str())),
            ("Name", Some(j.name.as_str())),
            ("UID", Some(uid.as_str())),
        ];
        x.element("Job", &attrs, |x| {
            links_xml(x, &self.links());
            x.text("JobType", Some(&job_type(j)));
            x.text("Platform", Some("Linux"));
            x.text("Description", Some(&j.meta_text("description")));
            x.text("ScheduleConfigured", Some("false"));
            x.text("ScheduleEnabled", Some("false"));
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Logon sessions and the entry point

pub struct LogonSessionView<'a> {
    pub logon: &'a logon_session::Model,
    pub user_name: &'a str,
    pub hrefs: &'a Hrefs,
}

impl LogonSessionView<'_> {
    fn href(&self) -> String {
        self.hrefs.api(&format!("logonSessions/{}", self.logon.id))
    }
    fn links(&self) -> Vec<Link> {
        let h = self.hrefs;
        vec![
            Link::new("Up", Some("EnterpriseManager"), h.api("")),
            Link::new("Down", Some("JobReferenceList"), h.api("jobs")),
            Link::new("Down", Some("BackupJobSessionReferenceList"), h.api("backupSessions")),
            Link::new("Down", Some("BackupJobSessionList"), h.api("backupSessions?format=Entity")),
            Link::new("Down", Some("TaskList"), h.api("tasks")),
            Link::new("Down", Some("QueryService"), h.api("query")),
            Link::new("Delete", Some("LogonSession"), self.href()),
        ]
    }
}

impl Representation for LogonSessionView<'_> {
    fn json(&self) -> Value {
        json!({
            "UserName": self.user_name, "SessionId": self.logon.id,
            "Links": links_json(&self.links()), "Href": self.href(), "Type": "LogonSession",
        })
    }
    fn xml(&self, x: &mut Xml) {
        let href = self.href();
        x.element("LogonSession", &[("Type", Some("LogonSession")), ("Href", Some(&href))], |x| {
            links_xml(x, &self.links());
            x.text("UserName", Some(self.user_name));
            x.text("SessionId", Some(&self.logon.id));
        });
    }
}

pub const SUPPORTED_VERSIONS: [&str; 4] = ["v1_4", "v1_5", "v1_6", "v1_7"];

pub struct EnterpriseManagerView<'a> {
    pub hrefs: &'a Hrefs,
}

impl EnterpriseManagerView<'_> {
    fn create(&self, version: &str) -> Link {
        Link::new("Create", Some("LogonSession"), self.hrefs.api(&format!("sessionMngr/?v={version}")))
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::new("Down", Some("LogonSessionList"), self.hrefs.api("logonSessions")), self.create("latest")]
    }
}

impl Representation for EnterpriseManagerView<'_> {
    fn json(&self) -> Value {
        let versions: Vec<Value> =
            SUPPORTED_VERSIONS.iter().map(|v| json!({"Name": v, "Links": links_json(&[self.create(v)])})).collect();
        json!({"SupportedVersions": {"SupportedVersions": versions}, "Links": links_json(&self.links()), "Href": null, "Type": null})
    }
    fn xml(&self, x: &mut Xml) {
        x.element("EnterpriseManager", &[], |x| {
            links_xml(x, &self.links());
            x.element("SupportedVersions", &[], |x| {
                for v in SUPPORTED_VERSIONS {
                    x.element("SupportedVersion", &[("Name", Some(v))], |x| links_xml(x, &[self.create(v)]));
                }
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task's JSON is written straight from the view: the same bytes as Veeam's field order
    /// built as a `Value`, finished or not.
    #[test]
    fn a_tasks_json_text_is_its_json_in_veeams_field_order() {
        for result in [None, Some((true, None)), Some((false, Some("no such \"session\"".to_owned())))] {
            let view = TaskView {
                task_id: "task-7".into(),
                state: if result.is_some() { "Finished" } else { "Running" },
                operation: "StopJobSession".into(),
                result: result.clone(),
                links: vec![Link::new("Delete", Some("Task"), "http://h/api/tasks/task-7".into()).named("n")],
                href: "http://h/api/tasks/task-7".into(),
            };
            let expected = json!({
                "TaskId": "task-7", "State": view.state, "Operation": "StopJobSession",
                "Result": result.as_ref().map(|(success, message)| json!({
                    "Message": message, "Success": success, "CredentialsNeeded": false, "ConfirmationNeeded": false,
                })),
                "Links": [{"Rel": "Delete", "Href": "http://h/api/tasks/task-7", "Name": "n", "Type": "Task"}],
                "Href": "http://h/api/tasks/task-7", "Type": "Task",
            });
            assert_eq!(view.json_text(), expected.to_string());
            assert_eq!(view.json(), expected);
        }
    }
}

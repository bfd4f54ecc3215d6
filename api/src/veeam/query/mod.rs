//! `GET /api/query?type=BackupJobSession|Task`: filter, sort, page, references or entities.
//!
//! Rows are read from the store and filtered here, in the grammar of `filter`.

mod filter;

use super::auth::Caller;
use super::error::VeeamError;
use super::render::ok;
use super::views::{BackupJobSessionView, EntityRefView, Hrefs, Link, Representation, TaskView, links_json, links_xml};
use super::xml::Xml;
use super::{Params, hrefs};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::store::{sessions, tasks};
use entity::{job_session, task};
use filter::{Filter, Kind, Schema, Value};
use serde_json::json;

const DEFAULT_PAGE_SIZE: usize = 100;
const SESSION_STATES: &[&str] = &["Starting", "Stopping", "Working", "Pausing", "Resuming", "Stopped"];
/// `None` (no result yet) orders before the documented Success, Warning, Failed.
const SESSION_RESULTS: &[&str] = &["None", "Success", "Warning", "Failed"];
const TASK_STATES: &[&str] = &["Running", "Finished"];

fn session_schema() -> Schema<job_session::Model> {
    Schema {
        type_name: "BackupJobSession",
        fields: &[
            ("Name", Kind::Text),
            ("JobName", Kind::Text),
            ("JobType", Kind::Text),
            ("JobUid", Kind::Text),
            ("Uid", Kind::Text),
            ("State", Kind::Enum(SESSION_STATES)),
            ("Result", Kind::Enum(SESSION_RESULTS)),
            ("CreationTime", Kind::Time),
            ("EndTime", Kind::Time),
            ("Progress", Kind::Int),
            ("IsRetry", Kind::Bool),
        ],
        read: |s, field| match field {
            "Name" => Value::Text(s.name.clone()),
            "JobName" => Value::Text(s.job_name.clone()),
            "JobType" => Value::Text(s.job_type.clone()),
            "JobUid" => Value::Text(format!("urn:veeam:Job:{}", s.job_id)),
            "Uid" => Value::Text(format!("urn:veeam:BackupJobSession:{}", s.id)),
            "State" => enum_value(SESSION_STATES, super::views::state_name(s.state)),
            "Result" => enum_value(SESSION_RESULTS, super::views::result_name(s)),
            "CreationTime" => Value::Time(s.creation_time),
            "EndTime" => s.end_time.map_or(Value::Null, Value::Time),
            "Progress" => Value::Int(super::views::progress(s).into()),
            "IsRetry" => Value::Bool(false),
            _ => Value::Null,
        },
    }
}

fn task_schema() -> Schema<task::Model> {
    Schema {
        type_name: "Task",
        fields: &[("TaskId", Kind::Text), ("State", Kind::Enum(TASK_STATES)), ("Operation", Kind::Text)],
        read: |t, field| match field {
            "TaskId" => Value::Text(super::ids::task_id(t)),
            "State" => Value::Enum(usize::from(t.state.is_final())),
            "Operation" => Value::Text(super::views::operation_name(t.operation).to_owned()),
            _ => Value::Null,
        },
    }
}

fn enum_value(names: &[&str], name: &str) -> Value {
    names.iter().position(|n| *n == name).map_or(Value::Null, Value::Enum)
}

struct Page {
    num: usize,
    size: usize,
}

fn page(params: &Params) -> Result<Page, VeeamError> {
    let number = |name: &str, default: usize| -> Result<usize, VeeamError> {
        match params.get(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                VeeamError::BadRequest(format!("'{name}' must be a positive whole number, not '{raw}'."))
            }),
        }
    };
    Ok(Page { num: number("page", 1)?, size: number("pageSize", DEFAULT_PAGE_SIZE)? })
}

/// Filters, sorts and pages `rows` as the parameters say.
fn select<T>(
    schema: &Schema<T>,
    params: &Params,
    mut rows: Vec<T>,
    page: &Page,
) -> Result<(Vec<T>, usize), VeeamError> {
    if let Some(text) = params.get("filter").filter(|f| !f.trim().is_empty()) {
        let filter: Filter = filter::parse(text, schema).map_err(VeeamError::BadRequest)?;
        rows.retain(|row| schema.matches(&filter, row));
    }
    let sort = match (params.get("sortAsc"), params.get("sortDesc")) {
        (Some(_), Some(_)) => {
            return Err(VeeamError::BadRequest("Use either sortAsc or sortDesc, not both.".into()));
        }
        (Some(field), None) => Some((schema.field(field).map_err(VeeamError::BadRequest)?.0, false)),
        (None, Some(field)) => Some((schema.field(field).map_err(VeeamError::BadRequest)?.0, true)),
        (None, None) => None,
    };
    if let Some((field, descending)) = sort {
        rows.sort_by(|a, b| {
            let (a, b) = ((schema.read)(a, field), (schema.read)(b, field));
            // A field's values share one type, so only a null compares to nothing: nulls first.
            let ordering = filter::compare(&a, &b).unwrap_or_else(|| (a != Value::Null).cmp(&(b != Value::Null)));
            if descending { ordering.reverse() } else { ordering }
        });
    }
    let total = rows.len();
    let pages = total.div_ceil(page.size).max(1);
    let rows = rows.into_iter().skip((page.num - 1).saturating_mul(page.size)).take(page.size).collect();
    Ok((rows, pages))
}

enum Body {
    SessionRefs(Vec<EntityRefView>),
    Sessions(Vec<job_session::Model>),
    Tasks(Vec<task::Model>),
}

struct QueryResult {
    body: Body,
    hrefs: Hrefs,
    page: Page,
    pages: usize,
    links: Vec<Link>,
}

impl Representation for QueryResult {
    fn json(&self) -> serde_json::Value {
        let h = &self.hrefs;
        let (refs, entities, resources) = match &self.body {
            Body::SessionRefs(items) => {
                (json!({"Refs": items.iter().map(Representation::json).collect::<Vec<_>>()}), json!(null), json!(null))
            }
            Body::Sessions(items) => {
                let list: Vec<_> =
                    items.iter().map(|session| BackupJobSessionView { session, hrefs: h }.json()).collect();
                (json!(null), json!({"BackupJobSessions": {"BackupJobSessions": list}}), json!(null))
            }
            Body::Tasks(items) => {
                let list: Vec<_> = items.iter().map(|t| TaskView::new(t, h).json()).collect();
                (json!(null), json!(null), json!({"Tasks": {"Tasks": list}}))
            }
        };
        let links = links_json(&self.links);
        json!({
            "Refs": refs, "Entities": entities, "Resources": resources, "Links": null,
            "PagingInfo": {"Links": links, "PageNum": self.page.num, "PageSize": self.page.size, "PagesCount": self.pages},
        })
    }

    fn xml(&self, x: &mut Xml) {
        let h = &self.hrefs;
        x.element("QueryResult", &[], |x| {
            match &self.body {
                Body::SessionRefs(items) => x.element("Refs", &[], |x| items.iter().for_each(|r| r.xml(x))),
                Body::Sessions(items) => x.element("Entities", &[], |x| {
                    x.element("BackupJobSessions", &[], |x| {
                        items.iter().for_each(|session| BackupJobSessionView { session, hrefs: h }.xml(x))
                    })
                }),
                Body::Tasks(items) => x.element("Resources", &[], |x| {
                    x.element("Tasks", &[], |x| items.iter().for_each(|t| TaskView::new(t, h).xml(x)))
                }),
            }
            let (num, size, count) = (self.page.num.to_string(), self.page.size.to_string(), self.pages.to_string());
            x.element(
                "PagingInfo",
                &[("PageNum", Some(&num)), ("PageSize", Some(&size)), ("PagesCount", Some(&count))],
                |x| links_xml(x, &self.links),
            );
        });
    }
}

/// First, Previous, Next and Last links: the request's own parameters with another page.
fn paging_links(params: &Params, hrefs: &Hrefs, page: &Page, pages: usize) -> Vec<Link> {
    let kept: Vec<(String, String)> = params
        .pairs()
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("page") && !k.eq_ignore_ascii_case("pageSize"))
        .cloned()
        .collect();
    let link = |rel: &'static str, num: usize| {
        let mut pairs = kept.clone();
        pairs.push(("pageSize".into(), page.size.to_string()));
        pairs.push(("page".into(), num.to_string()));
        Link::new(
            rel,
            None,
            format!("{}?{}", hrefs.api("query"), serde_urlencoded::to_string(&pairs).unwrap_or_default()),
        )
    };
    let mut links = vec![link("First", 1)];
    if page.num > 1 {
        links.push(link("Previous", (page.num - 1).min(pages)));
    }
    if page.num < pages {
        links.push(link("Next", page.num + 1));
    }
    links.push(link("Last", pages));
    links
}

pub async fn run_query(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, VeeamError> {
    let params = Params::of(&req)?;
    let hrefs = hrefs(&req, &state);
    let page = page(&params)?;
    let kind =
        params.get("type").ok_or_else(|| VeeamError::BadRequest("The 'type' query parameter is required.".into()))?;
    let (body, pages) = if kind.eq_ignore_ascii_case("BackupJobSession") {
        let (rows, pages) =
            select(&session_schema(), &params, sessions::list_of(&state.db, caller.user.tenant_id).await?, &page)?;
        let body = if params.wants_entities() {
            Body::Sessions(rows)
        } else {
            Body::SessionRefs(rows.iter().map(|s| EntityRefView::session(s, &hrefs).in_list()).collect())
        };
        (body, pages)
    } else if kind.eq_ignore_ascii_case("Task") {
        let (rows, pages) =
            select(&task_schema(), &params, tasks::list_for_user(&state.db, caller.user.id).await?, &page)?;
        (Body::Tasks(rows), pages)
    } else {
        return Err(VeeamError::BadRequest(format!(
            "Query type '{kind}' is not supported; use BackupJobSession or Task."
        )));
    };
    let links = paging_links(&params, &hrefs, &page, pages);
    Ok(ok(&QueryResult { body, hrefs, page, pages, links }))
}

//! `GET /api/query?type=BackupJobSession|Task`: filter, sort, page, references or entities.
//!
//! The filter (grammar in `filter`) and the sort run in the database (`sql`), which counts the
//! matches for `PagesCount` and returns only the requested page. A user's tasks without a
//! filter are not counted but read from the counts the database keeps (`tasks::count_of_user`).

mod filter;
mod sql;

use super::auth::Caller;
use super::error::VeeamError;
use super::render::ok;
use super::views::{
    BackupJobSessionView, EntityRefView, Hrefs, JobTypes, Link, Representation, TaskView, links_json, links_xml,
};
use super::xml::Xml;
use super::{Params, hrefs};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use entity::{TaskState, WorkloadState, task, workload};
pub use filter::Value;
use filter::{Kind, Schema};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, Iterable, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Select,
};
use serde_json::json;
use sql::{Source, Sql};

const DEFAULT_PAGE_SIZE: usize = 100;
const SESSION_STATES: &[&str] = &["Starting", "Stopping", "Working", "Pausing", "Resuming", "Stopped"];
/// `None` (no result yet) orders before the documented Success, Warning, Failed.
const SESSION_RESULTS: &[&str] = &["None", "Success", "Warning", "Failed"];
const TASK_STATES: &[&str] = &["Running", "Finished"];

const SESSIONS: Schema = Schema {
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
};

/// Where each session field lives in `workloads` (the view in `views` shows the same values).
fn session_source(field: &str, job_types: &JobTypes) -> Source {
    let by_state = |value: fn(WorkloadState) -> Value| Source::Mapped {
        column: "state",
        values: WorkloadState::iter().map(|s| (s.to_string(), value(s))).collect(),
    };
    match field {
        "Name" => Source::Sql("name"),
        "JobName" => Source::Sql("spec_name"),
        "JobType" => Source::Mapped { column: "spec_id", values: job_types.all_text() },
        "JobUid" => Source::Id {
            prefix: "urn:veeam:job:",
            column: "spec_id",
            text: "'urn:veeam:Job:' || spec_id",
            parse: uuid_id,
        },
        "Uid" => Source::Id {
            prefix: "urn:veeam:backupjobsession:",
            column: "id",
            text: "'urn:veeam:BackupJobSession:' || id",
            parse: uuid_id,
        },
        "State" => by_state(|s| enum_value(SESSION_STATES, super::views::state_name(s))),
        // As `views::result_name`: no result until stopped, then Success or Failed.
        "Result" => Source::Sql("CASE WHEN succeeded IS NULL THEN 0 WHEN succeeded THEN 1 ELSE 3 END"),
        "CreationTime" => Source::Sql("created_at"),
        "EndTime" => Source::Sql("ended_at"),
        // As `views::progress`.
        "Progress" => by_state(|s| Value::Int(if s == WorkloadState::Stopped { 100 } else { 0 })),
        _ => Source::Const(Value::Bool(false)),
    }
}

const TASKS: Schema = Schema {
    type_name: "Task",
    fields: &[("TaskId", Kind::Text), ("State", Kind::Enum(TASK_STATES)), ("Operation", Kind::Text)],
};

/// Where each task field lives in `tasks`.
fn task_source(field: &str) -> Source {
    match field {
        // As `ids::task_id`.
        "TaskId" => Source::Id {
            prefix: "task-",
            column: "id",
            text: "'task-' || id",
            parse: |n| super::ids::parse_task_id(&format!("task-{n}")).map(sea_orm::Value::from),
        },
        "State" => Source::Mapped {
            column: "state",
            values: TaskState::iter().map(|s| (s.to_string(), Value::Enum(usize::from(s.is_final())))).collect(),
        },
        _ => Source::Mapped {
            column: "operation",
            values: entity::Operation::iter()
                .map(|o| (o.to_string(), Value::Text(super::views::operation_name(o).to_owned())))
                .collect(),
        },
    }
}

/// A canonical (lower-case) UUID, as ids of jobs and sessions are stored.
fn uuid_id(text: &str) -> Option<sea_orm::Value> {
    crate::ids::canonical_uuid(text).map(|id| sea_orm::Value::from(id.to_owned()))
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

/// The request's filter, if it has one.
fn filter_text(params: &Params) -> Option<&str> {
    params.get("filter").filter(|f| !f.trim().is_empty())
}

/// Filters, sorts and pages `base` in the database as the parameters say: the page's rows and
/// the number of pages. Rows that sort equal keep `tie_break` order. `unfiltered_total` is how
/// many rows `base` holds, when known without counting them (used when there is no filter).
#[allow(clippy::too_many_arguments)]
async fn select<E: EntityTrait>(
    db: &DatabaseConnection,
    base: Select<E>,
    schema: &Schema,
    source: impl Fn(&str) -> Source,
    params: &Params,
    page: &Page,
    tie_break: &[E::Column],
    unfiltered_total: Option<u64>,
) -> Result<(Vec<E::Model>, usize), VeeamError>
where
    E::Model: Send + Sync,
{
    let sql = Sql { backend: db.get_database_backend() };
    let mut query = base;
    let mut known_total = unfiltered_total;
    if let Some(text) = filter_text(params) {
        let filter = filter::parse(text, schema).map_err(VeeamError::BadRequest)?;
        query = query.filter(sql.condition(&filter, &source));
        known_total = None;
    }
    let sort = match (params.get("sortAsc"), params.get("sortDesc")) {
        (Some(_), Some(_)) => {
            return Err(VeeamError::BadRequest("Use either sortAsc or sortDesc, not both.".into()));
        }
        (Some(field), None) => Some((schema.field(field).map_err(VeeamError::BadRequest)?, false)),
        (None, Some(field)) => Some((schema.field(field).map_err(VeeamError::BadRequest)?, true)),
        (None, None) => None,
    };
    let total = match known_total {
        Some(total) => total,
        None => query.clone().count(db).await?,
    };
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let pages = total.div_ceil(page.size).max(1);
    let skip = (page.num - 1).saturating_mul(page.size);
    if skip >= total {
        return Ok((Vec::new(), pages));
    }
    if let Some(((field, kind), descending)) = sort {
        for (term, order) in sql.order(source(field), kind, descending) {
            query = query.order_by(term, order);
        }
    }
    for column in tie_break {
        query = query.order_by_asc(*column);
    }
    let take = page.size.min(total - skip);
    let rows = query.offset(skip as u64).limit(take as u64).all(db).await?;
    Ok((rows, pages))
}

enum Body {
    SessionRefs(Vec<EntityRefView>),
    Sessions(Vec<workload::Model>, JobTypes),
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
            Body::Sessions(items, job_types) => {
                let list: Vec<_> = items
                    .iter()
                    .map(|session| {
                        BackupJobSessionView { session, job_type: job_types.of_session(session), hrefs: h }.json()
                    })
                    .collect();
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
                Body::Sessions(items, job_types) => x.element("Entities", &[], |x| {
                    x.element("BackupJobSessions", &[], |x| {
                        items.iter().for_each(|session| {
                            BackupJobSessionView { session, job_type: job_types.of_session(session), hrefs: h }.xml(x)
                        })
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
    let tenant = caller.user.tenant_id;
    let (body, pages) = if kind.eq_ignore_ascii_case("BackupJobSession") {
        let job_types = JobTypes::of(&state.db, tenant).await?;
        let (rows, pages) = select(
            &state.db,
            workload::Entity::find().filter(workload::Column::TenantId.eq(tenant)),
            &SESSIONS,
            |field| session_source(field, &job_types),
            &params,
            &page,
            &[workload::Column::CreatedAt, workload::Column::Id],
            None,
        )
        .await?;
        let body = if params.wants_entities() {
            Body::Sessions(rows, job_types)
        } else {
            Body::SessionRefs(rows.iter().map(|s| EntityRefView::session(s, &hrefs).in_list()).collect())
        };
        (body, pages)
    } else if kind.eq_ignore_ascii_case("Task") {
        let (rows, pages) = select(
            &state.db,
            task::Entity::find().filter(task::Column::UserId.eq(caller.user.id)),
            &TASKS,
            task_source,
            &params,
            &page,
            &[task::Column::Id],
            // Every task of the user is counted by the database's triggers.
            match filter_text(&params) {
                None => Some(entity::store::tasks::count_of_user(&state.db, caller.user.id).await?),
                Some(_) => None,
            },
        )
        .await?;
        (Body::Tasks(rows), pages)
    } else {
        return Err(VeeamError::BadRequest(format!(
            "Query type '{kind}' is not supported; use BackupJobSession or Task."
        )));
    };
    let links = paging_links(&params, &hrefs, &page, pages);
    Ok(ok(&QueryResult { body, hrefs, page, pages, links }))
}

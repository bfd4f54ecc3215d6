//! Keyset paging of the engine's listings (`entity::store::page`), on SQLite and PostgreSQL:
//! every row exactly once in the listing's order, another tenant's rows never, cursors that are
//! not ours refused, and rows inserted while a client pages neither repeated nor making it skip.
//! On PostgreSQL, a page after a cursor is read along the listing index, not by a scan.

use chrono::{Duration, TimeZone, Utc};
use entity::store::page::{BadCursor, Cursor};
use entity::store::tasks::TaskQuery;
use entity::store::workloads::{WorkloadQuery, WorkloadSort};
use entity::{TaskState, WorkloadState, task, workload};
use migration::MigratorTrait;
use sea_orm::{ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter};
use std::collections::HashSet;

async fn spec(db: &DatabaseConnection) -> String {
    entity::store::specs::upsert_by_name(db, &tests::plain_spec("Spec")).await.expect("spec").id
}

fn workload(n: usize, tenant_id: i32, spec_id: &str) -> workload::Model {
    let states = [WorkloadState::Running, WorkloadState::Stopped, WorkloadState::Stopping];
    // Groups of three share a creation time, so ties are broken by id.
    let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().expect("time") + Duration::seconds((n / 3) as i64);
    workload::Model {
        id: format!("{:08x}-0000-4000-8000-{n:012}", n * 7919 % 100_000),
        tenant_id,
        // Names repeat (ties again) and some hold LIKE's wildcards.
        name: ["alpha", "al%pha", "al_pha", "beta", "Beta"][n % 5].to_owned() + &(n % 4).to_string(),
        state: states[n % 3],
        created_at: at,
        ..tests::plain_workload(spec_id, i32::try_from(n).expect("n"))
    }
}

async fn seed(db: &DatabaseConnection, tenant: i32, other: i32, count: usize) -> Vec<workload::Model> {
    let spec = spec(db).await;
    let rows: Vec<_> = (0..count).map(|n| workload(n, if n % 4 == 3 { other } else { tenant }, &spec)).collect();
    for chunk in rows.chunks(100) {
        workload::Entity::insert_many(chunk.iter().cloned().map(IntoActiveModel::into_active_model))
            .exec(db)
            .await
            .expect("seed");
    }
    rows.into_iter().filter(|w| w.tenant_id == tenant).collect()
}

/// Every page of the listing, following cursors as a client would (through their text form).
async fn all_pages(db: &DatabaseConnection, tenant: i32, query: &WorkloadQuery, limit: u64) -> Vec<String> {
    let (mut ids, mut after) = (Vec::new(), None::<Cursor>);
    loop {
        let page = entity::store::workloads::page(db, tenant, query, after.as_ref(), limit).await.expect("page");
        assert!(page.items.len() as u64 <= limit);
        ids.extend(page.items.into_iter().map(|w| w.id));
        match page.next {
            Some(next) => after = Some(query.cursor(&next.encode()).expect("our own cursor")),
            None => return ids,
        }
    }
}

#[actix_web::test]
async fn keyset_pages_list_every_row_of_the_tenant_once_in_order_whatever_the_sort_and_filter() {
    for (db, url) in tests::migrated_databases().await {
        let other = entity::store::tenants::find_or_create(&db, "other").await.expect("tenant").id;
        let mine = seed(&db, entity::tenant::DEFAULT, other, 400).await;
        let expect = |query: &WorkloadQuery| -> Vec<String> {
            let mut rows: Vec<&workload::Model> = mine
                .iter()
                .filter(|w| query.states.is_empty() || query.states.contains(&w.state))
                .filter(|w| query.name_prefix.as_ref().is_none_or(|p| w.name.starts_with(p.as_str())))
                .collect();
            // Ids are hex and digits, so they order alike in every collation; names (the other
            // sort) are checked below against the database's own order in one page.
            rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
            if query.descending {
                rows.reverse();
            }
            rows.into_iter().map(|w| w.id.clone()).collect()
        };
        for sort in [WorkloadSort::CreatedAt, WorkloadSort::Name] {
            for descending in [false, true] {
                for (states, name_prefix) in [
                    (vec![], None),
                    (vec![WorkloadState::Running, WorkloadState::Stopping], None),
                    (vec![], Some("al%".to_owned())),
                    (vec![WorkloadState::Stopped], Some("al_".to_owned())),
                ] {
                    let query = WorkloadQuery { states, name_prefix, sort, descending, ..WorkloadQuery::default() };
                    let whole = entity::store::workloads::page(&db, entity::tenant::DEFAULT, &query, None, 1000)
                        .await
                        .expect("one page");
                    assert_eq!(whole.next, None);
                    let whole: Vec<String> = whole.items.into_iter().map(|w| w.id).collect();
                    if sort == WorkloadSort::CreatedAt {
                        assert_eq!(whole, expect(&query), "{query:?}");
                    } else {
                        let (mut got, mut want) = (whole.clone(), expect(&query));
                        got.sort();
                        want.sort();
                        assert_eq!(got, want, "{query:?}");
                    }
                    for limit in [1, 7, 100] {
                        let paged = all_pages(&db, entity::tenant::DEFAULT, &query, limit).await;
                        assert_eq!(paged, whole, "{query:?} by {limit}");
                    }
                }
            }
        }
        let theirs = all_pages(&db, other, &WorkloadQuery::default(), 50).await;
        assert_eq!(theirs.len(), 100, "the other tenant sees its own rows");
        assert!(theirs.iter().all(|id| !mine.iter().any(|w| &w.id == id)), "and none of mine");
        if let Some(url) = url {
            tests::drop_pg_database(&url).await;
        }
    }
}

#[actix_web::test]
async fn cursors_that_are_not_ours_or_not_for_this_listing_are_refused() {
    let by_name = WorkloadQuery { sort: WorkloadSort::Name, ..WorkloadQuery::default() };
    let by_time = WorkloadQuery::default();
    let made = Cursor { sort: "name".into(), descending: false, value: "a".into(), id: "x".into() }.encode();
    assert!(by_name.cursor(&made).is_ok());
    assert_eq!(by_time.cursor(&made), Err(BadCursor), "another sort");
    let bad_time = Cursor { sort: "created_at".into(), descending: false, value: "yesterday".into(), id: "x".into() };
    assert_eq!(by_time.cursor(&bad_time.encode()), Err(BadCursor), "a sort value that is not one");
    let bad_id = Cursor { sort: "id".into(), descending: true, value: "1".into(), id: "one".into() };
    assert_eq!(TaskQuery { descending: true, ..TaskQuery::default() }.cursor(&bad_id.encode()), Err(BadCursor));
    for garbage in ["", "%%%", "eyJ9", &"A".repeat(1 << 20)] {
        assert_eq!(by_time.cursor(garbage), Err(BadCursor));
    }
}

#[actix_web::test]
async fn rows_inserted_while_a_client_pages_are_not_repeated_and_skip_nothing() {
    for (db, url) in tests::migrated_databases().await {
        let other = entity::store::tenants::find_or_create(&db, "other").await.expect("tenant").id;
        let before = seed(&db, entity::tenant::DEFAULT, other, 300).await;
        let spec = spec(&db).await;
        for descending in [false, true] {
            let query = WorkloadQuery { descending, ..WorkloadQuery::default() };
            let (mut seen, mut after, mut extra) =
                (Vec::new(), None::<Cursor>, 10_000 + usize::from(descending) * 1000);
            loop {
                let page = entity::store::workloads::page(&db, entity::tenant::DEFAULT, &query, after.as_ref(), 9)
                    .await
                    .expect("page");
                seen.extend(page.items.iter().map(|w| w.id.clone()));
                // Between two pages, others insert rows before, at and after the cursor.
                for at in [Duration::seconds(-30), Duration::zero(), Duration::seconds(30)] {
                    let mut row = workload(extra, entity::tenant::DEFAULT, &spec);
                    row.created_at = page.items.last().map_or(row.created_at, |w| w.created_at) + at;
                    workload::Entity::insert(row.into_active_model()).exec(&db).await.expect("insert");
                    extra += 1;
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "no row twice");
            assert!(before.iter().all(|w| unique.contains(&w.id)), "every row that was there all along");
        }
        if let Some(url) = url {
            tests::drop_pg_database(&url).await;
        }
    }
}

#[actix_web::test]
async fn task_pages_follow_creation_order_per_tenant_and_user_with_filters() {
    for (db, url) in tests::migrated_databases().await {
        let other = entity::store::tenants::find_or_create(&db, "other").await.expect("tenant").id;
        let admin = entity::store::users::create(&db, entity::tenant::DEFAULT, "admin", "x", "PortalAdministrator")
            .await
            .expect("user")
            .id;
        let mut mine = Vec::new();
        for n in 0..120 {
            let new = entity::store::tasks::NewTask {
                tenant_id: if n % 5 == 4 { other } else { entity::tenant::DEFAULT },
                user_id: admin,
                operation: if n % 2 == 0 { entity::Operation::StopWorkload } else { entity::Operation::StartWorkload },
                target_id: "t",
                route: None,
                params: Default::default(),
            };
            let task = entity::store::tasks::insert(&db, new).await.expect("task");
            if task.tenant_id == entity::tenant::DEFAULT {
                mine.push(task);
            }
        }
        let cancelled: Vec<i32> = mine.iter().filter(|t| t.id % 3 == 0).map(|t| t.id).collect();
        task::Entity::update_many()
            .col_expr(task::Column::State, sea_orm::sea_query::Expr::value(TaskState::Cancelled))
            .filter(task::Column::Id.is_in(cancelled.clone()))
            .exec(&db)
            .await
            .expect("cancel some");
        for descending in [false, true] {
            let query = TaskQuery {
                user_id: Some(admin),
                states: vec![TaskState::Cancelled],
                operation: Some(entity::Operation::StopWorkload),
                descending,
                ..TaskQuery::default()
            };
            let (mut ids, mut after) = (Vec::new(), None::<Cursor>);
            loop {
                let page = entity::store::tasks::page(&db, entity::tenant::DEFAULT, &query, after.as_ref(), 4)
                    .await
                    .expect("page");
                ids.extend(page.items.iter().map(|t| t.id));
                match page.next {
                    Some(next) => after = Some(query.cursor(&next.encode()).expect("cursor")),
                    None => break,
                }
            }
            let mut expected: Vec<i32> = mine
                .iter()
                .filter(|t| cancelled.contains(&t.id) && t.operation == entity::Operation::StopWorkload)
                .map(|t| t.id)
                .collect();
            if descending {
                expected.reverse();
            }
            assert!(!expected.is_empty());
            assert_eq!(ids, expected);
        }
        if let Some(url) = url {
            tests::drop_pg_database(&url).await;
        }
    }
}

/// The page after a cursor deep in a large listing is read along the tenant's listing index,
/// starting at the cursor (an index condition on the sort column, no sort step, no sequential
/// scan): its cost does not grow with the rows before it. (`scripts/bench` measures it.)
#[actix_web::test]
async fn on_postgresql_a_page_after_a_deep_cursor_is_an_index_range_read() {
    let url = tests::fresh_pg_database().await;
    let db = Database::connect(&url).await.expect("postgres");
    migration::Migrator::up(&db, None).await.expect("migrate");
    let spec = spec(&db).await;
    db.execute_unprepared(&format!(
        "INSERT INTO workloads (id, tenant_id, spec_id, spec_name, name, state, created_at, runner_id, start_task_id, labels)
         SELECT md5(n::text), 1 + n % 2, '{spec}', 'Spec', 'w' || n, 'Stopped',
                timestamptz '2026-01-01' + n * interval '1 second', 'r', n, '{{}}'
         FROM generate_series(1, 50000) AS n;
         ANALYZE workloads;"
    ))
    .await
    .expect("seed");
    for (sort, index) in
        [(WorkloadSort::CreatedAt, "ix_workloads_tenant_created"), (WorkloadSort::Name, "ix_workloads_tenant_name")]
    {
        for descending in [false, true] {
            let query = WorkloadQuery { sort, descending, ..WorkloadQuery::default() };
            let first = entity::store::workloads::page(&db, 1, &query, None, 100).await.expect("page");
            let deep = first.next.expect("more");
            let plan = explain_page(&db, &query, &deep).await;
            assert!(plan.contains(index), "{sort:?} desc={descending}: {plan}");
            assert!(!plan.contains("Seq Scan") && !plan.contains("Sort"), "{sort:?} desc={descending}: {plan}");
            let column = if sort == WorkloadSort::Name { "name" } else { "created_at" };
            let starts_at_cursor = plan.lines().any(|line| line.contains("Index Cond") && line.contains(column));
            assert!(starts_at_cursor, "the scan starts at the cursor: {plan}");
        }
    }
    drop(db);
    tests::drop_pg_database(&url).await;
}

/// PostgreSQL's plan for the page query `store::workloads::page` runs.
async fn explain_page(db: &DatabaseConnection, query: &WorkloadQuery, after: &Cursor) -> String {
    use sea_orm::QueryTrait;
    let backend = db.get_database_backend();
    let statement =
        entity::store::workloads::page_query(backend, 1, query, Some(after), 100).expect("query").build(backend);
    let values = statement.values.map(|v| v.0).unwrap_or_default();
    let explained = sea_orm::Statement::from_sql_and_values(backend, format!("EXPLAIN {}", statement.sql), values);
    let rows = db.query_all_raw(explained).await.expect("explain");
    rows.iter().map(|r| r.try_get_by_index::<String>(0).expect("line")).collect::<Vec<_>>().join("\n")
}

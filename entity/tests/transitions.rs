#![allow(clippy::expect_used)]
//! The compare-and-set transitions against a real (SQLite, in-memory) database: duplicate and
//! stale writers change nothing.

use entity::state::{Outcome, TaskEvent, TransitionError};
use entity::store::{tasks, users};
use entity::{Operation, TaskState};
use migration::{Migrator, MigratorTrait};
use sea_orm::{Database, DatabaseConnection};

async fn db() -> DatabaseConnection {
    let db = Database::connect("sqlite::memory:").await.expect("sqlite");
    Migrator::up(&db, None).await.expect("migrations");
    db
}

async fn queued_task(db: &DatabaseConnection) -> entity::task::Model {
    let user = users::create(db, "alice", "x", entity::Role::PortalAdministrator).await.expect("user");
    tasks::insert(
        db,
        tasks::NewTask { user_id: user.id, operation: Operation::StopJobSession, target_id: "s", route: None },
    )
    .await
    .expect("task")
}

#[tokio::test]
async fn a_duplicate_claim_of_the_same_delivery_changes_nothing() {
    let db = db().await;
    let seen = queued_task(&db).await;
    let claimed = tasks::transition(&db, &seen, TaskEvent::Claim { runner: "r1".into() }).await.expect("first claim");
    assert_eq!((claimed.state, claimed.attempt), (TaskState::Running, 1));
    let second = tasks::transition(&db, &seen, TaskEvent::Claim { runner: "r2".into() }).await;
    assert!(matches!(second, Err(TransitionError::Stale { .. })), "{second:?}");
    let stored = tasks::get(&db, seen.id).await.expect("db").expect("row");
    assert_eq!(stored.runner_id.as_deref(), Some("r1"));
    assert_eq!(stored.attempt, 1);
}

#[tokio::test]
async fn a_fenced_out_attempt_cannot_finish_the_task() {
    let db = db().await;
    let seen = queued_task(&db).await;
    let first = tasks::transition(&db, &seen, TaskEvent::Claim { runner: "r1".into() }).await.expect("claim");
    let readopted = tasks::transition(&db, &first, TaskEvent::Readopt { runner: "r1".into() }).await.expect("readopt");
    assert_eq!(readopted.attempt, 2);
    let stale = tasks::transition(&db, &first, TaskEvent::Finish(Outcome::success("old holder"))).await;
    assert!(matches!(stale, Err(TransitionError::Stale { .. })), "{stale:?}");
    let done =
        tasks::transition(&db, &readopted, TaskEvent::Finish(Outcome::success("new holder"))).await.expect("finish");
    assert_eq!(done.state, TaskState::Finished);
    let stored = tasks::get(&db, seen.id).await.expect("db").expect("row");
    assert_eq!(stored.message.as_deref(), Some("new holder"));
}

#[tokio::test]
async fn another_runner_cannot_readopt_a_task_and_finished_is_final() {
    let db = db().await;
    let seen = queued_task(&db).await;
    let running = tasks::transition(&db, &seen, TaskEvent::Claim { runner: "r1".into() }).await.expect("claim");
    let theft = tasks::transition(&db, &running, TaskEvent::Readopt { runner: "r2".into() }).await;
    assert!(matches!(theft, Err(TransitionError::Stale { .. })), "{theft:?}");
    let done = tasks::transition(&db, &running, TaskEvent::Abandon { message: "gone".into() }).await.expect("abandon");
    let again = tasks::transition(&db, &done, TaskEvent::Cancel { message: "late".into() }).await;
    assert!(matches!(again, Err(TransitionError::Illegal { .. })), "{again:?}");
}

#[tokio::test]
async fn a_cancelled_queued_task_can_no_longer_be_claimed() {
    let db = db().await;
    let seen = queued_task(&db).await;
    tasks::transition(&db, &seen, TaskEvent::Cancel { message: "cancelled".into() }).await.expect("cancel");
    let claim = tasks::transition(&db, &seen, TaskEvent::Claim { runner: "r1".into() }).await;
    assert!(matches!(claim, Err(TransitionError::Stale { .. })), "{claim:?}");
    assert_eq!(tasks::get(&db, seen.id).await.expect("db").expect("row").success, Some(false));
}

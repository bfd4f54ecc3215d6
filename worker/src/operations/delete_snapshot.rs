//! DeleteSnapshot: marks the snapshot (the task's target) `deleted` and removes its archive;
//! submitted by its owner, or scheduled by its expiry. A snapshot still being taken is marked
//! too: its snapshot task then finds it deleted and removes what it archived. A re-run, or a
//! snapshot already deleted, finds nothing left to do and reports it deleted.

use super::{Ctx, OpError};
use entity::state::Outcome;
use entity::store::snapshots;
use entity::task;

pub async fn run(ctx: &Ctx, task: &task::Model) -> Result<Outcome, OpError> {
    let deleted = Outcome::SnapshotDeleted { snapshot: task.target_id.clone() };
    let Some(snapshot) = snapshots::find(&ctx.db, &task.target_id).await? else {
        return Ok(deleted);
    };
    if snapshot.status != snapshots::DELETED {
        ctx.guard(std::slice::from_ref(task)).await?;
        if !snapshots::set_status(&ctx.db, &snapshot.id, &snapshot.status, snapshots::DELETED, None).await? {
            // It changed meanwhile (its snapshot task finished): run again from what it is now.
            return Err(OpError::Db(sea_orm::DbErr::Custom(format!("snapshot {} changed", snapshot.id))));
        }
    }
    remove_archive(&snapshot.path).await;
    Ok(deleted)
}

/// Removes a snapshot's archive; one that is not there is removed already, and a failure is
/// logged (the snapshot is deleted all the same).
pub async fn remove_archive(path: &str) {
    match tokio::fs::remove_file(path).await {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(%err, path, "could not remove a deleted snapshot's archive");
        }
        _ => {}
    }
}

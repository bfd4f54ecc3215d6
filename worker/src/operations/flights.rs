//! Stop flights: one stop operation per workload at a time, shared by every task that asks for it.
//!
//! The runner keeps at most one *flight* per workload. The first stop task of a workload starts
//! it: a tokio task that performs the stop once (`stop_workload::drive`). Stop tasks that arrive
//! while it is in the air *join* it instead of signalling again, and every member reports the
//! flight's one outcome, so two stops signal a workload once and tell the same, true story.
//!
//! A member whose task is cancelled *leaves*. The flight is abandoned (its token is cancelled:
//! no SIGKILL, the workload back to Running) only when its last member leaves; while another
//! member still wants the stop, it goes on. Joining and leaving happen under one lock, so no task
//! joins a flight that is being abandoned: a stop that arrives then starts a new flight, which
//! first waits for the old one to land.
//!
//! Flights live in the runner's memory: every stop of a workload runs on the runner that owns the
//! workload (stops are routed there). After a restart the re-adopted stop tasks start a new
//! flight, which resumes from the workload's recorded Stopping state.

use entity::task;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How a flight ended; `Err` carries a database error's text (the members retry), `StandDown`
/// that the runner lost its lease and its members' tasks.
#[derive(Clone, Debug)]
pub enum Landing<T> {
    Done(T),
    Failed(String),
    StandDown,
}

pub struct Flight<T> {
    members: Mutex<Vec<task::Model>>,
    abandon: CancellationToken,
    landed: watch::Receiver<Option<Landing<T>>>,
}

impl<T: Clone> Flight<T> {
    /// Cancelled once the last member has left: the stop should give up at its next safe point.
    pub fn abandon_token(&self) -> &CancellationToken {
        &self.abandon
    }

    /// The member tasks now (for the lease check: the stop may go on while one is still ours).
    pub fn members(&self) -> Vec<task::Model> {
        self.members.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub async fn landing(&self) -> Landing<T> {
        let mut landed = self.landed.clone();
        match landed.wait_for(Option::is_some).await {
            Ok(landing) => landing.clone().unwrap_or(Landing::StandDown),
            Err(_) => Landing::Failed("the stop flight ended without an outcome".into()),
        }
    }
}

pub struct Flights<T> {
    by_workload: Mutex<HashMap<String, Arc<Flight<T>>>>,
}

impl<T> Default for Flights<T> {
    fn default() -> Self {
        Self { by_workload: Mutex::default() }
    }
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// Joins the workload's flight, or starts one that runs `drive(flight)`.
    pub fn join<F, Fut>(self: &Arc<Self>, workload_id: &str, task: &task::Model, drive: F) -> Arc<Flight<T>>
    where
        F: FnOnce(Arc<Flight<T>>) -> Fut + Send + 'static,
        Fut: Future<Output = Landing<T>> + Send + 'static,
    {
        let Ok(mut flights) = self.by_workload.lock() else {
            // A poisoned lock: fly alone rather than not at all.
            return self.launch(workload_id, task, None, drive);
        };
        let previous = flights.get(workload_id).cloned();
        if let Some(flight) = &previous
            && !flight.abandon.is_cancelled()
            && flight.landed.borrow().is_none()
            && let Ok(mut members) = flight.members.lock()
        {
            members.push(task.clone());
            return flight.clone();
        }
        let flight = self.launch(workload_id, task, previous, drive);
        flights.insert(workload_id.to_owned(), flight.clone());
        flight
    }

    fn launch<F, Fut>(
        self: &Arc<Self>,
        workload_id: &str,
        task: &task::Model,
        previous: Option<Arc<Flight<T>>>,
        drive: F,
    ) -> Arc<Flight<T>>
    where
        F: FnOnce(Arc<Flight<T>>) -> Fut + Send + 'static,
        Fut: Future<Output = Landing<T>> + Send + 'static,
    {
        let (land, landed) = watch::channel(None);
        let flight =
            Arc::new(Flight { members: Mutex::new(vec![task.clone()]), abandon: CancellationToken::new(), landed });
        let (flights, workload_id, flying) = (self.clone(), workload_id.to_owned(), flight.clone());
        let span = tracing::info_span!("stop_flight", workload = %workload_id, first_task = task.id);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                if let Some(previous) = previous {
                    previous.landing().await;
                }
                let landing = drive(flying.clone()).await;
                let _ = land.send(Some(landing));
                if let Ok(mut by_workload) = flights.by_workload.lock()
                    && by_workload.get(&workload_id).is_some_and(|f| Arc::ptr_eq(f, &flying))
                {
                    by_workload.remove(&workload_id);
                }
            },
            span,
        ));
        flight
    }

    /// `task` no longer waits for the flight. True when it was the last member: the flight is
    /// then abandoned.
    pub fn leave(&self, flight: &Flight<T>, task_id: i32) -> bool {
        let _flights = self.by_workload.lock();
        let Ok(mut members) = flight.members.lock() else { return false };
        members.retain(|t| t.id != task_id);
        if members.is_empty() {
            flight.abandon.cancel();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn task(id: i32) -> task::Model {
        let queued = task::Model::queued(id, entity::Operation::StopWorkload, "s", chrono::Utc::now());
        task::Model { state: entity::TaskState::Running, attempt: 1, ..queued }
    }

    type Drive = std::pin::Pin<Box<dyn Future<Output = Landing<&'static str>> + Send>>;

    /// A drive that counts its runs and lands when `release` fires, or "abandoned" when abandoned.
    fn drive(runs: Arc<AtomicUsize>, release: CancellationToken) -> impl FnOnce(Arc<Flight<&'static str>>) -> Drive {
        move |flight| {
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::select! {
                    _ = release.cancelled() => Landing::Done("stopped"),
                    _ = flight.abandon_token().cancelled() => Landing::Done("abandoned"),
                }
            })
        }
    }

    #[tokio::test]
    async fn later_stops_join_the_flight_in_the_air_and_all_see_its_one_landing() {
        let flights = Arc::new(Flights::default());
        let (runs, release) = (Arc::new(AtomicUsize::new(0)), CancellationToken::new());
        let first = flights.join("s", &task(1), drive(runs.clone(), release.clone()));
        let second = flights.join("s", &task(2), drive(runs.clone(), release.clone()));
        assert!(Arc::ptr_eq(&first, &second));
        release.cancel();
        assert!(matches!(first.landing().await, Landing::Done("stopped")));
        assert!(matches!(second.landing().await, Landing::Done("stopped")));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one stop for two tasks");
    }

    #[tokio::test]
    async fn a_flight_is_abandoned_only_when_its_last_member_leaves() {
        let flights = Arc::new(Flights::default());
        let (runs, release) = (Arc::new(AtomicUsize::new(0)), CancellationToken::new());
        let flight = flights.join("s", &task(1), drive(runs.clone(), release.clone()));
        flights.join("s", &task(2), drive(runs.clone(), release.clone()));
        assert!(!flights.leave(&flight, 1));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!flight.abandon_token().is_cancelled(), "task 2 still wants the stop");
        assert!(flights.leave(&flight, 2));
        assert!(matches!(flight.landing().await, Landing::Done("abandoned")));
        // A stop after the abandon starts a new flight.
        release.cancel();
        let next = flights.join("s", &task(3), drive(runs.clone(), release.clone()));
        assert!(!Arc::ptr_eq(&flight, &next));
        assert!(matches!(next.landing().await, Landing::Done("stopped")));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}

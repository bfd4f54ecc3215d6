//! What a face answers for a finished task, rendered once.
//!
//! A finished task never changes, so a face's answer for it is a function of the task's content,
//! the representation and the base of its links. The task's id and `updated_at` name its
//! content (every change moves `updated_at`: the `ETag` rests on the same), so a body is kept
//! under them, the variant and the base, and never needs forgetting: a key names one content
//! forever. Nor does a deletion: a body is used only for a task the engine has just found, and a
//! deleted task is not found. Unfinished tasks are rendered on every request.

use actix_web::web::Bytes;
use entity::task;
use worker::kept::Kept;

/// How many answers a process keeps (a Veeam task's XML is under a kilobyte).
const CAPACITY: usize = 10_000;

pub struct Answers {
    kept: Kept<String, Bytes>,
}

impl Default for Answers {
    fn default() -> Self {
        Self { kept: Kept::new(CAPACITY) }
    }
}

impl Answers {
    /// The body `render` makes of `task` as `variant` with links under `base`, kept once the
    /// task is finished.
    pub fn of(&self, task: &task::Model, variant: &str, base: &str, render: impl FnOnce() -> String) -> Bytes {
        if !task.state.is_final() {
            return Bytes::from(render());
        }
        let key = format!("{}.{}.{variant} {base}", task.id, task.updated_at.timestamp_micros());
        if let Some(body) = self.kept.get(&key) {
            return body;
        }
        let body = Bytes::from(render());
        self.kept.offer(key, body.clone(), self.kept.epoch());
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::{Operation, TaskState};
    use std::cell::Cell;

    fn task(state: TaskState, updated_micros: i64) -> task::Model {
        let at = chrono::DateTime::from_timestamp_micros(updated_micros).expect("time");
        task::Model { state, ..task::Model::queued(7, Operation::StopWorkload, "w", at) }
    }

    #[test]
    fn a_finished_tasks_answer_is_rendered_once_for_each_variant_and_base_and_an_unfinished_one_every_time() {
        let answers = Answers::default();
        let renders = Cell::new(0);
        let render = |text: &str| {
            let text = text.to_owned();
            let renders = &renders;
            move || {
                renders.set(renders.get() + 1);
                text
            }
        };
        let done = task(TaskState::Finished, 1_000);
        assert_eq!(answers.of(&done, "xml", "http://a", render("1")), "1");
        assert_eq!(answers.of(&done, "xml", "http://a", render("2")), "1");
        assert_eq!(renders.get(), 1);
        assert_eq!(answers.of(&done, "json", "http://a", render("3")), "3");
        assert_eq!(answers.of(&done, "xml", "http://b", render("4")), "4");
        // Another content of the same task (its `updated_at` moved) is another answer.
        assert_eq!(answers.of(&task(TaskState::Finished, 2_000), "xml", "http://a", render("5")), "5");
        let running = task(TaskState::Running, 1_000);
        assert_eq!(answers.of(&running, "xml", "http://a", render("6")), "6");
        assert_eq!(answers.of(&running, "xml", "http://a", render("7")), "7");
        assert_eq!(renders.get(), 6);
    }
}

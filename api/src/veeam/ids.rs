//! Veeam's spelling of task ids: `task-N`, where N is the engine's task number.

use entity::task;

/// The task's id, as EM spells it.
pub fn task_id(task: &task::Model) -> String {
    format!("task-{}", task.id)
}

/// Parses `task-N` (the prefix in any case) into the task number. Only the canonical spelling of
/// N is accepted: decimal digits without sign or leading zero, so one task has one id.
pub fn parse_task_id(text: &str) -> Option<i32> {
    let digits = text.get(..5).filter(|p| p.eq_ignore_ascii_case("task-")).map(|_| &text[5..])?;
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|id: &i32| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::parse_task_id;

    #[test]
    fn only_the_canonical_spelling_of_a_task_id_resolves() {
        assert_eq!(parse_task_id("task-6"), Some(6));
        assert_eq!(parse_task_id("TASK-2147483647"), Some(i32::MAX));
        for other in [
            "task-+6",
            "task-006",
            "task-0",
            "task--6",
            "task- 6",
            "task-6 ",
            "task-",
            "task-2147483648",
            "6",
            "task-٣",
            "tâsk-1",
        ] {
            assert_eq!(parse_task_id(other), None, "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_text_resolves_only_if_it_is_the_canonical_id(text in "(?i:task-)?[-+0-9 ]{0,12}") {
            if let Some(id) = parse_task_id(&text) {
                proptest::prop_assert!(text.eq_ignore_ascii_case(&format!("task-{id}")), "{} -> {}", text, id);
            }
        }

        #[test]
        fn every_canonical_id_resolves(id in 1..=i32::MAX) {
            proptest::prop_assert_eq!(parse_task_id(&format!("task-{id}")), Some(id));
        }
    }
}

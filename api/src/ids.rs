//! Ids as clients send them. Only the canonical spelling of an id names anything; anything else
//! is a 404 without a database query, so no client string the database cannot hold (a NUL)
//! reaches it as an id.

/// `id` if it is the canonical (lower-case, hyphenated) spelling of a UUID: every job, session,
/// logon session, sandbox and workload id is one.
pub fn canonical_uuid(id: &str) -> Option<&str> {
    uuid::Uuid::try_parse(id).ok().filter(|uuid| uuid.hyphenated().to_string() == id).map(|_| id)
}

/// A task's number, if `text` is its canonical spelling (`7`; not `007`, `+7` or `0`).
pub fn task_number(text: &str) -> Option<i32> {
    text.parse::<i32>().ok().filter(|n| *n > 0 && n.to_string() == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_spellings_name_anything() {
        let id = "0b9d2b1e-7c6f-4f3e-9a51-2f1c0c3b5d11";
        assert_eq!(canonical_uuid(id), Some(id));
        for other in ["0B9D2B1E-7C6F-4F3E-9A51-2F1C0C3B5D11", "0b9d2b1e7c6f4f3e9a512f1c0c3b5d11", "{x}", "", "a\0"] {
            assert_eq!(canonical_uuid(other), None, "{other}");
        }
        assert_eq!(task_number("7"), Some(7));
        for other in ["007", "+7", "0", "-1", "task-7", "99999999999", " 7"] {
            assert_eq!(task_number(other), None, "{other}");
        }
    }
}

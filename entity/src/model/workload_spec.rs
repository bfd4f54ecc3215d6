use sea_orm::entity::prelude::*;

/// What a workload runs: a named command in a working directory. Veeam calls it a job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workload_specs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The owner: another tenant's row does not exist for you.
    pub tenant_id: i32,
    /// Unique within its tenant.
    pub name: String,
    /// The argument vector, as a JSON array of strings.
    pub command: String,
    pub working_dir: String,
    /// What only the faces show (Veeam's `jobType` and `description`), as a JSON object.
    pub meta: String,
    /// Resource sizes (see `limits`).
    pub cpu_millis: Option<i32>,
    pub memory_bytes: Option<i64>,
    pub max_processes: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Set once deleted: the row stays for its history, its name is freed.
    pub deleted_at: Option<DateTimeUtc>,
    /// The environment its command runs with (over the runner's), as a JSON object of strings.
    pub env: String,
    /// The disk its workloads may use: recorded (a sandbox's `disk`), not enforced.
    pub disk_bytes: Option<i64>,
    /// The face that made it (`daytona`, `vercel`, `vercel_v1`), which keeps its attributes
    /// under that key of `meta`; none for a jobs file's.
    pub face: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The attributes `face` keeps in `meta.<face>` (each face owns one top-level key), if it
    /// has any that read as `T`.
    pub fn face_meta<T: serde::de::DeserializeOwned>(&self, face: &str) -> Option<T> {
        let meta = serde_json::from_str::<serde_json::Value>(&self.meta).ok()?;
        serde_json::from_value(meta.get(face)?.clone()).ok()
    }

    /// Whether `face` made this spec.
    pub fn is_of_face(&self, face: &str) -> bool {
        self.face.as_deref() == Some(face)
    }

    /// The argument vector; an error (naming the problem) when the stored command is not a JSON
    /// list of strings, instead of an empty command that would fail later for another reason.
    pub fn argv(&self) -> Result<Vec<String>, String> {
        serde_json::from_str(&self.command).map_err(|e| format!("its stored command is not a list of strings ({e})"))
    }

    /// The environment its command runs with; an error when the stored one is not an object of
    /// strings.
    pub fn environment(&self) -> Result<std::collections::BTreeMap<String, String>, String> {
        serde_json::from_str(&self.env).map_err(|e| format!("its stored environment is not an object of strings ({e})"))
    }

    /// What its workloads are limited to.
    pub fn limits(&self) -> crate::outcome::Limits {
        crate::outcome::Limits {
            cpu_millis: self.cpu_millis.and_then(|n| u32::try_from(n).ok()),
            memory_bytes: self.memory_bytes.and_then(|n| u64::try_from(n).ok()),
            max_processes: self.max_processes.and_then(|n| u32::try_from(n).ok()),
        }
    }

    /// One text entry of `meta`; empty when absent.
    pub fn meta_text(&self, key: &str) -> String {
        serde_json::from_str::<serde_json::Value>(&self.meta)
            .ok()
            .and_then(|meta| meta.get(key).and_then(serde_json::Value::as_str).map(str::to_owned))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    fn spec(command: &str, meta: &str) -> super::Model {
        super::Model {
            id: "j".into(),
            tenant_id: 1,
            name: "j".into(),
            command: command.into(),
            working_dir: ".".into(),
            meta: meta.into(),
            cpu_millis: None,
            memory_bytes: None,
            max_processes: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            deleted_at: None,
            env: "{}".into(),
            disk_bytes: None,
            face: None,
        }
    }

    #[test]
    fn a_stored_command_that_is_not_a_list_of_strings_is_an_error_not_an_empty_command() {
        assert_eq!(spec(r#"["sh","-c","true"]"#, "{}").argv(), Ok(vec!["sh".into(), "-c".into(), "true".into()]));
        for broken in ["", "sh -c true", r#"{"cmd":"sh"}"#, "[1,2]"] {
            assert!(spec(broken, "{}").argv().is_err(), "{broken:?}");
        }
    }

    #[test]
    fn meta_entries_are_read_as_text_and_absent_ones_are_empty() {
        let s = spec("[]", r#"{"jobType":"Backup","n":3}"#);
        assert_eq!(s.meta_text("jobType"), "Backup");
        assert_eq!(s.meta_text("n"), "");
        assert_eq!(s.meta_text("description"), "");
        assert_eq!(spec("[]", "not json").meta_text("jobType"), "");
    }
}

use sea_orm::entity::prelude::*;

/// A named command that a runner can start as a backup job session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The owner: another tenant's row does not exist for you.
    pub tenant_id: i32,
    #[sea_orm(unique)]
    pub name: String,
    pub job_type: String,
    pub description: String,
    /// The argument vector, as a JSON array of strings.
    pub command: String,
    pub working_dir: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The argument vector; an error (naming the problem) when the stored command is not a JSON
    /// list of strings, instead of an empty command that would fail later for another reason.
    pub fn argv(&self) -> Result<Vec<String>, String> {
        serde_json::from_str(&self.command).map_err(|e| format!("its stored command is not a list of strings ({e})"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stored_command_that_is_not_a_list_of_strings_is_an_error_not_an_empty_command() {
        let job = |command: &str| super::Model {
            id: "j".into(),
            tenant_id: 1,
            name: "j".into(),
            job_type: "Backup".into(),
            description: String::new(),
            command: command.into(),
            working_dir: ".".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        assert_eq!(job(r#"["sh","-c","true"]"#).argv(), Ok(vec!["sh".into(), "-c".into(), "true".into()]));
        for broken in ["", "sh -c true", r#"{"cmd":"sh"}"#, "[1,2]"] {
            assert!(job(broken).argv().is_err(), "{broken:?}");
        }
    }
}

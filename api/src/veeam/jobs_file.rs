//! The jobs file: the Veeam face's jobs, named commands upserted by name at start (by
//! `veeam::start`).
//!
//! ```toml
//! [[job]]
//! name = "Fileserver Backup"
//! type = "Backup"                       # Veeam JobType; default "Backup"
//! command = ["sleep", "3600"]
//! working_dir = "data/work/fileserver"  # default: data/work/<name>
//! cpus = 0.5                            # optional limits (see worker::contain::limits)
//! memory_mb = 512
//! max_processes = 100
//! ```

use entity::store::specs::{self, NewSpec};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsFile {
    #[serde(default)]
    job: Vec<JobEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobEntry {
    name: String,
    #[serde(default = "default_type", rename = "type")]
    job_type: String,
    #[serde(default)]
    description: String,
    command: Vec<String>,
    working_dir: Option<String>,
    cpus: Option<f64>,
    memory_mb: Option<u64>,
    max_processes: Option<u32>,
}

fn default_type() -> String {
    "Backup".to_owned()
}

/// The specs the file declares. Veeam's job type and description go into `meta` as `jobType`
/// and `description`, where the Veeam face reads them.
pub fn parse(text: &str) -> Result<Vec<NewSpec>, String> {
    let file: JobsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.job
        .into_iter()
        .map(|entry| {
            if entry.name.trim().is_empty() {
                return Err("a job has an empty name".to_owned());
            }
            if entry.command.is_empty() {
                return Err(format!("job {:?} has an empty command", entry.name));
            }
            let working_dir = entry.working_dir.unwrap_or_else(|| format!("data/work/{}", slug(&entry.name)));
            let cpu_millis = match entry.cpus {
                Some(cpus) if cpus.is_finite() && cpus > 0.0 && cpus <= 4096.0 => Some((cpus * 1000.0).round() as u32),
                Some(cpus) => return Err(format!("job {:?}: cpus must be a positive number, not {cpus}", entry.name)),
                None => None,
            };
            let limits = entity::outcome::Limits {
                cpu_millis,
                memory_bytes: entry.memory_mb.map(|mb| mb.saturating_mul(1 << 20)),
                max_processes: entry.max_processes,
            };
            Ok(NewSpec {
                name: entry.name,
                command: entry.command,
                working_dir,
                meta: serde_json::json!({"jobType": entry.job_type, "description": entry.description}),
                limits,
                env: Default::default(),
                disk_bytes: None,
                face: None,
            })
        })
        .collect()
}

fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// Reads `path` and upserts every job in it.
pub async fn load(db: &DatabaseConnection, path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read jobs file {}: {e}", path.display()))?;
    let declared = parse(&text).map_err(|e| format!("jobs file {}: {e}", path.display()))?;
    for spec in &declared {
        specs::upsert_by_name(db, spec).await.map_err(|e| e.to_string())?;
    }
    Ok(declared.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_read_with_defaults_and_bad_entries_are_named() {
        let specs = parse("[[job]]\nname = \"Nightly DB\"\ncommand = [\"sleep\", \"1\"]\n").expect("valid");
        assert_eq!(specs[0].meta["jobType"], "Backup");
        assert_eq!(specs[0].working_dir, "data/work/nightly-db");
        let err = parse("[[job]]\nname = \"x\"\ncommand = []\n").expect_err("empty command");
        assert!(err.contains("\"x\""), "{err}");
        assert!(parse("[[job]]\nname = \"x\"\ncommand = [\"a\"]\ncolour = 1\n").is_err());
        let limited =
            parse("[[job]]\nname = \"x\"\ncommand = [\"a\"]\ncpus = 0.25\nmemory_mb = 64\nmax_processes = 9\n");
        let limits = limited.expect("valid")[0].limits;
        assert_eq!(
            limits,
            entity::outcome::Limits { cpu_millis: Some(250), memory_bytes: Some(64 << 20), max_processes: Some(9) }
        );
        assert!(parse("[[job]]\nname = \"x\"\ncommand = [\"a\"]\ncpus = -1\n").is_err());
    }
}

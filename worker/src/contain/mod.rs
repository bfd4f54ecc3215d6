//! Containment: which processes are a workload's, and ending every one of them.
//!
//! A runner contains its workloads by one mechanism, chosen at start (`Mechanism::detect`),
//! logged, and recorded in its `runners` row:
//!
//! - **cgroup v2** (when a writable cgroup2 hierarchy with `cgroup.kill` is found, or given):
//!   each workload gets `<root>/<prefix>/<workload id>`; its gate process is moved there before
//!   the command runs, so everything it ever starts is inside, whatever it does (`setsid`,
//!   double forks, daemons). A stop freezes the cgroup, sends SIGTERM to every process in it,
//!   thaws it; after the grace period `cgroup.kill` ends them all at once, forks in flight
//!   included. The kernel's `cpu.stat` (and `memory.peak`, `pids.peak` where those controllers
//!   are enabled) measures it.
//! - **process tree** (the fallback: no writable cgroup2, another OS, or `CONTAINMENT=process-tree`):
//!   the runner is a child subreaper, so orphans of its workloads become its children instead of
//!   init's (and it reaps them); a workload's processes are those of its process group and every
//!   process whose environment carries its marker (`TASKQ_WORKLOAD=<id>`, inherited across forks,
//!   `setsid` and `exec`). A process that empties its environment and leaves the group escapes it.
//!   CPU time is the sum of the `/proc` times of the processes seen (sampled while it runs).
//!
//! The handle (`Handle`) is stored with the workload, so a restarted runner stops it by the
//! mechanism it was started under. Workloads of earlier releases have only their process group.

pub mod limits;

use crate::process::{self, Pgid};
use entity::outcome::{Limits, Usage};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The environment variable that marks every process of a workload with its id.
pub const MARKER: &str = "TASKQ_WORKLOAD";

/// How this runner contains workloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// cgroup v2: workloads go under this directory of a cgroup2 hierarchy.
    Cgroup { dir: PathBuf, prefix: String },
    /// The fallback: process group plus environment marker, with the runner as subreaper.
    ProcessTree { prefix: String },
}

impl Mechanism {
    /// `choice`: `auto` (cgroup v2 when usable, else the process tree), `cgroup` (an error when
    /// not usable) or `process-tree`. `root`: a cgroup2 directory to use instead of looking for
    /// the mounts; `prefix`: the directory made under it for this product's workloads.
    pub fn detect(choice: &str, root: Option<&Path>, prefix: &str) -> Result<Self, String> {
        let cgroup = || -> Result<PathBuf, String> {
            let candidates = match root {
                Some(root) => vec![root.to_owned()],
                None => cgroup2_mounts(),
            };
            let mut why = Vec::new();
            for candidate in candidates {
                match usable(&candidate.join(prefix)) {
                    Ok(dir) => {
                        limits::enable_v2_controllers(&candidate, &dir);
                        return Ok(dir);
                    }
                    Err(err) => why.push(format!("{}: {err}", candidate.display())),
                }
            }
            Err(if why.is_empty() { "no cgroup2 hierarchy is mounted".to_owned() } else { why.join("; ") })
        };
        let prefix = prefix.to_owned();
        match choice {
            "cgroup" => cgroup().map(|dir| Mechanism::Cgroup { dir, prefix }),
            "process-tree" => Ok(Mechanism::ProcessTree { prefix }),
            "auto" => Ok(match cgroup() {
                Ok(dir) => Mechanism::Cgroup { dir, prefix },
                Err(why) => {
                    tracing::warn!(why, "cgroup v2 is not usable: containing workloads by process tree");
                    Mechanism::ProcessTree { prefix }
                }
            }),
            other => Err(format!("CONTAINMENT must be auto, cgroup or process-tree, not {other:?}")),
        }
    }

    /// What the runner reports: `cgroup2 <dir>` or `process-tree`.
    pub fn describe(&self) -> String {
        match self {
            Mechanism::Cgroup { dir, .. } => format!("cgroup2 {}", dir.display()),
            Mechanism::ProcessTree { .. } => "process-tree".to_owned(),
        }
    }

    /// Prepares the runner process: under the process tree, it becomes a child subreaper.
    pub fn prepare(&self) {
        if self.is_process_tree()
            && let Err(err) = nix::sys::prctl::set_child_subreaper(true)
        {
            tracing::warn!(%err, "cannot become a child subreaper: orphans of workloads go to init");
        }
    }

    pub fn is_process_tree(&self) -> bool {
        matches!(self, Mechanism::ProcessTree { .. })
    }

    /// Contains the gated process `pgid` (which has not run its command yet) of workload `id`,
    /// within `limits` where the host allows (see `limits`). Under cgroups, when its cgroup
    /// cannot be made, the process tree contains it instead.
    pub fn contain(&self, id: &str, pgid: Pgid, wanted: &Limits) -> Handle {
        let pid = pgid.get();
        let (dir, prefix) = match self {
            Mechanism::Cgroup { dir, prefix } => (Some(dir), prefix),
            Mechanism::ProcessTree { prefix } => (None, prefix),
        };
        let placed = dir.and_then(|dir| {
            let path = dir.join(id);
            let placed =
                std::fs::create_dir_all(&path).and_then(|()| std::fs::write(path.join("cgroup.procs"), pid.to_string()));
            match placed {
                Ok(()) => Some(path),
                Err(err) => {
                    tracing::warn!(%err, cgroup = %path.display(), "cannot place the workload in its cgroup: tracking its process tree");
                    let _ = std::fs::remove_dir(&path);
                    None
                }
            }
        });
        let v1 = limits::apply(wanted, placed.as_deref(), id, pid, prefix);
        match placed {
            Some(path) => Handle::Cgroup { path, pgid: pid, v1 },
            None => Handle::ProcessTree { pgid: pid, marker: id.to_owned(), v1 },
        }
    }
}

/// Mount points of cgroup2 hierarchies, from `/proc/self/mountinfo`.
pub fn cgroup2_mounts() -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    info.lines()
        .filter_map(|line| {
            let (fields, fs) = line.split_once(" - ")?;
            let mount_point = fields.split_whitespace().nth(4)?;
            (fs.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .collect()
}

/// `dir`, created, if workloads can be contained under it: a child cgroup can be made there,
/// has `cgroup.kill`, and can be removed.
fn usable(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!("probe-{}", std::process::id()));
    std::fs::create_dir_all(&probe)?;
    let complete = probe.join("cgroup.kill").exists() && probe.join("cgroup.procs").exists();
    std::fs::remove_dir(&probe)?;
    if complete {
        Ok(dir.to_owned())
    } else {
        Err(std::io::Error::other("not a cgroup2 directory with cgroup.kill (Linux 5.14 or later)"))
    }
}

/// What contains one workload's processes. Stored as JSON in `workloads.containment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Handle {
    /// Every process in the cgroup at `path` (and below it). `v1`: its cgroups in v1
    /// hierarchies, made for limits (see `limits`).
    Cgroup {
        path: PathBuf,
        pgid: i32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        v1: Vec<PathBuf>,
    },
    /// The process group, and every process whose environment carries the marker.
    ProcessTree {
        pgid: i32,
        marker: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        v1: Vec<PathBuf>,
    },
    /// The process group only (workloads of earlier releases).
    Group { pgid: i32 },
}

impl Handle {
    /// The handle of a stored workload: its containment, or its process group; `None` when it
    /// has no process.
    pub fn of(workload: &entity::workload::Model) -> Option<Self> {
        if let Some(handle) = workload.containment.as_deref().and_then(|json| serde_json::from_str(json).ok()) {
            return Some(handle);
        }
        workload.pid.and_then(Pgid::new).map(|pgid| Handle::Group { pgid: pgid.get() })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn pgid(&self) -> Option<Pgid> {
        match self {
            Handle::Cgroup { pgid, .. } | Handle::ProcessTree { pgid, .. } | Handle::Group { pgid } => Pgid::new(*pgid),
        }
    }

    /// The workload's live processes.
    pub fn members(&self) -> Vec<i32> {
        match self {
            Handle::Cgroup { path, .. } => {
                let mut pids = Vec::new();
                cgroup_procs(path, &mut pids);
                pids
            }
            Handle::ProcessTree { pgid, marker, .. } => process::snapshot(MARKER)
                .iter()
                .filter(|p| p.pgrp == *pgid || p.marker.as_deref() == Some(marker))
                .map(|p| p.pid)
                .collect(),
            Handle::Group { pgid } => Pgid::new(*pgid).map(process::group_members).unwrap_or_default(),
        }
    }

    pub fn alive(&self) -> bool {
        match self {
            Handle::Cgroup { path, .. } => populated(path),
            _ => !self.members().is_empty(),
        }
    }

    /// Alive by what only the workload's own processes carry: a process in its cgroup, or one
    /// with its marker; never a process group id alone, which the kernel may have handed to an
    /// unrelated process since (a re-run believes only this; see `start_workload::verify`).
    pub fn verifiably_alive(&self) -> bool {
        match self {
            Handle::Cgroup { path, .. } => populated(path),
            Handle::ProcessTree { marker, .. } => {
                process::snapshot(MARKER).iter().any(|p| p.marker.as_deref() == Some(marker.as_str()))
            }
            Handle::Group { .. } => self.alive(),
        }
    }

    /// Sends SIGTERM to every process of the workload; `false` when it had none. A cgroup is
    /// frozen meanwhile, so no process forks past the signal.
    pub fn terminate(&self) -> bool {
        let frozen = match self {
            Handle::Cgroup { path, .. } => freeze(path, true),
            _ => false,
        };
        let members = self.members();
        for pid in &members {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
        }
        if let Some(pgid) = self.pgid() {
            let _ = process::signal_group(pgid, Signal::SIGTERM);
        }
        if let Handle::Cgroup { path, .. } = self
            && frozen
        {
            freeze(path, false);
        }
        !members.is_empty()
    }

    /// Kills every process of the workload at once (`cgroup.kill`), or SIGKILLs each one seen.
    pub fn kill(&self) {
        if let Handle::Cgroup { path, .. } = self {
            match std::fs::write(path.join("cgroup.kill"), "1") {
                Ok(()) => return,
                Err(err) => tracing::warn!(%err, cgroup = %path.display(), "cgroup.kill failed: killing one by one"),
            }
        }
        for pid in self.members() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(pgid) = self.pgid() {
            let _ = process::signal_group(pgid, Signal::SIGKILL);
        }
    }

    /// Once every process has ended: what the kernel measured of the workload. (A process
    /// tree's CPU time is what `Sampler` saw.)
    pub fn usage(&self, sampled: Option<i64>) -> Usage {
        match self {
            Handle::Cgroup { path, v1, .. } => {
                let (memory, processes) = limits::v1_peaks(v1);
                Usage {
                    cpu_usec: read_key(&path.join("cpu.stat"), "usage_usec"),
                    memory_peak_bytes: read_number(&path.join("memory.peak")).or(memory),
                    processes_peak: read_number(&path.join("pids.peak")).or(processes),
                }
            }
            Handle::ProcessTree { v1, .. } => {
                let (memory_peak_bytes, processes_peak) = limits::v1_peaks(v1);
                Usage { cpu_usec: sampled, memory_peak_bytes, processes_peak }
            }
            Handle::Group { .. } => Usage { cpu_usec: sampled, ..Usage::default() },
        }
    }

    /// Removes the workload's cgroups, once it is recorded Stopped (idempotent).
    pub fn release(&self) {
        let (path, v1) = match self {
            Handle::Cgroup { path, v1, .. } => (Some(path), v1.as_slice()),
            Handle::ProcessTree { v1, .. } => (None, v1.as_slice()),
            Handle::Group { .. } => (None, &[][..]),
        };
        path.into_iter().chain(v1).for_each(|dir| remove_cgroup(dir));
    }

    /// Removes what `contain` made, for a workload whose command never ran.
    pub fn discard(&self) {
        self.kill();
        self.release();
    }
}

/// `Handle` calls from async code: scanning `/proc`, freezing a cgroup and waiting for it block,
/// so they run on the blocking pool, never on a thread that serves requests.
impl Handle {
    pub async fn alive_async(&self) -> bool {
        self.blocking(Handle::alive).await.unwrap_or(true)
    }

    pub async fn verifiably_alive_async(&self) -> bool {
        self.blocking(Handle::verifiably_alive).await.unwrap_or(true)
    }

    pub async fn members_async(&self) -> Vec<i32> {
        self.blocking(Handle::members).await.unwrap_or_default()
    }

    pub async fn terminate_async(&self) -> bool {
        self.blocking(Handle::terminate).await.unwrap_or(false)
    }

    pub async fn kill_async(&self) {
        let _ = self.blocking(Handle::kill).await;
    }

    pub async fn release_async(&self) {
        let _ = self.blocking(Handle::release).await;
    }

    async fn blocking<T: Send + 'static>(&self, call: fn(&Handle) -> T) -> Option<T> {
        let handle = self.clone();
        tokio::task::spawn_blocking(move || call(&handle)).await.ok()
    }
}

/// Samples the CPU time of a process-tree workload while it runs: the kernel keeps a process's
/// times only while it exists, so the last figure seen of each process is summed.
#[derive(Default, Clone)]
pub struct Sampler {
    /// (pid, start time) → user + system clock ticks last seen.
    seen: std::sync::Arc<Mutex<HashMap<(i32, u64), u64>>>,
}

impl Sampler {
    /// Whether `handle`'s workload needs sampling: a cgroup keeps its own CPU total.
    pub fn needed(handle: &Handle) -> bool {
        !matches!(handle, Handle::Cgroup { .. })
    }

    pub fn sample(&self, handle: &Handle) {
        if !Self::needed(handle) {
            return;
        }
        let times: Vec<_> =
            handle.members().into_iter().filter_map(|pid| Some((pid, process::cpu_ticks(pid)?))).collect();
        if let Ok(mut seen) = self.seen.lock() {
            for (pid, (started, ticks)) in times {
                let entry = seen.entry((pid, started)).or_default();
                *entry = (*entry).max(ticks);
            }
        }
    }

    pub async fn sample_async(&self, handle: &Handle) {
        if !Self::needed(handle) {
            return;
        }
        let (sampler, handle) = (self.clone(), handle.clone());
        let _ = tokio::task::spawn_blocking(move || sampler.sample(&handle)).await;
    }

    /// Microseconds of CPU time seen (`/proc` counts in USER_HZ = 100 ticks per second).
    pub fn total_usec(&self) -> Option<i64> {
        let seen = self.seen.lock().ok()?;
        let ticks: u64 = seen.values().sum();
        i64::try_from(ticks.saturating_mul(10_000)).ok()
    }
}

fn cgroup_procs(path: &Path, into: &mut Vec<i32>) {
    if let Ok(text) = std::fs::read_to_string(path.join("cgroup.procs")) {
        into.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                cgroup_procs(&entry.path(), into);
            }
        }
    }
}

/// `cgroup.events` says `populated 1` (a cgroup that is gone holds nothing).
fn populated(path: &Path) -> bool {
    read_key(&path.join("cgroup.events"), "populated").is_some_and(|n| n != 0)
}

/// Freezes (or thaws) the cgroup; true once it says so (within a second).
fn freeze(path: &Path, frozen: bool) -> bool {
    if std::fs::write(path.join("cgroup.freeze"), if frozen { "1" } else { "0" }).is_err() {
        return false;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        if read_key(&path.join("cgroup.events"), "frozen") == Some(i64::from(frozen)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Retires a `CGROUP_PREFIX`: kills whatever is left in its cgroups (under every cgroup2
/// mount) and removes them, with the cgroup v1 directories made for limits. For whoever ran a
/// throwaway runner under its own prefix (the tests, the load benchmark).
pub fn remove_prefix(prefix: &str) {
    for mount in cgroup2_mounts() {
        let dir = mount.join(prefix);
        if dir.is_dir() {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
            remove_cgroup(&dir);
        }
    }
    for dir in limits::v1_prefix_dirs(prefix) {
        if dir.is_dir() {
            remove_cgroup(&dir);
        }
    }
}

/// Removes the cgroup and the cgroups below it, deepest first (they are empty by now).
pub fn remove_cgroup(path: &Path) {
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    for _ in 0..50 {
        match std::fs::remove_dir(path) {
            Ok(()) => return,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            // Busy: the last processes are still being torn down.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    tracing::warn!(cgroup = %path.display(), "could not remove the workload's cgroup");
}

/// `key <number>` from a flat-keyed file such as `cpu.stat` or `cgroup.events`.
fn read_key(file: &Path, key: &str) -> Option<i64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn read_number(file: &Path) -> Option<i64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_round_trips_through_its_stored_form_and_old_rows_are_their_process_group() {
        let handle = Handle::Cgroup { path: "/sys/fs/cgroup/taskq/w".into(), pgid: 42, v1: Vec::new() };
        assert_eq!(handle.to_json(), r#"{"kind":"cgroup","path":"/sys/fs/cgroup/taskq/w","pgid":42}"#);
        assert_eq!(serde_json::from_str::<Handle>(&handle.to_json()).ok(), Some(handle));
    }

    #[test]
    fn flat_keyed_files_are_read_by_key() {
        let dir = std::env::temp_dir().join(format!("taskq-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("cpu.stat"), "usage_usec 1234\nuser_usec 1000\n").expect("write");
        assert_eq!(read_key(&dir.join("cpu.stat"), "usage_usec"), Some(1234));
        assert_eq!(read_key(&dir.join("cpu.stat"), "user"), None);
        assert_eq!(read_key(&dir.join("missing"), "usage_usec"), None);
    }

    #[test]
    fn an_unknown_choice_is_refused_and_process_tree_is_always_available() {
        assert!(Mechanism::detect("containers", None, "taskq").is_err());
        let tree = Mechanism::ProcessTree { prefix: "taskq".into() };
        assert_eq!(Mechanism::detect("process-tree", None, "taskq").as_ref(), Ok(&tree));
        let nowhere = std::env::temp_dir().join("not-a-cgroup");
        assert!(Mechanism::detect("cgroup", Some(&nowhere), "taskq").is_err(), "a plain directory is not a cgroup");
        assert_eq!(Mechanism::detect("auto", Some(&nowhere), "taskq"), Ok(tree));
    }
}

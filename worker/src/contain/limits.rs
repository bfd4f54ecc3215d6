//! Resource limits of a workload (`entity::outcome::Limits`), set where the host's cgroup
//! controllers allow, controller by controller:
//!
//! - in the workload's own cgroup v2 (`memory.max`, `pids.max`, `cpu.max`) when that controller
//!   is enabled for its hierarchy (systemd hosts: `Mechanism::detect` enables `memory`, `pids`
//!   and `cpu` down to the workloads' directory where the hierarchy offers them);
//! - else in that controller's cgroup v1 hierarchy (hybrid hosts, whose `memory`, `pids` and
//!   `cpu` are bound to v1): a cgroup per workload under the runner's own
//!   (`memory.limit_in_bytes`, `pids.max`, `cpu.cfs_quota_us`), which the process joins before
//!   its command runs, as it joins its v2 cgroup;
//! - else not at all: the runner logs which limit is not enforced.

use entity::outcome::Limits;
use std::path::{Path, PathBuf};

/// The CPU bandwidth period, in microseconds (the kernel's default).
const PERIOD_USEC: u64 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    const ALL: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }

    /// The cgroup v2 file that exists when the controller is enabled there.
    fn v2_file(self) -> &'static str {
        match self {
            Controller::Memory => "memory.max",
            Controller::Pids => "pids.max",
            Controller::Cpu => "cpu.max",
        }
    }

    /// (v2 file, v1 file, v2 value, v1 value) of this controller's limit, if `limits` sets it.
    fn setting(self, limits: &Limits) -> Option<(&'static str, &'static str, String, String)> {
        match self {
            Controller::Memory => {
                limits.memory_bytes.map(|b| ("memory.max", "memory.limit_in_bytes", b.to_string(), b.to_string()))
            }
            Controller::Pids => limits.max_processes.map(|n| ("pids.max", "pids.max", n.to_string(), n.to_string())),
            Controller::Cpu => limits.cpu_millis.map(|millis| {
                let quota = (u64::from(millis) * PERIOD_USEC / 1000).max(1000);
                ("cpu.max", "cpu.cfs_quota_us", format!("{quota} {PERIOD_USEC}"), quota.to_string())
            }),
        }
    }
}

/// Enables the `memory`, `pids` and `cpu` controllers for the children of `dir`, on every
/// cgroup from `mount` down to `dir`, where the hierarchy offers them. What cannot be enabled
/// is left to cgroup v1 (or not enforced).
pub fn enable_v2_controllers(mount: &Path, dir: &Path) {
    let Ok(below) = dir.strip_prefix(mount) else { return };
    let mut at = mount.to_owned();
    let mut chain = vec![at.clone()];
    for part in below.components() {
        at.push(part);
        chain.push(at.clone());
    }
    for cgroup in chain {
        let offered = std::fs::read_to_string(cgroup.join("cgroup.controllers")).unwrap_or_default();
        for controller in Controller::ALL {
            if offered.split_whitespace().any(|c| c == controller.name()) {
                let _ = std::fs::write(cgroup.join("cgroup.subtree_control"), format!("+{}", controller.name()));
            }
        }
    }
}

/// Sets `limits` for the process `pid` of workload `id`, whose cgroup v2 is `v2` (if it has one).
/// Where v2 lacks the memory or pids controller, the process also joins a cgroup v1 of that
/// controller without a limit, for its peak figures. Returns the cgroup v1 directories made
/// for it (removed with it).
pub fn apply(limits: &Limits, v2: Option<&Path>, id: &str, pid: i32, prefix: &str) -> Vec<PathBuf> {
    let mut made = Vec::new();
    for controller in Controller::ALL {
        let setting = controller.setting(limits);
        let v2_file = controller.v2_file();
        if let Some(dir) = v2.filter(|dir| dir.join(v2_file).exists()) {
            if let Some((_, _, value, _)) = &setting
                && let Err(err) = std::fs::write(dir.join(v2_file), value)
            {
                tracing::warn!(%err, file = v2_file, workload = id, "limit not enforced");
            }
            continue;
        }
        let measures = matches!(controller, Controller::Memory | Controller::Pids);
        if setting.is_none() && !measures {
            continue;
        }
        let Some(dir) = v1_cgroup(controller, prefix, id) else {
            if setting.is_some() {
                tracing::warn!(
                    controller = controller.name(),
                    workload = id,
                    "no such cgroup controller: limit not enforced"
                );
            }
            continue;
        };
        let placed = std::fs::create_dir_all(&dir)
            .and_then(|()| match &setting {
                Some((_, v1_file, _, value)) => std::fs::write(dir.join(v1_file), value),
                None => Ok(()),
            })
            .and_then(|()| std::fs::write(dir.join("cgroup.procs"), pid.to_string()));
        match placed {
            Ok(()) => made.push(dir),
            Err(err) => {
                tracing::warn!(%err, controller = controller.name(), workload = id, "cgroup v1 not usable: limit not enforced");
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
    made
}

/// Where a workload's cgroup v1 of `controller` goes: under the runner's own cgroup in that
/// controller's hierarchy.
fn v1_cgroup(controller: Controller, prefix: &str, id: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own_path = own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == controller.name()).then(|| path.to_owned())
    })?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (fields, fs) = line.split_once(" - ")?;
        let mut fs = fs.split_whitespace();
        let (kind, options) = (fs.next()?, fs.nth(1)?);
        if kind != "cgroup" || !options.split(',').any(|o| o == controller.name()) {
            return None;
        }
        let fields: Vec<&str> = fields.split_whitespace().collect();
        let (root, mount) = (*fields.get(3)?, *fields.get(4)?);
        let relative = own_path.strip_prefix(root).unwrap_or(&own_path).trim_start_matches('/');
        Some(Path::new(mount).join(relative).join(prefix).join(id))
    })
}

/// The cgroup v1 directories (of the limiting controllers) where workloads under `prefix` go.
pub fn v1_prefix_dirs(prefix: &str) -> Vec<PathBuf> {
    Controller::ALL
        .iter()
        .filter_map(|c| v1_cgroup(*c, prefix, "").map(|dir| dir.components().collect::<PathBuf>()))
        .collect()
}

/// Peak memory and peak process count from a workload's cgroup v1 directories, if it has them.
pub fn v1_peaks(dirs: &[PathBuf]) -> (Option<i64>, Option<i64>) {
    let read =
        |file: &str| dirs.iter().find_map(|dir| std::fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok());
    (read("memory.max_usage_in_bytes"), read("pids.peak"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_each_controllers_own_settings() {
        let limits = Limits { cpu_millis: Some(250), memory_bytes: Some(64 << 20), max_processes: Some(9) };
        assert_eq!(
            Controller::Cpu.setting(&limits),
            Some(("cpu.max", "cpu.cfs_quota_us", "25000 100000".into(), "25000".into()))
        );
        assert_eq!(
            Controller::Memory.setting(&limits),
            Some(("memory.max", "memory.limit_in_bytes", "67108864".into(), "67108864".into()))
        );
        assert_eq!(Controller::Pids.setting(&limits).map(|s| s.2), Some("9".into()));
        assert_eq!(Controller::Cpu.setting(&Limits::default()), None);
        // The kernel refuses a quota under 1 ms.
        let tiny = Limits { cpu_millis: Some(1), ..Limits::default() };
        assert_eq!(Controller::Cpu.setting(&tiny).map(|s| s.3), Some("1000".into()));
    }
}

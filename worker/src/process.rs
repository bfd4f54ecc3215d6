//! Process groups: the only module that talks to the OS about processes.
//!
//! Every workload is spawned as the leader of a new process group (`setpgid(0, 0)` through
//! `CommandExt::process_group`), so one signal reaches everything it started. Liveness is read
//! from `/proc`, not from `kill(-pgid, 0)`: after a runner restart the workload is no longer our
//! child, and on a machine whose PID 1 does not reap orphans, an exited member lingers as a
//! zombie that `kill` would still count. The module needs no `unsafe`: `nix` wraps the calls.
//!
//! A workload is spawned *gated*: `/bin/sh` becomes the group leader and waits for one line on
//! its stdin before it `exec`s the command (same pid, same group). The runner records the pid
//! durably, then releases the gate. If the runner dies before that, the pipe's write end closes
//! with it, the gate reads end-of-file and exits without running the command: no process ever
//! runs a command whose handle the database does not hold, and a re-run spawns it exactly once.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

pub use nix::sys::signal::Signal::{SIGKILL, SIGTERM};

/// The id of a workload's process group: never 0 (which `killpg` reads as the caller's own
/// group: the runner, or in embedded mode the whole server), never 1 (init), never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pgid(i32);

impl Pgid {
    pub fn new(raw: i32) -> Option<Self> {
        (raw > 1).then_some(Self(raw))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// Waits for the runner's go-ahead on stdin, then opens the log (`$1`) for its output and becomes
/// the command. Exit status 125 when the gate closed without it (the runner died first). The log
/// exists only once the gate has passed: that is how a re-run tells a command that ran from one
/// that never did (`passed_gate`).
const GATE: &str = "read -r _ || exit 125; exec >>\"$1\" 2>&1; shift; exec \"$@\"";

/// A workload spawned behind its gate: its process group exists, its command has not run yet.
pub struct Gated {
    child: Child,
    gate: ChildStdin,
    pgid: Pgid,
}

impl Gated {
    /// The group leader's pid, which is also the process group id.
    pub fn pgid(&self) -> Pgid {
        self.pgid
    }

    /// Lets the command run; the command then reads end-of-file on stdin. If the gate is gone
    /// (someone killed it), the child's exit status tells so.
    pub async fn release(mut self) -> Child {
        if let Err(err) = self.gate.write_all(b"go\n").await {
            tracing::warn!(pgid = self.pgid.get(), %err, "could not release the gate");
        }
        drop(self.gate);
        self.child
    }

    /// Ends the gated process without running the command, and reaps it.
    pub async fn abort(mut self) {
        drop(self.gate);
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// What a gated process is started with.
pub struct Launch<'a> {
    pub argv: &'a [String],
    pub working_dir: &'a Path,
    /// Added to the base environment (`entity::environment`); the runner's own never reaches a
    /// workload, and a refused name is dropped here too.
    pub env: &'a std::collections::BTreeMap<String, String>,
    /// Where its output goes, from the moment its gate passes.
    pub log: &'a Path,
    /// `NAME=value`, inherited by all it starts; `env` cannot override it.
    pub marker: (&'a str, &'a str),
}

/// Spawns the command in its working directory as the leader of a new process group, behind its
/// gate. A command that cannot be found is an error here, not an exit status later.
pub fn spawn_gated(launch: Launch<'_>) -> std::io::Result<Gated> {
    let Launch { argv, working_dir, env, log, marker } = launch;
    let program =
        argv.first().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the command is empty"))?;
    std::fs::create_dir_all(working_dir)?;
    find_program(program, working_dir)?;
    // The gate opens the log once the shell is in `working_dir`: a relative path (the default
    // `data/work/<name>`) would be read from there, the redirection would fail, and the shell
    // would exit with 2 before the command ran.
    let log = std::path::absolute(log)?;
    let (allowed, refused): (Vec<_>, Vec<_>) =
        env.iter().partition(|(name, _)| entity::environment::refused(name).is_none());
    if !refused.is_empty() {
        let names: Vec<&String> = refused.iter().map(|(name, _)| *name).collect();
        tracing::warn!(?names, "environment variables a workload may not set were dropped");
    }
    let mut child = Command::new("/bin/sh")
        .args(["-c", GATE, "taskq-gate"])
        .arg(log)
        .args(argv)
        .current_dir(working_dir)
        .env_clear()
        .envs(entity::environment::base(&working_dir.to_string_lossy()))
        .envs(allowed)
        .env(marker.0, marker.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let pgid = child.id().and_then(|pid| i32::try_from(pid).ok()).and_then(Pgid::new);
    match (child.stdin.take(), pgid) {
        (Some(gate), Some(pgid)) => {
            if let Ok(mut spawned) = SPAWNED.lock() {
                spawned.insert(pgid.get());
            }
            Ok(Gated { child, gate, pgid })
        }
        _ => {
            let _ = child.start_kill();
            Err(std::io::Error::other("the spawned process has no pid or no stdin"))
        }
    }
}

/// Whether the gate of the workload whose log is `log` has passed: its command ran.
pub fn passed_gate(log: &Path) -> bool {
    log.exists()
}

/// Fails as `exec` would: a path (relative to `working_dir`) that is not an executable file, or
/// a name that no directory of the workloads' fixed `PATH` holds as one.
fn find_program(program: &str, working_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: std::path::PathBuf| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        executable(working_dir.join(program))
    } else {
        std::env::split_paths(entity::environment::PATH).any(|dir| executable(dir.join(program)))
    };
    if found {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("command {program:?} not found or not executable"),
        ))
    }
}

/// Sends `signal` to every process of the group; `false` when the group no longer exists.
pub fn signal_group(pgid: Pgid, signal: Signal) -> std::io::Result<bool> {
    match killpg(Pid::from_raw(pgid.get()), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(err) => Err(std::io::Error::from(err)),
    }
}

/// The live (not zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: Pgid) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(
            |pid| matches!(stat_of(*pid), Some((state, pgrp)) if pgrp == pgid.get() && state != 'Z' && state != 'X'),
        )
        .collect()
}

pub fn group_alive(pgid: Pgid) -> bool {
    !group_members(pgid).is_empty()
}

/// Every live (not zombie) process: `(pid, process group)`.
pub fn live_processes() -> Vec<(i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| match stat_of(pid) {
            Some((state, pgrp)) if state != 'Z' && state != 'X' => Some((pid, pgrp)),
            _ => None,
        })
        .collect()
}

/// A live process as a snapshot saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub pid: i32,
    pub pgrp: i32,
    /// The value of `marker_name` in its environment (as it was at its `exec`).
    pub marker: Option<String>,
}

/// Every live process with its group and its workload marker: one scan of `/proc`, shared by
/// every caller within `FRESH` (scans read each process's environment; many workloads are
/// watched at once).
pub fn snapshot(marker_name: &str) -> std::sync::Arc<Vec<Seen>> {
    const FRESH: std::time::Duration = std::time::Duration::from_millis(50);
    type Cache = Option<(std::time::Instant, std::sync::Arc<Vec<Seen>>)>;
    static CACHE: std::sync::Mutex<Cache> = std::sync::Mutex::new(None);
    if let Ok(cache) = CACHE.lock()
        && let Some((at, seen)) = cache.as_ref()
        && at.elapsed() < FRESH
    {
        return seen.clone();
    }
    let prefix = format!("{marker_name}=");
    let seen: Vec<Seen> = live_processes()
        .into_iter()
        .map(|(pid, pgrp)| {
            let marker = std::fs::read(format!("/proc/{pid}/environ")).ok().and_then(|env| {
                env.split(|b| *b == 0)
                    .find_map(|e| e.strip_prefix(prefix.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
            });
            Seen { pid, pgrp, marker }
        })
        .collect();
    let seen = std::sync::Arc::new(seen);
    if let Ok(mut cache) = CACHE.lock() {
        *cache = Some((std::time::Instant::now(), seen.clone()));
    }
    seen
}

/// `(start time, user + system ticks)` of a process, from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: i32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command: state is field 3; utime 14, stime 15, starttime 22.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(22)?, field(14)? + field(15)?))
}

/// Pids of the workload leaders this process spawned: `tokio` reaps those, `reap_orphans` never.
static SPAWNED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<i32>>> =
    std::sync::LazyLock::new(Default::default);

/// The leader `pid` was reaped by its watcher.
pub fn forget_spawned(pid: i32) {
    if let Ok(mut spawned) = SPAWNED.lock() {
        spawned.remove(&pid);
    }
}

/// Reaps exited children that are not workload leaders: orphans of workloads that a subreaper
/// inherits. Returns how many it reaped.
pub fn reap_orphans() -> usize {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let me = std::process::id();
    let mut reaped = 0;
    for pid in zombie_children(me) {
        if SPAWNED.lock().is_ok_and(|spawned| spawned.contains(&pid)) {
            continue;
        }
        if waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)).is_ok() {
            reaped += 1;
        }
    }
    reaped
}

/// Zombie processes whose parent is `parent`.
fn zombie_children(parent: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|stat| {
                let mut fields = stat.get(stat.rfind(')').unwrap_or(0) + 1..).unwrap_or("").split_whitespace();
                fields.next() == Some("Z") && fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(parent)
            })
        })
        .collect()
}

/// `(state, process group)` from `/proc/<pid>/stat`. The command name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn stat_of(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// How a child ended: its exit code, or the name of the signal that ended it.
pub fn exit_facts(status: &std::process::ExitStatus) -> (Option<i32>, Option<String>) {
    use std::os::unix::process::ExitStatusExt;
    let signal =
        status.signal().map(|n| Signal::try_from(n).map_or_else(|_| format!("signal {n}"), |s| s.as_str().to_owned()));
    (status.code(), signal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn launch<'a>(argv: &'a [String], dir: &'a Path, log: &'a Path, env: &'a BTreeMap<String, String>) -> Launch<'a> {
        Launch { argv, working_dir: dir, env, log, marker: ("TASKQ_TEST", "1") }
    }

    #[tokio::test]
    async fn a_workload_gets_the_base_and_its_spec_environment_and_nothing_of_the_runners() {
        let dir = std::env::temp_dir().join(format!("taskq-env-{}", std::process::id()));
        let argv = ["sh", "-c", "echo \"$GREETING|$TASKQ_TEST|$PATH|$HOME|$LD_PRELOAD|$CARGO_PKG_NAME\" > out"]
            .map(String::from);
        let env = BTreeMap::from([
            ("GREETING".to_owned(), "hello world".to_owned()),
            ("TASKQ_TEST".to_owned(), "x".to_owned()),
            ("LD_PRELOAD".to_owned(), "/nowhere.so".to_owned()),
        ]);
        assert!(std::env::var("CARGO_PKG_NAME").is_ok(), "the runner (this test) has it");
        let mut child = spawn_gated(launch(&argv, &dir, &dir.join("log"), &env)).expect("spawn").release().await;
        assert!(child.wait().await.expect("wait").success());
        let out = std::fs::read_to_string(dir.join("out")).expect("out");
        let expected = format!("hello world|1|{}|{}||", entity::environment::PATH, dir.display());
        assert_eq!(
            out.trim_end(),
            expected,
            "the spec's env on the base; marker kept, refused names and the runner's own out"
        );
    }

    #[tokio::test]
    async fn a_spawned_command_leads_its_own_group_and_a_group_signal_ends_it() {
        let dir = std::env::temp_dir().join(format!("taskq-process-{}", std::process::id()));
        let argv = ["sh", "-c", "sleep 30 & sleep 30"].map(String::from);
        let gated = spawn_gated(launch(&argv, &dir, &dir.join("log"), &Default::default())).expect("spawn");
        let pid = gated.pgid();
        let mut child = gated.release().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while group_members(pid).len() < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(group_members(pid).len(), 3, "sh and both sleeps are in the group");
        assert!(signal_group(pid, SIGKILL).expect("signal"));
        let status = child.wait().await.expect("wait");
        assert_eq!(exit_facts(&status), (None, Some("SIGKILL".to_owned())));
        while group_alive(pid) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!group_alive(pid), "no live member is left");
    }

    #[tokio::test]
    async fn a_gate_that_closes_without_release_never_runs_the_command() {
        let dir = std::env::temp_dir().join(format!("taskq-gate-{}", std::process::id()));
        let marker = dir.join("ran");
        let argv = ["sh", "-c", &format!("touch {}", marker.display())].map(String::from);
        let Gated { mut child, gate, .. } =
            spawn_gated(launch(&argv, &dir, &dir.join("log"), &Default::default())).expect("spawn");
        // What the runner's death does to the gate: its write end closes.
        drop(gate);
        let status = child.wait().await.expect("wait");
        assert_eq!(status.code(), Some(125), "the gate gave up");
        assert!(!marker.exists(), "the command never ran");
        assert!(!passed_gate(&dir.join("log")), "and its log says so");
    }

    /// The README's jobs run with relative working directories (`data/work/<name>`), so their
    /// logs are relative paths too: both are the runner's, not the shell's once it has moved.
    #[tokio::test]
    async fn a_workload_with_a_relative_working_dir_runs_and_logs_there() {
        use std::path::PathBuf;
        struct Removed(PathBuf);
        impl Drop for Removed {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        // Under the test's own directory, removed however the test ends.
        let relative = PathBuf::from(format!("taskq-relative-{}", std::process::id()));
        let _removed = Removed(relative.clone());
        let argv = ["sh", "-c", "echo ran; pwd"].map(String::from);
        let log = relative.join("w.log");
        let mut child =
            spawn_gated(launch(&argv, &relative, &log, &Default::default())).expect("spawn").release().await;
        let status = child.wait().await.expect("wait");
        assert_eq!(status.code(), Some(0), "the command ran");
        let logged = std::fs::read_to_string(&log).expect("the log, in the working dir");
        let moved = std::fs::canonicalize(&relative).expect("dir");
        assert_eq!(logged, format!("ran\n{}\n", moved.display()));
        assert!(passed_gate(&log));
    }

    #[test]
    fn a_process_group_id_is_never_the_callers_own_group_nor_init() {
        for raw in [i32::MIN, -5, -1, 0, 1] {
            assert_eq!(Pgid::new(raw), None, "{raw}");
        }
        assert_eq!(Pgid::new(2).map(Pgid::get), Some(2));
    }

    #[test]
    fn a_command_that_cannot_be_found_fails_to_spawn() {
        let dir = std::env::temp_dir();
        let err = find_program("no-such-command-here", &dir).expect_err("not found");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(find_program("sh", &dir).is_ok());
        let plain = dir.join(format!("taskq-not-executable-{}", std::process::id()));
        std::fs::write(&plain, "#!/bin/sh\n").expect("write");
        assert!(find_program(&plain.display().to_string(), &dir).is_err(), "a file that is not executable");
        let _ = std::fs::remove_file(plain);
    }
}

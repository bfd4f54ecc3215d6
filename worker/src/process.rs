//! Process groups: the only module that talks to the OS about processes.
//!
//! Every workload is spawned as the leader of a new process group (`setpgid(0, 0)` through
//! `CommandExt::process_group`), so one signal reaches everything it started. Liveness is read
//! from `/proc`, not from `kill(-pgid, 0)`: after a runner restart the workload is no longer our
//! child, and on a machine whose PID 1 does not reap orphans, an exited member lingers as a
//! zombie that `kill` would still count. The module needs no `unsafe`: `nix` wraps the calls.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
use tokio::process::{Child, Command};

pub use nix::sys::signal::Signal::{SIGKILL, SIGTERM};

/// Starts `argv` in `working_dir` as the leader of a new process group; output goes to `log`.
pub fn spawn(argv: &[String], working_dir: &Path, log: &Path) -> std::io::Result<Child> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the job has an empty command"))?;
    std::fs::create_dir_all(working_dir)?;
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    Command::new(program)
        .args(args)
        .current_dir(working_dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
}

/// Sends `signal` to every process of the group; `false` when the group no longer exists.
pub fn signal_group(pgid: i32, signal: Signal) -> std::io::Result<bool> {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(err) => Err(std::io::Error::from(err)),
    }
}

/// The live (not zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| matches!(stat_of(*pid), Some((state, pgrp)) if pgrp == pgid && state != 'Z' && state != 'X'))
        .collect()
}

pub fn group_alive(pgid: i32) -> bool {
    !group_members(pgid).is_empty()
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

/// How a child ended, in words for a session's FailureMessage.
pub fn describe_exit(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => {
            let name = Signal::try_from(signal).map(|s| s.as_str()).unwrap_or("unknown signal");
            format!("terminated by {name}")
        }
        (None, None) => "ended".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spawned_command_leads_its_own_group_and_a_group_signal_ends_it() {
        let dir = std::env::temp_dir().join(format!("taskq-process-{}", std::process::id()));
        let argv = ["sh", "-c", "sleep 30 & sleep 30"].map(String::from);
        let mut child = spawn(&argv, &dir, &dir.join("log")).expect("spawn");
        let pid = child.id().expect("pid") as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while group_members(pid).len() < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(group_members(pid).len(), 3, "sh and both sleeps are in the group");
        assert!(signal_group(pid, SIGKILL).expect("signal"));
        let status = child.wait().await.expect("wait");
        assert_eq!(describe_exit(&status), "terminated by SIGKILL");
        while group_alive(pid) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!group_alive(pid), "no live member is left");
    }
}

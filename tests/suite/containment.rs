//! Containment: a stop leaves no process of its workload alive, whatever the workload did to
//! get away (a double fork, `setsid`, `setsid` + `nohup` ignoring SIGTERM and SIGHUP, a storm of
//! 200 children), and the CPU time it reports is the kernel's. Under cgroup v2 (what `auto`
//! finds here) and under the process-tree fallback; in both modes; and with the runner killed
//! with SIGKILL and restarted between the start and the stop. Survivors are looked for in
//! `/proc`, by the marker every process of a workload inherits.

use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::time::Duration;
use tests::{ADMIN, EmbeddedServer, Mode, Options, Session, TestApp, marked_processes, wait_until};

/// The torture set: each job, and how many processes it has once everything is started.
const TORTURE: [(&str, usize); 6] =
    [("Stubborn", 2), ("DoubleFork", 3), ("SetsidEscape", 3), ("NohupDaemon", 3), ("ForkStorm", 201), ("Burner", 1)];

/// User + system CPU time of a process, from `/proc/<pid>/stat` (USER_HZ ticks = 10 ms).
fn cpu_usec(pid: i32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect(")") + 1..].split_whitespace().collect();
    let ticks: i64 = fields[11].parse::<i64>().expect("utime") + fields[12].parse::<i64>().expect("stime");
    ticks * 10_000
}

/// A process's state letter and start time (`/proc/<pid>/stat` fields 3 and 22). Pids come
/// round again quickly (`pid_max` is 32,768 here, and the tests fork thousands of processes), so
/// a process is known by both.
fn stat_of(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    Some((fields.first()?.chars().next()?, fields.get(19)?.parse().ok()?))
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_owned()
}

/// Starts the torture set; once each workload has all its processes: workload id per job, and
/// the Burner's CPU time as the kernel counts it, once it has stopped burning.
async fn start_all(session: &Session, db: &DatabaseConnection) -> (HashMap<&'static str, String>, i64) {
    let specs = entity::store::specs::list(db).await.expect("specs");
    let mut ids = HashMap::new();
    for (job, _) in TORTURE {
        let spec = specs.iter().find(|s| s.name == job).expect("job");
        ids.insert(job, session.start_job(&spec.id).await);
    }
    for (job, count) in TORTURE {
        let id = ids[job].clone();
        wait_until(&format!("{job} to have {count} processes"), Duration::from_secs(30), || {
            let id = id.clone();
            async move { marked_processes(&id).len() >= count }
        })
        .await;
    }
    let burner = session.pid_of(db, &ids["Burner"]).await;
    wait_until("the burner to stop burning", Duration::from_secs(60), || async move { comm(burner) == "sleep" }).await;
    (ids, cpu_usec(burner))
}

/// Stops every workload through the API: each stop succeeds, and afterwards no process of any
/// of them is alive; the Burner reports the kernel's CPU time (within 5%).
async fn stop_all(session: &Session, db: &DatabaseConnection, ids: &HashMap<&'static str, String>, burned: i64) {
    let before: HashMap<&str, Vec<(i32, u64)>> = ids
        .iter()
        .map(|(job, id)| {
            (*job, marked_processes(id).into_iter().filter_map(|pid| Some((pid, stat_of(pid)?.1))).collect())
        })
        .collect();
    assert!(before.values().all(|processes| !processes.is_empty()), "every workload's processes are known: {before:?}");
    let mut tasks = Vec::new();
    for id in ids.values() {
        tasks.push(session.act(&format!("/api/backupSessions/{id}?action=stop")).await);
    }
    for task in tasks {
        let done = session.wait_finished(task["TaskId"].as_str().expect("id"), Duration::from_secs(60)).await;
        assert_eq!(done["Result"]["Success"], true, "{done}");
    }
    for (job, id) in ids {
        assert_eq!(session.session(id).await["State"], "Stopped", "{job}");
        assert_eq!(marked_processes(id), Vec::<i32>::new(), "{job}: nothing of it is alive");
        for (pid, started) in &before[job] {
            // The same process, not a later one given its pid.
            let alive = stat_of(*pid).is_some_and(|(state, since)| since == *started && state != 'Z');
            assert!(!alive, "{job}: process {pid} survived the stop");
        }
        let row = entity::store::workloads::find(db, id).await.expect("db").expect("row");
        if let Some(path) = row
            .containment
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .and_then(|c| c["path"].as_str().map(str::to_owned))
        {
            assert!(!std::path::Path::new(&path).exists(), "{job}: its cgroup is removed");
        }
    }
    // Peaks, where the kernel keeps them (cgroup v2 controllers, or v1 on these hybrid hosts).
    let storm = entity::store::workloads::find(db, &ids["ForkStorm"]).await.expect("db").expect("row");
    let peak = storm.processes_peak.expect("the peak process count is measured");
    assert!(peak >= 201, "the storm's peak process count: {peak}");
    assert!(storm.memory_peak_bytes.expect("the peak memory is measured") > 0);
    let reported = entity::store::workloads::find(db, &ids["Burner"]).await.expect("db").expect("row").cpu_usec;
    let reported = reported.expect("the burner's CPU time is reported");
    assert!(burned >= 500_000, "the burner burned a measurable while: {burned} µs");
    assert!((reported - burned).abs() * 20 <= burned, "reported {reported} µs, the kernel counted {burned} µs");
}

async fn runner_says(db: &DatabaseConnection, containment: &str) {
    let runners = entity::runner::Entity::find().all(db).await.expect("runners");
    assert!(!runners.is_empty());
    for runner in runners {
        let said = runner.containment.unwrap_or_default();
        let expected = if containment == "process-tree" { "process-tree" } else { "cgroup2 " };
        assert!(said.starts_with(expected), "{said}");
    }
}

use sea_orm::EntityTrait;

async fn torture(mode: Mode, containment: &'static str) {
    let app = TestApp::in_mode(mode, Options { containment, ..Options::default() }).await;
    let session = app.logon().await;
    let (ids, burned) = start_all(&session, &app.db).await;
    runner_says(&app.db, containment).await;
    stop_all(&session, &app.db, &ids, burned).await;
    if matches!(mode, Mode::Embedded) && containment == "process-tree" {
        // The runner (this process) is the subreaper of the workloads' orphans: it reaps them.
        wait_until("the orphans to be reaped", Duration::from_secs(5), || async { zombie_children().is_empty() }).await;
    }
}

/// Zombie processes whose parent is this process.
fn zombie_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str())
        })
        .collect()
}

async fn a_stop_leaves_nothing_of_the_workload_alive_under_cgroups(mode: Mode) {
    torture(mode, "auto").await;
}

async fn a_stop_leaves_nothing_of_the_workload_alive_under_the_process_tree_fallback(mode: Mode) {
    torture(mode, "process-tree").await;
}

tests::in_both_modes!(
    a_stop_leaves_nothing_of_the_workload_alive_under_cgroups,
    a_stop_leaves_nothing_of_the_workload_alive_under_the_process_tree_fallback,
);

/// Distributed: the runner is killed with SIGKILL after the starts, and comes back with the
/// same identity (and `then` as its containment); it finds its workloads by their stored
/// handles and stops them completely, by the mechanism they were started under.
async fn distributed_restart(containment: &'static str, then: &'static str) {
    let app = TestApp::spawn(Options { distributed: true, containment, ..Options::default() }).await;
    let mut first = app.start_worker_with("restarted", &[("CONTAINMENT", containment)]);
    let session = app.logon().await;
    let (ids, burned) = start_all(&session, &app.db).await;
    let kinds: Vec<String> = {
        let mut kinds = Vec::new();
        for id in ids.values() {
            let row = entity::store::workloads::find(&app.db, id).await.expect("db").expect("row");
            let handle: serde_json::Value = serde_json::from_str(&row.containment.expect("a handle")).expect("json");
            kinds.push(handle["kind"].as_str().expect("kind").to_owned());
        }
        kinds
    };
    let expected = if containment == "process-tree" { "process_tree" } else { "cgroup" };
    assert!(kinds.iter().all(|k| k == expected), "{kinds:?}");
    first.kill9();
    let _second = app.start_worker_with("restarted", &[("CONTAINMENT", then)]);
    stop_all(&session, &app.db, &ids, burned).await;
}

#[actix_web::test]
async fn workloads_started_in_cgroups_are_stopped_by_their_cgroups_after_a_restart_under_the_fallback() {
    distributed_restart("auto", "process-tree").await;
}

#[actix_web::test]
async fn a_runner_killed_and_restarted_between_start_and_stop_still_stops_everything_distributed_cgroups() {
    distributed_restart("auto", "auto").await;
}

#[actix_web::test]
async fn a_runner_killed_and_restarted_between_start_and_stop_still_stops_everything_distributed_process_tree() {
    distributed_restart("process-tree", "process-tree").await;
}

/// Embedded: the real `api` binary, killed with SIGKILL and started again.
async fn embedded_restart(containment: &'static str) {
    let server = EmbeddedServer::new();
    let with = |server: &EmbeddedServer| {
        let mut command = server.command();
        command.env("ADMIN_PASSWORD", ADMIN.1).env("CONTAINMENT", containment);
        command
    };
    let mut api = server.start_with(with(&server)).await;
    let session = Session::logon(&server.base(), ADMIN.0, ADMIN.1).await;
    let db = server.db().await;
    let (ids, burned) = start_all(&session, &db).await;
    api.kill9();
    let _api = server.start_with(with(&server)).await;
    stop_all(&session, &db, &ids, burned).await;
}

#[actix_web::test]
async fn a_runner_killed_and_restarted_between_start_and_stop_still_stops_everything_embedded_cgroups() {
    embedded_restart("auto").await;
}

#[actix_web::test]
async fn a_runner_killed_and_restarted_between_start_and_stop_still_stops_everything_embedded_process_tree() {
    embedded_restart("process-tree").await;
}

/// Limits from the spec (the jobs file's `memory_mb`, `max_processes`, `cpus`) hold: in cgroup
/// v2 where its controllers are enabled, else in cgroup v1 (as on these hybrid machines).
async fn limits_hold_memory_processes_and_cpu(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    let job = |name: &'static str| {
        let app = &app;
        async move { app.job_id(name).await }
    };

    // Memory: the hog is killed by the kernel at its limit; its peak stays under it.
    let hog = session.start_job(&job("MemoryHog").await).await;
    let ended = session.wait_session_state(&hog, "Stopped", Duration::from_secs(30)).await;
    assert_eq!(ended["Result"], "Failed", "{ended}");
    let row = entity::store::workloads::find(&app.db, &hog).await.expect("db").expect("row");
    // The kernel picks its victim: `tail` (the shell then exits 137), or the shell itself.
    let killed = match row.ended() {
        Some(entity::outcome::End::Exited { code, signal, .. }) => {
            code == Some(137) || signal.as_deref() == Some("SIGKILL")
        }
        _ => false,
    };
    assert!(killed, "killed (SIGKILL) by the out-of-memory killer: {ended} {:?}", row.ending);
    let peak = row.memory_peak_bytes.expect("peak memory is measured under a memory limit");
    assert!(peak <= 33 << 20, "peak {peak} bytes");

    // Processes: at most 10 at any time.
    let capped = session.start_job(&job("PidCapped").await).await;
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(marked_processes(&capped).len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!((1..=10).contains(&most), "{most} processes");

    // CPU: a tenth of a CPU, however much it would burn.
    let burner = session.start_job(&job("CpuCapped").await).await;
    let pid = session.pid_of(&app.db, &burner).await;
    let (start, at) = (cpu_usec(pid), std::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (burned, wall) = (cpu_usec(pid) - start, at.elapsed().as_micros() as i64);
    assert!(burned * 100 <= wall * 15, "{burned} µs of CPU in {wall} µs: more than 0.15 CPU");

    for id in [&capped, &burner] {
        let task = session.act(&format!("/api/backupSessions/{id}?action=stop")).await;
        let done = session.wait_finished(task["TaskId"].as_str().expect("id"), Duration::from_secs(30)).await;
        assert_eq!(done["Result"]["Success"], true, "{done}");
        assert_eq!(marked_processes(id), Vec::<i32>::new());
    }
}

tests::in_both_modes!(limits_hold_memory_processes_and_cpu);

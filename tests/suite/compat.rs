//! Compatibility with real clients of the Veeam face.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tests::{ADMIN, Mode, Options, TestApp, in_both_modes};

/// A virtualenv with the `veeam` package from PyPI, made once under the target directory. Tests
/// running at once each build their own and move it into place; the first one there is used.
fn veeam_python() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let venv = exe.ancestors().nth(3).expect("target dir").join("compat-venv-veeam");
    let python = venv.join("bin/python");
    let works = |python: &std::path::Path| {
        Command::new(python).args(["-c", "import veeam.client"]).status().is_ok_and(|s| s.success())
    };
    if !works(&python) {
        let building = venv.with_extension(format!("building-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&building);
        let made = Command::new("python3").args(["-m", "venv"]).arg(&building).status().expect("python3 is required");
        assert!(made.success(), "python3 -m venv failed");
        let pip = building.join("bin/python");
        let installed = Command::new(&pip).args(["-m", "pip", "install", "-q", "veeam==0.1.5"]).status().expect("pip");
        assert!(installed.success(), "pip install veeam==0.1.5 failed (PyPI must be reachable)");
        if venv.exists() && !works(&python) {
            // Left broken by an earlier run.
            let _ = std::fs::remove_dir_all(&venv);
        }
        if std::fs::rename(&building, &venv).is_err() {
            // Another test moved its own into place first.
            let _ = std::fs::remove_dir_all(&building);
        }
    }
    assert!(works(&python), "the veeam package is not importable from {}", venv.display());
    python
}

async fn the_veeam_python_package_logs_on_reads_queries_drives_a_stop_and_logs_out(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    for job in ["Quick", "Broken"] {
        let id = session.start_job(&app.job_id(job).await).await;
        session.wait_session_state(&id, "Stopped", Duration::from_secs(20)).await;
    }
    session.start_job(&app.job_id("Runs").await).await;
    let python = veeam_python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/compat/veeam_client.py");
    let base = app.base.clone();
    let output =
        tokio::task::spawn_blocking(move || Command::new(python).arg(script).args([&base, ADMIN.0, ADMIN.1]).output())
            .await
            .expect("join")
            .expect("run the client");
    assert!(
        output.status.success(),
        "veeam client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("veeam client: ok"));
}

in_both_modes!(the_veeam_python_package_logs_on_reads_queries_drives_a_stop_and_logs_out,);

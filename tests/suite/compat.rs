//! Compatibility with real clients, installed from the registries by the test command: the
//! `veeam` package for the Veeam face; for the Daytona face, Daytona's generated Python and
//! TypeScript clients and the high-level SDKs its documentation uses (PyPI `daytona`, npm
//! `@daytonaio/sdk`); for the Vercel face, Vercel's SDK (npm `@vercel/sandbox`, the latest 3.x and the last 1.x).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tests::daytona::Daytona;
use tests::{ADMIN, Mode, Options, TestApp, in_both_modes};

/// A client installed once under the target directory, in `name`: `install` fills a fresh
/// directory, `works` says whether one is usable. Tests running at once each build their own
/// aside and move it into place; the first one there is used.
fn installed_once(name: &str, works: impl Fn(&Path) -> bool, install: impl Fn(&Path)) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe.ancestors().nth(3).expect("target dir").join(name);
    if !works(&dir) {
        let building = dir.with_extension(format!("building-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&building);
        install(&building);
        if dir.exists() && !works(&dir) {
            // Left broken by an earlier run.
            let _ = std::fs::remove_dir_all(&dir);
        }
        if std::fs::rename(&building, &dir).is_err() {
            // Another test moved its own into place first.
            let _ = std::fs::remove_dir_all(&building);
        }
    }
    assert!(works(&dir), "{} is not usable", dir.display());
    dir
}

/// A virtualenv with `requirement` from PyPI, in which `import` works; its python.
fn python_with(name: &str, requirement: &str, import: &str) -> PathBuf {
    let works = |venv: &Path| {
        Command::new(venv.join("bin/python"))
            .args(["-c", &format!("import {import}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    let venv = installed_once(name, works, |building| {
        let made = Command::new("python3").args(["-m", "venv"]).arg(building).status().expect("python3 is required");
        assert!(made.success(), "python3 -m venv failed");
        let pip = building.join("bin/python");
        let installed = Command::new(&pip).args(["-m", "pip", "install", "-q", requirement]).status().expect("pip");
        assert!(installed.success(), "pip install {requirement} failed (PyPI must be reachable)");
    });
    venv.join("bin/python")
}

/// Runs `program` with `args`, off the async runtime; asserts it succeeded and said `ok`.
async fn run_client(mut command: Command, ok: &str) {
    let output = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("run the client");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "the client failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(ok), "{stdout}");
}

async fn the_veeam_python_package_logs_on_reads_queries_drives_a_stop_and_logs_out(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let session = app.logon().await;
    for job in ["Quick", "Broken"] {
        let id = session.start_job(&app.job_id(job).await).await;
        session.wait_session_state(&id, "Stopped", Duration::from_secs(20)).await;
    }
    session.start_job(&app.job_id("Runs").await).await;
    let mut client = Command::new(python_with("compat-venv-veeam", "veeam==0.1.5", "veeam.client"));
    client.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/compat/veeam_client.py")).args([&app.base, ADMIN.0, ADMIN.1]);
    run_client(client, "veeam client: ok").await;
}

/// Daytona's generated Python client (PyPI `daytona-api-client`, the latest), unmodified: see
/// `compat/daytona_client.py` for what it drives.
async fn daytonas_python_client_creates_lists_stops_starts_and_deletes_sandboxes(mode: Mode) {
    let client = Command::new(python_with("compat-venv-daytona", "daytona-api-client", "daytona_api_client"));
    run_daytona_script(mode, client, "daytona_client.py", "daytona python client").await;
}

/// `package` from the npm registry (as `install` names it: `package` or `package@range`),
/// installed once under `name`; its `node_modules`, for `NODE_PATH`.
fn npm_with(name: &str, package: &str, install: &str) -> PathBuf {
    let modules = |dir: &Path| dir.join("node_modules");
    let works = |dir: &Path| {
        Command::new("node")
            .args(["-e", &format!("require('{package}')")])
            .env("NODE_PATH", modules(dir))
            .status()
            .is_ok_and(|s| s.success())
    };
    let dir = installed_once(name, works, |building| {
        std::fs::create_dir_all(building).expect("dir");
        let installed = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(building)
            .arg(install)
            .status()
            .expect("npm is required");
        assert!(installed.success(), "npm install {install} failed (the npm registry must be reachable)");
    });
    modules(&dir)
}

/// Runs a Daytona client script (`compat/<script>`) with `program` against a fresh app, with a
/// token of `acme` and one of another organisation; it must say `ok`.
async fn run_daytona_script(mode: Mode, mut client: Command, script: &str, ok: &str) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let acme = Daytona::for_tenant(&app.base, &app.db, "acme").await;
    let other = Daytona::for_tenant(&app.base, &app.db, "globex").await;
    client.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("compat").join(script)).args([
        &app.base,
        &acme.token,
        &other.token,
    ]);
    run_client(client, ok).await;
}

/// Daytona's generated TypeScript client (npm `@daytonaio/api-client`, the latest), unmodified:
/// see `compat/daytona_client.js`.
async fn daytonas_npm_client_creates_lists_stops_starts_and_deletes_sandboxes(mode: Mode) {
    let mut client = Command::new("node");
    client.env("NODE_PATH", npm_with("compat-npm-daytona", "@daytonaio/api-client", "@daytonaio/api-client"));
    run_daytona_script(mode, client, "daytona_client.js", "daytona npm client").await;
}

/// Daytona's high-level Python SDK (PyPI `daytona`, the latest), unmodified, sync and async: see
/// `compat/daytona_sdk.py`.
async fn daytonas_python_sdk_drives_a_sandboxs_whole_life_sync_and_async(mode: Mode) {
    let client = Command::new(python_with("compat-venv-daytona-sdk", "daytona", "daytona"));
    run_daytona_script(mode, client, "daytona_sdk.py", "daytona python sdk").await;
}

/// Daytona's high-level TypeScript SDK (npm `@daytonaio/sdk`, the latest), unmodified: see
/// `compat/daytona_sdk.js`.
async fn daytonas_npm_sdk_drives_a_sandboxs_whole_life(mode: Mode) {
    let mut client = Command::new("node");
    client.env("NODE_PATH", npm_with("compat-npm-daytona-sdk", "@daytonaio/sdk", "@daytonaio/sdk"));
    run_daytona_script(mode, client, "daytona_sdk.js", "daytona npm sdk").await;
}

/// Vercel's SDK (npm `@vercel/sandbox`, the latest 3.x), unmodified, pointed at the server through
/// its `fetch` option: see `compat/vercel_sdk.js`.
async fn vercels_sdk_creates_lists_stops_resumes_and_deletes_named_sandboxes(mode: Mode) {
    // Each session notes its sandbox in its working directory, so that the script can see the
    // files kept across a resume and restored from a snapshot.
    let command = ["sh", "-c", "echo \"$BOX\" >> runs.txt; exec sleep infinity"].map(String::from).to_vec();
    let app = TestApp::in_mode(mode, Options { vercel_command: Some(command), ..Options::default() }).await;
    let acme = tests::vercel::Vercel::for_team(&app.base, &app.db, "acme").await;
    let other = tests::vercel::Vercel::for_team(&app.base, &app.db, "globex").await;
    let sandbox_dir = app.dir.join("data").join("vercel").display().to_string();
    let mut client = Command::new("node");
    client
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/compat/vercel_sdk.js"))
        .args([&app.base, &acme.token, &acme.team, &other.token, &other.team, &sandbox_dir])
        .env("NODE_PATH", npm_with("compat-npm-vercel-3", "@vercel/sandbox", "@vercel/sandbox@3"));
    run_client(client, "vercel sdk 3.").await;
}

/// Vercel's SDK 1.x (npm `@vercel/sandbox@1`, the last 1.x), unmodified, against the v1 API:
/// see `compat/vercel_sdk_v1.js`.
async fn vercels_sdk_1x_creates_lists_and_stops_v1_sandboxes(mode: Mode) {
    let app = TestApp::in_mode(mode, Options::default()).await;
    let acme = tests::vercel::Vercel::for_team(&app.base, &app.db, "acme").await;
    let other = tests::vercel::Vercel::for_team(&app.base, &app.db, "globex").await;
    let mut client = Command::new("node");
    client
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/compat/vercel_sdk_v1.js"))
        .args([&app.base, &acme.token, &acme.team, &other.token, &other.team])
        .env("NODE_PATH", npm_with("compat-npm-vercel-1", "@vercel/sandbox", "@vercel/sandbox@1"));
    run_client(client, "vercel sdk 1.").await;
}

in_both_modes!(
    the_veeam_python_package_logs_on_reads_queries_drives_a_stop_and_logs_out,
    daytonas_python_client_creates_lists_stops_starts_and_deletes_sandboxes,
    daytonas_npm_client_creates_lists_stops_starts_and_deletes_sandboxes,
    daytonas_python_sdk_drives_a_sandboxs_whole_life_sync_and_async,
    daytonas_npm_sdk_drives_a_sandboxs_whole_life,
    vercels_sdk_creates_lists_stops_resumes_and_deletes_named_sandboxes,
    vercels_sdk_1x_creates_lists_and_stops_v1_sandboxes,
);

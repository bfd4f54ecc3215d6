//! The report: every figure with its ratio to its baseline, as JSON and as a Markdown table.

use crate::Cli;
use crate::scenarios::{Baselines, Measure, ModeResult};
use serde_json::{Value, json};
use std::path::Path;

pub struct Report {
    date: String,
    commit: String,
    cores: usize,
    connections: usize,
    seconds: f64,
    workers: usize,
    smoke: bool,
    baselines: Baselines,
    modes: Vec<ModeResult>,
}

/// How each figure is shown, which baseline it is a ratio to, and its target.
struct Row {
    key: &'static str,
    label: &'static str,
    baseline: Baseline,
    target: &'static str,
}

#[derive(Clone, Copy)]
enum Baseline {
    Trivial,
    Pipeline,
    None,
}

const ROWS: &[Row] = &[
    Row {
        key: "veeam_accept",
        label: "Veeam accepted stops/s, closed loop (202 p50 / p99 / max ms)",
        baseline: Baseline::Pipeline,
        target: "202 p99 ≤ 25 ms",
    },
    Row {
        key: "veeam_accept_open",
        label: "Veeam stops at half that rate, open loop (p50 / p99 / max ms from when due)",
        baseline: Baseline::None,
        target: "",
    },
    Row {
        key: "veeam_e2e",
        label: "end-to-end tasks/s, 202 → Finished (p50 / p99 / max ms, tasks' own times)",
        baseline: Baseline::Pipeline,
        target: "≥ 70% of the raw pipeline",
    },
    Row {
        key: "poll_veeam_json",
        label: "polls `GET /api/tasks/{id}` (Veeam, JSON)/s (p50 / p99 / max ms)",
        baseline: Baseline::Trivial,
        target: "≥ 50% of the trivial handler",
    },
    Row { key: "poll_veeam_xml", label: "polls, Veeam XML", baseline: Baseline::Trivial, target: "≥ 50%" },
    Row {
        key: "poll_bearer_task",
        label: "polls, bearer `GET /api/tasks/{n}`",
        baseline: Baseline::Trivial,
        target: "≥ 50%",
    },
    Row {
        key: "poll_daytona_sandbox",
        label: "polls, Daytona `GET /api/sandbox/{id}`",
        baseline: Baseline::Trivial,
        target: "≥ 50%",
    },
    Row {
        key: "poll_vercel_session",
        label: "polls, Vercel `GET /v2/sandboxes/sessions/{id}`",
        baseline: Baseline::Trivial,
        target: "≥ 50%",
    },
    Row {
        key: "daytona_accept",
        label: "Daytona stops of live sandboxes accepted/s (p50 / p99 / max ms)",
        baseline: Baseline::Pipeline,
        target: "",
    },
    Row {
        key: "daytona_stop_e2e",
        label: "those stops end to end/s (p50 / p99 / max ms)",
        baseline: Baseline::Pipeline,
        target: "",
    },
    Row {
        key: "vercel_stop",
        label: "Vercel stops of live sessions, answered once stopped/s (p50 / p99 / max ms)",
        baseline: Baseline::Pipeline,
        target: "",
    },
];

impl Report {
    pub fn new(cli: &Cli, baselines: Baselines, modes: Vec<ModeResult>) -> Self {
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Report {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            commit,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            connections: cli.connections,
            seconds: cli.seconds,
            workers: cli.workers,
            smoke: cli.smoke,
            baselines,
            modes,
        }
    }

    /// The rate `m` is a ratio to, under `row`'s baseline.
    fn base_rate(&self, baseline: Baseline, m: &Measure) -> Option<f64> {
        match baseline {
            Baseline::Trivial => m.trivial_beside,
            Baseline::Pipeline => Some(self.baselines.pipeline.rate),
            Baseline::None => None,
        }
    }

    /// Fails when a scenario measured nothing (the figures would lie), and in a smoke run
    /// (which checks that everything works) when any request failed. A full run reports the
    /// failures beside the figures instead: under load they are findings.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let p = &self.baselines.pipeline;
        if p.count == 0 {
            problems.push("baseline pipeline: nothing finished".to_owned());
        }
        for mode in &self.modes {
            for (name, m) in &mode.figures {
                if m.count == 0 || (self.smoke && m.failed > 0) {
                    problems.push(format!("{} {name}: {} ok, {} failed", mode.mode.name(), m.count, m.failed));
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
    }

    pub fn json(&self) -> Value {
        let measure = |m: &Measure| json!({"rate": m.rate, "p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "max_ms": m.max_ms, "count": m.count, "failed": m.failed});
        let modes: serde_json::Map<String, Value> = self
            .modes
            .iter()
            .map(|mode| {
                let mut figures = serde_json::Map::new();
                for (name, m) in &mode.figures {
                    let mut value = measure(m);
                    let row = ROWS.iter().find(|r| r.key == *name);
                    if let Some(base) = row.and_then(|r| self.base_rate(r.baseline, m)) {
                        value["baseline_rate"] = json!(base);
                        value["ratio"] = json!(m.rate / base.max(1e-9));
                    }
                    figures.insert((*name).to_owned(), value);
                }
                let value = json!({
                    "figures": figures,
                    "live_workloads": mode.live,
                    "live_stop_secs": mode.live_stop_secs,
                    "peak_rss_mb": {"api": mode.rss_api_mb, "worker": mode.rss_worker_mb},
                });
                (mode.mode.name().to_owned(), value)
            })
            .collect();
        json!({
            "date": self.date,
            "commit": self.commit,
            "cores": self.cores,
            "connections": self.connections,
            "seconds": self.seconds,
            "workers": self.workers,
            "smoke": self.smoke,
            "baselines": {
                "raw_pipeline": measure(&self.baselines.pipeline),
                "raw_pipeline_runs": self.baselines.runs,
            },
            "modes": modes,
        })
    }

    pub fn markdown(&self) -> String {
        let names: Vec<&str> = self.modes.iter().map(|m| m.mode.name()).collect();
        let mut out = format!(
            "Run {} at commit `{}` on {} cores: {} connections, {} s a scenario, {} worker(s) in distributed mode{}.\n\n",
            self.date,
            self.commit,
            self.cores,
            self.connections,
            self.seconds,
            self.workers,
            if self.smoke { " (smoke run: not figures to judge)" } else { "" }
        );
        out.push_str(&format!(
            "| figure | {} | baseline, same run | ratio {} | target |\n",
            names.join(" | "),
            names.join(" / ")
        ));
        out.push_str(&format!("|---|{}---|---|---|\n", "---|".repeat(names.len())));
        for row in ROWS {
            let mut cells = Vec::new();
            let mut ratios = Vec::new();
            let mut bases = Vec::new();
            for mode in &self.modes {
                match mode.figures.iter().find(|(k, _)| *k == row.key) {
                    Some((_, m)) => {
                        cells.push(format!(
                            "{} ({} / {} / {}){}",
                            rate(m.rate),
                            ms(m.p50_ms),
                            ms(m.p99_ms),
                            ms(m.max_ms),
                            failed(m.failed)
                        ));
                        if let Some(base) = self.base_rate(row.baseline, m) {
                            ratios.push(format!("{:.1}%", 100.0 * m.rate / base.max(1e-9)));
                            bases.push(rate(base));
                        }
                    }
                    None => cells.push("—".into()),
                }
            }
            let base_text = match row.baseline {
                Baseline::Trivial if !bases.is_empty() => {
                    format!("trivial handler, turn about {}/s", bases.join(" / "))
                }
                Baseline::Pipeline => format!("raw pipeline {}/s", rate(self.baselines.pipeline.rate)),
                _ => "—".into(),
            };
            let ratio = if ratios.is_empty() { "—".into() } else { ratios.join(" / ") };
            out.push_str(&format!(
                "| {} | {} | {base_text} | {ratio} | {} |\n",
                row.label,
                cells.join(" | "),
                row.target
            ));
        }
        let live = self.modes.first().map_or(0, |m| m.live);
        let cells: Vec<String> = self.modes.iter().map(|m| format!("{:.2} s", m.live_stop_secs)).collect();
        out.push_str(&format!(
            "| time to stop {live} live workloads at once | {} | — | — | ≤ 5 s for 1,000 |\n",
            cells.join(" | ")
        ));
        let cells: Vec<String> = self
            .modes
            .iter()
            .map(|m| match m.rss_worker_mb {
                Some(worker) => format!("api {:.0} MB, worker {:.0} MB", m.rss_api_mb, worker),
                None => format!("api {:.0} MB", m.rss_api_mb),
            })
            .collect();
        out.push_str(&format!("| peak RSS | {} | — | — | |\n", cells.join(" | ")));
        let (small, large) = if self.smoke { ("1,000", "10,000") } else { ("10,000", "1,000,000") };
        for (label, small_key, large_key) in [
            (
                "poll p99, a random stored task (unfinished: read from the database)",
                "scale_poll_small",
                "scale_poll_large",
            ),
            ("list p99, `GET /api/query?type=Task&pageSize=100`", "scale_list_small", "scale_list_large"),
        ] {
            let cells: Vec<String> = self
                .modes
                .iter()
                .map(|m| {
                    let find = |key: &str| m.figures.iter().find(|(k, _)| *k == key).map(|(_, f)| f.clone());
                    match (find(small_key), find(large_key)) {
                        (Some(a), Some(b)) => format!(
                            "{} ms{} → {} ms{} (×{:.2})",
                            ms(a.p99_ms),
                            failed(a.failed),
                            ms(b.p99_ms),
                            failed(b.failed),
                            b.p99_ms / a.p99_ms.max(1e-9)
                        ),
                        _ => "— (PostgreSQL only)".to_owned(),
                    }
                })
                .collect();
            out.push_str(&format!(
                "| {label}, {small} → {large} stored tasks | {} | — | — | ≤ ×1.5 |\n",
                cells.join(" | ")
            ));
        }
        let p = &self.baselines.pipeline;
        let runs: Vec<String> = self.baselines.runs.iter().map(|r| format!("{}/s", rate(*r))).collect();
        out.push_str(&format!(
            "\nBaselines: the trivial actix-web handler took turns with each poll scenario (\"turn about\": four slices of each, a quarter of the window, alternating ABBA); the raw durable pipeline ran before and after the modes, the faster run counting: {}/s (p50 {} ms, p99 {} ms; runs {}).\n",
            rate(p.rate),
            ms(p.p50_ms),
            ms(p.p99_ms),
            runs.join(" and "),
        ));
        out
    }
}

fn rate(r: f64) -> String {
    let whole = r.round() as u64;
    let text = whole.to_string();
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n > 0 && (text.len() - n).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A note of failed requests, if any.
fn failed(n: u64) -> String {
    if n == 0 { String::new() } else { format!(", {n} failed") }
}

fn ms(v: f64) -> String {
    if v < 10.0 { format!("{v:.1}") } else { format!("{v:.0}") }
}

const BEGIN: &str = "<!-- loadbench:begin -->";
const END: &str = "<!-- loadbench:end -->";

/// Replaces the text between the loadbench markers in `doc` with `table` (appends the section
/// when the markers are not there).
pub fn replace_section(doc: &Path, table: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(doc).unwrap_or_default();
    let section = format!("{BEGIN}\n{table}{END}");
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(begin), Some(end)) if begin < end => format!("{}{section}{}", &text[..begin], &text[end + END.len()..]),
        _ => format!("{text}\n{section}\n"),
    };
    std::fs::write(doc, new).map_err(|e| e.to_string())
}

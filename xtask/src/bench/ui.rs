//! `cargo xtask bench ui`: the kiosk UI's frame time and CPU on the software renderer
//! (no GPU, as on a Pi without its GL driver), four 720p video tiles at 30 fps drawn into
//! a 1920x1080 buffer, compared in the same run with the same UI showing one tile. Runs
//! `ui/examples/tile_bench.rs` (release), alternating the two, and reports medians.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    frames: u64,
    frame_ms_median: f64,
    frame_ms_p95: f64,
    cpu_percent: f64,
    frames_dropped: u64,
    rss_mi_b: f64,
}

fn one(example: &Path, seconds: u32, tiles: u32) -> Result<Run> {
    let out = Command::new(example)
        .args([seconds.to_string(), tiles.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("run {}", example.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", example.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("tile_bench printed no JSON")?;
    serde_json::from_str(line).context("tile_bench result")
}

/// One figure of a run.
type Figure = fn(&Run) -> f64;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        f64::midpoint(xs[n / 2 - 1], xs[n / 2])
    }
}

/// Runs the UI benchmark with the release `tile_bench` example at `example`.
pub(crate) fn ui(example: &Path, quick: bool) -> Result<String> {
    let (runs, seconds) = if quick { (1, 5) } else { (3, 10) };
    let mut four = Vec::new();
    let mut single = Vec::new();
    for i in 0..runs {
        let f = one(example, seconds, 4)?;
        eprintln!("[bench ui] run {}/{runs}, 4 tiles: {f:?}", i + 1);
        four.push(f);
        let s = one(example, seconds, 1)?;
        eprintln!("[bench ui] run {}/{runs}, 1 tile: {s:?}", i + 1);
        single.push(s);
    }
    let m = |runs: &[Run], f: Figure| median(runs.iter().map(f).collect());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Kiosk UI, software renderer, 1920x1080, 720p tiles fed at 30 fps ({runs} run(s) of {seconds} s, medians)\n"
    );
    let _ = writeln!(out, "| figure | 4 tiles | 1 tile | ratio |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let rows: [(&str, Figure); 6] = [
        ("frame time, median (ms)", |r| r.frame_ms_median),
        ("frame time, p95 (ms)", |r| r.frame_ms_p95),
        ("CPU (% of one core)", |r| r.cpu_percent),
        ("frames drawn", |r| r.frames as f64),
        ("frames dropped (newest wins)", |r| r.frames_dropped as f64),
        ("RSS (MiB)", |r| r.rss_mi_b),
    ];
    for (name, f) in rows {
        let (a, b) = (m(&four, f), m(&single, f));
        let ratio = if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "-".to_owned()
        };
        let _ = writeln!(out, "| {name} | {a:.1} | {b:.1} | {ratio} |");
    }
    let budget = 1000.0 / 30.0;
    let _ = writeln!(
        out,
        "\nA frame every {budget:.1} ms keeps up with 30 fps; the p95 with four tiles is {:.0} % of that.",
        m(&four, |r| r.frame_ms_p95) / budget * 100.0
    );
    Ok(out)
}

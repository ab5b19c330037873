//! `cargo xtask bench browser`: what a laptop user gets from the browser client on this
//! machine, the figures the kiosk is held against later. Two headless Chromium pages
//! on loopback through the real `portal-server` (driven by
//! `signaling/web/tests/bench/browser.mjs`): join to first remote frame, and
//! browser-to-browser file throughput over the `file` data channel.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Results {
    join_to_first_frame_ms: Series,
    file_throughput_mi_bs: Series,
    /// Bare 64 KiB frames over the same channel with the same pacing: Chromium's own
    /// ceiling, the peer the file figure is compared with.
    #[serde(default)]
    channel_ceiling_mi_bs: Option<Series>,
    #[serde(default)]
    file_size_mib: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Series {
    pub(crate) median: f64,
    pub(crate) runs: Vec<f64>,
}

/// Runs the browser benchmark; returns a Markdown report.
pub(crate) fn browser(server_bin: &Path, repo_root: &Path, quick: bool) -> Result<String> {
    let last = run_node_bench(
        repo_root,
        "browser.mjs",
        &[("PORTAL_SERVER_BIN", server_bin)],
        quick,
    )?;
    let results: Results = serde_json::from_str(&last).context("browser bench result")?;
    Ok(report(&results))
}

/// Runs `signaling/web/tests/bench/{script}` with `env`; returns the last JSON line it
/// printed (progress goes to stderr).
pub(crate) fn run_node_bench(
    repo_root: &Path,
    script: &str,
    env: &[(&str, &Path)],
    quick: bool,
) -> Result<String> {
    let web = repo_root.join("signaling/web");
    let script = web.join("tests/bench").join(script);
    if !script.is_file() {
        bail!("{} is missing", script.display());
    }
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .current_dir(&web)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        cmd.env(key, value);
    }
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output().context("run node (`cargo xtask setup`)")?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{} printed no JSON result", script.display()))?;
    Ok(last.to_owned())
}

fn report(r: &Results) -> String {
    let runs = |s: &Series, digits: usize| {
        s.runs
            .iter()
            .map(|v| format!("{v:.digits$}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Browser client (two headless Chromium peers, loopback)\n"
    );
    let _ = writeln!(out, "| figure | median | runs |");
    let _ = writeln!(out, "|---|---:|---|");
    let _ = writeln!(
        out,
        "| join to first remote frame (ms) | {:.0} | {} |",
        r.join_to_first_frame_ms.median,
        runs(&r.join_to_first_frame_ms, 0)
    );
    let size = r
        .file_size_mib
        .map_or(String::new(), |m| format!(", {m:.0} MiB file"));
    let _ = writeln!(
        out,
        "| file throughput browser to browser (MiB/s{size}) | {:.1} | {} |",
        r.file_throughput_mi_bs.median,
        runs(&r.file_throughput_mi_bs, 1)
    );
    if let Some(ceiling) = &r.channel_ceiling_mi_bs {
        let _ = writeln!(
            out,
            "| bare 64 KiB frames on the same channel (MiB/s) | {:.1} | {} |",
            ceiling.median,
            runs(ceiling, 1)
        );
        if ceiling.median > 0.0 {
            let _ = writeln!(
                out,
                "\nFile transfer reaches {:.2}x the channel's bare-frame rate.",
                r.file_throughput_mi_bs.median / ceiling.median
            );
        }
    }
    out
}

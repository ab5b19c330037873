//! `cargo xtask bench pair`: pairing a laptop with the release kiosk and presenting, from
//! the click on "Pair" to the kiosk decoding the first frame of the laptop's screen,
//! beside a plain Chromium-to-Chromium screen share (from opening the room page to the
//! viewer decoding the first frame) measured in the same run (driven by
//! `signaling/web/tests/bench/pair.mjs`), with the target of the pairing issue: the
//! kiosk's median no more than 1.5x Chromium's.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;

use super::browser::{Series, run_node_bench};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Kiosk {
    to_first_frame_ms: Series,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chromium {
    to_first_frame_ms: Series,
    /// The share of its figure spent loading the room page (the kiosk's laptop loads the
    /// Pair page before the clock starts).
    #[serde(default)]
    page_load_ms: Option<Series>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Results {
    kiosk: Kiosk,
    chromium: Chromium,
    target_ratio: f64,
    #[serde(default)]
    poll_ms: Option<f64>,
}

/// Runs the pairing benchmark; returns a Markdown report.
pub(crate) fn pair(
    server_bin: &Path,
    kiosk_bin: &Path,
    repo_root: &Path,
    quick: bool,
) -> Result<String> {
    let last = run_node_bench(
        repo_root,
        "pair.mjs",
        &[
            ("PORTAL_SERVER_BIN", server_bin),
            ("PORTAL_KIOSK_BIN", kiosk_bin),
        ],
        quick,
    )?;
    let results: Results = serde_json::from_str(&last).context("pair bench result")?;
    Ok(report(&results))
}

/// Nearest-rank 90th percentile of the runs.
fn p90(s: &Series) -> f64 {
    let mut runs = s.runs.clone();
    runs.sort_by(f64::total_cmp);
    let rank = (0.9 * runs.len() as f64).ceil() as usize;
    runs.get(rank.saturating_sub(1)).copied().unwrap_or(0.0)
}

fn report(r: &Results) -> String {
    let (k, c) = (&r.kiosk.to_first_frame_ms, &r.chromium.to_first_frame_ms);
    let runs = |s: &Series| {
        s.runs
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "-".into()
        }
    };
    let met = c.median > 0.0 && k.median <= r.target_ratio * c.median;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Pair and present (laptop Chromium to the release kiosk, beside Chromium to Chromium, loopback)\n"
    );
    let _ = writeln!(
        out,
        "Kiosk (release `portal-kiosk --headless`, enrolled, in its room): from the click on Pair (code from its `/status`) through Present to its `/status` showing the share on its stage with a frame of it decoded. Chromium: from opening the room page (`autojoin=1`) through Share screen to a viewer in the room with the share on its stage and a frame of it decoded. Both polled every {:.0} ms; each run a fresh laptop context, interleaved, {} runs a side.\n",
        r.poll_ms.unwrap_or(20.0),
        k.runs.len(),
    );
    let _ = writeln!(
        out,
        "| figure | kiosk | Chromium | ratio | target | kiosk runs | Chromium runs |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---|---|");
    let _ = writeln!(
        out,
        "| to the first frame of the share, median (ms) | {:.0} | {:.0} | {} | <= {}x: {} | {} | {} |",
        k.median,
        c.median,
        ratio(k.median, c.median),
        r.target_ratio,
        if met { "met" } else { "NOT met" },
        runs(k),
        runs(c),
    );
    let _ = writeln!(
        out,
        "| to the first frame of the share, p90 (ms) | {:.0} | {:.0} | {} | | | |",
        p90(k),
        p90(c),
        ratio(p90(k), p90(c)),
    );
    if let Some(load) = &r.chromium.page_load_ms {
        let _ = writeln!(
            out,
            "| of which loading the room page, median (ms) | | {:.0} | | | | {} |",
            load.median,
            runs(load),
        );
    }
    out
}

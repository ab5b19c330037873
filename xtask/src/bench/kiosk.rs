//! `cargo xtask bench kiosk`: the release kiosk beside a headless Chromium doing the same
//! 1:1 720p30 call with a remote Chromium, in one run (driven by
//! `signaling/web/tests/bench/kiosk.mjs`): CPU, memory, join to first remote frame, and
//! file receive throughput, with the targets of the kiosk engine issue.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;

use super::browser::{Series, run_node_bench};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Side {
    join_to_first_frame_ms: Series,
    cpu_percent: Series,
    rss_mi_b: Series,
    pss_mi_b: Series,
    file_receive_mi_bs: Series,
    sent_fps: Series,
    decoded_fps: Series,
    #[serde(default)]
    encoder: Option<String>,
    #[serde(default)]
    sent: Option<String>,
    #[serde(default)]
    decoded: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Results {
    kiosk: Side,
    chromium: Side,
    file_size_mib: f64,
    cpu_window_s: f64,
    #[serde(default)]
    kiosk_camera: Option<String>,
}

/// Runs the kiosk benchmark; returns a Markdown report.
pub(crate) fn kiosk(
    server_bin: &Path,
    kiosk_bin: &Path,
    repo_root: &Path,
    quick: bool,
) -> Result<String> {
    let last = run_node_bench(
        repo_root,
        "kiosk.mjs",
        &[
            ("PORTAL_SERVER_BIN", server_bin),
            ("PORTAL_KIOSK_BIN", kiosk_bin),
        ],
        quick,
    )?;
    let results: Results = serde_json::from_str(&last).context("kiosk bench result")?;
    Ok(report(&results))
}

fn report(r: &Results) -> String {
    let (k, c) = (&r.kiosk, &r.chromium);
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
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Kiosk beside Chromium (1:1 call with a remote Chromium, 720p30, loopback)\n"
    );
    let what = |s: &Side| {
        format!(
            "sends {} at {:.1} fps ({}), decodes {} at {:.1} fps",
            s.sent.as_deref().unwrap_or("?"),
            s.sent_fps.median,
            s.encoder.as_deref().unwrap_or("?"),
            s.decoded.as_deref().unwrap_or("?"),
            s.decoded_fps.median,
        )
    };
    let _ = writeln!(
        out,
        "Kiosk (release `portal-kiosk --headless`, camera `{}`) {}; Chromium (fake camera) {}. CPU over {:.0} s once the call runs, % of one core; Chromium summed over its process tree. File: {:.0} MiB from the remote.\n",
        r.kiosk_camera.as_deref().unwrap_or("sim:call"),
        what(k),
        what(c),
        r.cpu_window_s,
        r.file_size_mib,
    );
    let _ = writeln!(
        out,
        "| figure | kiosk | Chromium | ratio | target | kiosk runs | Chromium runs |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---|---|");
    let rows: [(&str, &Series, &Series, String); 5] = [
        (
            "CPU (% of one core)",
            &k.cpu_percent,
            &c.cpu_percent,
            format!(
                "<= 0.6x: {}",
                verdict(k.cpu_percent.median <= 0.6 * c.cpu_percent.median)
            ),
        ),
        (
            "RSS (MiB)",
            &k.rss_mi_b,
            &c.rss_mi_b,
            format!("kiosk < 150 MiB: {}", verdict(k.rss_mi_b.median < 150.0)),
        ),
        ("PSS (MiB)", &k.pss_mi_b, &c.pss_mi_b, String::new()),
        (
            "join to first remote frame (ms)",
            &k.join_to_first_frame_ms,
            &c.join_to_first_frame_ms,
            format!(
                "<= Chromium: {}",
                verdict(k.join_to_first_frame_ms.median <= c.join_to_first_frame_ms.median)
            ),
        ),
        (
            "file receive (MiB/s)",
            &k.file_receive_mi_bs,
            &c.file_receive_mi_bs,
            format!(
                ">= 0.8x: {}",
                verdict(k.file_receive_mi_bs.median >= 0.8 * c.file_receive_mi_bs.median)
            ),
        ),
    ];
    for (name, kv, cv, target) in rows {
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.1} | {} | {target} | {} | {} |",
            kv.median,
            cv.median,
            ratio(kv.median, cv.median),
            runs(kv),
            runs(cv),
        );
    }
    out
}

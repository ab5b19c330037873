//! `cargo xtask bench ota`: the update agent's download (release `ota_fetch` example:
//! manifest, bundle, SHA-256 check) against `curl -o` on the same file from the same
//! `portal-server --updates-dir`, and the cost of resuming after a kill at 50 %.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use portal_testkit::rauc::sha256_file;
use portal_testkit::{ServerProc, TempDir};
use rand::RngCore as _;

const COMPATIBLE: &str = "portal-bench";

pub(crate) fn ota(server_bin: &Path, fetch_bin: &Path, quick: bool) -> Result<String> {
    let size: usize = if quick { 32 << 20 } else { 256 << 20 };
    // The machines this runs on are shared and noisy: medians of several runs.
    let runs = if quick { 1 } else { 5 };
    let tmp = TempDir::new("bench-ota");
    let feed = tmp.join("feed").join(COMPATIBLE);
    std::fs::create_dir_all(&feed)?;
    let bundle = feed.join("bench.raucb");
    let mut data = vec![0u8; size];
    rand::rng().fill_bytes(&mut data);
    std::fs::write(&bundle, &data)?;
    drop(data);
    let (len, sha) = sha256_file(&bundle)?;
    std::fs::write(
        feed.join("manifest.json"),
        serde_json::to_vec(&serde_json::json!({
            "version": "9.9.9", "bundle": "bench.raucb", "size": len, "sha256": sha,
            "compatible": COMPATIBLE,
        }))?,
    )?;
    let server = ServerProc::builder()
        .bin(server_bin)
        .data_dir(tmp.join("srv"))
        .arg("--updates-dir")
        .arg(tmp.join("feed"))
        .start();
    let base = server.http_url("");
    let url = format!("{base}/updates/{COMPATIBLE}/bench.raucb");
    let out = tmp.join("out");
    let mib = len as f64 / f64::from(1 << 20);

    let (mut curl, mut ours, mut resumed) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)?;
        let ota_dir = out.join("ota");
        std::fs::create_dir_all(&ota_dir)?;
        // Each goes first in every other run, so neither always meets a page cache the
        // other has just filled.
        if run % 2 == 1 {
            ours.push(mib / fetch(fetch_bin, &base, &ota_dir)?);
        }
        let t = Instant::now();
        let st = Command::new("curl")
            .args(["-sf", "-o"])
            .arg(out.join("curl.bin"))
            .arg(&url)
            .status()?;
        if !st.success() {
            bail!("curl failed: {st}");
        }
        curl.push(mib / t.elapsed().as_secs_f64());
        if run % 2 == 0 {
            ours.push(mib / fetch(fetch_bin, &base, &ota_dir)?);
        }

        // What a kill at 50 % leaves: half the bundle in the partial file.
        let resume_dir = out.join("resume");
        std::fs::create_dir_all(&resume_dir)?;
        let half = std::fs::read(&bundle)?;
        std::fs::write(
            resume_dir.join(format!("{sha}.part")),
            &half[..half.len() / 2],
        )?;
        drop(half);
        resumed.push(fetch(fetch_bin, &base, &resume_dir)?);
    }
    let (curl, ours, resumed) = (median(&mut curl), median(&mut ours), median(&mut resumed));
    // The resumed half against half of a whole download's time.
    let half_time = mib / ours / 2.0;
    Ok(format!(
        "### OTA download ({mib:.0} MiB from `portal-server --updates-dir`, loopback, median of \
         {runs})\n\n\
         | figure | portal-ota | curl | ratio |\n|---|---:|---:|---:|\n\
         | throughput (MiB/s), SHA-256 checked | {ours:.0} | {curl:.0} | {:.2}x |\n\
         | resume after a kill at 50 %: time for the rest (s) | {resumed:.3} | | {:.2}x of half a download |\n",
        ours / curl,
        resumed / half_time,
    ))
}

/// Runs `ota_fetch` into `dir`; its wall time in seconds.
fn fetch(bin: &Path, base: &str, dir: &Path) -> Result<f64> {
    let t = Instant::now();
    let out = Command::new(bin)
        .args([base, COMPATIBLE])
        .arg(dir)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!("ota_fetch failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed().as_secs_f64())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

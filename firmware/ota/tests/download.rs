//! The download on its own (no RAUC) from a real `portal-server --updates-dir` feed: a
//! bundle larger than the server's pieces and the agent's queues, resumed from what is on
//! disk, with the part already there re-checked.
//!
//! Needs `portal-server` built (`cargo build -p portal-signaling --bin portal-server`).

use portal_ota::download::{self, DownloadOptions};
use portal_ota::{Manifest, OtaError};
use portal_testkit::{ServerProc, TempDir};
use sha2::{Digest as _, Sha256};

const COMPATIBLE: &str = "portal-dl";

/// A feed offering `bundle`, and the manifest the agent reads from it.
async fn feed(dir: &TempDir, bundle: &[u8], size: u64) -> (ServerProc, String, Manifest) {
    let feed = dir.join("feed").join(COMPATIBLE);
    std::fs::create_dir_all(&feed).unwrap();
    std::fs::write(feed.join("b.raucb"), bundle).unwrap();
    let manifest = serde_json::json!({
        "version": "1.1.0", "bundle": "b.raucb", "size": size,
        "sha256": hex::encode(Sha256::digest(bundle)), "compatible": COMPATIBLE,
    });
    std::fs::write(feed.join("manifest.json"), manifest.to_string()).unwrap();
    let server = ServerProc::builder()
        .data_dir(dir.join("srv"))
        .arg("--updates-dir")
        .arg(dir.join("feed"))
        .start_async()
        .await;
    let url = server.http_url("");
    let m = download::fetch_manifest(&url, COMPATIBLE)
        .await
        .unwrap()
        .unwrap();
    (server, url, m)
}

fn noise(len: usize) -> Vec<u8> {
    portal_testkit::noise(len, 0x9e37_79b9_7f4a_7c15)
}

fn opts() -> DownloadOptions {
    DownloadOptions {
        keep_free: 0,
        ..DownloadOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_arrives_whole_and_a_resume_fetches_only_the_rest() {
    let dir = TempDir::new("dl-resume");
    let bundle = noise(24 << 20);
    let (_server, url, m) = feed(&dir, &bundle, bundle.len() as u64).await;
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut last = 0;
    let path = download::download(&url, COMPATIBLE, &m, &out, &opts(), &mut |done, total| {
        assert!(done >= last && done <= total);
        last = done;
    })
    .await
    .unwrap();
    assert_eq!(last, m.size);
    assert_eq!(std::fs::read(&path).unwrap(), bundle);

    // What a kill leaves: part of it in the partial file.
    std::fs::remove_file(&path).unwrap();
    let part = out.join(format!("{}.part", m.sha256));
    std::fs::write(&part, &bundle[..(9 << 20) + 123]).unwrap();
    let mut first = None;
    let path = download::download(&url, COMPATIBLE, &m, &out, &opts(), &mut |done, _| {
        first.get_or_insert(done);
    })
    .await
    .unwrap();
    assert!(
        first.unwrap() > (9 << 20) + 123,
        "counted from the part on disk"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bundle);
    assert!(!part.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_part_on_disk_is_caught_when_resumed() {
    let dir = TempDir::new("dl-damaged");
    let bundle = noise(6 << 20);
    let (_server, url, m) = feed(&dir, &bundle, bundle.len() as u64).await;
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let part = out.join(format!("{}.part", m.sha256));
    let mut half = bundle[..3 << 20].to_vec();
    half[1000] ^= 1;
    std::fs::write(&part, &half).unwrap();
    let r = download::download(&url, COMPATIBLE, &m, &out, &opts(), &mut |_, _| {}).await;
    assert!(matches!(r, Err(OtaError::ShaMismatch { .. })), "{r:?}");
    assert!(!part.exists(), "a damaged part is not resumed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_sending_more_than_the_manifest_says_is_refused() {
    let dir = TempDir::new("dl-oversize");
    let bundle = noise(3 << 20);
    let (_server, url, m) = feed(&dir, &bundle, 2 << 20).await;
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let r = download::download(&url, COMPATIBLE, &m, &out, &opts(), &mut |_, _| {}).await;
    assert!(matches!(r, Err(OtaError::Oversize { .. })), "{r:?}");
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "nothing kept"
    );
}

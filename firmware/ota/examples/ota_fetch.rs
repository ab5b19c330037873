//! Fetches the bundle a feed offers into a directory, as the agent does (resuming a
//! partial file, checking size and SHA-256), without RAUC. `cargo xtask bench ota` times
//! it against curl.
//!
//! `ota_fetch FEED COMPATIBLE DIR` prints `{"bytes": N, "secs": T}`.

use std::time::Instant;

use portal_ota::download::{self, DownloadOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [feed, compatible, dir] = args.as_slice() else {
        anyhow::bail!("usage: ota_fetch FEED COMPATIBLE DIR");
    };
    let start = Instant::now();
    let Some(m) = download::fetch_manifest(feed, compatible).await? else {
        anyhow::bail!("the feed offers nothing for {compatible}");
    };
    let opts = DownloadOptions {
        keep_free: 0,
        ..DownloadOptions::default()
    };
    download::download(feed, compatible, &m, dir.as_ref(), &opts, &mut |_, _| {}).await?;
    println!(
        "{{\"bytes\": {}, \"secs\": {}}}",
        m.size,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

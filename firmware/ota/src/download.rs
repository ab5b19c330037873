//! The feed over HTTP/1.1 (hyper's client on a tokio socket): the manifest, and the
//! bundle into the data directory, resumed with `Range` after a kill or a dropped link,
//! its size and SHA-256 checked before it is handed to RAUC.
//!
//! Files in the data directory: `{sha256}.part` while it arrives, `{sha256}.raucb` once
//! it is complete and checked. Other bundles there are removed when a new one starts.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::{Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};

use crate::error::OtaError;
use crate::manifest::{MAX_MANIFEST, Manifest};

/// How long the feed may stay silent before the transfer counts as dropped.
const STALL: Duration = Duration::from_secs(30);
/// Pieces smaller than this are gathered into one write; larger ones go to disk as they
/// came.
const WRITE_CHUNK: usize = 256 << 10;
/// Pieces waiting for the writer, and for the hasher: with hyper's reads of up to a few
/// hundred KiB, a few MiB in memory at most.
const QUEUE: usize = 16;
/// Files are re-read for hashing in pieces this large.
const READ_CHUNK: usize = 1 << 20;

/// How a download behaves.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Bytes a second at most (`None`: as fast as the link goes), so a daytime download
    /// leaves the room's link to calls.
    pub max_rate: Option<u64>,
    /// Bytes the data directory must keep free after the bundle is in.
    pub keep_free: u64,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            max_rate: None,
            keep_free: 16 << 20,
        }
    }
}

/// `{feed}/updates/{compatible}/{file}`; `feed` is the rooms server's base URL (`ws://`
/// and `wss://` are taken as `http://` and `https://`).
pub fn feed_url(feed: &str, compatible: &str, file: &str) -> String {
    let base = feed.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = base.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}/updates/{compatible}/{file}")
}

/// Where a complete, checked bundle is kept.
pub fn bundle_path(dir: &Path, m: &Manifest) -> PathBuf {
    dir.join(format!("{}.raucb", m.sha256))
}

fn part_path(dir: &Path, m: &Manifest) -> PathBuf {
    dir.join(format!("{}.part", m.sha256))
}

/// Fetches and parses the manifest; `None` when the feed offers nothing for this device
/// (404).
pub async fn fetch_manifest(feed: &str, compatible: &str) -> Result<Option<Manifest>, OtaError> {
    let url = feed_url(feed, compatible, "manifest.json");
    let resp = get(&url, None).await?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if resp.status() != StatusCode::OK {
        return Err(OtaError::Network(format!("{url}: HTTP {}", resp.status())));
    }
    let mut body = Vec::new();
    let mut incoming = resp.into_body();
    while let Some(frame) = tokio::time::timeout(STALL, incoming.frame())
        .await
        .map_err(|_| OtaError::Network(format!("{url}: no answer")))?
    {
        let frame = frame.map_err(|e| OtaError::Network(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            body.extend_from_slice(&data);
            if body.len() > MAX_MANIFEST {
                return Err(OtaError::GarbageFeed("manifest too large".into()));
            }
        }
    }
    Manifest::parse(&body).map(Some)
}

/// Fetches the bundle `m` names into `dir`, resuming a partial file, and checks it.
/// `progress(done, total)` is called as bytes arrive. Returns the checked bundle's path.
///
/// The network, the disk and SHA-256 overlap: this task only receives, a blocking
/// writer puts each piece on disk and hands it on to a blocking hasher, and one
/// `fdatasync` at the end makes the file durable before it counts as downloaded.
/// (Starting writeback while the rest arrives measured slower: it competes with the
/// transfer for the same cores.) On a resume the hasher first re-reads and hashes the part already on
/// disk, while the rest arrives.
pub async fn download(
    feed: &str,
    compatible: &str,
    m: &Manifest,
    dir: &Path,
    opts: &DownloadOptions,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<PathBuf, OtaError> {
    let done_path = bundle_path(dir, m);
    if done_path.exists() {
        let (len, sha) = hash_file(&done_path)?;
        if len == m.size && sha == m.sha256 {
            return Ok(done_path);
        }
        std::fs::remove_file(&done_path)?;
    }
    remove_others(dir, m)?;
    let part = part_path(dir, m);
    let mut have = std::fs::metadata(&part).map_or(0, |md| md.len());
    if have > m.size {
        have = 0;
    }
    check_space(dir, m.size - have, opts.keep_free)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&part)?;
    file.set_len(have)?;
    let url = feed_url(feed, compatible, &m.bundle);
    let resp = get(&url, (have > 0).then_some(have)).await?;
    match resp.status() {
        StatusCode::PARTIAL_CONTENT if content_range_start(&resp, m.size) == Some(have) => {}
        StatusCode::OK => {
            if have > 0 {
                tracing::info!("the feed ignored the range; starting over");
            }
            have = 0;
            file.set_len(0)?;
        }
        StatusCode::RANGE_NOT_SATISFIABLE if have == m.size => {}
        status => {
            if status == StatusCode::RANGE_NOT_SATISFIABLE || status == StatusCode::PARTIAL_CONTENT
            {
                file.set_len(0)?;
            }
            return Err(OtaError::Network(format!("{url}: HTTP {status}")));
        }
    }
    // When all of it was here already (a kill after the last byte), only the checks
    // remain.
    let complete = resp.status() == StatusCode::RANGE_NOT_SATISFIABLE;
    tracing::info!(url, from = have, size = m.size, "downloading");
    let sink = Sink::start(&part, file, have, m.size);
    let mut body = resp.into_body();
    let oversize = !complete && receive(&mut body, &sink, have, m, opts, progress).await;
    drop(body);
    let (written, hasher) = sink.finish().await?;
    if oversize {
        std::fs::remove_file(&part)?;
        return Err(OtaError::Oversize { expected: m.size });
    }
    if written < m.size {
        return Err(OtaError::Truncated {
            expected: m.size,
            got: written,
        });
    }
    let actual = hex::encode(hasher.finalize());
    if actual != m.sha256 {
        std::fs::remove_file(&part)?;
        return Err(OtaError::ShaMismatch {
            expected: m.sha256.clone(),
            actual,
        });
    }
    std::fs::rename(&part, &done_path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(done_path)
}

/// Passes the body's bytes to `sink` until it ends, drops or stalls, keeping to the rate
/// limit; `have` bytes were there before. True when the feed sent more than the
/// manifest's size (the rest is not passed on).
async fn receive(
    body: &mut Incoming,
    sink: &Sink,
    mut have: u64,
    m: &Manifest,
    opts: &DownloadOptions,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> bool {
    let started = Instant::now();
    let resumed_at = have;
    let mut last_report = 0;
    loop {
        let frame = match tokio::time::timeout(STALL, body.frame()).await {
            Err(_) | Ok(None) => return false,
            Ok(Some(Err(e))) => {
                tracing::info!(error = %e, "transfer dropped");
                return false;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if have + data.len() as u64 > m.size {
            return true;
        }
        have += data.len() as u64;
        if !sink.push(data).await {
            // The writer stopped; the caller reads its error.
            return false;
        }
        if have - last_report >= (m.size / 100).max(64 * 1024) || have == m.size {
            last_report = have;
            progress(have, m.size);
        }
        if let Some(rate) = opts.max_rate.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64((have - resumed_at) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The blocking half of a download: a writer thread that appends each piece to the
/// partial file and passes it on, and a hasher thread that hashes the part already on
/// disk, then each piece in order. Pieces are `Bytes` from the connection, shared, not
/// copied.
struct Sink {
    to_writer: tokio::sync::mpsc::Sender<Bytes>,
    writer: tokio::task::JoinHandle<std::io::Result<u64>>,
    hasher: tokio::task::JoinHandle<Result<Sha256, OtaError>>,
}

impl Sink {
    /// Starts both threads. `file` (at `path`) holds `have` of the bundle's `size` bytes,
    /// which are hashed first; the writer appends from there.
    fn start(path: &Path, file: std::fs::File, have: u64, size: u64) -> Sink {
        // Reserve the rest up front (keeping the file's length, which says how much has
        // arrived), so the file system allocates it in one go rather than write by write
        // (fewer fragments on flash). Not every file system can; then the writes
        // allocate as they go.
        if size > have {
            let _ = rustix::fs::fallocate(
                &file,
                rustix::fs::FallocateFlags::KEEP_SIZE,
                have,
                size - have,
            );
        }
        let (to_writer, mut from_net) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
        let (to_hasher, from_writer) = std::sync::mpsc::sync_channel::<Bytes>(QUEUE);
        let on_disk = (have > 0).then(|| path.to_owned());
        let hasher = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            if let Some(path) = on_disk {
                let mut file = std::fs::File::open(path)?;
                hash_prefix(&mut file, have, &mut hasher)?;
            }
            for piece in from_writer {
                hasher.update(&piece);
            }
            Ok::<_, OtaError>(hasher)
        });
        let writer = tokio::task::spawn_blocking(move || {
            let mut file = std::io::BufWriter::with_capacity(WRITE_CHUNK, file);
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(have))?;
            let mut written = have;
            while let Some(piece) = from_net.blocking_recv() {
                file.write_all(&piece)?;
                written += piece.len() as u64;
                if to_hasher.send(piece).is_err() {
                    // The hasher failed; its error is reported.
                    break;
                }
            }
            drop(to_hasher);
            let file = file
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)?;
            file.sync_data()?;
            Ok(written)
        });
        Sink {
            to_writer,
            writer,
            hasher,
        }
    }

    /// Queues a piece for the disk; waits while the queue is full. `false` when the
    /// writer has stopped.
    async fn push(&self, piece: Bytes) -> bool {
        self.to_writer.send(piece).await.is_ok()
    }

    /// Lets both threads finish: the bytes now in the file (on disk), and the hash of
    /// them.
    async fn finish(self) -> Result<(u64, Sha256), OtaError> {
        drop(self.to_writer);
        let joined = |e: tokio::task::JoinError| OtaError::Io(e.to_string());
        let written = self.writer.await.map_err(joined)?;
        let hasher = self.hasher.await.map_err(joined)?;
        Ok((written?, hasher?))
    }
}

/// Free bytes in `dir` for an unprivileged writer.
pub fn free_space(dir: &Path) -> Result<u64, OtaError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| OtaError::Io(format!("statvfs: {e}")))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

fn check_space(dir: &Path, more: u64, keep_free: u64) -> Result<(), OtaError> {
    let available = free_space(dir)?;
    let needed = more.saturating_add(keep_free);
    if available < needed {
        return Err(OtaError::DiskFull { needed, available });
    }
    Ok(())
}

/// Removes bundles and partial downloads other than `m`'s.
fn remove_others(dir: &Path, m: &Manifest) -> Result<(), OtaError> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let stale = path
            .extension()
            .is_some_and(|e| e == "part" || e == "raucb")
            && path.file_stem().is_some_and(|s| *s != *m.sha256);
        if stale {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

fn hash_prefix(file: &mut std::fs::File, len: u64, hasher: &mut Sha256) -> Result<(), OtaError> {
    let mut buf = vec![0; READ_CHUNK];
    let mut left = len;
    while left > 0 {
        let n = file.read(&mut buf[..(left.min(READ_CHUNK as u64) as usize)])?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

/// Length and SHA-256 (hex) of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String), OtaError> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = Sha256::new();
    hash_prefix(&mut file, len, &mut hasher)?;
    Ok((len, hex::encode(hasher.finalize())))
}

fn content_range_start(resp: &Response<Incoming>, size: u64) -> Option<u64> {
    let v = resp.headers().get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    (total.parse::<u64>().ok()? == size).then_some(())?;
    start.parse().ok()
}

/// One GET, optionally from byte `from` on.
pub async fn get(url: &str, from: Option<u64>) -> Result<Response<Incoming>, OtaError> {
    let net = |e: &dyn std::fmt::Display| OtaError::Network(format!("{url}: {e}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| net(&"only http:// feeds are supported"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let stream = tokio::time::timeout(STALL, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| net(&"connect timed out"))?
        .map_err(|e| net(&e))?;
    stream.set_nodelay(true).ok();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| net(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "feed connection ended");
        }
    });
    let mut req = hyper::Request::get(path)
        .header(header::HOST, authority)
        .header(
            header::USER_AGENT,
            concat!("portal-ota/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(from) = from {
        req = req.header(header::RANGE, format!("bytes={from}-"));
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| net(&e))?;
    tokio::time::timeout(STALL, sender.send_request(req))
        .await
        .map_err(|_| net(&"no answer"))?
        .map_err(|e| net(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_urls() {
        assert_eq!(
            feed_url("ws://h:8080/", "pi4", "manifest.json"),
            "http://h:8080/updates/pi4/manifest.json"
        );
        assert_eq!(
            feed_url("wss://h", "pi4", "b.raucb"),
            "https://h/updates/pi4/b.raucb"
        );
    }

    #[tokio::test]
    async fn no_byte_is_fetched_without_room_for_the_bundle() {
        let dir = std::env::temp_dir().join(format!("portal-ota-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = Manifest {
            version: "1.0.0".parse().unwrap(),
            bundle: "b.raucb".into(),
            size: 1 << 30,
            sha256: "0".repeat(64),
            notes: String::new(),
            min_version: None,
            allow_downgrade: false,
            compatible: "x".into(),
        };
        let opts = DownloadOptions {
            max_rate: None,
            keep_free: u64::MAX / 2,
        };
        // The feed address is never dialled: the space check comes first.
        let r = download("http://192.0.2.1:9", "x", &m, &dir, &opts, &mut |_, _| {}).await;
        assert!(matches!(r, Err(OtaError::DiskFull { .. })), "{r:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

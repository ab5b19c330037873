//! The update feed for kiosks (`--updates-dir DIR`).
//!
//! `GET /updates/{compatible}/manifest.json` answers `DIR/{compatible}/manifest.json`, and
//! `GET /updates/{compatible}/{bundle}` the bundle that manifest names, with single byte
//! ranges so a kiosk resumes a download where it stopped. Nothing else under `DIR` is
//! served: `compatible` and file names are plain names (`[A-Za-z0-9._-]`, no leading dot),
//! the only files are the manifest and the bundle it names, and neither may be a symlink.
//!
//! The manifest is JSON written by `cargo xtask bundle`:
//! `{version, bundle, size, sha256, notes, min_version?, allow_downgrade, compatible}`.
//! The server reads only `bundle` from it; the kiosk checks the rest, and RAUC checks the
//! bundle's signature. Bytes served are counted in `/metrics`
//! (`portal_update_bytes_total`), so a resumed download can be seen to fetch only the rest.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::web::parse_range;

/// The manifest's file name in each `compatible` directory.
pub const MANIFEST: &str = "manifest.json";
/// Manifests are small; anything larger is not one.
const MAX_MANIFEST: u64 = 64 * 1024;
/// Bundle reads at once: each holds its range in memory while it is sent.
const READS_AT_ONCE: usize = 4;

/// Where the feed's files are.
#[derive(Debug)]
pub struct UpdateFeed {
    dir: PathBuf,
    reads: Semaphore,
}

/// Why a request gets no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Not a name the feed could hold (404, nothing is looked up).
    BadName,
    NotFound,
    /// The manifest is unreadable or not JSON with a valid `bundle`.
    BadManifest,
    Io,
}

impl UpdateFeed {
    pub fn new(dir: impl Into<PathBuf>) -> UpdateFeed {
        UpdateFeed {
            dir: dir.into(),
            reads: Semaphore::new(READS_AT_ONCE),
        }
    }

    /// The file `rest` (`{compatible}/{file}`) names, if the feed serves it.
    async fn resolve(&self, rest: &str) -> Result<PathBuf, Refusal> {
        let (compatible, file) = rest.split_once('/').ok_or(Refusal::BadName)?;
        if !valid_name(compatible, 64) || !valid_name(file, 128) {
            return Err(Refusal::BadName);
        }
        let dir = self.dir.join(compatible);
        let manifest = dir.join(MANIFEST);
        if file == MANIFEST {
            regular_file(&manifest).await?;
            return Ok(manifest);
        }
        let bundle = bundle_named_in(&manifest).await?;
        if bundle != file {
            return Err(Refusal::NotFound);
        }
        let path = dir.join(file);
        regular_file(&path).await?;
        Ok(path)
    }
}

/// Answers `GET /updates/...`; `None` when the server runs without `--updates-dir`.
pub(crate) async fn serve<B>(
    feed: Option<&UpdateFeed>,
    req: &Request<B>,
    metrics: &Metrics,
) -> Response<Full<Bytes>> {
    let Some(feed) = feed else {
        return plain(StatusCode::NOT_FOUND, "no update feed on this server\n");
    };
    let rest = req.uri().path().strip_prefix("/updates/").unwrap_or("");
    let path = match feed.resolve(rest).await {
        Ok(path) => path,
        Err(Refusal::BadName | Refusal::NotFound) => {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        Err(Refusal::BadManifest) => {
            tracing::warn!(path = rest, "update manifest unreadable or invalid");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "invalid manifest\n");
        }
        Err(Refusal::Io) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "read error\n"),
    };
    let is_manifest = path.file_name().is_some_and(|n| n == MANIFEST);
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let _permit = feed.reads.acquire().await.expect("never closed");
    let resp = match send_file(&path, range).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "update file read failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "read error\n");
        }
    };
    let sent = hyper::body::Body::size_hint(resp.body())
        .exact()
        .unwrap_or(0);
    if is_manifest {
        metrics.update_manifests.fetch_add(1, Relaxed);
    } else {
        metrics.update_bundle_requests.fetch_add(1, Relaxed);
        metrics.update_bytes.fetch_add(sent, Relaxed);
    }
    let mut resp = resp;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if is_manifest {
            "application/json"
        } else {
            "application/octet-stream"
        }),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The whole file, or the one range asked for (206), or 416.
async fn send_file(path: &Path, range: Option<&str>) -> std::io::Result<Response<Full<Bytes>>> {
    let mut file = tokio::fs::File::open(path).await?;
    let len = usize::try_from(file.metadata().await?.len()).unwrap_or(usize::MAX);
    let (start, end, partial) = match parse_range(range, len) {
        Ok(None) if len == 0 => return Ok(Response::new(Full::new(Bytes::new()))),
        Ok(None) => (0, len - 1, false),
        Ok(Some((start, end))) => (start, end, true),
        Err(()) => {
            let mut resp = plain(StatusCode::RANGE_NOT_SATISFIABLE, "");
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return Ok(resp);
        }
    };
    file.seek(SeekFrom::Start(start as u64)).await?;
    let mut body = vec![0; end - start + 1];
    file.read_exact(&mut body).await?;
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if partial {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        resp.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("ascii"),
        );
    }
    Ok(resp)
}

/// The `bundle` a manifest names, if it is a valid file name.
async fn bundle_named_in(manifest: &Path) -> Result<String, Refusal> {
    let meta = regular_file(manifest).await?;
    if meta.len() > MAX_MANIFEST {
        return Err(Refusal::BadManifest);
    }
    let text = tokio::fs::read(manifest).await.map_err(|_| Refusal::Io)?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|_| Refusal::BadManifest)?;
    match value.get("bundle").and_then(|b| b.as_str()) {
        Some(name) if valid_name(name, 128) && name != MANIFEST => Ok(name.to_owned()),
        _ => Err(Refusal::BadManifest),
    }
}

/// The file's metadata if it is a regular file (not a symlink, not a directory).
async fn regular_file(path: &Path) -> Result<std::fs::Metadata, Refusal> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.file_type().is_file() => Ok(meta),
        Ok(_) => Err(Refusal::NotFound),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Refusal::NotFound),
        Err(_) => Err(Refusal::Io),
    }
}

/// A plain name: 1 to `max` of `[A-Za-z0-9._-]`, starting with a letter or digit (so
/// never `.`, `..` or a hidden file).
pub fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed() -> (tempdir::Dir, UpdateFeed) {
        let dir = tempdir::Dir::new();
        let compat = dir.0.join("portal-pi4");
        std::fs::create_dir_all(&compat).unwrap();
        std::fs::write(
            compat.join(MANIFEST),
            r#"{"version":"1.1.0","bundle":"portal-1.1.0.raucb"}"#,
        )
        .unwrap();
        std::fs::write(compat.join("portal-1.1.0.raucb"), b"0123456789").unwrap();
        std::fs::write(compat.join("secret.key"), b"no").unwrap();
        std::fs::write(dir.0.join("top.txt"), b"no").unwrap();
        let feed = UpdateFeed::new(&dir.0);
        (dir, feed)
    }

    mod tempdir {
        #[derive(Debug)]
        pub(super) struct Dir(pub(super) std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "portal-updates-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn get(path: &str, range: Option<&str>) -> Request<()> {
        let mut req = Request::builder().uri(path);
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        req.body(()).unwrap()
    }

    async fn body(resp: Response<Full<Bytes>>) -> Vec<u8> {
        use http_body_util::BodyExt as _;
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn serves_the_manifest_and_the_bundle_it_names_with_ranges() {
        let (_dir, feed) = feed();
        let m = Metrics::default();
        let resp = serve(
            Some(&feed),
            &get("/updates/portal-pi4/manifest.json", None),
            &m,
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(body(resp).await.starts_with(b"{\"version\""));
        let whole = "/updates/portal-pi4/portal-1.1.0.raucb";
        let resp = serve(Some(&feed), &get(whole, None), &m).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body(resp).await, b"0123456789");
        let resp = serve(Some(&feed), &get(whole, Some("bytes=4-")), &m).await;
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(resp.headers()[header::CONTENT_RANGE], "bytes 4-9/10");
        assert_eq!(body(resp).await, b"456789");
        let resp = serve(Some(&feed), &get(whole, Some("bytes=10-")), &m).await;
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(m.update_bytes.load(Relaxed), 16);
        assert_eq!(m.update_bundle_requests.load(Relaxed), 3);
    }

    #[tokio::test]
    async fn nothing_but_the_manifest_and_its_bundle() {
        let (_dir, feed) = feed();
        let m = Metrics::default();
        for path in [
            "/updates/portal-pi4/secret.key",
            "/updates/portal-pi4/../top.txt",
            "/updates/../top.txt",
            "/updates/portal-pi4/%2e%2e/top.txt",
            "/updates/portal-pi4/",
            "/updates/portal-pi4",
            "/updates/.hidden/manifest.json",
            "/updates/other/manifest.json",
            "/updates/portal-pi4/sub/manifest.json",
        ] {
            let resp = serve(Some(&feed), &get(path, None), &m).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let resp = serve(None, &get("/updates/portal-pi4/manifest.json", None), &m).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(m.update_bytes.load(Relaxed), 0);
    }

    #[tokio::test]
    async fn a_manifest_naming_a_path_serves_nothing() {
        let (dir, feed) = feed();
        let m = Metrics::default();
        let compat = dir.0.join("portal-pi4");
        std::fs::write(compat.join(MANIFEST), r#"{"bundle":"../top.txt"}"#).unwrap();
        let resp = serve(
            Some(&feed),
            &get("/updates/portal-pi4/..%2Ftop.txt", None),
            &m,
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = serve(Some(&feed), &get("/updates/portal-pi4/top.txt", None), &m).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        #[cfg(unix)]
        {
            std::fs::write(compat.join(MANIFEST), r#"{"bundle":"link.raucb"}"#).unwrap();
            std::os::unix::fs::symlink(dir.0.join("top.txt"), compat.join("link.raucb")).unwrap();
            let resp = serve(
                Some(&feed),
                &get("/updates/portal-pi4/link.raucb", None),
                &m,
            )
            .await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        }
    }

    #[test]
    fn names() {
        assert!(valid_name("portal-pi4_64", 64));
        assert!(valid_name("portal-1.2.0.raucb", 128));
        for bad in ["", ".", "..", ".x", "a/b", "a\\b", "a b", "a%2e", "é"] {
            assert!(!valid_name(bad, 64), "{bad}");
        }
        assert!(!valid_name(&"a".repeat(65), 64));
    }
}

//! The update feed for kiosks (`--updates-dir DIR`).
//!
//! `GET /updates/{compatible}/manifest.json` answers `DIR/{compatible}/manifest.json`, and
//! `GET /updates/{compatible}/{bundle}` the bundle that manifest names, with single byte
//! ranges so a kiosk resumes a download where it stopped. Nothing else under `DIR` is
//! served: `compatible` and file names are plain names (`[A-Za-z0-9._-]`, no leading dot),
//! the only files are the manifest and the bundle it names, and neither may be a symlink.
//!
//! A bundle is sent as it is read from its file, [`READ_CHUNK`] at a time, when the
//! server's responses have a boxed body (see [`FeedBody`]); with `Full` bodies it is read
//! into memory whole first, at most [`READS_AT_ONCE`] at a time.
//!
//! The manifest is JSON written by `cargo xtask bundle`:
//! `{version, bundle, size, sha256, notes, min_version?, allow_downgrade, compatible}`.
//! The server reads only `bundle` from it; the kiosk checks the rest, and RAUC checks the
//! bundle's signature. Bytes served are counted in `/metrics`
//! (`portal_update_bytes_total`), so a resumed download can be seen to fetch only the rest.

use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Frame, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::web::parse_range;

/// The manifest's file name in each `compatible` directory.
pub const MANIFEST: &str = "manifest.json";
/// Manifests are small; anything larger is not one.
const MAX_MANIFEST: u64 = 64 * 1024;
/// Bundle ranges read into memory at once for `Full` bodies (each is then held until it
/// has been sent).
const READS_AT_ONCE: usize = 4;
/// A streamed bundle is read and sent in pieces this large; one piece is read ahead of
/// the connection, so a response holds at most two in memory.
const READ_CHUNK: usize = 512 << 10;

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
pub(crate) async fn serve<B, O: FeedBody>(
    feed: Option<&UpdateFeed>,
    req: &Request<B>,
    metrics: &Metrics,
) -> Response<O> {
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
    let (mut resp, sent) = match send_file(&path, range, &feed.reads).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "update file read failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "read error\n");
        }
    };
    if is_manifest {
        metrics.update_manifests.fetch_add(1, Relaxed);
    } else {
        metrics.update_bundle_requests.fetch_add(1, Relaxed);
        metrics.update_bytes.fetch_add(sent, Relaxed);
    }
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

/// The whole file, or the one range asked for (206), or 416; and the bytes the answer
/// carries (counted when it starts, whether or not the client takes them all).
async fn send_file<O: FeedBody>(
    path: &Path,
    range: Option<&str>,
    reads: &Semaphore,
) -> io::Result<(Response<O>, u64)> {
    let file = tokio::fs::File::open(path).await?;
    let len = usize::try_from(file.metadata().await?.len()).unwrap_or(usize::MAX);
    let file = file.into_std().await;
    let (start, end, partial) = match parse_range(range, len) {
        Ok(None) if len == 0 => return Ok((Response::new(O::bytes(Bytes::new())), 0)),
        Ok(None) => (0, len - 1, false),
        Ok(Some((start, end))) => (start, end, true),
        Err(()) => {
            let mut resp = plain(StatusCode::RANGE_NOT_SATISFIABLE, "");
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return Ok((resp, 0));
        }
    };
    let sent = (end - start + 1) as u64;
    let mut resp = Response::new(O::file(file, start as u64, sent, reads).await?);
    resp.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if partial {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        resp.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("ascii"),
        );
    }
    Ok((resp, sent))
}

/// A response body the feed can answer with. The server's body type decides how a
/// bundle goes out: a boxed body streams it ([`FileBody`]), `Full` holds it whole.
pub(crate) trait FeedBody: Sized + Send + 'static {
    /// A small answer already in memory.
    fn bytes(bytes: Bytes) -> Self;
    /// `len` bytes of `file` from `start`. `reads` bounds the reads that hold a whole
    /// range in memory.
    fn file(
        file: std::fs::File,
        start: u64,
        len: u64,
        reads: &Semaphore,
    ) -> impl Future<Output = io::Result<Self>> + Send;
}

impl FeedBody for Full<Bytes> {
    fn bytes(bytes: Bytes) -> Self {
        Full::new(bytes)
    }

    async fn file(
        file: std::fs::File,
        start: u64,
        len: u64,
        reads: &Semaphore,
    ) -> io::Result<Self> {
        let _permit = reads.acquire().await.expect("never closed");
        let body = tokio::task::spawn_blocking(move || {
            let mut body = vec![0; usize::try_from(len).map_err(io::Error::other)?];
            file.read_exact_at(&mut body, start)?;
            Ok::<_, io::Error>(body)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Full::new(Bytes::from(body)))
    }
}

impl FeedBody for BoxBody<Bytes, io::Error> {
    fn bytes(bytes: Bytes) -> Self {
        Full::new(bytes).map_err(|never| match never {}).boxed()
    }

    async fn file(file: std::fs::File, start: u64, len: u64, _: &Semaphore) -> io::Result<Self> {
        Ok(FileBody::new(file, start, len).boxed())
    }
}

impl FeedBody for UnsyncBoxBody<Bytes, io::Error> {
    fn bytes(bytes: Bytes) -> Self {
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync()
    }

    async fn file(file: std::fs::File, start: u64, len: u64, _: &Semaphore) -> io::Result<Self> {
        Ok(FileBody::new(file, start, len).boxed_unsync())
    }
}

/// `len` bytes of a file, read on the blocking pool [`READ_CHUNK`] at a time, the next
/// piece while the connection sends the last. Its exact size is known, so the answer
/// has a `Content-Length`. A file that shrinks meanwhile ends the body with an error
/// (the client sees a cut transfer and resumes).
#[derive(Debug)]
pub(crate) struct FileBody {
    file: Arc<std::fs::File>,
    /// Where the next read starts, and the bytes not yet read.
    offset: u64,
    unread: u64,
    /// Bytes not yet handed to the connection.
    left: u64,
    reading: Option<JoinHandle<io::Result<Bytes>>>,
}

impl FileBody {
    fn new(file: std::fs::File, start: u64, len: u64) -> FileBody {
        let mut body = FileBody {
            file: Arc::new(file),
            offset: start,
            unread: len,
            left: len,
            reading: None,
        };
        body.read_ahead();
        body
    }

    /// Starts reading the next piece, if any is left.
    fn read_ahead(&mut self) {
        if self.unread == 0 {
            return;
        }
        let n = self.unread.min(READ_CHUNK as u64);
        let (file, offset) = (self.file.clone(), self.offset);
        self.offset += n;
        self.unread -= n;
        self.reading = Some(tokio::task::spawn_blocking(move || {
            let mut piece = vec![0; n as usize];
            file.read_exact_at(&mut piece, offset)?;
            Ok(Bytes::from(piece))
        }));
    }
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let read = ready!(Pin::new(reading).poll(cx));
        self.reading = None;
        let piece = match read {
            Ok(Ok(piece)) => piece,
            Ok(Err(e)) => return Poll::Ready(Some(Err(e))),
            Err(e) => return Poll::Ready(Some(Err(io::Error::other(e)))),
        };
        self.left -= piece.len() as u64;
        self.read_ahead();
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
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

fn plain<O: FeedBody>(status: StatusCode, body: &'static str) -> Response<O> {
    let mut resp = Response::new(O::bytes(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use hyper::body::Body as _;

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

    async fn body<O>(resp: Response<O>) -> Vec<u8>
    where
        O: hyper::body::Body<Data = Bytes>,
        O::Error: std::fmt::Debug,
    {
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    /// The feed as a server with `Full` bodies answers.
    async fn serve(
        feed: Option<&UpdateFeed>,
        req: &Request<()>,
        metrics: &Metrics,
    ) -> Response<Full<Bytes>> {
        super::serve(feed, req, metrics).await
    }

    #[tokio::test]
    async fn serves_the_manifest_and_the_bundle_it_names_with_ranges() {
        serves_with_ranges::<Full<Bytes>>().await;
    }

    #[tokio::test]
    async fn streams_the_manifest_and_the_bundle_it_names_with_ranges() {
        serves_with_ranges::<BoxBody<Bytes, io::Error>>().await;
        serves_with_ranges::<UnsyncBoxBody<Bytes, io::Error>>().await;
    }

    async fn serves_with_ranges<O>()
    where
        O: FeedBody + hyper::body::Body<Data = Bytes>,
        O::Error: std::fmt::Debug,
    {
        let (_dir, feed) = feed();
        let m = Metrics::default();
        let resp: Response<O> = super::serve(
            Some(&feed),
            &get("/updates/portal-pi4/manifest.json", None),
            &m,
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(body(resp).await.starts_with(b"{\"version\""));
        let whole = "/updates/portal-pi4/portal-1.1.0.raucb";
        let resp: Response<O> = super::serve(Some(&feed), &get(whole, None), &m).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body(resp).await, b"0123456789");
        let resp: Response<O> = super::serve(Some(&feed), &get(whole, Some("bytes=4-")), &m).await;
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(resp.headers()[header::CONTENT_RANGE], "bytes 4-9/10");
        assert_eq!(resp.body().size_hint().exact(), Some(6));
        assert_eq!(body(resp).await, b"456789");
        let resp: Response<O> = super::serve(Some(&feed), &get(whole, Some("bytes=10-")), &m).await;
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

    #[tokio::test]
    async fn a_large_bundle_goes_out_in_pieces_read_as_it_is_sent() {
        let (dir, feed) = feed();
        let m = Metrics::default();
        let len = 2 * READ_CHUNK + 1000;
        let bundle: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.0.join("portal-pi4/portal-1.1.0.raucb"), &bundle).unwrap();
        let whole = "/updates/portal-pi4/portal-1.1.0.raucb";
        for (range, from) in [
            (None, 0),
            (Some("bytes=1000-"), 1000),
            (Some("bytes=-10"), len - 10),
        ] {
            let resp: Response<BoxBody<Bytes, io::Error>> =
                super::serve(Some(&feed), &get(whole, range), &m).await;
            assert_eq!(resp.body().size_hint().exact(), Some((len - from) as u64));
            let mut body = resp.into_body();
            let (mut got, mut pieces) = (Vec::new(), 0);
            while let Some(frame) = body.frame().await {
                let piece = frame.unwrap().into_data().unwrap();
                assert!(piece.len() <= READ_CHUNK);
                got.extend_from_slice(&piece);
                pieces += 1;
            }
            assert_eq!(got, bundle[from..], "{range:?}");
            assert_eq!(pieces, (len - from).div_ceil(READ_CHUNK), "{range:?}");
        }
        assert_eq!(
            m.update_bytes.load(Relaxed),
            (3 * len - 1000 - (len - 10)) as u64
        );
    }

    #[tokio::test]
    async fn a_bundle_cut_short_while_it_is_sent_ends_in_an_error() {
        let (dir, feed) = feed();
        let m = Metrics::default();
        let path = dir.0.join("portal-pi4/portal-1.1.0.raucb");
        std::fs::write(&path, vec![7; 3 * READ_CHUNK]).unwrap();
        let resp: Response<BoxBody<Bytes, io::Error>> = super::serve(
            Some(&feed),
            &get("/updates/portal-pi4/portal-1.1.0.raucb", None),
            &m,
        )
        .await;
        let mut body = resp.into_body();
        assert!(body.frame().await.unwrap().is_ok());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(READ_CHUNK as u64)
            .unwrap();
        let mut failed = false;
        while let Some(frame) = body.frame().await {
            failed |= frame.is_err();
        }
        assert!(failed, "a shortened file is not sent as if whole");
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

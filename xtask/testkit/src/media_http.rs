//! Video for watch-together tests: a clip made with GStreamer and a file server that
//! answers byte ranges, as players need (an mp4's index is read from the end of the file,
//! and seeking fetches from a byte offset).
//!
//! The clip matches the web e2e test's (`signaling/web/tests/e2e/watch.test.mjs`,
//! `makeVideo`): a moving ball at 640x360, 30 fps, a keyframe every second, ticking
//! stereo audio at 48 kHz; H.264 + AAC in mp4 where an AAC encoder exists, else VP8 +
//! Opus in WebM.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Makes a `secs`-second test clip in `dir` with `gst-launch-1.0` (gstreamer1.0-tools)
/// and returns its path (`clip.mp4` or `clip.webm`). Panics when GStreamer fails.
pub fn make_clip(dir: &Path, secs: u32) -> PathBuf {
    let frames = secs * 30;
    let audio_buffers = (secs * 48_000).div_ceil(1024);
    let video = format!(
        "videotestsrc num-buffers={frames} pattern=ball \
         ! video/x-raw,width=640,height=360,framerate=30/1 !"
    );
    let audio = format!(
        "audiotestsrc num-buffers={audio_buffers} samplesperbuffer=1024 wave=ticks \
         ! audio/x-raw,rate=48000,channels=2 ! audioconvert !"
    );
    let aac = ["avenc_aac", "voaacenc"]
        .into_iter()
        .find(|e| has_element(e));
    let (file, description) = if let Some(aac) = aac {
        let file = dir.join("clip.mp4");
        let description = format!(
            "{video} x264enc speed-preset=ultrafast key-int-max=30 \
             ! video/x-h264,profile=constrained-baseline ! h264parse ! queue \
             ! mp4mux name=mux faststart=true ! filesink location={path} \
             {audio} {aac} ! aacparse ! queue ! mux.",
            path = file.display(),
        );
        (file, description)
    } else {
        let file = dir.join("clip.webm");
        let description = format!(
            "{video} vp8enc deadline=1 keyframe-max-dist=30 ! queue \
             ! webmmux name=mux ! filesink location={path} \
             {audio} audioresample ! opusenc ! queue ! mux.",
            path = file.display(),
        );
        (file, description)
    };
    let output = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(description.split_whitespace())
        .output()
        .unwrap_or_else(|e| panic!("cannot run gst-launch-1.0 (gstreamer1.0-tools): {e}"));
    assert!(
        output.status.success() && file.metadata().is_ok_and(|m| m.len() > 0),
        "gst-launch-1.0 {description}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    file
}

fn has_element(name: &str) -> bool {
    Command::new("gst-inspect-1.0")
        .args(["--exists", name])
        .status()
        .is_ok_and(|s| s.success())
}

/// What a [`RangeServer`] has answered.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    partial: AtomicU64,
    full: AtomicU64,
    refused: AtomicU64,
}

/// One file over HTTP/1.1 on `127.0.0.1`, with `Range: bytes=a-b` (206 and
/// `Content-Range`; 416 for a range outside the file), `HEAD`, `Accept-Ranges` and
/// keep-alive; any other path is a 404. Runs on a thread of its own (tests need no
/// runtime) and stops when dropped.
#[derive(Debug)]
pub struct RangeServer {
    /// `http://127.0.0.1:PORT/NAME`, the file's URL.
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RangeServer {
    /// Serves `file` at `/` + its file name. Panics if it cannot listen.
    pub fn serve(file: impl Into<PathBuf>) -> RangeServer {
        let file: PathBuf = file.into();
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file")
            .to_owned();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on 127.0.0.1");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let base = format!(
            "http://{}",
            std_listener.local_addr().expect("local address")
        );
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = oneshot::channel();
        let served = Served {
            path: format!("/{name}"),
            file,
            content_type: content_type(&name),
            counters: Arc::clone(&counters),
        };
        let thread = std::thread::Builder::new()
            .name("range-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                    let served = Arc::new(served);
                    let accept = async {
                        loop {
                            let Ok((tcp, _)) = listener.accept().await else {
                                continue;
                            };
                            let served = Arc::clone(&served);
                            tokio::spawn(async move {
                                // A client that hangs up mid-body (a seek) is normal.
                                let _ = served.connection(tcp).await;
                            });
                        }
                    };
                    tokio::select! {
                        () = accept => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("range server thread");
        RangeServer {
            url: format!("{base}/{name}"),
            base,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Requests answered (every method and status).
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// 206 answers.
    pub fn partial(&self) -> u64 {
        self.counters.partial.load(Ordering::Relaxed)
    }

    /// 200 answers for the whole file.
    pub fn full(&self) -> u64 {
        self.counters.full.load(Ordering::Relaxed)
    }

    /// 416 answers.
    pub fn refused(&self) -> u64 {
        self.counters.refused.load(Ordering::Relaxed)
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Served {
    path: String,
    file: PathBuf,
    content_type: &'static str,
    counters: Arc<Counters>,
}

/// One request's line and the headers the server looks at.
struct Request {
    method: String,
    path: String,
    range: Option<String>,
    close: bool,
}

impl Served {
    async fn connection(&self, tcp: TcpStream) -> io::Result<()> {
        let (read, mut write) = tcp.into_split();
        let mut read = BufReader::new(read);
        while let Some(request) = read_request(&mut read).await? {
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            self.answer(&request, &mut write).await?;
            if request.close {
                break;
            }
        }
        write.shutdown().await
    }

    async fn answer(
        &self,
        request: &Request,
        out: &mut (impl AsyncWriteExt + Unpin),
    ) -> io::Result<()> {
        let path = request.path.split('?').next().unwrap_or("");
        if path != self.path || !matches!(request.method.as_str(), "GET" | "HEAD") {
            let status = if path == self.path {
                "405 Method Not Allowed"
            } else {
                "404 Not Found"
            };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            return out.write_all(head.as_bytes()).await;
        }
        let size = tokio::fs::metadata(&self.file).await?.len();
        let (status, start, end) = match request.range.as_deref().map(|r| parse_range(r, size)) {
            None => ("200 OK", 0, size.saturating_sub(1)),
            Some(Some((start, end))) => ("206 Partial Content", start, end),
            Some(None) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                let head = format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\n\
                     Content-Length: 0\r\n\r\n"
                );
                return out.write_all(head.as_bytes()).await;
            }
        };
        let length = if size == 0 { 0 } else { end - start + 1 };
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {}\r\nAccept-Ranges: bytes\r\n\
             Cache-Control: no-cache\r\nContent-Length: {length}\r\n",
            self.content_type
        );
        if status.starts_with("206") {
            self.counters.partial.fetch_add(1, Ordering::Relaxed);
            let _ = write!(head, "Content-Range: bytes {start}-{end}/{size}\r\n");
        } else {
            self.counters.full.fetch_add(1, Ordering::Relaxed);
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes()).await?;
        if request.method == "HEAD" || length == 0 {
            return Ok(());
        }
        let mut file = tokio::fs::File::open(&self.file).await?;
        file.seek(io::SeekFrom::Start(start)).await?;
        tokio::io::copy(&mut file.take(length), out).await?;
        out.flush().await
    }
}

/// The next request on a connection, or `None` when the client closed it.
async fn read_request(read: &mut (impl AsyncBufReadExt + Unpin)) -> io::Result<Option<Request>> {
    let mut line = String::new();
    // Blank lines between requests are allowed (RFC 9112 §2.2).
    while line.trim().is_empty() {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let http10 = parts.next() == Some("HTTP/1.0");
    let mut request = Request {
        method,
        path,
        range: None,
        close: http10,
    };
    loop {
        let mut header = String::new();
        if read.read_line(&mut header).await? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            return Ok(Some(request));
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("range") {
            request.range = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("connection") {
            request.close = value.eq_ignore_ascii_case("close");
        }
    }
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` as an inclusive range inside a file of `size`
/// bytes; `None` for anything unsatisfiable (answered 416). Multiple ranges are not served.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        (true, true) => return None,
        (true, false) => {
            let suffix: u64 = last.parse().ok()?;
            if suffix == 0 {
                return None;
            }
            (size.saturating_sub(suffix), size.checked_sub(1)?)
        }
        (false, _) => {
            let start: u64 = first.parse().ok()?;
            let end = if last.is_empty() {
                size.checked_sub(1)?
            } else {
                last.parse::<u64>().ok()?.min(size.checked_sub(1)?)
            };
            (start, end)
        }
    };
    (start <= end && start < size).then_some((start, end))
}

fn content_type(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp4" | "m4v") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::TempDir;

    /// One raw request over a fresh connection; the whole answer.
    fn get(server: &RangeServer, request: &str) -> String {
        let addr = server.base.trim_start_matches("http://");
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn ranges_heads_and_refusals() {
        let dir = TempDir::new("range");
        let file = dir.join("data.bin");
        std::fs::write(&file, b"0123456789").unwrap();
        let server = RangeServer::serve(&file);
        let r = |range: &str| {
            get(
                &server,
                &format!("GET /data.bin HTTP/1.1\r\nRange: {range}\r\nConnection: close\r\n\r\n"),
            )
        };
        let a = r("bytes=2-4");
        assert!(a.starts_with("HTTP/1.1 206"), "{a}");
        assert!(
            a.contains("Content-Range: bytes 2-4/10") && a.ends_with("\r\n\r\n234"),
            "{a}"
        );
        assert!(r("bytes=7-").ends_with("789"));
        assert!(r("bytes=-3").ends_with("789"));
        assert!(r("bytes=8-100").ends_with("89"));
        for bad in ["bytes=10-", "bytes=5-2", "bytes=-0", "items=1-2"] {
            let a = r(bad);
            assert!(
                a.starts_with("HTTP/1.1 416") && a.contains("bytes */10"),
                "{bad}: {a}"
            );
        }
        let head = get(
            &server,
            "HEAD /data.bin HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(
            head.contains("Accept-Ranges: bytes") && head.ends_with("Content-Length: 10\r\n\r\n"),
            "{head}"
        );
        let missing = get(&server, "GET /other HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        // Two requests on one kept-alive connection.
        let both = get(
            &server,
            "GET /data.bin HTTP/1.1\r\nRange: bytes=0-0\r\n\r\n\
             GET /data.bin HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(
            both.matches("HTTP/1.1").count() == 2 && both.ends_with("0123456789"),
            "{both}"
        );
        assert_eq!(
            (server.partial(), server.full(), server.refused()),
            (5, 2, 4)
        );
        assert_eq!(server.requests(), 12);
    }
}

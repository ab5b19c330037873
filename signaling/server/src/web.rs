//! The browser client's files: built into the binary, or read from `--web-dir`.
//! `/`, `/r/{room}` and the pairing links `/p/{code}` (and `/p/`, where the Pair page
//! goes once a code is used) get `index.html` (the client reads the room from the path); other
//! paths are files. Single byte ranges are honoured so media files can be seeked.

use std::path::{Component, Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

const FALLBACK_INDEX: &str = "<!doctype html><meta charset=utf-8><title>Portal</title>\
<h1>Portal</h1><p>The browser client is not built into this server. \
Run <code>cargo xtask setup</code> and build again, or start the server with \
<code>--web-dir signaling/web/dist</code>.</p>";

/// The Content-Security-Policy of every answer: the client's own scripts, styles and
/// workers (Monaco's editor worker is a same-origin file); WebSockets to this server;
/// the YouTube IFrame API (`https://www.youtube.com/iframe_api` and the player script
/// it loads from the same host) and its player frames; direct `http(s)` videos for
/// watch-together and `blob:` recordings. Monaco writes `<style>` elements, hence inline
/// styles (never inline scripts). Nobody may frame the client (clickjacking).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
script-src 'self' https://www.youtube.com; \
worker-src 'self'; \
style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob: https://i.ytimg.com; \
font-src 'self' data:; \
media-src 'self' blob: https: http:; \
connect-src 'self'; \
frame-src https://www.youtube.com https://www.youtube-nocookie.com; \
object-src 'none'; \
base-uri 'none'; \
form-action 'none'; \
frame-ancestors 'none'";

/// Where files come from.
#[derive(Debug, Clone)]
pub(crate) enum WebRoot {
    Embedded,
    Dir(PathBuf),
}

/// A file to send.
#[derive(Debug)]
pub(crate) struct Asset {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Hashed build outputs never change under one name.
    pub immutable: bool,
}

impl WebRoot {
    pub(crate) fn get(&self, path: &str) -> Option<Asset> {
        let rel = route(path)?;
        let body = match self {
            WebRoot::Embedded => embedded::ASSETS
                .iter()
                .find(|(name, _)| *name == rel)
                .map(|(_, bytes)| bytes.to_vec())
                .or_else(|| (rel == "index.html").then(|| FALLBACK_INDEX.as_bytes().to_vec())),
            WebRoot::Dir(dir) => safe_join(dir, &rel).and_then(|p| std::fs::read(p).ok()),
        }?;
        Some(Asset {
            body,
            content_type: content_type(&rel),
            immutable: rel.starts_with("assets/"),
        })
    }
}

/// Maps a request path to a file name relative to the web root.
fn route(path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    if matches!(path, "/" | "/index.html" | "/p") {
        return Some("index.html".into());
    }
    if let Some(code) = path.strip_prefix("/p/") {
        return (!code.contains('/')).then(|| "index.html".into());
    }
    if let Some(room) = path.strip_prefix("/r/") {
        return (!room.is_empty() && !room.contains('/')).then(|| "index.html".into());
    }
    let rel = path.strip_prefix('/')?;
    (!rel.is_empty()).then(|| rel.to_owned())
}

/// Joins `rel` under `dir`, refusing anything that could climb out.
fn safe_join(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.components().all(|c| matches!(c, Component::Normal(_))) {
        Some(dir.join(rel))
    } else {
        None
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "wasm" => "application/wasm",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Parses a single `Range: bytes=a-b` against a body of `len` bytes.
/// `Ok(None)`: no usable range, send everything; `Err(())`: unsatisfiable (416).
pub(crate) fn parse_range(header: Option<&str>, len: usize) -> Result<Option<(usize, usize)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: answer with the whole body
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: usize = suffix.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len.checked_sub(1).ok_or(())?)
        }
        (s, "") => (s.parse().map_err(|_| ())?, len.checked_sub(1).ok_or(())?),
        (s, e) => {
            let e: usize = e.parse().map_err(|_| ())?;
            (s.parse().map_err(|_| ())?, e.min(len.saturating_sub(1)))
        }
    };
    if start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/").as_deref(), Some("index.html"));
        assert_eq!(route("/r/room-1?name=x").as_deref(), Some("index.html"));
        assert_eq!(route("/r/").as_deref(), None);
        assert_eq!(route("/p/K7P2XM").as_deref(), Some("index.html"));
        assert_eq!(route("/p/").as_deref(), Some("index.html"));
        assert_eq!(route("/p/a/b").as_deref(), None);
        assert_eq!(
            route("/assets/app-1234.js").as_deref(),
            Some("assets/app-1234.js")
        );
        assert!(WebRoot::Embedded.get("/").is_some());
    }

    #[test]
    fn no_climbing_out_of_the_web_dir() {
        let dir = Path::new("/srv/web");
        assert!(safe_join(dir, "../etc/passwd").is_none());
        assert!(safe_join(dir, "/etc/passwd").is_none());
        assert!(safe_join(dir, "assets/../../x").is_none());
        assert_eq!(
            safe_join(dir, "a/b.js"),
            Some(PathBuf::from("/srv/web/a/b.js"))
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some("bytes=-4"), 10), Ok(Some((6, 9))));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Ok(Some((8, 9))));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=x-1"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Ok(None));
    }
}

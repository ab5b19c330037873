use std::fmt::{Display, Write as _};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take, connection to last byte.
const LIMIT: Duration = Duration::from_secs(120);

/// What [`http`] got back.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request to `addr` (`HOST:PORT`) over a fresh TCP connection with
/// `Connection: close`, read to the end. A `body` adds its `Content-Length`. Panics on
/// any I/O error or after 120 s.
pub async fn http(
    addr: impl Display,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpReply {
    let addr = addr.to_string();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(request, "Content-Length: {}\r\n", body.len());
    }
    request.push_str("\r\n");
    let exchange = async {
        let mut tcp = TcpStream::connect(&addr).await?;
        tcp.write_all(request.as_bytes()).await?;
        if let Some(body) = body {
            tcp.write_all(body).await?;
        }
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await?;
        std::io::Result::Ok(raw)
    };
    let raw = tokio::time::timeout(LIMIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} http://{addr}{path}: no answer within {LIMIT:?}"))
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} http://{addr}{path}: no end of headers"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} http://{addr}{path}: no status in {head:?}"));
    HttpReply {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

//! Starts the real `portal-server` binary for integration tests and speaks to it over
//! real WebSockets.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portal_proto::{ClientMessage, PROTOCOL_VERSION, PeerId, Role, ServerMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A running `portal-server`, killed on drop.
pub struct ServerProc {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub args: Vec<String>,
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portal-test-{tag}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl ServerProc {
    /// Starts the server on a free port with a fresh data dir and `extra` flags.
    pub fn start(extra: &[&str]) -> ServerProc {
        Self::start_in(&temp_dir("data"), extra)
    }

    /// Starts the server on `data_dir` (kept across restarts).
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> ServerProc {
        let args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        Self::spawn(data_dir, "127.0.0.1:0", &args)
    }

    fn spawn(data_dir: &Path, bind: &str, args: &[String]) -> ServerProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portal-server"))
            .arg("--bind")
            .arg(bind)
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("PORTAL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start portal-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read first line");
        let addr = line
            .trim()
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from portal-server: {line:?}"));
        ServerProc {
            child,
            addr,
            data_dir: data_dir.to_owned(),
            args: args.to_vec(),
        }
    }

    /// Stops with SIGTERM (graceful) and restarts on the same port and data dir.
    pub fn restart(&mut self) {
        self.terminate();
        let bind = self.addr.to_string();
        let args = self.args.clone();
        let data_dir = self.data_dir.clone();
        // The port was just released; retry briefly in case the kernel holds it.
        for _ in 0..50 {
            let mut next = Self::try_spawn(&data_dir, &bind, &args);
            if let Some(next) = next.take() {
                *self = next;
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart portal-server on {bind}");
    }

    fn try_spawn(data_dir: &Path, bind: &str, args: &[String]) -> Option<ServerProc> {
        std::panic::catch_unwind(|| Self::spawn(data_dir, bind, args)).ok()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait for portal-server")
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A signaling client speaking JSON over a real WebSocket.
pub struct Client {
    pub ws: Ws,
    pub id: PeerId,
}

pub async fn connect(server: &ServerProc) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("websocket connect");
    ws
}

impl Client {
    /// Connects and says hello.
    pub async fn hello(server: &ServerProc, name: &str) -> Client {
        Self::hello_as(server, name, Role::Browser).await
    }

    pub async fn hello_as(server: &ServerProc, name: &str, role: Role) -> Client {
        let mut ws = connect(server).await;
        send(
            &mut ws,
            &ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                name: name.into(),
                role,
                resume: None,
            },
        )
        .await;
        match recv(&mut ws).await {
            ServerMessage::Welcome { peer_id, .. } => Client { ws, id: peer_id },
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        send(&mut self.ws, msg).await;
    }

    pub async fn recv(&mut self) -> ServerMessage {
        recv(&mut self.ws).await
    }

    /// Joins `room` (with an optional password) and returns the `joined` message.
    pub async fn join(&mut self, room: &str, password: Option<&str>) -> ServerMessage {
        self.send(&ClientMessage::Join {
            room: room.into(),
            password: password.map(Into::into),
        })
        .await;
        self.recv().await
    }

    /// Asserts nothing arrives within `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        match tokio::time::timeout(Duration::from_millis(ms), next_text(&mut self.ws)).await {
            Err(_) => {}
            Ok(Some(text)) => panic!("expected silence, got {text}"),
            Ok(None) => panic!("expected silence, the connection closed"),
        }
    }
}

pub async fn send(ws: &mut Ws, msg: &ClientMessage) {
    ws.send(Message::Text(msg.to_json().into()))
        .await
        .expect("send");
}

pub async fn send_raw(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_owned().into()))
        .await
        .expect("send");
}

/// The next text frame, or `None` when the connection closed.
pub async fn next_text(ws: &mut Ws) -> Option<String> {
    while let Some(frame) = ws.next().await {
        match frame {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

/// The next server message within 5 s.
pub async fn recv(ws: &mut Ws) -> ServerMessage {
    let text = tokio::time::timeout(Duration::from_secs(5), next_text(ws))
        .await
        .expect("a message within 5 s")
        .expect("connection open");
    ServerMessage::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A plain HTTP GET over a raw TCP socket (status, headers, body).
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head, raw[split + 4..].to_vec())
}

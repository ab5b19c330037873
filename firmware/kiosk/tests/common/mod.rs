//! Shared by the kiosk's end-to-end tests: the real `portal-server`, the real
//! `portal-kiosk`, the Chromium driver (`browser.mjs`), a tiny HTTP client for the status
//! endpoint, temp dirs and waiting. Every child process is killed when its handle drops,
//! so a failing test leaves nothing running.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long any one condition may take on a loaded machine.
pub const LONG: Duration = Duration::from_secs(150);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `portal-server` from `PORTAL_SERVER_BIN`, else beside the kiosk binary.
pub fn server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PORTAL_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let beside = Path::new(env!("CARGO_BIN_EXE_portal-kiosk")).with_file_name("portal-server");
    assert!(
        beside.is_file(),
        "portal-server not found at {}: run `cargo build -p portal-signaling --bin portal-server` \
         or set PORTAL_SERVER_BIN",
        beside.display()
    );
    beside
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "portal-kiosk-e2e-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn log_filter() -> String {
    std::env::var("PORTAL_LOG").unwrap_or_else(|_| {
        "warn,rtc=error,rtc_ice=error,rtc_sctp=error,rtc_dtls=error,webrtc=error".into()
    })
}

/// SIGTERM, then waits (at most [`LONG`]) for the exit.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(LONG, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// A running `portal-server`.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Server {
    /// Starts the server on `bind` with `data` as its data dir, serving the built client.
    pub async fn start(bind: &str, data: &Path) -> Server {
        let dist = workspace_root().join("signaling/web/dist");
        assert!(
            dist.join("index.html").is_file(),
            "the browser client is not built: run `npm ci && npm run build` in signaling/web"
        );
        let mut child = Command::new(server_bin())
            .args(["--bind", bind, "--data-dir"])
            .arg(data)
            .arg("--web-dir")
            .arg(&dist)
            .env("PORTAL_LOG", log_filter())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("portal-server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(LONG, lines.next_line())
            .await
            .expect("portal-server prints its address")
            .expect("read stdout")
            .expect("a line");
        let base = line.trim().trim_start_matches("listening on ").to_owned();
        Server { child, base }
    }

    pub fn ws_url(&self) -> String {
        self.base.replacen("http", "ws", 1)
    }

    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the base URL")
    }

    pub async fn stop(mut self) {
        terminate(&mut self.child).await;
    }
}

/// A running `portal-kiosk`.
pub struct Kiosk {
    pub child: Child,
    /// `127.0.0.1:PORT` of the status endpoint.
    pub status: String,
}

impl Kiosk {
    /// Starts the kiosk in `room` with extra flags (`--file-policy`, `--name`, ...);
    /// its name is "Room 4.01" unless `extra` names it.
    pub async fn start(server: &Server, room: &str, files: &Path, extra: &[&str]) -> Kiosk {
        Kiosk::spawn(server, room, files, extra, None).await
    }

    /// Starts the kiosk with its window on X display `display` (it joins `room` at once).
    pub async fn start_windowed(server: &Server, room: &str, files: &Path, display: &str) -> Kiosk {
        Kiosk::spawn(server, room, files, &[], Some(display)).await
    }

    async fn spawn(
        server: &Server,
        room: &str,
        files: &Path,
        extra: &[&str],
        display: Option<&str>,
    ) -> Kiosk {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portal-kiosk"));
        if !extra.contains(&"--name") {
            cmd.args(["--name", "Room 4.01"]);
        }
        match display {
            Some(display) => {
                cmd.env("DISPLAY", display).env_remove("WAYLAND_DISPLAY");
            }
            None => {
                cmd.arg("--headless");
            }
        }
        let mut child = cmd
            .args(["--server", &server.ws_url(), "--room", room])
            .args(["--status-addr", "127.0.0.1:0"])
            .arg("--files-dir")
            .arg(files)
            .arg("--snapshot-dir")
            .arg(files.with_extension("snapshots"))
            .args(if extra.contains(&"--config") {
                &[][..]
            } else {
                &["--config", "/dev/null"][..]
            })
            .args(extra)
            .env("PORTAL_LOG", log_filter())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("portal-kiosk starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(LONG, lines.next_line())
            .await
            .expect("portal-kiosk prints its status address")
            .expect("read stdout")
            .expect("a line");
        let status = line
            .trim()
            .trim_start_matches("status on http://")
            .to_owned();
        Kiosk { child, status }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        http(&self.status, "GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        http(&self.status, "POST", path, Some(body)).await
    }

    pub async fn status(&self) -> Value {
        let (code, body) = self.get("/status").await;
        assert_eq!(code, 200, "GET /status: {body}");
        body
    }

    /// Polls `/status` until `cond` holds; panics with the last status after [`LONG`].
    pub async fn wait(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + LONG;
        loop {
            let status = self.status().await;
            if cond(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last status: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Polls `/status` for at most `limit`; the first status for which `cond` holds.
    pub async fn poll(&self, limit: Duration, cond: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.status().await;
            if cond(&status) {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// SIGTERM (the kiosk leaves the room), then waits for the exit.
    /// Freezes (`true`) or thaws the process, as a hung board or a cut network would.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.id().expect("kiosk running").to_string();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let ok = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {signal} {pid}");
    }

    pub async fn stop(mut self) -> std::process::ExitStatus {
        terminate(&mut self.child).await;
        self.child.wait().await.expect("kiosk exit status")
    }
}

/// One HTTP/1.1 request with `Connection: close`; the answer's status and JSON body.
pub async fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("status endpoint reachable");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut answer = Vec::new();
    tokio::time::timeout(LONG, stream.read_to_end(&mut answer))
        .await
        .expect("status endpoint answers")
        .expect("answer read");
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let value = serde_json::from_str(body).unwrap_or_else(|_| json!({ "raw": body }));
    (code, value)
}

/// The Chromium driver (`browser.mjs`): one Chromium, any number of tabs.
pub struct Browser {
    pub child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Browser {
    pub fn start(server: &Server, room: &str, query: &str) -> Browser {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg(&server.base)
            .arg(room)
            .arg(query)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Browser {
            child,
            stdin,
            lines,
        }
    }

    /// Sends one command; panics unless the driver answers `ok`.
    pub async fn call(&mut self, cmd: Value) -> Value {
        let value = self.try_call(&cmd).await;
        assert_eq!(
            value["ok"],
            json!(true),
            "driver command {cmd} failed: {value}"
        );
        value
    }

    pub async fn try_call(&mut self, cmd: &Value) -> Value {
        let line = format!("{cmd}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to driver");
        self.stdin.flush().await.expect("flush driver");
        let answer = tokio::time::timeout(LONG + Duration::from_secs(30), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("driver did not answer {cmd}"))
            .expect("read driver")
            .unwrap_or_else(|| panic!("driver exited during {cmd}"));
        serde_json::from_str(&answer).expect("driver answers JSON")
    }

    pub async fn quit(mut self) {
        let _ = self.try_call(&json!({"cmd": "quit"})).await;
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The one peer of the kiosk's status that has this name.
pub fn peer<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["peers"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == json!(name))
}

pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

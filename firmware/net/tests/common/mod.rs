//! Shared by the integration tests: the real `portal-server`, temp dirs, waiting.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long any one condition may take on a loaded machine.
pub const LONG: Duration = Duration::from_secs(90);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `portal-server` from `PORTAL_SERVER_BIN`, else beside this test binary
/// (`target/debug/deps/<test>` → `target/debug/portal-server`).
pub fn server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PORTAL_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let candidates = [
        exe.parent()
            .and_then(Path::parent)
            .map(|d| d.join("portal-server")),
        std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("debug/portal-server")),
        Some(workspace_root().join("target/debug/portal-server")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .expect(
            "portal-server not found: run `cargo build -p portal-signaling --bin portal-server` \
         or set PORTAL_SERVER_BIN",
        )
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "portal-net-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `portal-server`.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub data: PathBuf,
}

impl Server {
    /// Starts the server on `bind` (e.g. `127.0.0.1:0`) with `data` as its data dir and
    /// `extra` flags; serves the freshly built browser client when it exists.
    pub async fn start(bind: &str, data: &Path, extra: &[&str]) -> Server {
        let dist = workspace_root().join("signaling/web/dist");
        let mut cmd = Command::new(server_bin());
        cmd.args(["--bind", bind, "--data-dir"]).arg(data);
        if dist.join("index.html").is_file() {
            cmd.arg("--web-dir").arg(&dist);
        }
        let mut child = cmd
            .args(extra)
            .env(
                "PORTAL_LOG",
                std::env::var("PORTAL_LOG").unwrap_or_else(|_| "warn".into()),
            )
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
        Server {
            child,
            base,
            data: data.to_owned(),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http", "ws", 1))
    }

    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the base URL")
    }

    /// SIGTERM, then waits for the exit.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(LONG, self.child.wait()).await;
    }
}

/// Polls `cond` every 50 ms until it holds; panics after [`LONG`].
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTAL_LOG")
                .unwrap_or_else(|_| "portal_net=info".into()),
        )
        .with_test_writer()
        .try_init();
}

//! Shared by the kiosk's end-to-end tests: the real `portal-server` serving the built
//! browser client, the real `portal-kiosk` and its status endpoint, and the Chromium
//! driver (`browser.mjs`). Processes, temp dirs and the driver's protocol come from
//! `portal_testkit`; every child process is killed when its handle drops, so a failing
//! test leaves nothing running.

#![allow(dead_code, unreachable_pub)]

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use portal_testkit::{NodeDriver, Process, ServerProc, TempDir};
use serde_json::{Value, json};

/// How long any one condition may take on a loaded machine.
pub const LONG: Duration = Duration::from_secs(150);

fn log_filter() -> String {
    std::env::var("PORTAL_LOG").unwrap_or_else(|_| {
        "warn,rtc=error,rtc_ice=error,rtc_sctp=error,rtc_dtls=error,webrtc=error".into()
    })
}

/// A running `portal-server` serving the browser client as built in signaling/web/dist.
pub struct Server(ServerProc);

impl Server {
    /// Starts the server on `bind` with `data` as its data dir.
    pub async fn start(bind: &str, data: &Path) -> Server {
        let server = ServerProc::builder()
            .bind(bind)
            .data_dir(data)
            .web_dist()
            .start_async()
            .await;
        Server(server)
    }

    /// Starts the server with extra flags (`--max-peers 1`, ...).
    pub async fn start_with(bind: &str, data: &Path, args: &[&str]) -> Server {
        let server = ServerProc::builder()
            .bind(bind)
            .data_dir(data)
            .web_dist()
            .args(args)
            .start_async()
            .await;
        Server(server)
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        self.0.http_url("")
    }

    /// `ws://127.0.0.1:PORT`, as the kiosk's `--server` takes it.
    pub fn ws_url(&self) -> String {
        self.0.ws_base()
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// SIGTERM, then waits (at most 30 s) for the exit.
    pub async fn stop(mut self) {
        self.0.terminate_async().await;
    }
}

/// A running `portal-kiosk`.
pub struct Kiosk {
    process: Process,
    /// `127.0.0.1:PORT` of the status endpoint.
    pub status: String,
    /// The endpoint's token, read from the file the kiosk wrote it to.
    pub token: String,
    /// Its runtime directory (`XDG_RUNTIME_DIR`): the token file, snapshots.
    _runtime: TempDir,
}

impl Kiosk {
    /// Starts the kiosk in `room` with extra flags (`--file-policy`, `--name`, ...);
    /// its name is "Room 4.01" unless `extra` names it.
    pub async fn start(server: &Server, room: &str, files: &Path, extra: &[&str]) -> Kiosk {
        Kiosk::spawn(server, room, files, extra, None, &[]).await
    }

    /// Starts the kiosk with its window on X display `display` (it joins `room` at once).
    pub async fn start_windowed(server: &Server, room: &str, files: &Path, display: &str) -> Kiosk {
        Kiosk::spawn(server, room, files, &[], Some(display), &[]).await
    }

    /// [`Kiosk::start`] or [`Kiosk::start_windowed`] (with a `display`) with more
    /// environment variables (`NOTIFY_SOCKET`, ...).
    pub async fn start_with_env(
        server: &Server,
        room: &str,
        files: &Path,
        extra: &[&str],
        display: Option<&str>,
        env: &[(&str, &str)],
    ) -> Kiosk {
        Kiosk::spawn(server, room, files, extra, display, env).await
    }

    async fn spawn(
        server: &Server,
        room: &str,
        files: &Path,
        extra: &[&str],
        display: Option<&str>,
        env: &[(&str, &str)],
    ) -> Kiosk {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portal-kiosk"));
        cmd.envs(env.iter().copied());
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
        cmd.args(["--server", &server.ws_url(), "--room", room])
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
            .args(extra);
        Kiosk::launch(cmd).await
    }

    /// Starts `cmd` (with the tests' log filter) and waits for its status address.
    async fn launch(mut cmd: Command) -> Kiosk {
        let runtime = TempDir::new("kiosk-runtime");
        cmd.env("PORTAL_LOG", log_filter())
            .env("XDG_RUNTIME_DIR", runtime.path());
        let (process, line) = Process::start_announced_async("portal-kiosk", &mut cmd, LONG)
            .await
            .unwrap_or_else(|e| panic!("portal-kiosk did not print its status address: {e}"));
        let status = line.trim_start_matches("status on http://").to_owned();
        // The token is written before the address is printed.
        let token_file = runtime.path().join("portal-kiosk/status-token");
        let token = std::fs::read_to_string(&token_file)
            .unwrap_or_else(|e| panic!("the kiosk's token at {}: {e}", token_file.display()));
        Kiosk {
            process,
            status,
            token,
            _runtime: runtime,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        http_as(&self.status, Some(&self.token), "GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        http_as(&self.status, Some(&self.token), "POST", path, Some(body)).await
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

    /// A windowed kiosk on X display `display` with nothing set but the config file it
    /// reads (`PORTAL_KIOSK_CONFIG`, which may not exist) and a free status port.
    pub async fn start_unconfigured(display: &str, config: &Path) -> Kiosk {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portal-kiosk"));
        cmd.env("DISPLAY", display)
            .env_remove("WAYLAND_DISPLAY")
            .env("PORTAL_KIOSK_CONFIG", config)
            .args(["--status-addr", "127.0.0.1:0"]);
        Kiosk::launch(cmd).await
    }

    /// Waits at most `limit` for the process to exit by itself.
    pub async fn exited(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.process.try_wait().expect("kiosk process state") {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Freezes (`true`) or thaws the process, as a hung board or a cut network would.
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { "STOP" } else { "CONT" };
        self.process
            .signal(signal)
            .unwrap_or_else(|e| panic!("freeze the kiosk: {e}"));
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// SIGTERM (the kiosk leaves the room), then waits (at most [`LONG`]) for the exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        self.process
            .terminate_async(LONG)
            .await
            .expect("kiosk exit status")
    }
}

/// One HTTP/1.1 request with `Connection: close`, without the kiosk's token; the answer's
/// status and JSON body.
pub async fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    http_as(addr, None, method, path, body).await
}

/// One HTTP/1.1 request with `Connection: close` and, when given, the kiosk's token as
/// `Authorization: Bearer`; the answer's status and JSON body.
pub async fn http_as(
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let body = body.unwrap_or("");
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer.as_str()));
    }
    let reply = portal_testkit::http(addr, method, path, &headers, Some(body.as_bytes())).await;
    let text = reply.text();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    (reply.status, value)
}

/// The Chromium driver (`browser.mjs`): one Chromium, any number of tabs. Derefs to its
/// [`NodeDriver`] for `call` and `try_call`.
pub struct Browser(NodeDriver);

impl Browser {
    pub fn start(server: &Server, room: &str, query: &str) -> Browser {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser.mjs");
        let base = server.base();
        let driver = NodeDriver::start(script, [base.as_str(), room, query], &[])
            .reply_timeout(LONG + Duration::from_secs(30));
        Browser(driver)
    }

    pub async fn quit(self) {
        self.0.quit().await;
    }
}

impl Deref for Browser {
    type Target = NodeDriver;

    fn deref(&self) -> &NodeDriver {
        &self.0
    }
}

impl DerefMut for Browser {
    fn deref_mut(&mut self) -> &mut NodeDriver {
        &mut self.0
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

/// An X server of our own. Xvfb picks a free display number itself (`-displayfd`) and
/// prints it once it listens: choosing the number here raced between tests running in
/// parallel (two took the same free number, and when the first one's Xvfb went away
/// the other's kiosk lost its display).
pub struct Xvfb {
    pub child: tokio::process::Child,
    pub display: String,
}

impl Xvfb {
    /// An X server with one screen of `width` x `height`.
    pub async fn start(width: u32, height: u32) -> Xvfb {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-nolisten",
                "tcp",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("Xvfb starts (apt-get install xvfb)");
        let stdout = child.stdout.take().expect("Xvfb's stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("Xvfb announces its display within 10 s")
        .expect("Xvfb's stdout reads");
        let n: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb printed {line:?}, not a display number"));
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::{Process, TempDir};

/// How long `portal-server` may take to print where it listens.
const START: Duration = Duration::from_secs(60);
/// How long a server told to stop may take to shut down before it is killed.
const GRACE: Duration = Duration::from_secs(30);
/// How long a restart keeps trying to bind the port the server just let go of.
const REBIND: Duration = Duration::from_secs(5);

/// The repository's root folder.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .expect("xtask/testkit sits two folders below the root")
        .to_owned()
}

/// `signaling/web/dist`, the browser client as `npm run build` left it; panics when it
/// has not been built.
pub fn web_dist() -> PathBuf {
    let dist = workspace_root().join("signaling/web/dist");
    assert!(
        dist.join("index.html").is_file(),
        "the browser client is not built: run `npm ci && npm run build` in signaling/web"
    );
    dist
}

/// The `portal-server` binary: `PORTAL_SERVER_BIN` when set, else the one in the target
/// dir this test binary runs from (`target/<profile>/deps/<test>` →
/// `target/<profile>/portal-server`). Panics, naming the build command, when there is
/// none.
pub fn server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PORTAL_SERVER_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "PORTAL_SERVER_BIN names {}, which is not a file",
            bin.display()
        );
        return bin;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut dir = exe.parent().expect("the test binary's folder");
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir = dir.parent().expect("the profile folder above deps");
    }
    let bin = dir.join("portal-server");
    assert!(
        bin.is_file(),
        "portal-server not found at {}: build it with `cargo build -p portal-signaling --bin \
         portal-server` (same target dir and profile as the tests), or set PORTAL_SERVER_BIN",
        bin.display()
    );
    bin
}

/// The address in a line such as `listening on http://127.0.0.1:8080`.
pub fn listen_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.trim().rsplit_once("://")?;
    rest.trim_end_matches('/').parse().ok()
}

/// How to start a `portal-server`: [`ServerProc::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ServerBuilder {
    bin: Option<PathBuf>,
    bind: String,
    data_dir: Option<PathBuf>,
    web_dir: Option<PathBuf>,
    args: Vec<OsString>,
}

impl ServerBuilder {
    /// This binary instead of [`server_bin`]'s (the server's own tests use the one cargo
    /// built for them).
    pub fn bin(mut self, bin: impl Into<PathBuf>) -> Self {
        self.bin = Some(bin.into());
        self
    }

    /// Where to listen; `127.0.0.1:0` (a free port) unless set.
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind = addr.into();
        self
    }

    /// This data dir (kept when the server goes) instead of a fresh one removed with it.
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Serves the browser client as just built ([`web_dist`]) instead of the copy built
    /// into the binary.
    pub fn web_dist(mut self) -> Self {
        self.web_dir = Some(web_dist());
        self
    }

    /// One more flag for the server.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More flags for the server.
    pub fn args(mut self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Starts the server and waits until it says where it listens.
    pub fn start(self) -> ServerProc {
        let (data, owned) = self.data();
        let bind = self.bind.clone();
        let (process, line) =
            Process::start_announced("portal-server", &mut self.command(&bind, &data), START)
                .unwrap_or_else(|e| panic!("portal-server did not start: {e}"));
        ServerProc::new(self, process, &line, data, owned)
    }

    /// [`ServerBuilder::start`] for tokio tests: sleeps while it waits instead of
    /// blocking the runtime.
    #[cfg(feature = "tokio")]
    pub async fn start_async(self) -> ServerProc {
        let (data, owned) = self.data();
        let bind = self.bind.clone();
        let (process, line) =
            Process::start_announced_async("portal-server", &mut self.command(&bind, &data), START)
                .await
                .unwrap_or_else(|e| panic!("portal-server did not start: {e}"));
        ServerProc::new(self, process, &line, data, owned)
    }

    fn data(&self) -> (PathBuf, Option<TempDir>) {
        if let Some(dir) = &self.data_dir {
            (dir.clone(), None)
        } else {
            let dir = TempDir::new("server-data");
            (dir.path().to_owned(), Some(dir))
        }
    }

    fn command(&self, bind: &str, data: &Path) -> Command {
        let bin = self.bin.clone().unwrap_or_else(server_bin);
        let mut cmd = Command::new(bin);
        cmd.args(["--bind", bind]).arg("--data-dir").arg(data);
        if let Some(web) = &self.web_dir {
            cmd.arg("--web-dir").arg(web);
        }
        cmd.args(&self.args).env(
            "PORTAL_LOG",
            std::env::var("PORTAL_LOG").unwrap_or_else(|_| "warn".into()),
        );
        cmd
    }
}

/// A running `portal-server`, killed on drop. Its logs go to the test's stderr.
#[derive(Debug)]
pub struct ServerProc {
    /// Where it listens (the same after a restart).
    pub addr: SocketAddr,
    process: Process,
    tls: bool,
    data_dir: PathBuf,
    launch: ServerBuilder,
    /// The fresh data dir made for it, removed with it.
    _data: Option<TempDir>,
}

impl ServerProc {
    /// How to start one: a free port, a fresh data dir, the built-in client, no flags.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            bin: None,
            bind: "127.0.0.1:0".into(),
            data_dir: None,
            web_dir: None,
            args: Vec::new(),
        }
    }

    /// Starts one on a free port with a fresh data dir and `extra` flags.
    pub fn start(extra: &[&str]) -> ServerProc {
        ServerProc::builder().args(extra).start()
    }

    /// Starts one on a free port with `data_dir` (kept across restarts) and `extra` flags.
    pub fn start_in(data_dir: impl AsRef<Path>, extra: &[&str]) -> ServerProc {
        ServerProc::builder().data_dir(data_dir).args(extra).start()
    }

    fn new(
        launch: ServerBuilder,
        process: Process,
        line: &str,
        data_dir: PathBuf,
        owned: Option<TempDir>,
    ) -> ServerProc {
        let addr = listen_addr(line)
            .unwrap_or_else(|| panic!("unexpected first line from portal-server: {line:?}"));
        ServerProc {
            process,
            addr,
            tls: line.contains("https://"),
            data_dir,
            launch,
            _data: owned,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://ADDR{path}` (`https` when it speaks TLS); `http_url("")` is the base URL.
    pub fn http_url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// `ws://ADDR/ws` (`wss` when it speaks TLS), the signaling endpoint.
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.ws_base())
    }

    /// `ws://ADDR` (`wss` when it speaks TLS).
    pub fn ws_base(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn process(&self) -> &Process {
        &self.process
    }

    /// SIGTERM (connected clients get a typed error and a close frame), then its exit
    /// status; SIGKILL if it takes longer than 30 s.
    pub fn terminate(&mut self) -> ExitStatus {
        self.process
            .terminate(GRACE)
            .expect("wait for portal-server")
    }

    /// [`ServerProc::terminate`] for tokio tests, whose clients must keep running while
    /// the server says goodbye.
    #[cfg(feature = "tokio")]
    pub async fn terminate_async(&mut self) -> ExitStatus {
        self.process
            .terminate_async(GRACE)
            .await
            .expect("wait for portal-server")
    }

    /// SIGKILL: a crash, as far as the server can tell.
    pub fn kill(&mut self) -> ExitStatus {
        self.process.kill().expect("kill portal-server")
    }

    /// Stops it (SIGTERM) unless it has stopped, then starts it again with the same
    /// flags, port and data dir.
    pub fn restart(&mut self) {
        self.terminate();
        let deadline = std::time::Instant::now() + REBIND;
        let bind = self.addr.to_string();
        // The port was just let go of; the kernel may hold it for a moment.
        let (process, line) = loop {
            let mut cmd = self.launch.command(&bind, &self.data_dir);
            match Process::start_announced("portal-server", &mut cmd, START) {
                Ok(started) => break started,
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("portal-server did not restart on {bind}: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        self.restarted(process, &line);
    }

    /// [`ServerProc::restart`] for tokio tests.
    #[cfg(feature = "tokio")]
    pub async fn restart_async(&mut self) {
        self.terminate_async().await;
        let deadline = std::time::Instant::now() + REBIND;
        let bind = self.addr.to_string();
        let (process, line) = loop {
            let mut cmd = self.launch.command(&bind, &self.data_dir);
            match Process::start_announced_async("portal-server", &mut cmd, START).await {
                Ok(started) => break started,
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("portal-server did not restart on {bind}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        self.restarted(process, &line);
    }

    fn restarted(&mut self, process: Process, line: &str) {
        let addr = listen_addr(line)
            .unwrap_or_else(|| panic!("unexpected first line from portal-server: {line:?}"));
        assert_eq!(addr, self.addr, "portal-server came back elsewhere");
        self.process = process;
    }
}

/// Enrols a kiosk named `name` in the store in `data_dir` with `portal-server kiosk add`
/// and returns its device token (printed once, as `device_token = "..."`).
pub fn enrol_kiosk(data_dir: &Path, name: &str) -> String {
    let out = std::process::Command::new(server_bin())
        .args(["kiosk", "add", name, "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("running portal-server kiosk add");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "portal-server kiosk add failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("device_token")?.trim_start();
            let value = rest.strip_prefix('=')?.trim();
            Some(value.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("portal-server kiosk add printed no device token: {text}"))
}

#[cfg(test)]
mod tests {
    use super::listen_addr;

    #[test]
    fn the_address_comes_from_the_listening_line() {
        assert_eq!(
            listen_addr("listening on http://127.0.0.1:8080\n"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            listen_addr("listening on https://[::1]:443/"),
            Some("[::1]:443".parse().unwrap())
        );
        assert_eq!(listen_addr("hello"), None);
    }
}

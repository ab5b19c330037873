//! The servers a benchmark measures: the release `portal-server`, and the Node.js peers it
//! is compared with. Each counts as started once it prints its first line, and is stopped
//! when its handle drops (every exit path, panics included). Also what a process costs,
//! from /proc.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use portal_testkit::{Process, TempDir, listen_addr};

/// How long a server may take to print its first line.
const START: Duration = Duration::from_secs(20);
/// How long a server told to stop may take before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// A server process under measurement.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) addr: SocketAddr,
    process: Process,
    /// Portal's data dir, removed once the server has gone.
    _data: Option<TempDir>,
}

impl Server {
    /// `portal-server` at `bin` on a free port with a fresh data dir, `args` and
    /// `PORTAL_LOG=log`.
    pub(crate) fn portal(bin: &Path, args: &[&str], log: &str) -> Result<Server> {
        let data = TempDir::new("bench-data");
        let mut cmd = Command::new(bin);
        // The load generators make every room and connection from one address: the
        // per-address room creation and connection limits (abuse guards) are off, as the
        // message limits are per bench.
        cmd.args([
            "--bind",
            "127.0.0.1:0",
            "--room-create-rate",
            "0",
            "--max-conns-per-addr",
            "0",
            "--data-dir",
        ])
        .arg(data.path())
        .args(args)
        .env("PORTAL_LOG", log);
        Server::start("Portal", &mut cmd, 0, Some(data))
    }

    /// `node script` run in `dir` with `env`, told to listen on 127.0.0.1 at a free port
    /// (`HOST`, `PORT`).
    pub(crate) fn node(
        name: &'static str,
        dir: &Path,
        script: &Path,
        env: &[(&str, &str)],
    ) -> Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .current_dir(dir)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .envs(env.iter().copied());
        Server::start(name, &mut cmd, port, None)
            .context("start node (is Node.js installed? `cargo xtask setup`)")
    }

    /// Starts `cmd`; it listens where its first line says (`listening on
    /// http://HOST:PORT`), or else on `port`.
    fn start(
        name: &'static str,
        cmd: &mut Command,
        port: u16,
        data: Option<TempDir>,
    ) -> Result<Server> {
        let (process, line) = Process::start_announced(name, cmd, START)?;
        let addr = match listen_addr(&line) {
            Some(addr) => addr,
            None if port != 0 => SocketAddr::from(([127, 0, 0, 1], port)),
            None => anyhow::bail!("unexpected first line from {name}: {line:?}"),
        };
        Ok(Server {
            name,
            addr,
            process,
            _data: data,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.id()
    }
}

impl Drop for Server {
    /// SIGTERM first, so the server shuts down the way it would in production; SIGKILL
    /// if it does not exit in time.
    fn drop(&mut self) {
        let _ = self.process.terminate(GRACE);
    }
}

/// utime + stime of a process (all its threads), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("stat format")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

/// A `kB` line of /proc/PID/status (`VmRSS:`, `VmHWM:`).
pub(crate) fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status (did the server exit?)"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

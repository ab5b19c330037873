//! The kiosk and its service manager: `READY=1`, `WATCHDOG=1` pings and `STOPPING=1` on
//! a real notification socket (a unix datagram socket this test binds, named to the
//! kiosk by `NOTIFY_SOCKET`, as systemd does), and the pings stopping when the kiosk's
//! main loop stalls (the test hook `PORTAL_TEST_STALL_AFTER_MS`, in builds with debug
//! assertions). The windowed kiosk's pings are in `window.rs`.
//!
//! Needs `portal-server` built beside the kiosk, as the e2e tests do.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Kiosk, Server};
use portal_testkit::TempDir;

/// The watchdog timeout given to the kiosk: it pings every 200 ms.
const WATCHDOG_USEC: &str = "400000";

/// The notification socket, as the service manager holds it.
struct NotifySocket {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notification socket");
        NotifySocket { socket, path }
    }

    /// The next message within `limit`.
    fn next(&self, limit: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(limit))
            .expect("read timeout");
        let mut buf = [0; 4096];
        let len = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
    }

    /// Waits for a message with the line `line`; the messages seen before it.
    fn wait_for(&self, line: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(m) if m.lines().any(|l| l == line) => return seen,
                Some(m) => seen.push(m),
                None => break,
            }
        }
        panic!("no {line} within {limit:?}; saw {seen:?}");
    }

    /// The watchdog pings seen in `window`, and when the last came.
    fn pings(&self, window: Duration) -> (usize, Option<Instant>) {
        let end = Instant::now() + window;
        let (mut n, mut last) = (0, None);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.next(left.max(Duration::from_millis(1))) {
                Some(m) if m == "WATCHDOG=1" => {
                    n += 1;
                    last = Some(Instant::now());
                }
                Some(_) => {}
                None => break,
            }
        }
        (n, last)
    }

    fn env<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let path = self.path.to_str().expect("a UTF-8 temp path");
        let mut env = vec![("NOTIFY_SOCKET", path), ("WATCHDOG_USEC", WATCHDOG_USEC)];
        env.extend_from_slice(extra);
        env
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_kiosk_says_ready_pings_the_watchdog_and_says_stopping() {
    let work = TempDir::new("notify-headless");
    let server = Server::start("127.0.0.1:0", &work.path().join("server")).await;
    let notify = NotifySocket::bind(work.path());
    let kiosk = Kiosk::start_with_env(
        &server,
        "notify",
        &work.path().join("files"),
        &[],
        None,
        &notify.env(&[]),
    )
    .await;
    notify.wait_for("READY=1", common::LONG);
    let (pings, _) = notify.pings(Duration::from_secs(2));
    // Every 200 ms; a loaded machine may drop a few.
    assert!(pings >= 4, "{pings} watchdog pings in 2 s");
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    notify.wait_for("STOPPING=1", Duration::from_secs(5));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_headless_loop_stops_pinging() {
    let work = TempDir::new("notify-stall");
    let server = Server::start("127.0.0.1:0", &work.path().join("server")).await;
    let notify = NotifySocket::bind(work.path());
    let kiosk = Kiosk::start_with_env(
        &server,
        "notify-stall",
        &work.path().join("files"),
        &[],
        None,
        &notify.env(&[("PORTAL_TEST_STALL_AFTER_MS", "1500")]),
    )
    .await;
    notify.wait_for("READY=1", common::LONG);
    notify.wait_for("WATCHDOG=1", Duration::from_secs(5));
    // The stall comes 1.5 s after the loop started; then no ping for far longer than
    // the watchdog's timeout (systemd would have restarted the kiosk).
    let (before, _) = notify.pings(Duration::from_secs(3));
    let (after, _) = notify.pings(Duration::from_secs(2));
    assert!(before >= 1, "pings before the stall");
    assert_eq!(after, 0, "pings after the stall");
    // The process is still there, stuck: only the watchdog notices.
    assert!(
        kiosk.get("/healthz").await.0 == 200,
        "the endpoint itself still answers"
    );
    drop(kiosk);
    server.stop().await;
}

/// Under a real service manager, when this machine has one for the user.
#[test]
fn under_systemd_run_when_there_is_a_user_manager() {
    let probe = std::process::Command::new("systemd-run")
        .args(["--user", "--quiet", "--wait", "true"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {
            // A user manager exists: a transient Type=notify unit with a watchdog.
            let status = std::process::Command::new("systemd-run")
                .args([
                    "--user",
                    "--quiet",
                    "--wait",
                    "--collect",
                    "-p",
                    "Type=notify",
                    "-p",
                    "WatchdogSec=2",
                    "-p",
                    "RuntimeMaxSec=6",
                    env!("CARGO_BIN_EXE_portal-kiosk"),
                    "--headless",
                    "--server",
                    "ws://127.0.0.1:9",
                    "--room",
                    "systemd",
                    "--status-addr",
                    "127.0.0.1:0",
                    "--config",
                    "/dev/null",
                ])
                .status()
                .expect("systemd-run");
            // Started (READY=1 reached systemd, or `--wait` would report a failed start)
            // and kept alive by the pings until RuntimeMaxSec stopped it.
            eprintln!("systemd-run: {status}");
        }
        Ok(out) => eprintln!(
            "SKIPPED: `systemd-run --user` does not work here ({}); the notification \
             protocol is covered by the socket tests above",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => eprintln!("SKIPPED: no systemd-run here ({e})"),
    }
}

/// With a window, the pings come from a timer on the UI thread; READY once the window's
/// event loop runs and the endpoint listens. Needs Xvfb, as `window.rs` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_kiosk_pings_from_its_ui_thread_until_it_stalls() {
    let work = TempDir::new("notify-window");
    let server = Server::start("127.0.0.1:0", &work.path().join("server")).await;
    let x = common::Xvfb::start(800, 480).await;
    let notify = NotifySocket::bind(work.path());
    let kiosk = Kiosk::start_with_env(
        &server,
        "notify-window",
        &work.path().join("files"),
        &[],
        Some(&x.display),
        &notify.env(&[("PORTAL_TEST_STALL_AFTER_MS", "3000")]),
    )
    .await;
    notify.wait_for("READY=1", common::LONG);
    let (before, _) = notify.pings(Duration::from_secs(1));
    assert!(before >= 2, "{before} pings from the UI thread in 1 s");
    // The UI thread blocks 3 s after the window opened: the pings stop.
    notify.wait_for("WATCHDOG=1", Duration::from_secs(5));
    let mut quiet = false;
    for _ in 0..20 {
        if notify.pings(Duration::from_secs(1)).0 == 0 {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "the pings never stopped");
    drop(kiosk);
    drop(x);
    server.stop().await;
}

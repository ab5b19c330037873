//! The service manager's notification protocol (`sd_notify(3)`), spoken directly: one
//! datagram per message to the unix socket named by `$NOTIFY_SOCKET` (a path, or an
//! abstract name when it starts with `@`). No libsystemd.
//!
//! - `READY=1` once the kiosk is up: the status endpoint listens and the window is shown
//!   (touch) or the headless loop runs. With `Type=notify`, systemd starts what comes
//!   after the kiosk only then.
//! - `WATCHDOG=1` every half of `$WATCHDOG_USEC`, from the kiosk's *main loop* (the UI
//!   thread's event loop with a window, the headless controller without): a loop that is
//!   stuck stops pinging, and systemd (`WatchdogSec=`) kills and restarts the kiosk. A
//!   `$WATCHDOG_PID` that is not this process means the watchdog is someone else's.
//! - `STOPPING=1` when the kiosk starts shutting down.
//!
//! Without `$NOTIFY_SOCKET` (a laptop, a test) every call does nothing.
//!
//! For tests only, a build with debug assertions or the `test-hooks` feature reads
//! `PORTAL_TEST_STALL_AFTER_MS`: after that long the main loop stalls (see
//! [`stall_due`]), so a test can see the pings stop. A release build has no such code.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

/// Talks to the service manager, when there is one. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Notifier {
    inner: Option<Arc<Socket>>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct Socket {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub(crate) fn from_env() -> Notifier {
        let var = |name| std::env::var(name).ok();
        Notifier::from_vars(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }

    fn from_vars(
        socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> Notifier {
        let inner = socket
            .filter(|s| !s.is_empty())
            .and_then(|name| match connect(name) {
                Ok(socket) => Some(Arc::new(socket)),
                Err(e) => {
                    tracing::warn!(socket = name, error = %e, "NOTIFY_SOCKET unusable; not notifying");
                    None
                }
            });
        let ours = watchdog_pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(pid));
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&usec| usec > 0 && ours && inner.is_some())
            .map(Duration::from_micros);
        Notifier { inner, watchdog }
    }

    /// How often to ping: half the watchdog's timeout; `None` without a watchdog.
    pub(crate) fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    pub(crate) fn ready(&self) {
        if self.send("READY=1\nSTATUS=running") {
            tracing::info!("told the service manager we are ready");
        }
    }

    pub(crate) fn watchdog(&self) {
        if self.watchdog.is_some() {
            self.send("WATCHDOG=1");
        }
    }

    pub(crate) fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Sends one message; whether it was sent.
    fn send(&self, message: &str) -> bool {
        let Some(s) = &self.inner else {
            return false;
        };
        match s.socket.send_to_addr(message.as_bytes(), &s.addr) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, message, "notifying the service manager failed");
                false
            }
        }
    }
}

fn connect(name: &str) -> io::Result<Socket> {
    let addr = if let Some(abstract_name) = name.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(abstract_name.as_bytes())?
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name)?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither an absolute path nor an abstract name (@...)",
        ));
    };
    Ok(Socket {
        socket: UnixDatagram::unbound()?,
        addr,
    })
}

/// Test hook: whether the main loop should stall now, `started` being when it started.
/// Always `false` in a release build without the `test-hooks` feature.
#[cfg(any(debug_assertions, feature = "test-hooks"))]
pub(crate) fn stall_due(started: std::time::Instant) -> bool {
    static AFTER: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    let after = AFTER.get_or_init(|| {
        let after = std::env::var("PORTAL_TEST_STALL_AFTER_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis);
        if let Some(after) = after {
            tracing::warn!(?after, "test hook: the main loop will stall");
        }
        after
    });
    after.is_some_and(|after| started.elapsed() >= after)
}

/// Test hook: whether the main loop should stall now. Never, in this build.
#[cfg(not(any(debug_assertions, feature = "test-hooks")))]
pub(crate) fn stall_due(_started: std::time::Instant) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_an_abstract_socket_and_the_watchdog_is_ours_only() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("portal-notify-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let pid = std::process::id();
        let n = Notifier::from_vars(
            Some(&format!("@{name}")),
            Some("4000000"),
            Some(&pid.to_string()),
            pid,
        );
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(2)));
        n.ready();
        n.watchdog();
        n.stopping();
        let mut buf = [0; 256];
        let mut got = Vec::new();
        for _ in 0..3 {
            let len = listener.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        assert_eq!(got, ["READY=1\nSTATUS=running", "WATCHDOG=1", "STOPPING=1"]);

        let other = Notifier::from_vars(Some(&format!("@{name}")), Some("4000000"), Some("1"), pid);
        assert_eq!(
            other.watchdog_interval(),
            None,
            "another process's watchdog"
        );
        let none = Notifier::from_vars(None, Some("4000000"), None, pid);
        assert_eq!(none.watchdog_interval(), None, "no socket, no watchdog");
        none.ready();
        assert!(
            Notifier::from_vars(Some("relative"), None, None, pid)
                .inner
                .is_none()
        );
    }
}

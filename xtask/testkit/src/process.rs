use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often a wait on a process looks again.
const POLL: Duration = Duration::from_millis(20);

/// A child process, killed and reaped on drop, so a failing test leaves nothing running.
#[derive(Debug)]
pub struct Process {
    child: Child,
    name: String,
}

impl Process {
    /// Spawns `cmd` (stdin closed, stdout piped; stderr as `cmd` says, inherited unless
    /// set, so its logs show with the test's) and waits at most `timeout` for the first
    /// line it prints on stdout, such as `listening on http://127.0.0.1:PORT`. The rest of
    /// its stdout is drained on a thread, so the child never blocks on a full pipe.
    /// Returns the process and that line, trimmed. `name` is for messages.
    pub fn start_announced(
        name: &str,
        cmd: &mut Command,
        timeout: Duration,
    ) -> io::Result<(Process, String)> {
        let (mut process, line) = Process::spawn_announcing(name, cmd)?;
        match line.recv_timeout(timeout) {
            Ok(line) => Ok((process, line)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(process.silent_exit()),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(process.silent_for(timeout)),
        }
    }

    /// [`Process::start_announced`] for tokio tests: sleeps while it waits instead of
    /// blocking the runtime.
    #[cfg(feature = "tokio")]
    pub async fn start_announced_async(
        name: &str,
        cmd: &mut Command,
        timeout: Duration,
    ) -> io::Result<(Process, String)> {
        let (mut process, line) = Process::spawn_announcing(name, cmd)?;
        let deadline = Instant::now() + timeout;
        loop {
            match line.try_recv() {
                Ok(line) => return Ok((process, line)),
                Err(mpsc::TryRecvError::Disconnected) => return Err(process.silent_exit()),
                Err(mpsc::TryRecvError::Empty) if Instant::now() >= deadline => {
                    return Err(process.silent_for(timeout));
                }
                Err(mpsc::TryRecvError::Empty) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Spawns `cmd`; the receiver gets its first stdout line, or closes if there is none.
    fn spawn_announcing(
        name: &str,
        cmd: &mut Command,
    ) -> io::Result<(Process, mpsc::Receiver<String>)> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {name}: {e}")))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            if matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                let _ = tx.send(line.trim().to_owned());
                let _ = io::copy(&mut reader, &mut io::sink());
            }
        });
        let process = Process {
            child,
            name: name.to_owned(),
        };
        Ok((process, rx))
    }

    /// The error for a process that closed its stdout before printing a line.
    fn silent_exit(&mut self) -> io::Error {
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.to_string(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                _ => break "still running".to_owned(),
            }
        };
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{} closed its stdout before printing a line ({status})",
                self.name
            ),
        )
    }

    fn silent_for(&self, timeout: Duration) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{} printed no line within {timeout:?}", self.name),
        )
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `signal` (`TERM`, `STOP`, `CONT`, ...) with `kill(1)`.
    pub fn signal(&self, signal: &str) -> io::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "kill -{signal} {} ({}): {status}",
                self.child.id(),
                self.name
            )))
        }
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// SIGTERM, so it shuts down as it would in production; SIGKILL if it has not exited
    /// within `grace`. Returns its exit status (at once if it had already exited).
    pub fn terminate(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        let deadline = self.ask_to_exit(grace);
        loop {
            if let Some(status) = self.exited_by(deadline)? {
                return Ok(status);
            }
            std::thread::sleep(POLL);
        }
    }

    /// [`Process::terminate`] for tokio tests: sleeps while it waits instead of blocking
    /// the runtime (whose tasks may be the very clients the process is saying goodbye to).
    #[cfg(feature = "tokio")]
    pub async fn terminate_async(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        let deadline = self.ask_to_exit(grace);
        loop {
            if let Some(status) = self.exited_by(deadline)? {
                return Ok(status);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM unless it has exited; the time by which it must have.
    fn ask_to_exit(&mut self, grace: Duration) -> Instant {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.signal("TERM");
        }
        Instant::now() + grace
    }

    /// Its exit status once it has exited, SIGKILLed if `deadline` has passed.
    fn exited_by(&mut self, deadline: Instant) -> io::Result<Option<ExitStatus>> {
        match self.child.try_wait()? {
            Some(status) => Ok(Some(status)),
            None if Instant::now() >= deadline => self.kill().map(Some),
            None => Ok(None),
        }
    }

    /// SIGKILL (a crash, as far as the process can tell) and its exit status.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        self.child.kill()?;
        self.child.wait()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::Process;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn the_first_line_comes_back_and_the_rest_is_drained() {
        let (mut p, line) = Process::start_announced(
            "sh",
            &mut sh("echo '  listening on http://127.0.0.1:9 '; seq 1 100000; sleep 30"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(line, "listening on http://127.0.0.1:9");
        let status = p.terminate(Duration::from_secs(10)).unwrap();
        assert!(!status.success());
    }

    #[test]
    fn silence_and_early_exits_are_errors() {
        let err =
            Process::start_announced("quiet", &mut sh("sleep 30"), Duration::from_millis(200))
                .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        let err = Process::start_announced("gone", &mut sh("exit 3"), Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("gone"), "{err}");
        assert!(err.to_string().contains('3'), "{err}");
    }
}

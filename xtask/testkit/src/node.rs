use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long a driver may take to answer a command unless told otherwise.
const REPLY: Duration = Duration::from_secs(180);
/// How long a driver may take to exit after `quit`.
const QUIT: Duration = Duration::from_secs(30);

/// A `node` script driven one JSON command per line on its stdin, answering one JSON
/// line per command on its stdout (`{"ok": true, ...}` or `{"ok": false, "error": ...}`,
/// the loop `signaling/web/tests/kit.mjs` runs); its stderr is the test's. Killed on drop.
#[derive(Debug)]
pub struct NodeDriver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    script: String,
    reply: Duration,
}

impl NodeDriver {
    /// Spawns `node SCRIPT ARGS...` with `envs` added to this process's environment.
    pub fn start(
        script: impl AsRef<Path>,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        envs: &[(&str, &str)],
    ) -> NodeDriver {
        let script = script.as_ref();
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        NodeDriver {
            child,
            stdin,
            lines,
            script: script.display().to_string(),
            reply: REPLY,
        }
    }

    /// How long each answer may take (180 s unless set).
    #[must_use]
    pub fn reply_timeout(mut self, limit: Duration) -> NodeDriver {
        self.reply = limit;
        self
    }

    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends one command line.
    pub async fn send(&mut self, cmd: &Value) {
        let line = format!("{cmd}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.script));
        self.stdin
            .flush()
            .await
            .unwrap_or_else(|e| panic!("flush {}: {e}", self.script));
    }

    /// The next JSON line it prints (other lines are passed on to stderr); panics when
    /// none comes within the reply timeout or the script exits. `what` is for messages.
    pub async fn recv(&mut self, what: &str) -> Value {
        tokio::time::timeout(self.reply, self.next_value())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not answer {what} within {:?}",
                    self.script, self.reply
                )
            })
            .unwrap_or_else(|e| panic!("read from {}: {e}", self.script))
            .unwrap_or_else(|| panic!("{} exited during {what}", self.script))
    }

    /// The next JSON line, or `None` once stdout closes.
    async fn next_value(&mut self) -> std::io::Result<Option<Value>> {
        while let Some(line) = self.lines.next_line().await? {
            match serde_json::from_str(&line) {
                Ok(value) => return Ok(Some(value)),
                Err(_) => eprintln!("[{}] {line}", self.script),
            }
        }
        Ok(None)
    }

    /// Sends `cmd` and returns the answer, whatever it says.
    pub async fn try_call(&mut self, cmd: &Value) -> Value {
        self.send(cmd).await;
        self.recv(&cmd.to_string()).await
    }

    /// Sends `cmd`; panics unless the answer is `{"ok": true, ...}`, which it returns.
    pub async fn call(&mut self, cmd: Value) -> Value {
        let answer = self.try_call(&cmd).await;
        assert_eq!(
            answer["ok"],
            json!(true),
            "driver command {cmd} failed: {answer}"
        );
        answer
    }

    /// Sends `{"cmd": "quit"}` and waits for the exit; kills it after 30 s.
    pub async fn quit(mut self) {
        self.send(&json!({"cmd": "quit"})).await;
        let _ = tokio::time::timeout(QUIT, self.next_value()).await;
        if tokio::time::timeout(QUIT, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

//! One line at the end of a test run: the pass and fail counts of every runner.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};

use anyhow::{Context as _, Result, bail};

use crate::display;

/// Adds up what every test runner reports, so the run ends with one plain line.
#[derive(Default)]
pub(crate) struct Tally {
    passed: u64,
    failed: u64,
    failures: Vec<String>,
}

impl Tally {
    /// Runs a test command, echoing its output and reading its counts.
    pub(crate) fn run(&mut self, what: &str, cmd: &mut Command) -> Result<()> {
        use std::io::BufRead as _;
        eprintln!("$ {}", display(cmd));
        let mut child = cmd
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", display(cmd)))?;
        let stdout = child.stdout.take().expect("piped");
        let (mut passed, mut failed) = (0u64, 0u64);
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            let (p, f) = counts(&line);
            passed += p;
            failed += f;
        }
        let status = child.wait()?;
        self.account(what, passed, failed, status);
        Ok(())
    }

    /// Starts a test command that runs beside the ones after it (at the lowest CPU
    /// priority, so it takes what they leave idle); its output goes to `log` until
    /// [`Tally::collect`] counts it.
    pub(crate) fn start(what: &str, cmd: &mut Command, log: &Path) -> Result<Background> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut niced = Command::new("nice");
        niced
            .args(["-n", "19"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        if let Some(dir) = cmd.get_current_dir() {
            niced.current_dir(dir);
        }
        eprintln!(
            "$ {} (beside the rest; output in {})",
            display(&niced),
            log.display()
        );
        let child = niced
            .env("NO_COLOR", "1")
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {}", display(cmd)))?;
        Ok(Background {
            what: what.to_owned(),
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// Waits for a command from [`Tally::start`], echoes its output and counts it.
    pub(crate) fn collect(&mut self, mut background: Background) -> Result<()> {
        let mut child = background.child.take().expect("collected once");
        eprintln!("waiting for {}", background.what);
        let status = child.wait()?;
        let output = std::fs::read_to_string(&background.log).unwrap_or_default();
        let (mut passed, mut failed) = (0u64, 0u64);
        for line in output.lines() {
            println!("{line}");
            let (p, f) = counts(line);
            passed += p;
            failed += f;
        }
        self.account(&background.what, passed, failed, status);
        Ok(())
    }

    fn account(&mut self, what: &str, passed: u64, failed: u64, status: ExitStatus) {
        self.passed += passed;
        self.failed += failed;
        eprintln!("{what}: {passed} passed, {failed} failed");
        if !status.success() {
            self.failures.push(format!("{what} ({status})"));
            if failed == 0 {
                self.failed += 1;
            }
        }
    }

    pub(crate) fn finish(self) -> Result<()> {
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failures.is_empty() && self.failed == 0 {
            Ok(())
        } else {
            bail!("failed: {}", self.failures.join("; "))
        }
    }
}

/// A test command running beside the others; stopped if the run ends before it is
/// collected.
pub(crate) struct Background {
    what: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Pass and fail counts from one line of cargo test, node --test (TAP) or vitest.
fn counts(line: &str) -> (u64, u64) {
    let line = line.trim();
    let number_before = |text: &str, word: &str| -> u64 {
        text.split(word)
            .next()
            .and_then(|head| head.split_whitespace().last())
            .and_then(|n| n.trim_start_matches('(').parse().ok())
            .unwrap_or(0)
    };
    if let Some(rest) = line.strip_prefix("test result: ") {
        // cargo: "test result: ok. 12 passed; 0 failed; 0 ignored; ..."
        let passed = rest
            .split(';')
            .find(|p| p.contains("passed"))
            .map_or(0, |p| number_before(p, " passed"));
        let failed = rest
            .split(';')
            .find(|p| p.contains("failed"))
            .map_or(0, |p| number_before(p, " failed"));
        return (passed, failed);
    }
    if let Some(n) = line.strip_prefix("# pass ") {
        return (n.trim().parse().unwrap_or(0), 0);
    }
    if let Some(n) = line.strip_prefix("# fail ") {
        return (0, n.trim().parse().unwrap_or(0));
    }
    if let Some(rest) = line.strip_prefix("Tests ") {
        // vitest: "Tests  6 passed (6)" or "Tests  1 failed | 5 passed (6)"
        let passed = rest
            .split('|')
            .find(|p| p.contains("passed"))
            .map_or(0, |p| number_before(p, " passed"));
        let failed = rest
            .split('|')
            .find(|p| p.contains("failed"))
            .map_or(0, |p| number_before(p, " failed"));
        return (passed, failed);
    }
    (0, 0)
}

#[cfg(test)]
mod tests {
    use super::counts;

    #[test]
    fn reads_every_runner() {
        assert_eq!(
            counts("test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured"),
            (12, 0)
        );
        assert_eq!(
            counts("test result: FAILED. 3 passed; 2 failed; 0 ignored"),
            (3, 2)
        );
        assert_eq!(counts("# pass 4"), (4, 0));
        assert_eq!(counts("# fail 1"), (0, 1));
        assert_eq!(counts("      Tests  6 passed (6)"), (6, 0));
        assert_eq!(counts("Tests  1 failed | 5 passed (6)"), (5, 1));
        assert_eq!(counts("running 3 tests"), (0, 0));
    }
}

//! `cargo xtask`: Portal's project commands.
//!
//! - `setup`  installs what the build and the tests need (apt-get, npm ci); idempotent.
//! - `demo`   builds and starts the rooms server and prints the URL to open.
//! - `test`   everything CI runs: format, lints, type check, unit, integration and
//!   browser-side tests.
//! - `lint`   format check, clippy, the TypeScript type check and the architecture rules.
//! - `gen`    regenerates the TypeScript wire types from `portal-proto`.
//! - `bench`  measured comparisons against the peers named in the README.

mod bench;
mod cycles;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

/// Debian packages: build (-dev), run and test (FIELD-NOTES.md keeps the reasons).
const APT_PACKAGES: &[&str] = &[
    "pkg-config",
    "libgstreamer1.0-dev",
    "libgstreamer-plugins-base1.0-dev",
    "libasound2-dev",
    "libudev-dev",
    "libinput-dev",
    "libgbm-dev",
    "libdrm-dev",
    "libxkbcommon-dev",
    "libfontconfig-dev",
    "libclang-dev",
    "gstreamer1.0-tools",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-libav",
    "gstreamer1.0-alsa",
    "chromium",
    "xvfb",
    "libgl1-mesa-dri",
    "libegl1",
    "rauc",
    "dbus",
    "squashfs-tools",
    "openssl",
];

/// npm projects, relative to the repository root.
const NPM_PROJECTS: &[&str] = &["signaling/web"];

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Portal's project commands")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install system packages and npm dependencies (idempotent).
    Setup,
    /// Build and start the rooms server; print the URL to open in a browser.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// Room to print a link for.
        #[arg(long, default_value = "demo")]
        room: String,
    },
    /// Run every check and test (what CI runs).
    Test,
    /// Run only the browser end-to-end tests (Chromium against the real server).
    E2e {
        /// Test files under signaling/web/tests/e2e (default: all).
        files: Vec<String>,
    },
    /// Format check, clippy, TypeScript type check, architecture rules.
    Lint,
    /// Regenerate signaling/web/src/gen from the Rust wire types.
    Gen,
    /// Run benchmarks and print tables.
    Bench {
        /// Which benchmark: signaling, docs, browser, kiosk, ui or all.
        #[arg(default_value = "all")]
        which: String,
        /// Short phases (a smoke run, not a measurement).
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = repo_root();
    std::env::set_current_dir(&root)?;
    match cli.command {
        Cmd::Setup => setup(&root),
        Cmd::Demo { bind, room } => demo(&root, &bind, &room),
        Cmd::Test => test(&root),
        Cmd::E2e { files } => {
            setup(&root)?;
            web_build(&root)?;
            let mut tally = Tally::default();
            e2e(&root, &files, &mut tally)?;
            tally.finish()
        }
        Cmd::Lint => {
            setup(&root)?;
            lint(&root)
        }
        Cmd::Gen => generate(),
        Cmd::Bench { which, quick } => bench(&root, &which, quick),
    }
}

/// The checkout `cargo xtask` runs in. `cargo run` sets `CARGO_MANIFEST_DIR` for the
/// process; the compile-time value is only a fallback, because the target directory is
/// shared between checkouts (`$HOME/.cache/portal/target`) and a binary built in one
/// clone must not work on another.
fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .expect("xtask sits in the repository root")
        .to_owned()
}

/// Runs a command, echoing it; fails with its exit status.
fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", display(cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", display(cmd));
    }
    Ok(())
}

fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn setup(root: &Path) -> Result<()> {
    let mut wanted: Vec<&str> = APT_PACKAGES.to_vec();
    if !have("node") || !have("npm") {
        wanted.extend(["nodejs", "npm"]);
    }
    let missing: Vec<&str> = wanted
        .into_iter()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if !missing.is_empty() {
        let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
        let apt = |args: &[&str]| {
            let mut cmd = Command::new(sudo.first().copied().unwrap_or("apt-get"));
            if !sudo.is_empty() {
                cmd.arg("apt-get");
            }
            cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            cmd
        };
        run(&mut apt(&["update", "-qq"]))?;
        let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
        install.args(&missing);
        run(&mut install)?;
    }
    for project in NPM_PROJECTS {
        npm_ci(&root.join(project))?;
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `npm ci`, skipped when node_modules already matches the lock file.
pub(crate) fn npm_ci(dir: &Path) -> Result<()> {
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&lock), std::fs::metadata(&installed)) {
        (Ok(l), Ok(i)) => i.modified()? >= l.modified()?,
        _ => false,
    };
    if !fresh {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir))?;
    }
    Ok(())
}

fn web_build(root: &Path) -> Result<()> {
    run(Command::new("npm")
        .args(["run", "--silent", "build"])
        .current_dir(root.join("signaling/web")))
}

fn generate() -> Result<()> {
    run(cargo()
        .args([
            "test",
            "--quiet",
            "-p",
            "portal-proto",
            "--lib",
            "generated_typescript_is_current",
        ])
        .env("PORTAL_BLESS", "1"))
}

fn lint(root: &Path) -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(Command::new("npm")
        .args(["run", "--silent", "typecheck"])
        .current_dir(root.join("signaling/web")))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    cycles::check(root)?;
    architecture_rules()
}

/// The crate arrows in ARCHITECTURE.md that a compiler does not enforce.
fn architecture_rules() -> Result<()> {
    let forbidden: &[(&str, &[&str])] = &[
        (
            "portal-proto",
            &["tokio", "hyper", "rusqlite", "tungstenite"],
        ),
        (
            "portal-engine",
            &["tokio", "gstreamer", "webrtc", "rtc", "slint"],
        ),
        // The UI never talks to media (frames come in as plain RGBA from the kiosk).
        (
            "portal-ui",
            &["portal-media", "gstreamer", "tokio", "webrtc", "rtc"],
        ),
    ];
    for (krate, banned) in forbidden {
        let out = cargo()
            .args(["tree", "-p", krate, "-e", "normal", "--prefix", "none"])
            .output()?;
        if !out.status.success() {
            // The crate does not exist (yet): nothing to check.
            continue;
        }
        let tree = String::from_utf8_lossy(&out.stdout);
        for line in tree.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if banned.contains(&name) {
                bail!("architecture rule broken: {krate} depends on {name} (see ARCHITECTURE.md)");
            }
        }
        eprintln!("architecture: {krate} is free of {}", banned.join(", "));
    }
    Ok(())
}

fn test(root: &Path) -> Result<()> {
    let started = Instant::now();
    setup(root)?;
    web_build(root)?;
    lint(root)?;
    let mut tally = Tally::default();
    tally.run(
        "web unit tests (vitest)",
        Command::new("npx")
            .args(["vitest", "run", "--reporter=default"])
            .current_dir(root.join("signaling/web")),
    )?;
    tally.run(
        "cargo tests",
        cargo().args(["test", "--workspace", "--all-targets"]),
    )?;
    e2e(root, &[], &mut tally)?;
    eprintln!("finished in {:.0} s", started.elapsed().as_secs_f64());
    tally.finish()
}

/// Browser end-to-end tests: node's test runner drives Chromium (playwright-core)
/// against the freshly built portal-server.
fn e2e(root: &Path, files: &[String], tally: &mut Tally) -> Result<()> {
    run(cargo().args([
        "build",
        "--quiet",
        "-p",
        "portal-signaling",
        "--bin",
        "portal-server",
    ]))?;
    let server = target_dir(root).join("debug/portal-server");
    let web = root.join("signaling/web");
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-concurrency=1", "--test-reporter=tap"])
        .current_dir(&web)
        .env("PORTAL_SERVER_BIN", &server);
    if files.is_empty() {
        let mut all: Vec<String> = std::fs::read_dir(web.join("tests/e2e"))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".test.mjs"))
            .map(|n| format!("tests/e2e/{n}"))
            .collect();
        all.sort();
        cmd.args(all);
    } else {
        cmd.args(files.iter().map(|f| format!("tests/e2e/{f}")));
    }
    tally.run("browser e2e tests (Chromium)", &mut cmd)
}

/// Adds up what every test runner reports, so the run ends with one plain line.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    failures: Vec<String>,
}

impl Tally {
    /// Runs a test command, echoing its output and reading its counts.
    fn run(&mut self, what: &str, cmd: &mut Command) -> Result<()> {
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
        self.passed += passed;
        self.failed += failed;
        eprintln!("{what}: {passed} passed, {failed} failed");
        if !status.success() {
            self.failures.push(format!("{what} ({status})"));
            if failed == 0 {
                self.failed += 1;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failures.is_empty() && self.failed == 0 {
            Ok(())
        } else {
            bail!("failed: {}", self.failures.join("; "))
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

fn demo(root: &Path, bind: &str, room: &str) -> Result<()> {
    setup(root)?;
    web_build(root)?;
    run(cargo().args([
        "build",
        "--quiet",
        "-p",
        "portal-signaling",
        "--bin",
        "portal-server",
        "-p",
        "portal-kiosk",
        "--bin",
        "portal-kiosk",
    ]))?;
    let bin = target_dir(root).join("debug/portal-server");
    let data = root.join("target/demo-data");
    eprintln!("starting the rooms server and a kiosk; stop with Ctrl-C");
    let mut server = Command::new(&bin)
        .args(["--bind", bind, "--data-dir"])
        .arg(&data)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = server.stdout.take().expect("piped");
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first)?;
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or("http://127.0.0.1:8080")
        .to_owned();
    let ws = base.replacen("http", "ws", 1);
    let kiosk_bin = target_dir(root).join("debug/portal-kiosk");
    let token_file = root.join("target/demo-kiosk/status-token");
    let mut kiosk = Command::new(&kiosk_bin);
    kiosk
        .args(["--server", &ws, "--room", room, "--name", "Demo kiosk"])
        .args(["--status-addr", "127.0.0.1:0", "--file-policy", "ask"])
        .arg("--status-token-file")
        .arg(&token_file)
        .arg("--files-dir")
        .arg(root.join("target/demo-files"))
        .stdout(std::process::Stdio::piped());
    let windowed =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if !windowed {
        kiosk.arg("--headless");
    }
    let mut kiosk = kiosk
        .spawn()
        .with_context(|| format!("cannot start {}", kiosk_bin.display()))?;
    let kiosk_out = kiosk.stdout.take().expect("piped");
    let mut status = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(kiosk_out), &mut status)?;
    let status = status.trim().trim_start_matches("status on ").to_owned();
    println!();
    println!("  Portal is running.");
    println!("  Open {base}/r/{room} in a browser: the kiosk \"Demo kiosk\" is in that room.");
    if windowed {
        println!("  The kiosk's window is open on this display.");
    } else {
        println!("  No display here, so the kiosk runs headless; its state:");
        println!(
            "    curl -H \"Authorization: Bearer $(cat {})\" {status}/status",
            token_file.display()
        );
    }
    println!("  Server health: {base}/healthz   Metrics: {base}/metrics");
    println!();
    let exit = server.wait()?;
    let _ = kiosk.kill();
    let _ = kiosk.wait();
    if !exit.success() {
        bail!("portal-server exited with {exit}");
    }
    Ok(())
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Benchmarks, each against its peer in the same run. Servers are release builds.
fn bench(root: &Path, which: &str, quick: bool) -> Result<()> {
    const ALL: &[&str] = &["signaling", "docs", "browser", "kiosk", "ui"];
    let chosen: Vec<&str> = if which == "all" {
        ALL.to_vec()
    } else if ALL.contains(&which) {
        vec![which]
    } else {
        bail!(
            "unknown benchmark {which:?}; choose one of {} or all",
            ALL.join(", ")
        );
    };
    setup(root)?;
    web_build(root)?;
    let mut build = cargo();
    build.args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "portal-signaling",
        "--bin",
        "portal-server",
    ]);
    if chosen.contains(&"kiosk") {
        build.args(["-p", "portal-kiosk", "--bin", "portal-kiosk"]);
    }
    run(&mut build)?;
    if chosen.contains(&"ui") {
        run(cargo().args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "portal-ui",
            "--example",
            "tile_bench",
        ]))?;
    }
    let server = target_dir(root).join("release/portal-server");
    let kiosk = target_dir(root).join("release/portal-kiosk");
    for name in chosen {
        eprintln!("== bench {name}{}", if quick { " (quick)" } else { "" });
        let report = match name {
            "signaling" => bench::signaling(&server, root, quick)?,
            "docs" => bench::docs(&server, root, quick)?,
            "browser" => bench::browser(&server, root, quick)?,
            "kiosk" => bench::kiosk(&server, &kiosk, root, quick)?,
            "ui" => bench::ui(&target_dir(root).join("release/examples/tile_bench"), quick)?,
            _ => unreachable!("checked above"),
        };
        println!("{report}");
    }
    Ok(())
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

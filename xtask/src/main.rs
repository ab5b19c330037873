//! `cargo xtask`: Portal's project commands.
//!
//! - `setup`  installs what the build and the tests need (apt-get, npm ci); idempotent.
//! - `demo`   builds and starts the rooms server and prints the URL to open.
//! - `test`   everything CI runs: format, lints, type check, unit, integration and
//!   browser-side tests.
//! - `lint`   format check, clippy, the TypeScript type check and the architecture rules.
//! - `gen`    regenerates the TypeScript wire types from `portal-proto`.
//! - `bundle` a signed RAUC bundle and its update-feed manifest.
//! - `bench`  measured comparisons against the peers named in the README.
//! - `yocto`  the kiosk image's offline checks; `yocto-crates` writes its crate list.

mod bench;
mod bundle;
mod cycles;
mod demo;
mod setup;
mod tally;
mod yocto;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use demo::demo;
use setup::setup;
use tally::Tally;

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
    /// Build a signed RAUC bundle and the update feed's manifest.json beside it.
    Bundle(bundle::BundleArgs),
    /// Run benchmarks and print tables.
    Bench {
        /// Which benchmark: signaling, docs, browser, kiosk, pair, shared, ui, ota or all.
        #[arg(default_value = "all")]
        which: String,
        /// Short phases (a smoke run, not a measurement).
        #[arg(long)]
        quick: bool,
    },
    /// The kiosk image's offline checks (kas, oelint-adv, layout, bitbake -p/-g).
    Yocto,
    /// Write yocto/meta-portal's crate list (portal-crates.inc) from Cargo.lock.
    YoctoCrates {
        /// Fail when the list no longer matches Cargo.lock instead of writing it.
        #[arg(long)]
        check: bool,
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
        Cmd::Bundle(args) => bundle::bundle(&args),
        Cmd::Bench { which, quick } => bench(&root, &which, quick),
        Cmd::Yocto => yocto::check(&root),
        Cmd::YoctoCrates { check } => yocto::crates(&root, check),
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
    let image = yocto::start(&target_dir(root).join("yocto-checks.log"))?;
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
    tally.collect(image)?;
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

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Benchmarks, each against its peer in the same run. Servers are release builds.
fn bench(root: &Path, which: &str, quick: bool) -> Result<()> {
    const ALL: &[&str] = &[
        "signaling",
        "docs",
        "browser",
        "kiosk",
        "pair",
        "shared",
        "ui",
        "ota",
    ];
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
    if ["kiosk", "pair", "shared"]
        .iter()
        .any(|b| chosen.contains(b))
    {
        build.args(["-p", "portal-kiosk", "--bin", "portal-kiosk"]);
    }
    run(&mut build)?;
    if chosen.contains(&"ota") {
        run(cargo().args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "portal-ota",
            "--example",
            "ota_fetch",
        ]))?;
    }
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
            "pair" => bench::pair(&server, &kiosk, root, quick)?,
            "shared" => bench::shared(&server, &kiosk, root, quick)?,
            "ui" => bench::ui(&target_dir(root).join("release/examples/tile_bench"), quick)?,
            "ota" => bench::ota(
                &server,
                &target_dir(root).join("release/examples/ota_fetch"),
                quick,
            )?,
            _ => unreachable!("checked above"),
        };
        println!("{report}");
    }
    Ok(())
}

//! `cargo xtask demo`: the rooms server and a kiosk in that room, and the URL to open.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::setup::setup;
use crate::{cargo, run, target_dir, web_build};

pub(crate) fn demo(root: &Path, bind: &str, room: &str) -> Result<()> {
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

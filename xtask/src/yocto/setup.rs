//! Part of `cargo xtask setup`: locale, builder user and the Python tools.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, ensure};

use super::bitbake::{builder_ids, locale_available};
use super::*;
use crate::setup::is_root;

// ---------------------------------------------------------------------------------------
// setup

/// Part of `cargo xtask setup`: the en_US.UTF-8 locale, the unprivileged builder (as
/// root) and the Python tools (oelint-adv, kas, jsonschema) in a virtualenv.
pub(crate) fn setup() -> Result<()> {
    if !locale_available() {
        let gen_file = Path::new("/etc/locale.gen");
        let text = std::fs::read_to_string(gen_file).unwrap_or_default();
        if !text.lines().any(|l| l.trim() == "en_US.UTF-8 UTF-8") {
            let text = if text.contains("# en_US.UTF-8 UTF-8") {
                text.replace("# en_US.UTF-8 UTF-8", "en_US.UTF-8 UTF-8")
            } else {
                format!("{text}en_US.UTF-8 UTF-8\n")
            };
            sudo_write(gen_file, &text)?;
        }
        run(&mut sudo(&["locale-gen"]))?;
    }
    if is_root() && builder_ids()?.is_none() {
        run(Command::new("useradd").args([
            "--create-home",
            "--shell",
            "/bin/sh",
            "--comment",
            "runs bitbake for cargo xtask yocto",
            BUILDER,
        ]))?;
    }
    let venv = cache_dir()?.join("venv");
    let stamp = venv.join(".portal-tools");
    let wanted = PY_TOOLS.join("\n");
    if !std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PY_TOOLS))?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(())
}

fn sudo(args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    } else {
        let mut c = Command::new("sudo");
        c.args(args);
        c
    }
}

fn sudo_write(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut child = sudo(&["tee", &path.to_string_lossy()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(text.as_bytes())?;
    ensure!(child.wait()?.success(), "cannot write {}", path.display());
    Ok(())
}

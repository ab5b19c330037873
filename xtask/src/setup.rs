//! `cargo xtask setup`: the Debian packages and npm projects the build and tests need.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::run;

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
    // The windowed kiosk's test reads the pairing QR code off the screen.
    "zbar-tools",
    "libgl1-mesa-dri",
    "libegl1",
    "rauc",
    "dbus",
    "squashfs-tools",
    "openssl",
    // `cargo xtask yocto`: bitbake's host tools, its locale, the venv for oelint-adv and kas.
    "chrpath",
    "diffstat",
    "gawk",
    "cpio",
    "lz4",
    "zstd",
    "file",
    "locales",
    "python3-venv",
    "python3-pip",
];

/// npm projects, relative to the repository root.
const NPM_PROJECTS: &[&str] = &["signaling/web"];

pub(crate) fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn setup(root: &Path) -> Result<()> {
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
    crate::yocto::setup()?;
    Ok(())
}

pub(crate) fn is_root() -> bool {
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

//! RAUC without hardware, as rauc's own tests run it: test keys made with `openssl`,
//! plain bundles made with `rauc bundle`, and a [`RaucSystem`]: two slots as image files,
//! a `custom` bootloader backend (a shell script keeping the boot order and each slot's
//! state in a file), a private `dbus-daemon` and `rauc service` on it.
//!
//! [`build_bundle`] is also what `cargo xtask bundle` runs.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::process::Process;

/// A CA and a code-signing certificate it issued (PEM files).
#[derive(Debug, Clone)]
pub struct TestKeys {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Makes `{name}-ca.pem` (basicConstraints=critical,CA:true) and `{name}.pem` +
/// `{name}.key` (extendedKeyUsage=codeSigning) in `dir`. Never commit them.
pub fn make_keys(dir: &Path, name: &str) -> io::Result<TestKeys> {
    let keys = TestKeys {
        ca_cert: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    let ca_key = dir.join(format!("{name}-ca.key"));
    let csr = dir.join(format!("{name}.csr"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n",
    )?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&keys.ca_cert)
        .args(["-days", "30", "-subj", &format!("/CN={name} test CA")])
        .args(["-addext", "basicConstraints=critical,CA:true"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]))?;
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(&keys.key)
        .arg("-out")
        .arg(&csr)
        .args(["-subj", &format!("/CN={name} signing")]))?;
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "30", "-set_serial", "2"])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(&keys.ca_cert)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&keys.cert))?;
    Ok(keys)
}

/// What goes into a bundle.
#[derive(Debug, Clone)]
pub struct BundleSpec<'a> {
    /// Images: each file `CLASS.EXT` becomes `[image.CLASS]` (e.g. `rootfs.img`).
    pub content: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
    pub compatible: &'a str,
    pub version: &'a str,
    pub out: &'a Path,
    /// A slot hook script run with `slot-post-install` after each image is written
    /// (before RAUC makes the slot bootable); tests use it to hold an install midway.
    pub post_install_hook: Option<&'a Path>,
}

/// The feed's manifest for a bundle, as JSON (see `portal_ota::Manifest`).
#[derive(Debug, Clone)]
pub struct BuiltBundle {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// Builds a plain, signed RAUC bundle at `spec.out` (replacing it) with `rauc bundle`.
pub fn build_bundle(spec: &BundleSpec<'_>) -> io::Result<BuiltBundle> {
    let stage = spec.out.with_extension("stage");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)?;
    let mut manifest = format!(
        "[update]\ncompatible={}\nversion={}\n\n[bundle]\nformat=plain\n",
        spec.compatible, spec.version
    );
    let hooks = if let Some(hook) = spec.post_install_hook {
        std::fs::copy(hook, stage.join("hook.sh"))?;
        run(Command::new("chmod").arg("755").arg(stage.join("hook.sh")))?;
        manifest.push_str("\n[hooks]\nfilename=hook.sh\n");
        "hooks=post-install\n"
    } else {
        ""
    };
    let mut entries: Vec<_> = std::fs::read_dir(spec.content)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() || name == "manifest.raucm" {
            continue;
        }
        let class = name.split('.').next().unwrap_or(&name);
        let _ = write!(manifest, "\n[image.{class}]\nfilename={name}\n{hooks}");
        // A hard link when it can, so large images are not copied.
        if std::fs::hard_link(entry.path(), stage.join(&name)).is_err() {
            std::fs::copy(entry.path(), stage.join(&name))?;
        }
    }
    std::fs::write(stage.join("manifest.raucm"), manifest)?;
    let _ = std::fs::remove_file(spec.out);
    let result = run(Command::new("rauc")
        .arg("bundle")
        .arg(format!("--cert={}", spec.cert.display()))
        .arg(format!("--key={}", spec.key.display()))
        .arg(&stage)
        .arg(spec.out));
    let _ = std::fs::remove_dir_all(&stage);
    result?;
    let (size, sha256) = sha256_file(spec.out)?;
    Ok(BuiltBundle {
        path: spec.out.to_owned(),
        size,
        sha256,
    })
}

/// Writes `manifest.json` for `bundle` beside it (the feed's layout:
/// `{updates-dir}/{compatible}/manifest.json`).
pub fn write_feed_manifest(
    bundle: &BuiltBundle,
    compatible: &str,
    version: &str,
    notes: &str,
) -> io::Result<PathBuf> {
    let name = bundle
        .path
        .file_name()
        .ok_or_else(|| io::Error::other("bundle path has no file name"))?
        .to_string_lossy();
    let json = serde_json::json!({
        "version": version,
        "bundle": name,
        "size": bundle.size,
        "sha256": bundle.sha256,
        "notes": notes,
        "min_version": null,
        "allow_downgrade": false,
        "compatible": compatible,
    });
    let path = bundle.path.with_file_name("manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json)?)?;
    Ok(path)
}

/// Length and lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((size, format!("{:x}", hasher.finalize())))
}

/// The custom bootloader: `PRIMARY=`, `STATE_A=`, `STATE_B=`, `CURRENT=` in a file, each
/// call logged to `boot-state.log`. Like a real one it never names a bad slot as the one
/// to boot.
const BACKEND: &str = r#"#!/bin/sh
f="$PORTAL_BOOT_STATE"
echo "$*" >> "$f.log"
get() { sed -n "s/^$1=//p" "$f"; }
put() { sed -i "s/^$1=.*/$1=$2/" "$f"; }
other() { if [ "$1" = A ]; then echo B; else echo A; fi; }
case "$1" in
  get-primary)
    p=$(get PRIMARY)
    if [ "$(get STATE_$p)" = good ]; then echo "$p"; else other "$p"; fi ;;
  # Like barebox's attempts counter: the slot made primary is bootable again.
  set-primary) put PRIMARY "$2"; put "STATE_$2" good ;;
  get-state) get "STATE_$2" ;;
  set-state) put "STATE_$2" "$3" ;;
  get-current) get CURRENT ;;
  *) exit 1 ;;
esac
"#;

/// Two file-backed slots (`rootfs.0` = A, `rootfs.1` = B) behind `rauc service` on a
/// private bus, booted from A.
#[derive(Debug)]
pub struct RaucSystem {
    dir: PathBuf,
    bus: Option<Process>,
    service: Option<Process>,
    address: String,
}

impl RaucSystem {
    /// Sets up the slots (`slot_bytes` each), the config trusting `keyring` and
    /// expecting `compatible`, and starts the bus and RAUC booted from A.
    pub fn start(
        dir: &Path,
        compatible: &str,
        keyring: &Path,
        slot_bytes: u64,
    ) -> io::Result<Self> {
        let dir = dir.to_owned();
        for sub in ["mnt", "rauc-data"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        for slot in ["A", "B"] {
            std::fs::File::create(dir.join(format!("slot-{slot}.img")))?.set_len(slot_bytes)?;
        }
        std::fs::write(
            dir.join("boot-state"),
            "PRIMARY=A\nSTATE_A=good\nSTATE_B=good\nCURRENT=A\n",
        )?;
        let backend = dir.join("backend.sh");
        std::fs::write(&backend, BACKEND)?;
        run(Command::new("chmod").arg("755").arg(&backend))?;
        let d = dir.display();
        std::fs::write(
            dir.join("system.conf"),
            format!(
                "[system]\ncompatible={compatible}\nbootloader=custom\n\
                 data-directory={d}/rauc-data\n\n\
                 [keyring]\npath={}\ncheck-purpose=codesign\n\n\
                 [handlers]\nbootloader-custom-backend={d}/backend.sh\n\n\
                 [slot.rootfs.0]\ndevice={d}/slot-A.img\ntype=raw\nbootname=A\n\n\
                 [slot.rootfs.1]\ndevice={d}/slot-B.img\ntype=raw\nbootname=B\n",
                keyring.display()
            ),
        )?;
        let socket = dir.join("bus");
        let (bus, address) = Process::start_announced(
            "dbus-daemon",
            Command::new("dbus-daemon")
                .arg("--session")
                .arg(format!("--address=unix:path={}", socket.display()))
                .args(["--nofork", "--print-address"]),
            Duration::from_secs(10),
        )?;
        let mut system = RaucSystem {
            dir,
            bus: Some(bus),
            service: None,
            address,
        };
        system.boot("A")?;
        Ok(system)
    }

    /// The bus address (`unix:path=...`) RAUC is on.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn slot_image(&self, bootname: &str) -> PathBuf {
        self.dir.join(format!("slot-{bootname}.img"))
    }

    /// A value from the bootloader's state file (`PRIMARY`, `STATE_A`, ...).
    pub fn boot_var(&self, key: &str) -> String {
        std::fs::read_to_string(self.dir.join("boot-state"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
            .unwrap_or_default()
    }

    /// What the bootloader would start now: the primary slot if good, else the other.
    pub fn next_boot(&self) -> String {
        let primary = self.boot_var("PRIMARY");
        if self.boot_var(&format!("STATE_{primary}")) == "good" {
            primary
        } else if primary == "A" {
            "B".into()
        } else {
            "A".into()
        }
    }

    /// Kills RAUC at once (SIGKILL), as a power cut would.
    pub fn kill_service(&mut self) {
        if let Some(mut s) = self.service.take() {
            let _ = s.kill();
        }
    }

    /// A simulated restart: RAUC comes back believing `bootname` was booted.
    pub fn boot(&mut self, bootname: &str) -> io::Result<()> {
        self.kill_service();
        let state = self.dir.join("boot-state");
        let text = std::fs::read_to_string(&state)?;
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("CURRENT=") {
                    format!("CURRENT={bootname}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&state, text)?;
        let d = self.dir.display();
        let script = format!(
            "echo rauc-starting; exec rauc service --conf={d}/system.conf --mount={d}/mnt \
             --override-boot-slot={bootname}"
        );
        let (service, _) = Process::start_announced(
            "rauc service",
            Command::new("sh")
                .args(["-c", &script])
                .env("DBUS_STARTER_BUS_TYPE", "session")
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .env("PORTAL_BOOT_STATE", &state),
            Duration::from_secs(10),
        )?;
        self.service = Some(service);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.rauc_cli(&["status"]).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(io::Error::other("rauc service did not come up on the bus"))
    }

    /// Runs the `rauc` client against this system's service; its stdout.
    pub fn rauc_cli(&self, args: &[&str]) -> io::Result<String> {
        let out = Command::new("rauc")
            .args(args)
            .env("DBUS_STARTER_BUS_TYPE", "session")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(io::Error::other(format!(
                "rauc {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

impl Drop for RaucSystem {
    fn drop(&mut self) {
        self.kill_service();
        // A RAUC killed mid-install leaves its bundle mounted (on a loop device that
        // goes with the lazy unmount).
        let mnt = self.dir.join("mnt");
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        for target in mounts.lines().filter_map(|l| l.split(' ').nth(1)) {
            if Path::new(target).starts_with(&mnt) {
                let _ = Command::new("umount").args(["-l", target]).status();
            }
        }
        if let Some(mut bus) = self.bus.take() {
            let _ = bus.kill();
        }
    }
}

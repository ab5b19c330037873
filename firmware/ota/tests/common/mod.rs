//! The rig every RAUC test uses: test keys, a RAUC system with two file-backed slots on
//! a private bus, a real `portal-server --updates-dir` feed, and the `portal-ota` binary.
//!
//! Needs `portal-server` built (`cargo build -p portal-signaling --bin portal-server`),
//! `rauc`, `dbus-daemon`, `mksquashfs` and `openssl`, and root (RAUC mounts the bundle).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use portal_testkit::rauc::{
    BuiltBundle, BundleSpec, RaucSystem, TestKeys, build_bundle, make_keys, write_feed_manifest,
};
use portal_testkit::{Process, ServerProc, TempDir, wait_until};

pub const COMPATIBLE: &str = "portal-test";
pub const SLOT_BYTES: u64 = 16 << 20;

pub struct Rig {
    pub keys: TestKeys,
    pub rauc: RaucSystem,
    pub server: ServerProc,
    /// The rootfs image in the offered bundle.
    pub image: Vec<u8>,
    /// Last, so it is removed after RAUC and the server are gone.
    pub dir: TempDir,
}

impl Rig {
    /// RAUC booted from A, trusting `good` keys; a feed offering nothing yet.
    pub fn new(tag: &str) -> Rig {
        let dir = TempDir::new(&format!("ota-{tag}"));
        let keys = make_keys(dir.path(), "good").expect("test keys");
        let sys = dir.join("sys");
        std::fs::create_dir_all(&sys).unwrap();
        let rauc = RaucSystem::start(&sys, COMPATIBLE, &keys.ca_cert, SLOT_BYTES).expect("rauc");
        std::fs::create_dir_all(dir.join("feed").join(COMPATIBLE)).unwrap();
        std::fs::create_dir_all(dir.join("ota")).unwrap();
        let server = ServerProc::builder()
            .data_dir(dir.join("srv"))
            .arg("--updates-dir")
            .arg(dir.join("feed"))
            .start();
        Rig {
            dir,
            keys,
            rauc,
            server,
            image: Vec::new(),
        }
    }

    /// Builds a bundle of a `len`-byte rootfs image into the feed, signed with `keys`
    /// (default: the trusted ones) for `compatible`, with its manifest.
    pub fn offer(
        &mut self,
        version: &str,
        len: usize,
        keys: Option<&TestKeys>,
        compatible: &str,
    ) -> BuiltBundle {
        self.offer_with_hook(version, len, keys, compatible, None)
    }

    /// [`Rig::offer`] with a slot post-install hook in the bundle.
    pub fn offer_with_hook(
        &mut self,
        version: &str,
        len: usize,
        keys: Option<&TestKeys>,
        compatible: &str,
        post_install_hook: Option<&Path>,
    ) -> BuiltBundle {
        let keys = keys.unwrap_or(&self.keys).clone();
        let content = self.dir.join(format!("content-{version}"));
        std::fs::create_dir_all(&content).unwrap();
        self.image = portal_testkit::noise(len, 7);
        std::fs::write(content.join("rootfs.img"), &self.image).unwrap();
        let out = self.feed_dir().join(format!("portal-{version}.raucb"));
        let built = build_bundle(&BundleSpec {
            content: &content,
            cert: &keys.cert,
            key: &keys.key,
            compatible,
            version,
            out: &out,
            post_install_hook,
        })
        .expect("rauc bundle");
        write_feed_manifest(&built, compatible, version, "test notes").unwrap();
        built
    }

    pub fn feed_dir(&self) -> PathBuf {
        self.dir.join("feed").join(COMPATIBLE)
    }

    /// Edits the feed's manifest.
    pub fn edit_manifest(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let path = self.feed_dir().join("manifest.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
    }

    pub fn ota_dir(&self) -> PathBuf {
        self.dir.join("ota")
    }

    /// The agent's command line; `extra` adds or overrides flags.
    pub fn agent_cmd(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portal-ota"));
        cmd.arg("--feed")
            .arg(self.server.http_url(""))
            .arg("--data-dir")
            .arg(self.ota_dir())
            .args(["--dbus-address", self.rauc.address()])
            .args(["--current-version", "1.0.0", "--check-every", "3600"])
            .arg("--reboot-cmd")
            .arg(format!("touch {}", self.dir.join("rebooted").display()))
            .arg("--ui-ready-file")
            .arg(self.dir.join("ui-up"))
            .args(extra);
        cmd
    }

    /// Starts the agent (its last status file removed, so waits see only this run's).
    pub fn start_agent(&self, extra: &[&str]) -> Process {
        let _ = std::fs::remove_file(self.ota_dir().join("ota-status.json"));
        Process::start_announced(
            "portal-ota",
            &mut self.agent_cmd(extra),
            Duration::from_secs(20),
        )
        .expect("portal-ota starts")
        .0
    }

    /// The agent's last status (`ota-status.json`).
    pub fn status(&self) -> serde_json::Value {
        std::fs::read(self.ota_dir().join("ota-status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&serde_json::Value) -> bool,
    ) {
        wait_until(timeout, what, || f(&self.status()));
    }

    /// Waits for the agent to ask for the restart and exit.
    pub fn wait_reboot(&self, agent: &mut Process, timeout: Duration) {
        wait_until(timeout, "the agent asks for a restart", || {
            matches!(agent.try_wait(), Ok(Some(_)))
        });
        assert!(
            self.dir.join("rebooted").exists(),
            "status: {}",
            self.status()
        );
        std::fs::remove_file(self.dir.join("rebooted")).unwrap();
    }

    /// A counter from the server's `/metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let url = self.server.http_url("/metrics");
        let out = Command::new("curl").args(["-sf", &url]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    }

    /// Whether slot `bootname` holds the offered image.
    pub fn slot_has_image(&self, bootname: &str) -> bool {
        let slot = std::fs::read(self.rauc.slot_image(bootname)).unwrap();
        slot.starts_with(&self.image)
    }

    /// Whether slot `bootname` was never written (still zeros).
    pub fn slot_untouched(&self, bootname: &str) -> bool {
        std::fs::read(self.rauc.slot_image(bootname))
            .unwrap()
            .iter()
            .all(|b| *b == 0)
    }

    /// What the bootloader backend was asked, in order.
    pub fn boot_log(&self) -> String {
        std::fs::read_to_string(self.rauc.dir().join("boot-state.log")).unwrap_or_default()
    }
}

pub fn state(v: &serde_json::Value) -> &str {
    v["state"].as_str().unwrap_or("")
}

pub fn error_code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

pub fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

//! The web engines that can show the player page: Chromium in app mode (desktops, tests)
//! and WPE WebKit's `cog` (the device image). Each turns a URL and a screen area into a
//! command line; the kiosk owns the process and kills it (with its process group, so no
//! renderer outlives it) when the video goes.

use std::ffi::OsString;
use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::process::CommandExt as _;

use crate::config::Area;

/// A browser that can open one URL in a window of its own.
pub(crate) trait WebEngine: Send + Sync + Debug {
    /// Starts the engine showing `url` in `area` (`None`: the whole screen). The child
    /// leads a process group of its own.
    fn launch(&self, url: &str, area: Option<Area>) -> io::Result<Child>;
}

/// Chromium with one app window (`--app=URL`: no tabs, no address bar) and a fresh
/// profile that is removed with this value.
#[derive(Debug)]
pub(crate) struct ChromiumApp {
    binary: PathBuf,
    headless: bool,
    profile: ProfileDir,
}

impl ChromiumApp {
    /// Makes the profile directory; the binary is checked when launching.
    pub(crate) fn new(binary: impl Into<PathBuf>, headless: bool) -> io::Result<ChromiumApp> {
        Ok(ChromiumApp {
            binary: binary.into(),
            headless,
            profile: ProfileDir::new("chromium")?,
        })
    }

    /// The command line's arguments (after the binary).
    pub(crate) fn args(&self, url: &str, area: Option<Area>, root: bool) -> Vec<OsString> {
        let mut user_data_dir = OsString::from("--user-data-dir=");
        user_data_dir.push(self.profile.path());
        let mut args: Vec<OsString> = vec![
            user_data_dir,
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-translate".into(),
            "--disable-session-crashed-bubble".into(),
            // The kiosk starts and stops the video; no click ever reaches the page.
            "--autoplay-policy=no-user-gesture-required".into(),
        ];
        if self.headless {
            args.extend(["--headless=new".into(), "--disable-gpu".into()]);
        }
        // Chromium refuses to run as root with its sandbox on.
        if root {
            args.push("--no-sandbox".into());
        }
        match area {
            Some(a) => args.extend([
                format!("--window-position={},{}", a.x, a.y).into(),
                format!("--window-size={},{}", a.width, a.height).into(),
            ]),
            None if self.headless => args.push("--window-size=1280,720".into()),
            None => args.push("--kiosk".into()),
        }
        args.push(format!("--app={url}").into());
        args
    }
}

impl WebEngine for ChromiumApp {
    fn launch(&self, url: &str, area: Option<Area>) -> io::Result<Child> {
        let root = rustix::process::geteuid().is_root();
        spawn(&self.binary, self.args(url, area, root))
    }
}

/// WPE WebKit's `cog` launcher (`cog [options] URL`), as built by meta-webkit for the
/// device image. Its options, from cog's `--help` (0.16–0.18):
///
/// - `--platform=NAME` (`-P`): the platform plug-in: `drm` (straight to KMS, full
///   screen), `wl` (a Wayland client, placed by the compositor), `x11`, `gtk4`,
///   `headless`. Chosen from the environment here: `wl` under Wayland, `x11` under X,
///   else `drm`; `COG_PLATFORM_NAME` (read by cog itself) wins when set.
/// - `--webprocess-failure=exit`: a crashed web process ends cog instead of showing an
///   error page, so the kiosk sees the engine gone.
/// - WebKitSettings properties as options: `--enable-mediasource=true` (YouTube plays
///   through MSE) and `--media-playback-requires-user-gesture=false` (nobody clicks).
///
/// Cog cannot place its view: `drm` fills the screen and Wayland leaves placement to the
/// compositor, so `area` is not passed on.
#[derive(Debug)]
pub(crate) struct Cog {
    binary: PathBuf,
}

impl Cog {
    pub(crate) fn new(binary: impl Into<PathBuf>) -> Cog {
        Cog {
            binary: binary.into(),
        }
    }

    /// The command line's arguments; `env` reads the environment (tests pass their own).
    pub(crate) fn args(url: &str, env: &dyn Fn(&str) -> Option<OsString>) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if env("COG_PLATFORM_NAME").is_none() {
            let platform = if env("WAYLAND_DISPLAY").is_some() {
                "wl"
            } else if env("DISPLAY").is_some() {
                "x11"
            } else {
                "drm"
            };
            args.push(format!("--platform={platform}").into());
        }
        args.extend([
            "--webprocess-failure=exit".into(),
            "--enable-mediasource=true".into(),
            "--media-playback-requires-user-gesture=false".into(),
            url.into(),
        ]);
        args
    }
}

impl WebEngine for Cog {
    fn launch(&self, url: &str, area: Option<Area>) -> io::Result<Child> {
        if area.is_some() {
            tracing::debug!("cog cannot place its view; it fills the screen");
        }
        spawn(&self.binary, Cog::args(url, &|k| std::env::var_os(k)))
    }
}

/// Starts `binary` with `args` in a process group of its own, its output discarded
/// (a browser's console chatter is not the kiosk's log).
fn spawn(binary: &Path, args: Vec<OsString>) -> io::Result<Child> {
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

/// Kills `child` and everything in its process group, and reaps it. The group goes
/// even when its leader has exited already (a renderer may outlive the browser process):
/// its id stays reserved while any member lives.
pub(crate) fn kill_tree(child: &mut Child) {
    let group = rustix::process::Pid::from_child(child);
    match rustix::process::kill_process_group(group, rustix::process::Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => tracing::warn!(error = %e, "killing the web engine's process group"),
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A private (0700) directory under the temp dir, removed on drop: a browser profile no
/// one else reads and no launch inherits.
#[derive(Debug)]
pub(crate) struct ProfileDir {
    path: PathBuf,
}

impl ProfileDir {
    pub(crate) fn new(prefix: &str) -> io::Result<ProfileDir> {
        let name = format!("portal-{prefix}-{:032x}", rand::random::<u128>());
        let path = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(ProfileDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProfileDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "removing a browser profile");
        }
    }
}

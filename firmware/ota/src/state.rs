//! The agent's state on disk: one JSON file in the data directory, replaced atomically
//! (write a temporary file, fsync it, rename it over, fsync the directory), so a power
//! cut leaves either the old state or the new one and every step can be resumed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::ErrorInfo;
use crate::manifest::Manifest;

/// The state file's name in the data directory.
pub const STATE_FILE: &str = "ota-state.json";

/// Where the agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    #[default]
    Idle,
    Checking,
    Downloading,
    Ready,
    Installing,
    /// Installed; waiting to restart, or restarted into the new slot and checking its
    /// health.
    Rebooting,
    Failed,
}

/// Everything that must survive a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Persisted {
    pub phase: Phase,
    /// The version offered and being fetched, installed or booted.
    #[serde(default)]
    pub available: Option<Manifest>,
    /// The slot RAUC installed into (its name, e.g. `rootfs.1`).
    #[serde(default)]
    pub target_slot: Option<String>,
    /// The slot that ran before the update, to tell a fallback from a good boot.
    #[serde(default)]
    pub previous_slot: Option<String>,
    /// The last failure, kept until an update gets through.
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    /// SHA-256 of a bundle refused for good (bad signature, wrong compatible...): not
    /// fetched again until the feed offers another.
    #[serde(default)]
    pub refused_sha256: Option<String>,
    /// The installer was asked to install at once (outside the window), still never
    /// during a call.
    #[serde(default)]
    pub install_now: bool,
}

/// Reads the state file; a missing one is a fresh start, an unreadable one too (logged),
/// so a corrupt file never stops updates for good.
pub fn load(dir: &Path) -> Persisted {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "state file unreadable; starting afresh");
            Persisted::default()
        }),
        Err(_) => Persisted::default(),
    }
}

/// Writes the state file atomically.
pub fn save(dir: &Path, state: &Persisted) -> std::io::Result<()> {
    let path = dir.join(STATE_FILE);
    let tmp: PathBuf = dir.join(format!("{STATE_FILE}.tmp"));
    let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The version the device runs, as shown with the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub state: Phase,
    pub current: Version,
    pub available: Option<Available>,
    /// Percent of the download or the install.
    pub progress: Option<u8>,
    pub error: Option<ErrorInfo>,
    /// The update waits for the call to end.
    pub deferred_by_call: bool,
}

/// What the UI shows of an offered update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Available {
    pub version: Version,
    pub notes: String,
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads() {
        let dir = std::env::temp_dir().join(format!("portal-ota-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(load(&dir), Persisted::default());
        let state = Persisted {
            phase: Phase::Ready,
            install_now: true,
            ..Persisted::default()
        };
        save(&dir, &state).unwrap();
        assert_eq!(load(&dir), state);
        std::fs::write(dir.join(STATE_FILE), b"{garbage").unwrap();
        assert_eq!(load(&dir), Persisted::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

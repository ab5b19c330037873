//! What can go wrong with an update, precisely enough for the agent (and later the
//! kiosk's settings page) to act on it.

use serde::{Deserialize, Serialize};

/// An update that could not go ahead. Each variant says why; [`OtaError::code`] is the
/// stable name kept in the state file and shown by the UI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtaError {
    /// RAUC refused the bundle's signature (another key, a tampered bundle).
    #[error("the bundle's signature is not trusted: {0}")]
    BadSignature(String),
    /// The bundle (or the manifest) is for another kind of device.
    #[error("the update is for {found:?}, this device is {expected:?}")]
    WrongCompatible { expected: String, found: String },
    /// The feed offers an older version and does not allow going back.
    #[error("the feed offers {offered}, older than the running {current}")]
    OlderVersion { current: String, offered: String },
    /// The downloaded bundle carries another version than the manifest named.
    #[error("the bundle is version {bundle}, the manifest says {manifest}")]
    VersionMismatch { manifest: String, bundle: String },
    /// This device runs a version too old to go straight to the offered one.
    #[error("this device runs {current}; the update needs at least {minimum}")]
    BelowMinimum { current: String, minimum: String },
    /// The download's SHA-256 is not the manifest's.
    #[error("the download's SHA-256 is {actual}, the manifest says {expected}")]
    ShaMismatch { expected: String, actual: String },
    /// The download ended before the manifest's size.
    #[error("the download stopped at {got} of {expected} bytes")]
    Truncated { expected: u64, got: u64 },
    /// The server sent more than the manifest's size.
    #[error("the server sent more than the manifest's {expected} bytes")]
    Oversize { expected: u64 },
    /// The feed answered something that is not a valid manifest.
    #[error("the update feed answered garbage: {0}")]
    GarbageFeed(String),
    /// Not enough free space in the data directory for the bundle.
    #[error("{needed} bytes needed for the download, {available} free")]
    DiskFull { needed: u64, available: u64 },
    /// The feed could not be reached or answered an HTTP error.
    #[error("update feed: {0}")]
    Network(String),
    /// RAUC failed to install for another reason (or stopped answering).
    #[error("install failed: {0}")]
    Install(String),
    /// D-Bus or the RAUC service itself.
    #[error("RAUC: {0}")]
    Rauc(String),
    /// The new slot booted but did not become healthy in time; it was marked bad.
    #[error("the new version was not healthy in time ({0}); back to the previous one")]
    HealthCheck(String),
    /// The bootloader started the old slot instead of the new one.
    #[error("the new slot did not boot; running {0} again")]
    BootFailed(String),
    /// A local file operation failed.
    #[error("{0}")]
    Io(String),
}

impl OtaError {
    /// The stable name of the error, for the state file and the UI.
    pub fn code(&self) -> &'static str {
        match self {
            OtaError::BadSignature(_) => "badSignature",
            OtaError::WrongCompatible { .. } => "wrongCompatible",
            OtaError::OlderVersion { .. } => "olderVersion",
            OtaError::VersionMismatch { .. } => "versionMismatch",
            OtaError::BelowMinimum { .. } => "belowMinimum",
            OtaError::ShaMismatch { .. } => "shaMismatch",
            OtaError::Truncated { .. } => "truncated",
            OtaError::Oversize { .. } => "oversize",
            OtaError::GarbageFeed(_) => "garbageFeed",
            OtaError::DiskFull { .. } => "diskFull",
            OtaError::Network(_) => "network",
            OtaError::Install(_) => "install",
            OtaError::Rauc(_) => "rauc",
            OtaError::HealthCheck(_) => "healthCheck",
            OtaError::BootFailed(_) => "bootFailed",
            OtaError::Io(_) => "io",
        }
    }

    /// Whether trying the same download again soon can help (a dropped link, a server
    /// restart), as opposed to a bundle that will never be accepted.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            OtaError::Truncated { .. } | OtaError::Network(_) | OtaError::Io(_)
        )
    }

    /// Whether the offered bundle itself is refused: it is not fetched again until the
    /// feed offers another one.
    pub fn refuses_bundle(&self) -> bool {
        matches!(
            self,
            OtaError::BadSignature(_)
                | OtaError::WrongCompatible { .. }
                | OtaError::ShaMismatch { .. }
                | OtaError::Oversize { .. }
                | OtaError::OlderVersion { .. }
                | OtaError::VersionMismatch { .. }
                | OtaError::BelowMinimum { .. }
        )
    }

    /// Reads RAUC's `LastError` after a failed install.
    pub fn from_rauc_error(message: &str) -> OtaError {
        let lower = message.to_ascii_lowercase();
        if lower.contains("compatible mismatch") || lower.contains("compatible") {
            let found = message
                .split("has '")
                .nth(1)
                .and_then(|s| s.split('\'').next())
                .unwrap_or("")
                .to_owned();
            return OtaError::WrongCompatible {
                expected: String::new(),
                found,
            };
        }
        if lower.contains("signature") || lower.contains("verif") || lower.contains("certificate") {
            return OtaError::BadSignature(message.to_owned());
        }
        OtaError::Install(message.to_owned())
    }

    /// What the state file keeps of it.
    pub fn info(&self) -> ErrorInfo {
        ErrorInfo {
            code: self.code().to_owned(),
            message: self.to_string(),
        }
    }
}

/// An error as the state file and the UI see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

impl From<std::io::Error> for OtaError {
    fn from(e: std::io::Error) -> Self {
        OtaError::Io(e.to_string())
    }
}

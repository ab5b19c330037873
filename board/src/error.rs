//! The board's error type: a kind a caller can act on, and a message for people.

/// What went wrong, for a caller that decides what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No device of the wanted kind exists (no camera plugged in).
    NoDevice,
    /// The configured device id is not present (unplugged, renamed).
    UnknownDevice,
    /// The backend is unknown or not compiled into this build.
    BackendUnavailable,
    /// Reading the system's device lists failed.
    Io,
}

/// A board error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<std::io::Error>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    #[cfg_attr(not(feature = "linux"), allow(dead_code))]
    pub(crate) fn io(message: impl Into<String>, source: std::io::Error) -> Self {
        Error {
            kind: ErrorKind::Io,
            message: message.into(),
            source: Some(source),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

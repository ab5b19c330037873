//! The media crate's error type.

/// What went wrong, for a caller that decides what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// GStreamer itself could not start (no library, broken registry).
    #[error("GStreamer failed to initialise: {0}")]
    Init(#[source] gstreamer::glib::Error),
    /// One of this crate's own elements could not be registered with GStreamer.
    #[error("registering Portal's GStreamer elements failed: {0}")]
    Register(String),
    /// No element for this job exists on the system (a plugin package is missing).
    #[error("no GStreamer element for {what} (tried {tried})")]
    MissingElement { what: &'static str, tried: String },
    /// A pipeline description did not parse or link.
    #[error("pipeline {name:?} could not be built: {message}")]
    Build { name: &'static str, message: String },
    /// A pipeline refused to start.
    #[error("pipeline {name:?} failed to start")]
    Start { name: &'static str },
    /// The board could not provide a device.
    #[error(transparent)]
    Board(#[from] portal_board::Error),
    /// No frame has been decoded yet.
    #[error("no video frame decoded yet")]
    NoFrame,
    /// A frame's size, stride and data do not agree.
    #[error("malformed frame: {0}")]
    BadFrame(String),
    /// Encoding a PNG failed.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
    /// A video URL could not be played: the player's [`PlaybackError`] says why, so the
    /// caller can tell a broken link from a server that is down or a file that is not a
    /// video.
    #[error("cannot play {uri}: {error}")]
    Playback {
        uri: String,
        #[source]
        error: PlaybackError,
    },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why playing a URL failed, in words a caller can act on (show "not found" rather than
/// GStreamer's message, retry only what may work later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PlaybackErrorKind {
    /// The URL's scheme has no GStreamer source (`ftp:`, `javascript:`) or it is malformed.
    UnsupportedUri,
    /// The server (or file system) answered that there is no such file (HTTP 404, 410).
    NotFound,
    /// The server could not be reached (connection refused, no route, name not resolved)
    /// or the connection broke while reading.
    Unreachable,
    /// The file is not a video or audio format any installed plugin reads.
    NotMedia,
    /// A stream's codec has no decoder on this system (a plugin package is missing).
    MissingDecoder,
    /// Decoding failed part way (a corrupt file).
    Decode,
    /// Anything else GStreamer reported.
    Other,
}

impl std::fmt::Display for PlaybackErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlaybackErrorKind::UnsupportedUri => "unsupported URL",
            PlaybackErrorKind::NotFound => "not found",
            PlaybackErrorKind::Unreachable => "server unreachable",
            PlaybackErrorKind::NotMedia => "not a video",
            PlaybackErrorKind::MissingDecoder => "no decoder",
            PlaybackErrorKind::Decode => "decoding failed",
            PlaybackErrorKind::Other => "playback failed",
        })
    }
}

/// A playback failure: its kind and GStreamer's own message (for logs, not for people).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct PlaybackError {
    pub kind: PlaybackErrorKind,
    pub message: String,
}

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
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

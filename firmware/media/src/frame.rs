//! Decoded video frames, as the receiver hands them out and snapshots encode them.

use std::time::Duration;

use bytes::Bytes;

/// One decoded video frame, RGBA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    /// Bytes per row (at least `width * 4`).
    pub stride: u32,
    pub data: Bytes,
    pub pts: Option<Duration>,
}

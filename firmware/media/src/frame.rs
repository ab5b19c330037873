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

/// The video format of a decoded sample, when its caps say one.
pub(crate) fn video_info(sample: &gstreamer::Sample) -> Option<gstreamer_video::VideoInfo> {
    gstreamer_video::VideoInfo::from_caps(sample.caps()?).ok()
}

/// An RGBA `sample` (described by `info`) as a [`VideoFrame`], without copying its pixels.
pub(crate) fn to_frame(
    sample: &gstreamer::Sample,
    info: &gstreamer_video::VideoInfo,
) -> Option<VideoFrame> {
    let buffer = sample.buffer_owned()?;
    let pts = buffer.pts().map(|t| Duration::from_nanos(t.nseconds()));
    let mapped = buffer.into_mapped_buffer_readable().ok()?;
    Some(VideoFrame {
        width: info.width(),
        height: info.height(),
        stride: u32::try_from(*info.stride().first()?).ok()?,
        data: Bytes::from_owner(mapped),
        pts,
    })
}

/// A sample of our own holding `sample`'s buffer and caps (references, no pixels copied),
/// to keep past the callback: appsink reuses the sample it hands out for the next one,
/// and one we still held would be shared when it does (a GStreamer-CRITICAL about
/// `gst_sample_is_writable`).
pub(crate) fn kept(sample: &gstreamer::Sample) -> gstreamer::Sample {
    let buffer = sample.buffer_owned();
    let caps = sample.caps_owned();
    let mut own = gstreamer::Sample::builder();
    if let Some(buffer) = &buffer {
        own = own.buffer(buffer);
    }
    if let Some(caps) = &caps {
        own = own.caps(caps);
    }
    own.build()
}

/// `sample` as an RGBA [`VideoFrame`]: as it is when it already is RGBA, else converted
/// (a snapshot of a headless kiosk's frame, kept in the decoder's format).
pub(crate) fn rgba(sample: &gstreamer::Sample) -> Option<VideoFrame> {
    let info = video_info(sample)?;
    if info.format() == gstreamer_video::VideoFormat::Rgba {
        return to_frame(sample, &info);
    }
    let caps = gstreamer_video::VideoCapsBuilder::new()
        .format(gstreamer_video::VideoFormat::Rgba)
        .build();
    let limit = Some(gstreamer::ClockTime::from_seconds(2));
    match gstreamer_video::convert_sample(sample, &caps, limit) {
        Ok(converted) => to_frame(&converted, &video_info(&converted)?),
        Err(e) => {
            tracing::warn!(error = %e, "cannot convert a frame to RGBA");
            None
        }
    }
}

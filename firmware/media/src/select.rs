//! Picking elements at run time.
//!
//! The same image runs on a Pi 4 (hardware H.264 through V4L2 M2M), a Pi 5 (none) and a
//! laptop, so encoders and decoders are chosen by asking GStreamer's registry which
//! elements exist (`ElementFactory::find`), with the board's facts only as a hint that
//! skips hardware elements a board is known not to have.

use gstreamer as gst;
use portal_board::BoardFacts;

use crate::MediaError;

/// Whether GStreamer has an element factory of this name (false when GStreamer itself
/// cannot start).
pub fn has_element(name: &str) -> bool {
    crate::init().is_ok() && gst::ElementFactory::find(name).is_some()
}

/// The H.264 encoders, preferred first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum H264Encoder {
    /// V4L2 memory-to-memory hardware encoder (Pi 4).
    V4l2,
    /// x264, ultrafast / zerolatency.
    X264,
    /// Cisco's OpenH264.
    OpenH264,
}

impl H264Encoder {
    pub fn element(self) -> &'static str {
        match self {
            H264Encoder::V4l2 => "v4l2h264enc",
            H264Encoder::X264 => "x264enc",
            H264Encoder::OpenH264 => "openh264enc",
        }
    }

    /// The first encoder present on this system.
    pub fn pick(facts: &BoardFacts) -> Result<Self, MediaError> {
        let order = [H264Encoder::V4l2, H264Encoder::X264, H264Encoder::OpenH264];
        order
            .into_iter()
            .filter(|e| *e != H264Encoder::V4l2 || facts.try_hardware_h264_encode())
            .find(|e| has_element(e.element()))
            .ok_or_else(|| MediaError::MissingElement {
                what: "H.264 encoding",
                tried: order.map(H264Encoder::element).join(", "),
            })
    }
}

/// The H.264 decoder to use: hardware when present, else libav, else OpenH264.
pub fn h264_decoder(facts: &BoardFacts) -> Result<&'static str, MediaError> {
    let order = ["v4l2h264dec", "avdec_h264", "openh264dec"];
    order
        .into_iter()
        .filter(|e| *e != "v4l2h264dec" || facts.try_hardware_h264_decode())
        .find(|e| has_element(e))
        .ok_or_else(|| MediaError::MissingElement {
            what: "H.264 decoding",
            tried: order.join(", "),
        })
}

/// `name` if it exists, else a [`MediaError::MissingElement`].
pub fn require(name: &'static str, what: &'static str) -> Result<&'static str, MediaError> {
    if has_element(name) {
        Ok(name)
    } else {
        Err(MediaError::MissingElement {
            what,
            tried: name.to_owned(),
        })
    }
}

/// Loads the plugins of every element a call will use (the chosen H.264 encoder and
/// decoder, VP8, Opus, RTP depayloaders, the jitter buffer, conversion), returning how many
/// it loaded.
///
/// GStreamer loads a plugin's shared library the first time one of its elements is made;
/// for libav (`avdec_h264`, which pulls in FFmpeg) that is ~300 ms on a Pi-class CPU, and
/// it would otherwise fall on the first remote packet of the first call, between the
/// remote's keyframe and its first decoded frame. Run it on a spare thread at start-up;
/// elements that are missing are skipped (building the pipeline reports them).
pub fn preload(facts: &BoardFacts) -> usize {
    if crate::init().is_err() {
        return 0;
    }
    let mut names: Vec<&str> = vec![
        "appsrc",
        "appsink",
        "rtpjitterbuffer",
        "rtph264depay",
        "h264parse",
        "rtpvp8depay",
        "vp8dec",
        "vp8enc",
        "rtpopusdepay",
        "opusdec",
        "opusenc",
        "videoconvert",
        "videoscale",
        "videorate",
        "audioconvert",
        "audioresample",
        "level",
    ];
    names.extend(h264_decoder(facts).ok());
    names.extend(H264Encoder::pick(facts).ok().map(H264Encoder::element));
    names
        .into_iter()
        .filter(|name| {
            // Making (and dropping) an element loads its plugin and runs its class set-up.
            gst::ElementFactory::make(name).build().is_ok()
        })
        .count()
}

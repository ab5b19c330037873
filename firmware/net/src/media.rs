//! The seam between the network side and the media side: plain types, no GStreamer.
//!
//! Outgoing media are encoded [`MediaSample`]s (one H.264 access unit in byte-stream
//! form, one VP8 frame or one Opus packet each) written to a [`Slot`] of a peer; incoming
//! media are [`RemoteRtp`] packets, raw RTP bytes with what a depayloader needs to know.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

/// The fixed transceiver layout of every Portal peer connection, in SDP order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    Audio,
    Camera,
    Screen,
}

impl Slot {
    /// Every slot, in the order the offer carries them.
    pub const ALL: [Slot; 3] = [Slot::Audio, Slot::Camera, Slot::Screen];

    /// The slot of the `index`-th media section (data channels not counted).
    pub fn from_index(index: usize) -> Option<Slot> {
        Slot::ALL.get(index).copied()
    }

    pub fn index(self) -> usize {
        match self {
            Slot::Audio => 0,
            Slot::Camera => 1,
            Slot::Screen => 2,
        }
    }

    pub fn is_video(self) -> bool {
        !matches!(self, Slot::Audio)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Audio => "audio",
            Slot::Camera => "camera",
            Slot::Screen => "screen",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The codecs Portal sends. What a peer receives may be anything it negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 constrained baseline, packetization mode 1.
    H264,
    Vp8,
    /// Opus, 48 kHz.
    Opus,
}

impl Codec {
    /// The MIME type as webrtc-rs spells it.
    pub fn mime_type(self) -> &'static str {
        match self {
            Codec::H264 => "video/H264",
            Codec::Vp8 => "video/VP8",
            Codec::Opus => "audio/opus",
        }
    }

    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::H264 | Codec::Vp8 => 90_000,
            Codec::Opus => 48_000,
        }
    }

    /// The codec of a MIME type, any case.
    pub fn from_mime(mime: &str) -> Option<Codec> {
        [Codec::H264, Codec::Vp8, Codec::Opus]
            .into_iter()
            .find(|c| c.mime_type().eq_ignore_ascii_case(mime))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::H264 => "H264",
            Codec::Vp8 => "VP8",
            Codec::Opus => "opus",
        })
    }
}

/// One encoded frame to send, and how long it lasts (which advances the RTP timestamp).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaSample {
    pub data: Bytes,
    pub duration: Duration,
}

impl MediaSample {
    pub fn new(data: impl Into<Bytes>, duration: Duration) -> Self {
        Self {
            data: data.into(),
            duration,
        }
    }
}

/// What a remote track carries, as negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCodec {
    /// For example `video/H264`.
    pub mime_type: String,
    pub clock_rate: u32,
    pub channels: u16,
    /// The `a=fmtp` parameters.
    pub fmtp: String,
}

impl RemoteCodec {
    /// The codec when it is one Portal knows.
    pub fn codec(&self) -> Option<Codec> {
        Codec::from_mime(&self.mime_type)
    }
}

/// One RTP packet from a remote track, as it came off the wire (after SRTP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRtp {
    pub slot: Slot,
    pub ssrc: u32,
    pub payload_type: u8,
    pub codec: RemoteCodec,
    /// The whole packet, header included, ready for an `application/x-rtp` appsrc.
    pub packet: Bytes,
}

/// The kind of keyframe request a remote peer sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyframeRequest {
    /// Picture Loss Indication (RFC 4585).
    Pli,
    /// Full Intra Request (RFC 5104).
    Fir,
}

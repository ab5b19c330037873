//! The seam between the network side and the media side: plain types, no GStreamer.
//!
//! Outgoing media are encoded [`MediaSample`]s (one H.264 access unit in byte-stream
//! form, one VP8 frame or one Opus packet each) written to a [`Slot`] of a peer; incoming
//! media are [`RemoteRtp`] packets, raw RTP bytes with what a depayloader needs to know.
//! The words themselves ([`Slot`], [`Codec`], [`portal_proto::media::KeyframeRequest`])
//! are `portal_proto::media`'s, the same types `portal-media` speaks.

use std::time::Duration;

use bytes::Bytes;
use portal_proto::media::{Codec, Slot};

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

//! The kiosk's media vocabulary, one type per word, shared by `portal-net` (the
//! webrtc-rs adapter), `portal-media` (GStreamer) and `portal-engine` (room logic).
//!
//! These are not wire messages: nothing here is serialized. They name what every peer
//! connection has by contract (ARCHITECTURE.md, "Peer connections"):
//!
//! - three transceivers in a fixed order, audio, camera video, screen video ([`Slot`]);
//! - the codecs Portal sends: H.264 constrained baseline, VP8, Opus 48 kHz ([`Codec`]);
//! - two pre-negotiated data channels, `chat` id 0 and `file` id 1 ([`Channel`]);
//! - the connection's state as WebRTC reports it ([`ConnectionState`]);
//! - why a keyframe is wanted ([`KeyframeRequest`]).

use std::fmt;

use crate::channel::{CHAT_CHANNEL, FILE_CHANNEL};

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

    /// The position of this slot's media section (and of its entry in per-slot arrays).
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

/// The codecs Portal encodes and sends. What a peer receives may be anything it
/// negotiated; only these are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    /// H.264 constrained baseline, packetization mode 1; samples are Annex B byte
    /// streams, one access unit each.
    H264,
    /// VP8, one frame per sample.
    Vp8,
    /// Opus at 48 kHz, one packet (20 ms) per sample.
    Opus,
}

impl Codec {
    /// Every codec, in order of preference for video (then audio).
    pub const ALL: [Codec; 3] = [Codec::H264, Codec::Vp8, Codec::Opus];

    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::Vp8)
    }

    /// The MIME type as WebRTC spells it (`video/H264`, `video/VP8`, `audio/opus`).
    pub fn mime_type(self) -> &'static str {
        match self {
            Codec::H264 => "video/H264",
            Codec::Vp8 => "video/VP8",
            Codec::Opus => "audio/opus",
        }
    }

    /// The codec of a MIME type, any case.
    pub fn from_mime(mime: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|c| c.mime_type().eq_ignore_ascii_case(mime))
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::H264 | Codec::Vp8 => 90_000,
            Codec::Opus => 48_000,
        }
    }

    /// The RTP encoding name, as GStreamer's RTP caps spell it (`H264`, `VP8`, `OPUS`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::Vp8 => "VP8",
            Codec::Opus => "OPUS",
        }
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

/// The two pre-negotiated data channels (`negotiated: true`, ordered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// `chat`, id 0: JSON text ([`crate::channel::ChatChannelMessage`]).
    Chat,
    /// `file`, id 1: JSON text ([`crate::channel::FileMessage`]) and binary chunks.
    File,
}

impl Channel {
    /// Both channels, in stream id order.
    pub const ALL: [Channel; 2] = [Channel::Chat, Channel::File];

    /// The SCTP stream id both sides agree on.
    pub fn id(self) -> u16 {
        match self {
            Channel::Chat => CHAT_CHANNEL.1,
            Channel::File => FILE_CHANNEL.1,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Channel::Chat => CHAT_CHANNEL.0,
            Channel::File => FILE_CHANNEL.0,
        }
    }

    pub fn from_id(id: u16) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.id() == id)
    }

    pub fn from_label(label: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.label() == label)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A peer connection's state as WebRTC reports it. A connection being built (WebRTC's
/// `new`) counts as connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl ConnectionState {
    /// The name `RTCPeerConnection.connectionState` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Failed => "failed",
            ConnectionState::Closed => "closed",
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a keyframe is wanted: the remote asked for one of what we send (over RTCP), or
/// our own receiver needs one of what the remote sends (and should send it a PLI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyframeRequest {
    /// The remote sent a Picture Loss Indication (RFC 4585).
    Pli,
    /// The remote sent a Full Intra Request (RFC 5104).
    Fir,
    /// Our receiver lost packets, or the stream started without a keyframe.
    Loss,
    /// Our decoder reported an error.
    DecodeError,
}

impl KeyframeRequest {
    /// Whether the remote asked (RTCP feedback about a track we send), rather than our
    /// own receiver.
    pub fn is_from_remote(self) -> bool {
        matches!(self, KeyframeRequest::Pli | KeyframeRequest::Fir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_sdp_order() {
        for (i, slot) in Slot::ALL.into_iter().enumerate() {
            assert_eq!(slot.index(), i);
            assert_eq!(Slot::from_index(i), Some(slot));
        }
        assert_eq!(Slot::from_index(3), None);
        assert!(!Slot::Audio.is_video());
        assert!(Slot::Camera.is_video() && Slot::Screen.is_video());
        assert_eq!(
            Slot::ALL.map(|s| s.to_string()),
            ["audio", "camera", "screen"]
        );
    }

    #[test]
    fn codecs_name_themselves_as_webrtc_and_gstreamer_do() {
        assert_eq!(
            Codec::ALL.map(Codec::mime_type),
            ["video/H264", "video/VP8", "audio/opus"]
        );
        assert_eq!(
            Codec::ALL.map(Codec::encoding_name),
            ["H264", "VP8", "OPUS"]
        );
        assert_eq!(Codec::ALL.map(Codec::clock_rate), [90_000, 90_000, 48_000]);
        assert_eq!(Codec::ALL.map(Codec::is_video), [true, true, false]);
        for codec in Codec::ALL {
            assert_eq!(Codec::from_mime(codec.mime_type()), Some(codec));
        }
        assert_eq!(Codec::from_mime("VIDEO/h264"), Some(Codec::H264));
        assert_eq!(Codec::from_mime("Audio/OPUS"), Some(Codec::Opus));
        assert_eq!(Codec::from_mime("video/AV1"), None);
        assert_eq!(Codec::Vp8.to_string(), "VP8");
    }

    #[test]
    fn channels_are_the_pre_negotiated_pair() {
        assert_eq!(Channel::Chat.id(), 0);
        assert_eq!(Channel::File.id(), 1);
        assert_eq!((Channel::Chat.label(), Channel::Chat.id()), CHAT_CHANNEL);
        assert_eq!((Channel::File.label(), Channel::File.id()), FILE_CHANNEL);
        for channel in Channel::ALL {
            assert_eq!(Channel::from_id(channel.id()), Some(channel));
            assert_eq!(Channel::from_label(channel.label()), Some(channel));
            assert_eq!(channel.to_string(), channel.label());
        }
        assert_eq!(Channel::from_id(2), None);
        assert_eq!(Channel::from_label("Chat"), None);
    }

    #[test]
    fn states_use_the_browser_names() {
        let all = [
            ConnectionState::Connecting,
            ConnectionState::Connected,
            ConnectionState::Disconnected,
            ConnectionState::Failed,
            ConnectionState::Closed,
        ];
        assert_eq!(
            all.map(|s| s.to_string()),
            [
                "connecting",
                "connected",
                "disconnected",
                "failed",
                "closed"
            ]
        );
    }

    #[test]
    fn keyframe_requests_say_who_asked() {
        assert!(KeyframeRequest::Pli.is_from_remote());
        assert!(KeyframeRequest::Fir.is_from_remote());
        assert!(!KeyframeRequest::Loss.is_from_remote());
        assert!(!KeyframeRequest::DecodeError.is_from_remote());
    }
}

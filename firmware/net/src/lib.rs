//! Portal's kiosk on the network: the signaling client and the WebRTC peer connections.
//!
//! This crate moves bytes; it makes no room decisions. `portal-engine` decides who offers,
//! what a file transfer needs next and when to reconnect a peer; the kiosk binary wires the
//! two together with `portal-media`, which encodes and decodes. The seams are plain types:
//!
//! - [`signaling`]: [`signaling::connect`] opens the WebSocket to the rooms server and
//!   yields [`signaling::SignalingEvent`]s (welcome, joined, peers coming and going,
//!   relayed `signal`s); the [`signaling::SignalingHandle`] sends `signal` and `watch`,
//!   knows the server clock offset and leaves. It reconnects with backoff and resumes the
//!   same peer id, so browsers keep their calls across a drop.
//! - [`peer`]: [`peer::Peer::connect`] builds one webrtc-rs peer connection with Portal's
//!   fixed layout (audio, camera, screen; `chat` and `file` channels) and reports
//!   `(PeerId, PeerEvent)` on an `mpsc` channel: SDP and candidates to relay, state,
//!   channel messages, remote RTP, keyframe requests.
//! - [`media`]: what crosses to the media side: [`media::MediaSample`] (an encoded frame
//!   to send), [`media::RemoteRtp`] (a received RTP packet with its codec and slot).
//!
//! A typical kiosk loop: on `SignalingEvent::Signal` with an offer from a browser, create a
//! `Peer` with `Negotiation::Answer` (if there is none yet) and `handle_signal` it; forward
//! every `PeerEvent::Signal` with `SignalingHandle::signal`; feed encoded samples of the
//! negotiated codec to `Peer::write_sample`; hand `PeerEvent::Rtp` to a depayloader; turn
//! `PeerEvent::KeyframeRequested` into a force-key-unit event on the encoder.

pub mod clock;
pub mod codec;
pub mod congestion;
pub mod media;
pub mod peer;
pub mod rtcp;
pub mod signaling;

pub use congestion::{BitrateBounds, SendEstimate};
pub use media::{Codec, KeyframeRequest, MediaSample, RemoteCodec, RemoteRtp, Slot};
pub use peer::{
    Channel, ChannelMessage, ConnectionState, IceTimeouts, Negotiation, Peer, PeerConfig,
    PeerError, PeerEvent, PeerEvents, PeerStats,
};
pub use signaling::{SignalingConfig, SignalingError, SignalingEvent, SignalingHandle};

//! Portal's kiosk on the network: the signaling client and the WebRTC peer connections.
//!
//! This crate moves bytes; it makes no room decisions. `portal-engine` decides who offers,
//! what a file transfer needs next and when to reconnect a peer; the kiosk binary wires the
//! two together with `portal-media`, which encodes and decodes. The seams are plain types:
//!
//! - [`signaling`]: the WebSocket to the rooms server as a transport:
//!   [`signaling::start`] gives a [`SignalingTransport`] that opens a connection when told,
//!   sends `ClientMessage`s and reports [`TransportEvent`]s (opened, each
//!   `ServerMessage`, closed); it keeps the server clock offset from ping/pong. What to
//!   say and when to reconnect is `portal-engine`'s decision.
//! - [`peer`]: [`PeerConnection::connect`] builds one webrtc-rs peer connection with
//!   Portal's fixed layout (audio, camera, screen; `chat` and `file` channels) and reports
//!   `(PeerId, PeerEvent)` on an `mpsc` channel: SDP and candidates to relay, state,
//!   channel messages, remote RTP, keyframe requests.
//! - [`media`]: what crosses to the media side: [`media::MediaSample`] (an encoded frame
//!   to send), [`media::RemoteRtp`] (a received RTP packet with its codec and slot).
//!
//! The media vocabulary ([`Slot`], [`Codec`], [`Channel`], [`ConnectionState`],
//! [`KeyframeRequest`]) is defined once in `portal_proto::media` and re-exported here.
//!
//! A typical kiosk loop: when the engine starts a peer, create a `PeerConnection` with the
//! `Negotiation` it chose and `handle_signal` what the remote relays; send every
//! `PeerEvent::Signal` back through the signaling transport; feed encoded samples of the
//! negotiated codec to `PeerConnection::write_sample`; hand `PeerEvent::Rtp` to a
//! depayloader; turn `PeerEvent::KeyframeRequested` into a force-key-unit event on the
//! encoder.

pub mod clock;
pub mod codec;
pub mod congestion;
pub mod docs;
pub mod media;
pub mod peer;
pub mod rtcp;
pub mod signaling;

pub use congestion::{BitrateBounds, SendEstimate};
pub use media::{MediaSample, RemoteCodec, RemoteRtp};
pub use peer::{
    ChannelMessage, IceTimeouts, Negotiation, PeerConfig, PeerConnection, PeerError, PeerEvent,
    PeerEvents, PeerStats,
};
pub use portal_proto::media::{Channel, Codec, ConnectionState, KeyframeRequest, Slot};
pub use signaling::{SignalingTransport, TransportConfig, TransportError, TransportEvent};

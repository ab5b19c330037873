//! One WebRTC peer connection to one remote peer, over webrtc-rs 0.21, following the
//! browser–kiosk contract (ARCHITECTURE.md, "Peer connections"):
//!
//! - three transceivers in a fixed order, audio / camera video / screen video, each
//!   `sendrecv` with a sample track of its own ([`Slot`]);
//! - data channels `chat` (id 0) and `file` (id 1), both `negotiated`, ordered;
//! - the answerer never re-offers; only the offerer restarts ICE (automatically when the
//!   connection fails, and on [`PeerConnection::restart_ice`]);
//! - trickle ICE both ways; remote `.local` (mDNS) candidates are resolved by webrtc-rs
//!   (Chromium's connectivity checks often arrive first, and the pair then starts
//!   peer-reflexive: both work);
//! - H.264 `42e01f` packetization mode 1 preferred, VP8 when the offer has no compatible
//!   H.264, Opus 48 kHz (see [`crate::codec`]).
//!
//! Who offers is the caller's decision (a browser always offers to a kiosk; between
//! kiosks the lower peer id offers): it picks [`Negotiation`] when creating the peer.
//!
//! Everything the connection reports arrives as `(PeerId, PeerEvent)` on the `mpsc`
//! channel given to [`PeerConnection::connect`]: SDP and candidates to relay
//! ([`PeerEvent::Signal`]), state changes, data channel messages, remote RTP and
//! keyframe requests. Commands are methods on the cloneable [`PeerConnection`] handle:
//! relay what the remote sent ([`PeerConnection::handle_signal`]), write encoded samples
//! ([`PeerConnection::write_sample`]), ask for a keyframe
//! ([`PeerConnection::request_keyframe`]), send on a channel
//! ([`PeerConnection::send_text`], [`PeerConnection::send_binary`], with
//! [`PeerConnection::writable`] and [`PeerConnection::buffered_amount`] for
//! back-pressure), [`PeerConnection::close`].
//!
//! The vocabulary ([`Slot`], [`Codec`], [`Channel`], [`ConnectionState`],
//! [`KeyframeRequest`]) is `portal_proto::media`'s, shared with `portal-media` and the
//! engine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use portal_proto::media::{Channel, Codec, ConnectionState, KeyframeRequest, Slot};
use portal_proto::{IceCandidate, IceServer, PeerId, SdpType, SessionDescription, SignalData};
use rtc::data_channel::RTCDataChannelInit;
use rtc::interceptor::Registry;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_rtcp_reports, configure_simulcast_extension_headers,
    configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::RTCRtpTransceiverId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::shared::marshal::Marshal;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection as RtcPeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceServer, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::codec::{self, choose_send_codec, rtp_sections};
use crate::congestion::{BitrateBounds, SendEstimate, with_congestion_control};
use crate::media::{MediaSample, RemoteCodec, RemoteRtp};
use crate::rtcp::{keyframe_request, with_keyframe_forwarder};

/// Largest message webrtc-rs and Chromium accept on a data channel.
pub const MAX_CHANNEL_MESSAGE: usize = 256 * 1024;

/// Places of the event channel that RTP leaves to control events. Give
/// [`PeerConnection::connect`] a channel of a few hundred places or more.
pub const RTP_RESERVE: usize = 64;

/// Why a peer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// Only the offerer sends offers and restarts ICE.
    #[error("only the offerer of a connection sends offers")]
    NotOfferer,
    /// The remote sent an offer on a connection we offer on (it would flip the roles).
    #[error("an offer arrived on a connection this side offers on")]
    UnexpectedOffer,
    /// An answer arrived while no offer of ours was waiting for one.
    #[error("an answer arrived without an offer waiting for it")]
    UnexpectedAnswer,
    #[error("{0:?} descriptions are not part of Portal's negotiation")]
    UnsupportedSdp(SdpType),
    #[error("the {0} channel is not open")]
    ChannelNotOpen(Channel),
    #[error("a message of {size} bytes is over the {MAX_CHANNEL_MESSAGE}-byte limit")]
    MessageTooLarge { size: usize },
    #[error("the peer connection is closed")]
    Closed,
    /// None of the configured media ports could be bound.
    #[error("no free media port in {first}..={last}")]
    NoFreePort { first: u16, last: u16 },
}

/// Which side of the connection sends the offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Negotiation {
    /// We offer (kiosk to kiosk, lower id) and restart ICE when it fails.
    Offer,
    /// We answer (a browser, or a kiosk with a lower id) and never re-offer.
    Answer,
}

/// A data channel message, as text or binary frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelMessage {
    Text(String),
    Binary(Bytes),
}

/// webrtc-rs's state as Portal's; a connection being built (`new`) is connecting.
fn connection_state(state: RTCPeerConnectionState) -> ConnectionState {
    match state {
        RTCPeerConnectionState::Connected => ConnectionState::Connected,
        RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
        RTCPeerConnectionState::Failed => ConnectionState::Failed,
        RTCPeerConnectionState::Closed => ConnectionState::Closed,
        _ => ConnectionState::Connecting,
    }
}

/// What a peer connection reports. Arrives as `(remote peer id, event)`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// Relay this to the remote peer through signaling (an offer, an answer or a
    /// candidate).
    Signal(SignalData),
    State(ConnectionState),
    /// Negotiation finished: the codec each slot sends, if any. Feed samples of that
    /// codec to [`PeerConnection::write_sample`].
    Negotiated {
        send: [Option<Codec>; 3],
    },
    /// The offerer restarted ICE (`attempt` counts restarts on this connection).
    IceRestart {
        attempt: u32,
    },
    ChannelOpen(Channel),
    ChannelClosed(Channel),
    /// The channel's buffered amount fell to its low threshold
    /// ([`PeerConnection::set_buffered_amount_low_threshold`]).
    BufferedAmountLow(Channel),
    Message {
        channel: Channel,
        message: ChannelMessage,
    },
    /// The remote's track in `slot` delivered its first packet.
    TrackStarted {
        slot: Slot,
        ssrc: u32,
        codec: RemoteCodec,
    },
    /// One RTP packet of a remote track.
    Rtp(RemoteRtp),
    TrackEnded {
        slot: Slot,
    },
    /// The remote asked for a keyframe of what we send in `slot`.
    KeyframeRequested {
        slot: Slot,
        kind: KeyframeRequest,
    },
    /// The connection is closed; no more events follow.
    Closed,
}

/// Where a peer's events go.
pub type PeerEvents = mpsc::Sender<(PeerId, PeerEvent)>;

/// How to build a peer connection.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub remote: PeerId,
    pub negotiation: Negotiation,
    /// From the server's `welcome`.
    pub ice_servers: Vec<IceServer>,
    /// Local UDP sockets; `0.0.0.0:0` binds one ephemeral port on every non-loopback
    /// interface.
    pub udp_addrs: Vec<SocketAddr>,
    /// Whether H.264 may be sent (VP8 otherwise).
    pub allow_h264: bool,
    /// What the offerer offers for video (an offerer cannot know what the remote takes;
    /// kiosks all take H.264).
    pub offer_video_codec: Codec,
    /// The offerer restarts ICE by itself when the connection fails.
    pub restart_ice_on_failure: bool,
    /// Send a PLI when a remote video track starts, so its first frame is a keyframe.
    pub pli_on_track_start: bool,
    /// Per-channel send buffer: `send_*` waits while this much is unacknowledged.
    pub channel_send_buffer: usize,
    /// GCC over TWCC within these bounds ([`crate::congestion`]); `None` sends without
    /// congestion control.
    pub congestion_control: Option<BitrateBounds>,
    /// ICE consent timers; `None` keeps webrtc-rs's defaults (5 s to disconnected, 25 s
    /// more to failed, keepalive every 2 s).
    pub ice_timeouts: Option<IceTimeouts>,
    /// Media ports to use, first free one wins (for a firewall that opens only these);
    /// `None` binds an ephemeral port as `udp_addrs` says.
    pub udp_ports: Option<(u16, u16)>,
}

/// When an ICE agent without answers to its consent checks calls the path disconnected,
/// then failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IceTimeouts {
    pub disconnected: Duration,
    pub failed: Duration,
    pub keepalive: Duration,
}

impl PeerConfig {
    pub fn new(remote: PeerId, negotiation: Negotiation) -> Self {
        Self {
            remote,
            negotiation,
            ice_servers: Vec::new(),
            udp_addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            allow_h264: true,
            offer_video_codec: Codec::H264,
            restart_ice_on_failure: true,
            pli_on_track_start: true,
            channel_send_buffer: 1024 * 1024,
            congestion_control: Some(BitrateBounds::default()),
            ice_timeouts: None,
            udp_ports: None,
        }
    }
}

/// Counters for the status endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// RTP packets received per slot (audio, camera, screen).
    pub rtp_received: [u64; 3],
    /// RTP packets dropped because the event channel was full.
    pub rtp_dropped: u64,
    /// Samples written per slot.
    pub samples_sent: [u64; 3],
    /// Keyframe requests received from the remote.
    pub keyframe_requests: u64,
    pub ice_restarts: u64,
}

struct LocalSlot {
    codec: Codec,
    ssrc: u32,
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    payload_type: Option<u8>,
}

struct RemoteSlot {
    track: Arc<dyn TrackRemote>,
    ssrc: u32,
}

#[derive(Default)]
struct Negotiating {
    have_remote: bool,
    awaiting_answer: bool,
    tracks_added: bool,
    pending_candidates: Vec<RTCIceCandidateInit>,
}

#[derive(Default)]
struct Counters {
    rtp_received: [AtomicU64; 3],
    rtp_dropped: AtomicU64,
    samples_sent: [AtomicU64; 3],
    keyframe_requests: AtomicU64,
    ice_restarts: AtomicU64,
}

struct Inner {
    config: PeerConfig,
    pc: Arc<dyn RtcPeerConnection>,
    estimate: Option<SendEstimate>,
    events: PeerEvents,
    chat: Arc<dyn DataChannel>,
    file: Arc<dyn DataChannel>,
    negotiation: tokio::sync::Mutex<Negotiating>,
    local: tokio::sync::Mutex<[Option<LocalSlot>; 3]>,
    remote: Mutex<[Option<RemoteSlot>; 3]>,
    /// Mids of the RTP sections in SDP order.
    mids: Mutex<Vec<String>>,
    state: Mutex<ConnectionState>,
    open: [AtomicBool; 2],
    closed: AtomicBool,
    closed_tx: tokio::sync::watch::Sender<bool>,
    counters: Counters,
}

/// A handle on one peer connection; cheap to clone.
#[derive(Clone)]
pub struct PeerConnection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConnection")
            .field("remote", &self.inner.config.remote)
            .field("negotiation", &self.inner.config.negotiation)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// What the webrtc-rs driver reports, moved off its task at once.
enum DriverEvent {
    Candidate(Box<RTCPeerConnectionIceEvent>),
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
}

struct Handler {
    tx: mpsc::UnboundedSender<DriverEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let _ = self.tx.send(DriverEvent::Candidate(Box::new(event)));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.tx.send(DriverEvent::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tx.send(DriverEvent::Track(track));
    }
}

fn to_rtc_ice_server(server: &IceServer) -> RTCIceServer {
    RTCIceServer {
        urls: server.urls.clone(),
        username: server.username.clone().unwrap_or_default(),
        credential: server.credential.clone().unwrap_or_default(),
    }
}

impl PeerConnection {
    /// Builds the connection and its two data channels. An offerer also adds the three
    /// transceivers and sends its offer ([`PeerEvent::Signal`]); an answerer waits for
    /// the remote's offer in [`PeerConnection::handle_signal`].
    pub async fn connect(
        config: PeerConfig,
        events: PeerEvents,
    ) -> Result<PeerConnection, PeerError> {
        let (driver_tx, driver_rx) = mpsc::unbounded_channel();
        let (pc, estimate) = match config.udp_ports {
            None => Self::build(&config, config.udp_addrs.clone(), &driver_tx).await?,
            Some((first, last)) => {
                let mut built = None;
                let mut last_error = PeerError::NoFreePort { first, last };
                for port in first..=last.max(first) {
                    let addrs = vec![SocketAddr::from(([0, 0, 0, 0], port))];
                    match Self::build(&config, addrs, &driver_tx).await {
                        Ok(pc) => {
                            built = Some(pc);
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(port, error = %e, "media port not usable");
                            last_error = e;
                        }
                    }
                }
                built.ok_or(last_error)?
            }
        };
        let pc: Arc<dyn RtcPeerConnection> = Arc::new(pc);
        let chat = Self::negotiated_channel(&pc, Channel::Chat).await?;
        let file = Self::negotiated_channel(&pc, Channel::File).await?;
        let inner = Arc::new(Inner {
            config,
            pc,
            estimate,
            events,
            chat,
            file,
            negotiation: tokio::sync::Mutex::new(Negotiating::default()),
            local: tokio::sync::Mutex::new([None, None, None]),
            remote: Mutex::new([None, None, None]),
            mids: Mutex::new(Vec::new()),
            state: Mutex::new(ConnectionState::Connecting),
            open: [AtomicBool::new(false), AtomicBool::new(false)],
            closed: AtomicBool::new(false),
            closed_tx: tokio::sync::watch::channel(false).0,
            counters: Counters::default(),
        });
        let peer = PeerConnection { inner };
        tokio::spawn(peer.clone().driver_events(driver_rx));
        for channel in [Channel::Chat, Channel::File] {
            tokio::spawn(peer.clone().channel_events(channel));
        }
        tracing::debug!(
            remote = %peer.remote(),
            negotiation = ?peer.inner.config.negotiation,
            "peer connection built"
        );
        if peer.inner.config.negotiation == Negotiation::Offer
            && let Err(e) = peer.start_offering().await
        {
            peer.close().await;
            return Err(e);
        }
        Ok(peer)
    }

    /// Offerer: the three transceivers in slot order, then the first offer.
    async fn start_offering(&self) -> Result<(), PeerError> {
        let video = self.inner.config.offer_video_codec;
        let codecs = [Codec::Opus, video, video];
        let mut local = self.inner.local.lock().await;
        for slot in Slot::ALL {
            local[slot.index()] = Some(self.add_slot_track(slot, codecs[slot.index()]).await?);
        }
        drop(local);
        self.inner.negotiation.lock().await.tracks_added = true;
        self.send_offer(false).await
    }

    /// One webrtc-rs peer connection bound to `udp_addrs`, with Portal's codecs and
    /// interceptor chain.
    async fn build(
        config: &PeerConfig,
        udp_addrs: Vec<SocketAddr>,
        driver_tx: &mpsc::UnboundedSender<DriverEvent>,
    ) -> Result<(impl RtcPeerConnection + use<>, Option<SendEstimate>), PeerError> {
        let mut media_engine = MediaEngine::default();
        codec::register_codecs(&mut media_engine)?;
        let (registry, estimate) = match config.congestion_control {
            Some(bounds) => {
                let (registry, estimate) =
                    with_congestion_control(Registry::new(), &mut media_engine, bounds)?;
                (registry, Some(estimate))
            }
            None => (Registry::new(), None),
        };
        let registry = configure_nack(registry, &mut media_engine);
        configure_simulcast_extension_headers(&mut media_engine)?;
        let registry = if estimate.is_some() {
            registry
        } else {
            configure_twcc_receiver_only(registry, &mut media_engine)?
        };
        let registry = with_keyframe_forwarder(configure_rtcp_reports(registry));
        let rtc_config = RTCConfigurationBuilder::new()
            .with_ice_servers(config.ice_servers.iter().map(to_rtc_ice_server).collect())
            .build();
        // Answering, be the DTLS server (`a=setup:passive`). As the client, our ClientHello
        // goes out when our (controlled) ICE agent sees the remote's nomination, and Chromium
        // answered it only 130-185 ms later, once its own checks had made the pair writable;
        // as the server we answer the remote's ClientHello the moment it arrives, and join to
        // first remote frame drops by about that much (`cargo xtask bench kiosk`).
        let mut settings =
            SettingEngineBuilder::new().with_answering_dtls_role(RTCDtlsRole::Server);
        if let Some(t) = config.ice_timeouts {
            settings =
                settings.with_ice_timeouts(Some(t.disconnected), Some(t.failed), Some(t.keepalive));
        }
        // The builder's future is large (about 20 KiB); keep it off our own stack frame.
        let pc = Box::pin(
            PeerConnectionBuilder::new()
                .with_configuration(rtc_config)
                .with_media_engine(media_engine)
                .with_setting_engine(settings.build())
                .with_interceptor_registry(registry)
                .with_handler(Arc::new(Handler {
                    tx: driver_tx.clone(),
                }))
                .with_udp_addrs(udp_addrs)
                .with_data_channel_send_buffer_limit(config.channel_send_buffer)
                .build(),
        )
        .await?;
        Ok((pc, estimate))
    }

    /// The congestion controller's send estimate towards this peer, bit/s (`None`
    /// without congestion control).
    pub fn send_estimate(&self) -> Option<u64> {
        self.inner
            .estimate
            .as_ref()
            .map(SendEstimate::bits_per_second)
    }

    async fn negotiated_channel(
        pc: &Arc<dyn RtcPeerConnection>,
        channel: Channel,
    ) -> Result<Arc<dyn DataChannel>, PeerError> {
        let init = RTCDataChannelInit {
            ordered: true,
            negotiated: Some(channel.id()),
            ..Default::default()
        };
        Ok(pc.create_data_channel(channel.label(), Some(init)).await?)
    }

    /// The remote peer's id.
    pub fn remote(&self) -> PeerId {
        self.inner.config.remote
    }

    pub fn negotiation(&self) -> Negotiation {
        self.inner.config.negotiation
    }

    /// The last connection state reported.
    pub fn state(&self) -> ConnectionState {
        *self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn stats(&self) -> PeerStats {
        let c = &self.inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PeerStats {
            rtp_received: [
                load(&c.rtp_received[0]),
                load(&c.rtp_received[1]),
                load(&c.rtp_received[2]),
            ],
            rtp_dropped: load(&c.rtp_dropped),
            samples_sent: [
                load(&c.samples_sent[0]),
                load(&c.samples_sent[1]),
                load(&c.samples_sent[2]),
            ],
            keyframe_requests: load(&c.keyframe_requests),
            ice_restarts: load(&c.ice_restarts),
        }
    }

    /// The candidate pair in use, as `(local, remote)` descriptions like
    /// `"host 192.0.2.2:40000"` or `"prflx 10.0.0.7:5000"`; `None` before ICE selects one.
    pub async fn selected_path(&self) -> Option<(String, String)> {
        use rtc::statistics::report::RTCStatsReportEntry as Entry;
        let report = self
            .inner
            .pc
            .get_stats(Instant::now(), webrtc::peer_connection::StatsSelector::None)
            .await;
        let pair_id = report.iter().find_map(|e| match e {
            Entry::Transport(t) if !t.selected_candidate_pair_id.is_empty() => {
                Some(t.selected_candidate_pair_id.clone())
            }
            _ => None,
        })?;
        let Some(Entry::IceCandidatePair(pair)) = report.get(&pair_id) else {
            return None;
        };
        // Candidates are filed under a prefixed id; pairs name them without it.
        let describe = |prefix: &str, id: &str| {
            let entry = report
                .get(&format!("{prefix}{id}"))
                .or_else(|| report.get(id));
            match entry {
                Some(Entry::LocalCandidate(c) | Entry::RemoteCandidate(c)) => format!(
                    "{} {}:{}",
                    c.candidate_type,
                    c.address.as_deref().unwrap_or("?"),
                    c.port
                ),
                // A peer-reflexive remote candidate, learnt from a check, is not filed.
                _ => "unlisted (peer-reflexive)".to_owned(),
            }
        };
        Some((
            describe("RTCLocalIceCandidate_", &pair.local_candidate_id),
            describe("RTCRemoteIceCandidate_", &pair.remote_candidate_id),
        ))
    }

    /// The codec each slot sends (audio, camera, screen), once negotiated.
    pub async fn send_codecs(&self) -> [Option<Codec>; 3] {
        let local = self.inner.local.lock().await;
        [0, 1, 2].map(|i| local[i].as_ref().map(|l| l.codec))
    }

    async fn emit(&self, event: PeerEvent) {
        let _ = self.inner.events.send((self.remote(), event)).await;
    }

    /// Creates the sample track of `slot` and attaches it: to the next free transceiver
    /// of its kind (the answerer's, made by the offer, in SDP order) or to a new one.
    async fn add_slot_track(&self, slot: Slot, codec: Codec) -> Result<LocalSlot, PeerError> {
        let ssrc = rand::random::<u32>();
        let kind = if slot.is_video() {
            RtpCodecKind::Video
        } else {
            RtpCodecKind::Audio
        };
        let stream = if slot == Slot::Screen {
            "portal-screen"
        } else {
            "portal"
        };
        let track = MediaStreamTrack::new(
            stream.to_owned(),
            format!("portal-{slot}"),
            format!("portal-{slot}"),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: codec::rtp_codec(codec),
                ..Default::default()
            }],
        );
        let track = Arc::new(TrackLocalStaticSample::new(Instant::now(), track)?);
        let sender = self
            .inner
            .pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await?;
        tokio::spawn(self.clone().local_track_feedback(slot, Arc::clone(&track)));
        tracing::debug!(remote = %self.remote(), %slot, %codec, ssrc, "local track added");
        Ok(LocalSlot {
            codec,
            ssrc,
            track,
            sender,
            payload_type: None,
        })
    }

    async fn send_offer(&self, ice_restart: bool) -> Result<(), PeerError> {
        if ice_restart {
            self.inner.pc.restart_ice().await?;
        }
        let offer = self.inner.pc.create_offer(None).await?;
        self.inner.pc.set_local_description(offer.clone()).await?;
        let sdp = self
            .inner
            .pc
            .local_description()
            .await
            .map_or(offer.sdp, |d| d.sdp);
        self.remember_mids(&sdp);
        self.inner.negotiation.lock().await.awaiting_answer = true;
        self.emit(PeerEvent::Signal(SignalData::Sdp(SessionDescription {
            kind: SdpType::Offer,
            sdp,
        })))
        .await;
        Ok(())
    }

    fn remember_mids(&self, sdp: &str) {
        let mids: Vec<String> = rtp_sections(sdp)
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.mid.unwrap_or_else(|| i.to_string()))
            .collect();
        *self
            .inner
            .mids
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mids;
    }

    fn first_mid(&self) -> Option<String> {
        self.inner
            .mids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
            .cloned()
    }

    /// Applies what the remote sent through signaling: its offer (we answer, emitting the
    /// answer as [`PeerEvent::Signal`]), its answer to our offer, or an ICE candidate.
    /// Candidates that arrive before the description are held until it is set.
    pub async fn handle_signal(&self, data: SignalData) -> Result<(), PeerError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PeerError::Closed);
        }
        match data {
            SignalData::Sdp(desc) => match desc.kind {
                SdpType::Offer => self.on_offer(desc.sdp).await,
                SdpType::Answer => self.on_answer(desc.sdp).await,
                other => Err(PeerError::UnsupportedSdp(other)),
            },
            SignalData::Candidate(c) => self.on_candidate(c).await,
        }
    }

    async fn on_offer(&self, sdp: String) -> Result<(), PeerError> {
        if self.inner.config.negotiation == Negotiation::Offer {
            return Err(PeerError::UnexpectedOffer);
        }
        let mut neg = self.inner.negotiation.lock().await;
        let restart = neg.have_remote;
        self.inner
            .pc
            .set_remote_description(RTCSessionDescription::offer(sdp.clone())?)
            .await?;
        self.remember_mids(&sdp);
        if !neg.tracks_added {
            let sections = rtp_sections(&sdp);
            let mut local = self.inner.local.lock().await;
            for slot in Slot::ALL {
                let Some(section) = sections.get(slot.index()) else {
                    tracing::warn!(
                        remote = %self.remote(),
                        %slot,
                        "offer has no section for this slot"
                    );
                    continue;
                };
                match choose_send_codec(slot, section, self.inner.config.allow_h264) {
                    Some(codec) => {
                        local[slot.index()] = Some(self.add_slot_track(slot, codec).await?);
                    }
                    None => {
                        tracing::warn!(
                            remote = %self.remote(),
                            %slot,
                            "no codec in common; receiving only"
                        );
                    }
                }
            }
            neg.tracks_added = true;
        }
        let answer = self.inner.pc.create_answer(None).await?;
        self.inner.pc.set_local_description(answer.clone()).await?;
        let answer_sdp = self
            .inner
            .pc
            .local_description()
            .await
            .map_or(answer.sdp, |d| d.sdp);
        neg.have_remote = true;
        let pending = std::mem::take(&mut neg.pending_candidates);
        drop(neg);
        tracing::debug!(remote = %self.remote(), restart, "answering offer");
        self.emit(PeerEvent::Signal(SignalData::Sdp(SessionDescription {
            kind: SdpType::Answer,
            sdp: answer_sdp,
        })))
        .await;
        self.add_candidates(pending).await;
        self.report_negotiated().await;
        Ok(())
    }

    async fn on_answer(&self, sdp: String) -> Result<(), PeerError> {
        if self.inner.config.negotiation == Negotiation::Answer {
            return Err(PeerError::UnexpectedAnswer);
        }
        let mut neg = self.inner.negotiation.lock().await;
        if !neg.awaiting_answer {
            return Err(PeerError::UnexpectedAnswer);
        }
        self.inner
            .pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        neg.awaiting_answer = false;
        neg.have_remote = true;
        let pending = std::mem::take(&mut neg.pending_candidates);
        drop(neg);
        self.add_candidates(pending).await;
        self.report_negotiated().await;
        Ok(())
    }

    async fn report_negotiated(&self) {
        let mut local = self.inner.local.lock().await;
        for slot in local.iter_mut().flatten() {
            slot.payload_type = negotiated_payload_type(&slot.sender).await;
        }
        let send = [0, 1, 2].map(|i| {
            local[i]
                .as_ref()
                .filter(|l| l.payload_type.is_some())
                .map(|l| l.codec)
        });
        drop(local);
        tracing::info!(remote = %self.remote(), ?send, "negotiated");
        self.emit(PeerEvent::Negotiated { send }).await;
    }

    async fn on_candidate(&self, c: IceCandidate) -> Result<(), PeerError> {
        if c.candidate.trim().is_empty() {
            // End of candidates: nothing to do with trickle.
            return Ok(());
        }
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_m_line_index,
            username_fragment: c.username_fragment,
            url: None,
        };
        let mut neg = self.inner.negotiation.lock().await;
        if !neg.have_remote {
            neg.pending_candidates.push(init);
            return Ok(());
        }
        drop(neg);
        self.add_candidates(vec![init]).await;
        Ok(())
    }

    async fn add_candidates(&self, candidates: Vec<RTCIceCandidateInit>) {
        for c in candidates {
            // Like the browser: a candidate that does not parse or resolve is skipped,
            // the others may still connect.
            if let Err(e) = self.inner.pc.add_ice_candidate(c.clone()).await {
                tracing::debug!(
                    remote = %self.remote(),
                    candidate = %c.candidate,
                    error = %e,
                    "remote candidate skipped"
                );
            }
        }
    }

    /// Restarts ICE with a new offer. Only the offerer may; the answerer waits for the
    /// remote's new offer.
    pub async fn restart_ice(&self) -> Result<(), PeerError> {
        if self.inner.config.negotiation != Negotiation::Offer {
            return Err(PeerError::NotOfferer);
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PeerError::Closed);
        }
        let attempt = self
            .inner
            .counters
            .ice_restarts
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        tracing::info!(remote = %self.remote(), attempt, "restarting ICE");
        self.emit(PeerEvent::IceRestart {
            attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        })
        .await;
        self.send_offer(true).await
    }

    /// Writes one encoded sample to the track of `slot`, when that slot sends `codec` and
    /// the connection is up. Returns whether it was written, so the same samples can be
    /// offered to every peer (encode once) and each takes those of its codec.
    pub async fn write_sample(
        &self,
        slot: Slot,
        codec: Codec,
        sample: &MediaSample,
    ) -> Result<bool, PeerError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PeerError::Closed);
        }
        if self.state() != ConnectionState::Connected {
            return Ok(false);
        }
        let (track, ssrc, payload_type) = {
            let mut local = self.inner.local.lock().await;
            let Some(entry) = local[slot.index()].as_mut() else {
                return Ok(false);
            };
            if entry.codec != codec {
                return Ok(false);
            }
            if entry.payload_type.is_none() {
                entry.payload_type = negotiated_payload_type(&entry.sender).await;
            }
            let Some(pt) = entry.payload_type else {
                return Ok(false);
            };
            (Arc::clone(&entry.track), entry.ssrc, pt)
        };
        let now = Instant::now();
        let rtc_sample = Sample {
            data: sample.data.clone(),
            duration: sample.duration,
            ..Sample::new(now)
        };
        track
            .write_sample(ssrc, payload_type, &rtc_sample, &[])
            .await?;
        self.inner.counters.samples_sent[slot.index()].fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Sends a PLI for the remote track in `slot`. Returns false when that track has not
    /// started yet.
    pub async fn request_keyframe(&self, slot: Slot) -> Result<bool, PeerError> {
        let remote = {
            let remote = self
                .inner
                .remote
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            remote[slot.index()]
                .as_ref()
                .map(|r| (Arc::clone(&r.track), r.ssrc))
        };
        let Some((track, media_ssrc)) = remote else {
            return Ok(false);
        };
        let sender_ssrc = {
            let local = self.inner.local.lock().await;
            local[slot.index()].as_ref().map_or(0, |l| l.ssrc)
        };
        track
            .write_rtcp(vec![Box::new(PictureLossIndication {
                sender_ssrc,
                media_ssrc,
            })])
            .await?;
        tracing::debug!(remote = %self.remote(), %slot, media_ssrc, "PLI sent");
        Ok(true)
    }

    fn channel(&self, channel: Channel) -> &Arc<dyn DataChannel> {
        match channel {
            Channel::Chat => &self.inner.chat,
            Channel::File => &self.inner.file,
        }
    }

    fn channel_index(channel: Channel) -> usize {
        match channel {
            Channel::Chat => 0,
            Channel::File => 1,
        }
    }

    /// Whether `channel` is open.
    pub fn is_open(&self, channel: Channel) -> bool {
        self.inner.open[Self::channel_index(channel)].load(Ordering::Acquire)
    }

    fn check_send(&self, channel: Channel, size: usize) -> Result<(), PeerError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PeerError::Closed);
        }
        if !self.is_open(channel) {
            return Err(PeerError::ChannelNotOpen(channel));
        }
        if size > MAX_CHANNEL_MESSAGE {
            return Err(PeerError::MessageTooLarge { size });
        }
        Ok(())
    }

    /// Sends a text frame; waits while the channel's send buffer is full.
    pub async fn send_text(&self, channel: Channel, text: &str) -> Result<(), PeerError> {
        self.check_send(channel, text.len())?;
        self.channel(channel).send_text(text).await?;
        Ok(())
    }

    /// Sends a binary frame; waits while the channel's send buffer is full.
    pub async fn send_binary(&self, channel: Channel, data: &[u8]) -> Result<(), PeerError> {
        self.check_send(channel, data.len())?;
        self.channel(channel).send(BytesMut::from(data)).await?;
        Ok(())
    }

    /// Waits until the channel's send buffer has room
    /// ([`PeerConfig::channel_send_buffer`]).
    pub async fn writable(&self, channel: Channel) -> Result<(), PeerError> {
        self.channel(channel).writable().await?;
        Ok(())
    }

    /// Bytes sent on `channel` that the remote has not acknowledged yet.
    pub async fn buffered_amount(&self, channel: Channel) -> Result<usize, PeerError> {
        Ok(self.channel(channel).outstanding_bytes().await?)
    }

    /// [`PeerEvent::BufferedAmountLow`] fires when the buffered amount falls to `bytes`.
    pub async fn set_buffered_amount_low_threshold(
        &self,
        channel: Channel,
        bytes: u32,
    ) -> Result<(), PeerError> {
        self.channel(channel)
            .set_buffered_amount_low_threshold(bytes)
            .await?;
        Ok(())
    }

    /// Closes the connection (idempotent). [`PeerEvent::Closed`] follows.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.closed_tx.send_replace(true);
        if let Err(e) = self.inner.pc.close().await {
            tracing::debug!(remote = %self.remote(), error = %e, "close reported an error");
        }
        *self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = ConnectionState::Closed;
        tracing::debug!(remote = %self.remote(), "peer connection closed");
        self.emit(PeerEvent::Closed).await;
    }

    async fn driver_events(self, mut rx: mpsc::UnboundedReceiver<DriverEvent>) {
        let mut closed = self.inner.closed_tx.subscribe();
        loop {
            // Ends on close too: the driver may keep the handler (and so this channel)
            // alive, and this task must not keep the connection alive in turn.
            let event = tokio::select! {
                event = rx.recv() => event,
                _ = closed.wait_for(|c| *c) => None,
            };
            let Some(event) = event else { break };
            match event {
                DriverEvent::Candidate(event) => self.on_local_candidate(&event).await,
                DriverEvent::State(state) => self.on_state(state).await,
                DriverEvent::Track(track) => {
                    tokio::spawn(self.clone().remote_track(track));
                }
            }
        }
    }

    async fn on_local_candidate(&self, event: &RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let candidate = IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: self.first_mid(),
                    sdp_m_line_index: Some(0),
                    username_fragment: None,
                };
                self.emit(PeerEvent::Signal(SignalData::Candidate(candidate)))
                    .await;
            }
            Err(e) => {
                tracing::debug!(remote = %self.remote(), error = %e, "local candidate not sent");
            }
        }
    }

    async fn on_state(&self, state: RTCPeerConnectionState) {
        let state = connection_state(state);
        {
            let mut current = self
                .inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *current == ConnectionState::Closed || *current == state {
                return;
            }
            *current = state;
        }
        tracing::info!(remote = %self.remote(), ?state, "connection state");
        self.emit(PeerEvent::State(state)).await;
        if state == ConnectionState::Failed
            && self.inner.config.negotiation == Negotiation::Offer
            && self.inner.config.restart_ice_on_failure
            && !self.inner.closed.load(Ordering::Acquire)
            && let Err(e) = self.restart_ice().await
        {
            tracing::warn!(remote = %self.remote(), error = %e, "ICE restart failed");
        }
    }

    async fn channel_events(self, channel: Channel) {
        let dc = Arc::clone(self.channel(channel));
        let index = Self::channel_index(channel);
        while let Some(event) = dc.poll().await {
            match event {
                DataChannelEvent::OnOpen => {
                    self.inner.open[index].store(true, Ordering::Release);
                    tracing::debug!(remote = %self.remote(), %channel, "channel open");
                    self.emit(PeerEvent::ChannelOpen(channel)).await;
                }
                DataChannelEvent::OnClose => {
                    self.inner.open[index].store(false, Ordering::Release);
                    self.emit(PeerEvent::ChannelClosed(channel)).await;
                }
                DataChannelEvent::OnBufferedAmountLow => {
                    self.emit(PeerEvent::BufferedAmountLow(channel)).await;
                }
                DataChannelEvent::OnMessage(msg) => {
                    let message = if msg.is_string {
                        let Ok(text) = String::from_utf8(msg.data.to_vec()) else {
                            tracing::debug!(
                                remote = %self.remote(),
                                %channel,
                                "text frame that is not UTF-8 dropped"
                            );
                            continue;
                        };
                        ChannelMessage::Text(text)
                    } else {
                        ChannelMessage::Binary(msg.data.freeze())
                    };
                    self.emit(PeerEvent::Message { channel, message }).await;
                }
                _ => {}
            }
        }
        self.inner.open[index].store(false, Ordering::Release);
    }

    async fn local_track_feedback(self, slot: Slot, track: Arc<TrackLocalStaticSample>) {
        while let Some(event) = track.poll().await {
            let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                continue;
            };
            for packet in &packets {
                if let Some(kind) = keyframe_request(packet.as_ref()) {
                    self.inner
                        .counters
                        .keyframe_requests
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(remote = %self.remote(), %slot, ?kind, "keyframe requested");
                    self.emit(PeerEvent::KeyframeRequested { slot, kind }).await;
                }
            }
        }
    }

    /// The slot of the transceiver a remote track arrived on, by its mid's position.
    async fn slot_of(&self, receiver: rtc::rtp_transceiver::RTCRtpReceiverId) -> Option<Slot> {
        let id = RTCRtpTransceiverId::from(receiver);
        let mut mid = None;
        for t in self.inner.pc.get_transceivers().await {
            if t.id() == id {
                mid = t.mid().await.ok().flatten();
                break;
            }
        }
        let mid = mid?;
        let mids = self
            .inner
            .mids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        mids.iter()
            .position(|m| *m == mid)
            .and_then(Slot::from_index)
    }

    async fn remote_track(self, track: Arc<dyn TrackRemote>) {
        let mut current: Option<(Slot, RemoteCodec)> = None;
        let mut warned_full = false;
        while let Some(event) = track.poll().await {
            match event {
                TrackRemoteEvent::OnOpen(init) => {
                    let Some(slot) = self.slot_of(init.receiver_id).await else {
                        tracing::warn!(
                            remote = %self.remote(),
                            "remote track on an unknown transceiver"
                        );
                        continue;
                    };
                    let codec = track.codec(init.ssrc).await.map_or_else(
                        || RemoteCodec {
                            mime_type: String::new(),
                            clock_rate: 0,
                            channels: 0,
                            fmtp: String::new(),
                        },
                        |c| RemoteCodec {
                            mime_type: c.mime_type,
                            clock_rate: c.clock_rate,
                            channels: c.channels,
                            fmtp: c.sdp_fmtp_line,
                        },
                    );
                    self.inner
                        .remote
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)[slot.index()] = Some(RemoteSlot {
                        track: Arc::clone(&track),
                        ssrc: init.ssrc,
                    });
                    tracing::info!(
                        remote = %self.remote(),
                        %slot,
                        ssrc = init.ssrc,
                        codec = %codec.mime_type,
                        "remote track started"
                    );
                    self.emit(PeerEvent::TrackStarted {
                        slot,
                        ssrc: init.ssrc,
                        codec: codec.clone(),
                    })
                    .await;
                    current = Some((slot, codec));
                    if slot.is_video()
                        && self.inner.config.pli_on_track_start
                        && let Err(e) = self.request_keyframe(slot).await
                    {
                        tracing::debug!(
                            remote = %self.remote(),
                            %slot,
                            error = %e,
                            "PLI at track start failed"
                        );
                    }
                }
                TrackRemoteEvent::OnRtpPacket(packet) => {
                    let Some((slot, codec)) = &current else {
                        continue;
                    };
                    self.inner.counters.rtp_received[slot.index()].fetch_add(1, Ordering::Relaxed);
                    let bytes = match packet.marshal() {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::debug!(error = %e, "RTP packet could not be re-encoded");
                            continue;
                        }
                    };
                    let rtp = RemoteRtp {
                        slot: *slot,
                        ssrc: packet.header.ssrc,
                        payload_type: packet.header.payload_type,
                        codec: codec.clone(),
                        packet: bytes.freeze(),
                    };
                    // Media is not worth blocking for: a consumer that falls behind loses
                    // packets (and asks for a keyframe). RTP never takes the last
                    // RTP_RESERVE places, so control events (which wait for room) always
                    // find some, even when the consumer is itself inside a `PeerConnection`
                    // call.
                    let sent = if self.inner.events.capacity() > RTP_RESERVE {
                        self.inner
                            .events
                            .try_send((self.remote(), PeerEvent::Rtp(rtp)))
                    } else {
                        Err(mpsc::error::TrySendError::Full((
                            self.remote(),
                            PeerEvent::Rtp(rtp),
                        )))
                    };
                    match sent {
                        Ok(()) => warned_full = false,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            self.inner
                                .counters
                                .rtp_dropped
                                .fetch_add(1, Ordering::Relaxed);
                            if !warned_full {
                                warned_full = true;
                                tracing::warn!(
                                    remote = %self.remote(),
                                    %slot,
                                    "event channel full; dropping RTP"
                                );
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                TrackRemoteEvent::OnEnded => break,
                _ => {}
            }
        }
        if let Some((slot, _)) = current {
            self.inner
                .remote
                .lock()
                .unwrap_or_else(PoisonError::into_inner)[slot.index()] = None;
            self.emit(PeerEvent::TrackEnded { slot }).await;
        }
    }
}

async fn negotiated_payload_type(sender: &Arc<dyn RtpSender>) -> Option<u8> {
    let params = sender.get_parameters().await.ok()?;
    params.rtp_parameters.codecs.first().map(|c| c.payload_type)
}

//! One remote peer: a task that owns its `portal-net` connection and its media.
//!
//! The session task (the engine's owner) starts a link on `StartPeer` and talks to it
//! with [`Command`]s in order (signals, chat and file frames, ICE restarts, stop). The
//! link reports what matters to the engine as [`LinkEvent`]s and handles media itself, so
//! RTP never passes through the engine's task:
//!
//! - once negotiated, it subscribes the kiosk's one [`Sender`] to the codec this peer
//!   takes (and Opus), so the camera and encoders start while ICE and DTLS are still
//!   under way; samples reach the peer's tracks once it is connected, starting with a
//!   keyframe. The encoders are shared by every peer (encode once);
//! - a PLI or FIR from the peer forces a keyframe of that codec;
//! - each remote track gets a [`Receiver`] when its first packet arrives; the receiver's
//!   keyframe hook sends a PLI back;
//! - file frames are sent in order; after each the buffered amount (what the data channel
//!   holds plus what is still queued here) goes back to the engine for back-pressure.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use portal_board::{BoardFacts, Sink};
use portal_media::{
    Delivery, KeyframeHook, Receiver, ReceiverConfig, ReceiverStats, Sender, SubscriptionGuard,
};
use portal_net::{ChannelMessage, MediaSample, Negotiation, PeerConfig, PeerConnection, PeerEvent};
use portal_proto::media::{Channel, Codec, ConnectionState, Slot};
use portal_proto::{IceServer, PeerId, SignalData};
use tokio::sync::mpsc;

/// How long a received file chunk waits for the disk before it is dropped.
const FILE_DISK_WAIT: Duration = Duration::from_secs(30);

/// What the session asks a link to do.
#[derive(Debug)]
pub(crate) enum Command {
    Signal(SignalData),
    Chat(String),
    FileText(String),
    FileBinary(Vec<u8>),
    RestartIce,
    /// The speaker's volume, 0 to 1.
    Volume(f32),
    Stop,
}

/// What a link tells the session.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// Relay to the peer through signaling.
    Signal(SignalData),
    State(ConnectionState),
    ChannelOpened(Channel),
    ChannelClosed(Channel),
    ChatText(String),
    FileText(String),
    FileBinary(Vec<u8>),
    FileBuffered(usize),
    AudioLevel(f32),
    /// The congestion controller's send estimate, bit/s.
    SendEstimate(u64),
    /// The link has ended (connection closed or failed to build).
    Ended,
}

/// A remote track being decoded, for the status endpoint and snapshots.
#[derive(Debug)]
pub(crate) struct Track {
    pub codec: Codec,
    pub payload_type: u8,
    pub receiver: Receiver,
}

/// What the session and the status endpoint can see of a link.
#[derive(Debug, Default)]
pub(crate) struct LinkShared {
    /// Per slot (audio, camera, screen).
    pub tracks: Mutex<[Option<Track>; 3]>,
    /// The video codec this peer receives from us, once negotiated.
    pub send_video: Mutex<Option<Codec>>,
    /// File frames queued for the channel and not yet handed to it.
    pub queued_file_bytes: AtomicUsize,
    pub ice_restarts: AtomicU64,
    /// The send estimate last reported, bit/s.
    pub send_estimate: AtomicU64,
}

impl LinkShared {
    pub(crate) fn receiver_stats(&self, slot: Slot) -> Option<(Codec, ReceiverStats)> {
        let tracks = self.tracks.lock().unwrap_or_else(PoisonError::into_inner);
        tracks[slot.index()]
            .as_ref()
            .map(|t| (t.codec, t.receiver.stats()))
    }

    pub(crate) fn snapshot_png(&self) -> anyhow::Result<Vec<u8>> {
        let tracks = self.tracks.lock().unwrap_or_else(PoisonError::into_inner);
        for slot in [Slot::Screen, Slot::Camera] {
            if let Some(t) = &tracks[slot.index()]
                && let Ok(png) = t.receiver.snapshot_png()
            {
                return Ok(png);
            }
        }
        anyhow::bail!("no decoded frame from this peer yet")
    }
}

/// Everything a link needs to start.
pub(crate) struct LinkSetup {
    pub remote: PeerId,
    pub negotiation: Negotiation,
    pub ice_servers: Vec<IceServer>,
    pub sender: Sender,
    pub speaker: Sink,
    pub facts: BoardFacts,
    /// Tagged with the link's serial, so the session can ignore a stopped link's last words.
    pub events: mpsc::Sender<(PeerId, u64, LinkEvent)>,
    pub serial: u64,
    pub net: crate::media::NetSettings,
    /// Mute and camera off.
    pub gates: crate::media::Gates,
    /// Where decoded video goes besides the status endpoint (the touch screen).
    pub frames: Option<FrameRoute>,
    /// Received file bytes this peer may have on their way to the disk
    /// ([`crate::files::Budget`]): a chunk waits here for its share.
    pub file_budget: crate::files::Budget,
}

/// Takes each decoded video frame of one peer, with the slot it came in on.
pub(crate) type FrameRoute = Arc<dyn Fn(Slot, &portal_media::VideoFrame) + Send + Sync>;

/// The handle the session keeps.
#[derive(Debug)]
pub(crate) struct Link {
    pub serial: u64,
    pub commands: mpsc::UnboundedSender<Command>,
    pub shared: Arc<LinkShared>,
}

impl Link {
    pub(crate) fn send(&self, command: Command) {
        if let Command::FileBinary(frame) = &command {
            self.shared
                .queued_file_bytes
                .fetch_add(frame.len(), Ordering::Relaxed);
        }
        if self.commands.send(command).is_err() {
            tracing::debug!(serial = self.serial, "command for a link that has ended");
        }
    }
}

/// Starts a link's task.
pub(crate) fn start(setup: LinkSetup) -> Link {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(LinkShared::default());
    let serial = setup.serial;
    tokio::spawn(run(setup, command_rx, Arc::clone(&shared)));
    Link {
        serial,
        commands,
        shared,
    }
}

/// A link's subscriptions to the sender; `generation` moves on each renegotiation, so a
/// subscription that finishes starting after it is dropped.
#[derive(Default)]
struct Subscriptions {
    generation: u64,
    guards: Vec<SubscriptionGuard>,
}

struct Running {
    setup: LinkSetup,
    peer: PeerConnection,
    shared: Arc<LinkShared>,
    negotiated: Option<[Option<Codec>; 3]>,
    /// Whether the peer connection is up; shared with the sample callbacks, which drop
    /// samples until it is.
    connected: Arc<AtomicBool>,
    /// Subscriptions to the sender (dropping them unsubscribes).
    subscriptions: Arc<Mutex<Subscriptions>>,
    /// Whether the current negotiation's subscriptions were asked for.
    subscribed: bool,
    /// Per slot, a `(codec, payload type)` whose receiver could not be built (not retried
    /// for every packet).
    undecodable: [Option<(Codec, u8)>; 3],
}

async fn run(
    setup: LinkSetup,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<LinkShared>,
) {
    let (peer_tx, mut peer_rx) = mpsc::channel(1024);
    let mut config = PeerConfig::new(setup.remote, setup.negotiation);
    config.ice_servers.clone_from(&setup.ice_servers);
    // ICE restarts are the engine's decision (it backs off); the link only carries them out.
    config.restart_ice_on_failure = false;
    config.udp_ports = setup.net.udp_ports;
    config.ice_timeouts = setup.net.ice_timeouts;
    let bitrate = setup.net.bitrate;
    config.congestion_control = Some(portal_net::BitrateBounds {
        min: f64::from(bitrate.min_kbps) * 1000.0,
        start: f64::from(bitrate.start_kbps) * 1000.0,
        max: f64::from(bitrate.max_kbps) * 1000.0,
    });
    let remote = setup.remote;
    let peer = match PeerConnection::connect(config, peer_tx).await {
        Ok(peer) => peer,
        Err(e) => {
            tracing::warn!(%remote, error = %e, "peer connection could not be built");
            let _ = setup
                .events
                .send((remote, setup.serial, LinkEvent::Ended))
                .await;
            return;
        }
    };
    if let Err(e) = peer
        .set_buffered_amount_low_threshold(Channel::File, 256 * 1024)
        .await
    {
        tracing::debug!(%remote, error = %e, "no buffered-amount-low threshold");
    }
    let mut link = Running {
        setup,
        peer,
        shared,
        negotiated: None,
        connected: Arc::new(AtomicBool::new(false)),
        subscriptions: Arc::default(),
        subscribed: false,
        undecodable: [None; 3],
    };
    let mut level_tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            command = commands.recv() => {
                match command {
                    None | Some(Command::Stop) => break,
                    Some(command) => link.command(command).await,
                }
            }
            event = peer_rx.recv() => {
                match event {
                    None | Some((_, PeerEvent::Closed)) => break,
                    Some((_, event)) => link.peer_event(event).await,
                }
            }
            _ = level_tick.tick() => {
                if let Some((_, stats)) = link.shared.receiver_stats(Slot::Audio) {
                    link.report(LinkEvent::AudioLevel(stats.audio_level)).await;
                }
                link.report_estimate().await;
            }
        }
    }
    link.unsubscribe();
    link.peer.close().await;
    link.shared
        .tracks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter_mut()
        .for_each(|t| *t = None);
    link.report(LinkEvent::Ended).await;
    tracing::debug!(%remote, "link ended");
}

impl Running {
    async fn report(&self, event: LinkEvent) {
        let _ = self
            .setup
            .events
            .send((self.setup.remote, self.setup.serial, event))
            .await;
    }

    async fn command(&mut self, command: Command) {
        let remote = self.setup.remote;
        match command {
            Command::Signal(data) => {
                if let Err(e) = self.peer.handle_signal(data).await {
                    tracing::warn!(%remote, error = %e, "remote signal not applied");
                }
            }
            Command::Chat(text) => {
                if let Err(e) = self.peer.send_text(Channel::Chat, &text).await {
                    tracing::debug!(%remote, error = %e, "chat frame not sent");
                }
            }
            Command::FileText(text) => {
                if let Err(e) = self.peer.send_text(Channel::File, &text).await {
                    tracing::debug!(%remote, error = %e, "file frame not sent");
                }
                self.report_buffered().await;
            }
            Command::FileBinary(frame) => {
                let len = frame.len();
                if let Err(e) = self.peer.send_binary(Channel::File, &frame).await {
                    tracing::debug!(%remote, error = %e, "file chunk not sent");
                }
                self.shared
                    .queued_file_bytes
                    .fetch_sub(len, Ordering::Relaxed);
                self.report_buffered().await;
            }
            Command::RestartIce => {
                if let Err(e) = self.peer.restart_ice().await {
                    tracing::warn!(%remote, error = %e, "ICE restart failed");
                }
            }
            Command::Volume(volume) => {
                let tracks = self
                    .shared
                    .tracks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for track in tracks.iter().flatten() {
                    track.receiver.set_volume(f64::from(volume));
                }
            }
            Command::Stop => {}
        }
    }

    /// Tells the engine about a new send estimate (once connected, when it has moved).
    async fn report_estimate(&self) {
        let Some(bps) = self.peer.send_estimate() else {
            return;
        };
        if !self.connected.load(Ordering::Relaxed)
            || self.shared.send_estimate.swap(bps, Ordering::Relaxed) == bps
        {
            return;
        }
        self.report(LinkEvent::SendEstimate(bps)).await;
    }

    async fn report_buffered(&self) {
        let queued = self.shared.queued_file_bytes.load(Ordering::Relaxed);
        let channel = self.peer.buffered_amount(Channel::File).await.unwrap_or(0);
        self.report(LinkEvent::FileBuffered(channel + queued)).await;
    }

    async fn peer_event(&mut self, event: PeerEvent) {
        let remote = self.setup.remote;
        match event {
            PeerEvent::Signal(data) => self.report(LinkEvent::Signal(data)).await,
            PeerEvent::State(state) => {
                let now = state == ConnectionState::Connected;
                let was = self.connected.swap(now, Ordering::Relaxed);
                if now && !was {
                    // What the encoder made before this went nowhere: start with a keyframe.
                    let camera = self.negotiated.and_then(|send| send[Slot::Camera.index()]);
                    if let Some(codec) = camera {
                        self.setup.sender.force_keyframe(codec);
                    }
                }
                self.report(LinkEvent::State(state)).await;
            }
            PeerEvent::Negotiated { send } => {
                *self
                    .shared
                    .send_video
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = send[Slot::Camera.index()];
                if self.negotiated != Some(send) {
                    self.unsubscribe();
                }
                self.negotiated = Some(send);
                self.maybe_subscribe();
            }
            PeerEvent::ChannelOpen(channel) => {
                self.report(LinkEvent::ChannelOpened(channel)).await;
            }
            PeerEvent::ChannelClosed(channel) => {
                self.report(LinkEvent::ChannelClosed(channel)).await;
            }
            PeerEvent::BufferedAmountLow(Channel::File) => self.report_buffered().await,
            PeerEvent::Message { channel, message } => match (channel, message) {
                (Channel::Chat, ChannelMessage::Text(text)) => {
                    self.report(LinkEvent::ChatText(text)).await;
                }
                (Channel::File, ChannelMessage::Text(text)) => {
                    self.report(LinkEvent::FileText(text)).await;
                }
                (Channel::File, ChannelMessage::Binary(frame)) => {
                    // Back-pressure: while the disk is behind with this peer's chunks, this
                    // link stops reading its data channel (and SCTP slows the sender).
                    let wait = self.setup.file_budget.acquire_many(frame.len() as u32);
                    match tokio::time::timeout(FILE_DISK_WAIT, wait).await {
                        Ok(Ok(permit)) => {
                            permit.forget();
                            self.report(LinkEvent::FileBinary(frame.to_vec())).await;
                        }
                        // A disk this far behind fails the transfer (its digest will not match).
                        _ => {
                            tracing::warn!(%remote, "file chunk dropped: the disk is too far behind");
                        }
                    }
                }
                (Channel::Chat, ChannelMessage::Binary(_)) => {
                    tracing::debug!(%remote, "binary frame on the chat channel ignored");
                }
            },
            PeerEvent::Rtp(rtp) => self.rtp(rtp),
            PeerEvent::IceRestart { attempt } => {
                self.shared
                    .ice_restarts
                    .store(u64::from(attempt), Ordering::Relaxed);
            }
            PeerEvent::TrackEnded { slot } => {
                self.shared
                    .tracks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)[slot.index()] = None;
            }
            PeerEvent::KeyframeRequested { slot, kind } => {
                let codec = self.negotiated.and_then(|send| send[slot.index()]);
                if let Some(codec) = codec {
                    tracing::debug!(%remote, %slot, ?kind, "keyframe requested");
                    self.setup.sender.force_keyframe(codec);
                }
            }
            _ => {}
        }
    }

    /// Subscribes this peer to our camera and microphone once its codecs are known; the
    /// samples go out while it is connected.
    fn maybe_subscribe(&mut self) {
        let Some(send) = self.negotiated else { return };
        if self.subscribed {
            return;
        }
        self.subscribed = true;
        let generation = self
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generation;
        for slot in [Slot::Audio, Slot::Camera] {
            let Some(codec) = send[slot.index()] else {
                continue;
            };
            let (tx, mut rx) = mpsc::channel::<portal_media::EncodedSample>(16);
            let gate = if slot == Slot::Audio {
                Arc::clone(&self.setup.gates.audio)
            } else {
                Arc::clone(&self.setup.gates.video)
            };
            let live = Arc::clone(&self.connected);
            // Starting an encoder (and the camera) builds GStreamer pipelines, tens of ms,
            // off this task: it has the remote's candidates to apply meanwhile (ICE waited
            // for them while the encoders started here).
            let sender = self.setup.sender.clone();
            let subscriptions = Arc::clone(&self.subscriptions);
            let remote = self.setup.remote;
            tokio::task::spawn_blocking(move || {
                let guard = sender.subscribe_with(
                    codec,
                    Box::new(move |sample| {
                        if !gate.load(Ordering::Relaxed) || !live.load(Ordering::Relaxed) {
                            // Muted, camera off, or not connected (yet): nothing goes out.
                            return Delivery::Accepted;
                        }
                        match tx.try_send(sample.clone()) {
                            Ok(()) => Delivery::Accepted,
                            Err(mpsc::error::TrySendError::Full(_)) => Delivery::Dropped,
                            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
                        }
                    }),
                );
                match guard {
                    Ok(guard) => {
                        let mut subs = subscriptions.lock().unwrap_or_else(PoisonError::into_inner);
                        // A renegotiation meanwhile made this one stale: dropping it
                        // unsubscribes.
                        if subs.generation == generation {
                            subs.guards.push(guard);
                            tracing::info!(%remote, %slot, %codec, "sending");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%remote, %codec, error = %e, "cannot send this codec");
                    }
                }
            });
            let peer = self.peer.clone();
            tokio::spawn(async move {
                while let Some(sample) = rx.recv().await {
                    let sample = MediaSample::new(sample.data, sample.duration);
                    match peer.write_sample(slot, codec, &sample).await {
                        Ok(_) => {}
                        Err(portal_net::PeerError::Closed) => break,
                        Err(e) => tracing::debug!(%slot, error = %e, "sample not written"),
                    }
                }
            });
        }
    }

    /// Drops this peer's subscriptions (and any still being made).
    fn unsubscribe(&mut self) {
        let mut subs = self
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subs.generation += 1;
        subs.guards.clear();
        self.subscribed = false;
    }

    /// Feeds a remote packet to its slot's receiver, making one when needed.
    fn rtp(&mut self, rtp: portal_net::RemoteRtp) {
        let Some(codec) = rtp.codec.codec() else {
            return;
        };
        if self.undecodable[rtp.slot.index()] == Some((codec, rtp.payload_type)) {
            return;
        }
        let mut tracks = self
            .shared
            .tracks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = &mut tracks[rtp.slot.index()];
        let fits = entry
            .as_ref()
            .is_some_and(|t| t.codec == codec && t.payload_type == rtp.payload_type);
        if !fits {
            let mut config = ReceiverConfig::new(codec, rtp.payload_type, self.setup.facts.clone());
            config.volume = f64::from(self.setup.gates.volume());
            // Building the pipeline takes a while: keep the runtime's other tasks going.
            let receiver = tokio::task::block_in_place(|| {
                if codec == Codec::Opus {
                    Receiver::audio(&config, &self.setup.speaker, None)
                } else {
                    let sink = self.setup.frames.clone().map(|route| {
                        let slot = rtp.slot;
                        Box::new(move |frame: &portal_media::VideoFrame| route(slot, frame))
                            as portal_media::FrameSink
                    });
                    Receiver::video(&config, sink, Some(self.keyframe_hook(rtp.slot)))
                }
            });
            match receiver {
                Ok(receiver) => {
                    tracing::info!(remote = %self.setup.remote, slot = %rtp.slot, ?codec, pt = rtp.payload_type, "receiving");
                    *entry = Some(Track {
                        codec,
                        payload_type: rtp.payload_type,
                        receiver,
                    });
                }
                Err(e) => {
                    tracing::warn!(remote = %self.setup.remote, slot = %rtp.slot, error = %e, "cannot decode this track");
                    self.undecodable[rtp.slot.index()] = Some((codec, rtp.payload_type));
                    return;
                }
            }
        }
        if let Some(track) = entry {
            track.receiver.push_rtp(rtp.packet);
        }
    }

    fn keyframe_hook(&self, slot: Slot) -> KeyframeHook {
        let peer = self.peer.clone();
        let runtime = tokio::runtime::Handle::current();
        Arc::new(move |why| {
            let peer = peer.clone();
            runtime.spawn(async move {
                tracing::debug!(%slot, ?why, "asking the peer for a keyframe");
                let _ = peer.request_keyframe(slot).await;
            });
        })
    }
}

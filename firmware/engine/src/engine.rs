//! The kiosk's session: one signaling connection, one room, a peer connection per peer.
//!
//! [`Engine`] composes the pieces of this crate and is the only type the I/O layer
//! (portal-net) needs: feed it [`Input`]s with [`Engine::handle`], call its commands
//! ([`Engine::send_chat`], [`Engine::send_file`], ...), then drain [`Engine::poll_output`]
//! and sleep until [`Engine::poll_timeout`], calling [`Engine::handle_timeout`] then. The
//! engine never reads a clock and never blocks; every `now` comes from the caller.
//!
//! Signaling lifecycle: the first output is [`Output::Connect`]. When the WebSocket is up
//! ([`Input::SignalingOpened`]) the engine says `hello` (with the resume token of the last
//! `welcome`, so the server can give the same peer id back), then `join`. A dropped
//! connection ([`Input::SignalingClosed`]) keeps every peer connection and schedules the
//! next [`Output::Connect`] after a backoff delay with jitter; the backoff resets once the
//! room is joined again. When the server could not give the old id back
//! (`welcome.resumed == false`), the other peers know us under a new id, so every peer
//! connection is stopped and started afresh from the new `joined`. After a server
//! restart the others reconnect too, in any order: a peer the new `joined` does not list
//! keeps its live connection for [`EngineConfig::resume_grace`], and one that comes back
//! under its id (`peerJoined`) keeps it for good, as the browser client does.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use portal_proto::channel::{ChatChannelMessage, TransferSide};
use portal_proto::{
    ClientMessage, ErrorCode, IceServer, PROTOCOL_VERSION, PeerId, Role, SdpType, ServerMessage,
    SignalData,
};

use crate::backoff::{Backoff, BackoffConfig};
use crate::chat::{ChatEntry, ChatError, ChatLog, validate_text};
use crate::room::{OfferRole, Peer, Room, RoomChange};
use crate::stage::{Stage, StageConfig, StageReason};
use crate::transfer::{FileAction, FileChannel, FileConfig, Transfer, TransferError};

/// Everything the engine needs to know up front. Every field has a default that works
/// on a laptop except `room` and `name`.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Display name ("Room 4.01").
    pub name: String,
    pub room: String,
    pub password: Option<String>,
    /// What this client is; a kiosk unless a test plays a browser.
    pub role: Role,
    pub files: FileConfig,
    pub stage: StageConfig,
    pub reconnect: BackoffConfig,
    /// Backoff of ICE restarts of a failed peer connection (offerer side only), and of
    /// rebuilding a peer connection that ended while its peer is still in the room.
    pub ice_restart: BackoffConfig,
    /// Bounds of the video bitrate the congestion controller's estimates may set.
    pub bitrate: BitrateConfig,
    /// Chat lines kept.
    pub chat_capacity: usize,
    /// After a reconnect, how long a peer the server does not list yet keeps its live
    /// connection (after a server restart the others reconnect too, in any order).
    pub resume_grace: Duration,
    /// Seeds the jitter of every backoff (e.g. from the machine id), so many kiosks do not
    /// retry in lockstep while a test still sees the same delays on every run.
    pub seed: u64,
}

impl EngineConfig {
    pub fn new(room: impl Into<String>, name: impl Into<String>) -> Self {
        EngineConfig {
            name: name.into(),
            room: room.into(),
            password: None,
            role: Role::Kiosk,
            files: FileConfig::default(),
            stage: StageConfig::default(),
            reconnect: BackoffConfig::default(),
            ice_restart: BackoffConfig {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(20),
                ..BackoffConfig::default()
            },
            bitrate: BitrateConfig::default(),
            chat_capacity: 500,
            resume_grace: Duration::from_secs(25),
            seed: 0,
        }
    }
}

/// The video bitrate window, kbit/s. The kiosk runs one encoder per codec for every peer,
/// so the encoder follows the lowest send estimate of the connected peers, held within
/// `min..=max`, and starts at `start` until the first estimate arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitrateConfig {
    pub min_kbps: u32,
    pub start_kbps: u32,
    pub max_kbps: u32,
    /// Changes smaller than this fraction of the current bitrate (in percent) are not
    /// applied, so the encoder is not reconfigured for every feedback report.
    pub hysteresis_percent: u32,
}

impl Default for BitrateConfig {
    fn default() -> Self {
        BitrateConfig {
            min_kbps: 300,
            start_kbps: 1000,
            max_kbps: 2500,
            hysteresis_percent: 10,
        }
    }
}

impl BitrateConfig {
    /// `kbps` held within the bounds.
    pub fn clamp(&self, kbps: u32) -> u32 {
        kbps.clamp(self.min_kbps, self.max_kbps.max(self.min_kbps))
    }
}

/// The two pre-negotiated data channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `chat`, id 0.
    Chat,
    /// `file`, id 1.
    File,
}

/// A peer connection's state as WebRTC reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// What a peer says about its own media (the chat channel's `state` message).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // mirrors the wire message field for field
pub struct MediaState {
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
    pub recording: bool,
}

/// Something that happened, for the I/O layer to tell the engine.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input {
    /// The signaling WebSocket is open.
    SignalingOpened,
    /// The signaling WebSocket closed or could not be opened.
    SignalingClosed,
    /// A message from the server.
    Server(ServerMessage),
    /// A peer connection changed state.
    Connection {
        peer: PeerId,
        state: ConnectionState,
    },
    ChannelOpened {
        peer: PeerId,
        channel: Channel,
    },
    ChannelClosed {
        peer: PeerId,
        channel: Channel,
    },
    /// A text frame on a peer's chat channel.
    ChatText {
        peer: PeerId,
        text: String,
    },
    /// A text frame on a peer's file channel.
    FileText {
        peer: PeerId,
        text: String,
    },
    /// A binary frame on a peer's file channel.
    FileBinary {
        peer: PeerId,
        frame: Vec<u8>,
    },
    /// The file channel's buffered amount (after a send, or on buffered-amount-low).
    FileBuffered {
        peer: PeerId,
        amount: usize,
    },
    /// Bytes for a [`FileAction::Read`].
    FileData {
        peer: PeerId,
        id: u32,
        bytes: Vec<u8>,
    },
    /// A [`FileAction::Read`] failed.
    FileReadFailed {
        peer: PeerId,
        id: u32,
        reason: String,
    },
    /// A [`FileAction::Commit`] succeeded: the file is in place under its final name.
    FileStored {
        peer: PeerId,
        id: u32,
    },
    /// Creating, writing or committing an incoming file failed.
    FileStoreFailed {
        peer: PeerId,
        id: u32,
        reason: String,
    },
    /// An audio level of a peer's audio track (0.0 .. 1.0).
    AudioLevel {
        peer: PeerId,
        level: f32,
    },
    /// The congestion controller's send estimate towards `peer` (GCC over TWCC).
    SendEstimate {
        peer: PeerId,
        bits_per_second: u64,
    },
}

/// What the engine asks the I/O layer to do, or tells it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Open the signaling WebSocket now.
    Connect,
    /// Send this to the server.
    Send(ClientMessage),
    /// Create a peer connection with `peer`; `role` says whether we offer.
    StartPeer {
        peer: PeerId,
        name: String,
        role: OfferRole,
    },
    /// Close the peer connection with `peer` (the others are untouched).
    StopPeer { peer: PeerId },
    /// Re-offer to `peer` with an ICE restart (we are its offerer).
    RestartIce { peer: PeerId },
    /// Set the video encoders' bitrate.
    VideoBitrate { kbps: u32 },
    /// Apply this remote description or candidate to `from`'s peer connection.
    Signal { from: PeerId, data: SignalData },
    /// Send this JSON text frame on `peer`'s chat channel.
    Chat { peer: PeerId, text: String },
    /// File channel work for `peer` (frames to send, file I/O, state changes).
    File { peer: PeerId, action: FileAction },
    /// For the UI and the status endpoint.
    Event(Event),
}

/// News for the UI and the status endpoint.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// In the room as `me`.
    Joined {
        me: PeerId,
    },
    /// The signaling connection is gone; reconnecting in `retry_in`.
    Disconnected {
        retry_in: Duration,
    },
    /// The server refused to let us in; `retrying` says whether the engine tries again.
    JoinFailed {
        code: ErrorCode,
        message: String,
        retrying: bool,
    },
    PeerAdded(PeerId),
    PeerRemoved(PeerId),
    /// A peer's media state changed.
    PeerMedia {
        peer: PeerId,
        state: MediaState,
    },
    Chat(ChatEntry),
    /// Who is on stage changed.
    Stage(Option<(PeerId, StageReason)>),
}

/// Errors of the engine's commands.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("not in a room")]
    NotJoined,
    #[error("no peer {0} in the room")]
    UnknownPeer(PeerId),
    #[error("peer {0} offers to us; the answerer never offers")]
    AnswererOffer(PeerId),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Transfer(#[from] TransferError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signaling {
    /// Waiting for the connection (first attempt, or after the backoff delay).
    Connecting,
    /// Said hello, waiting for welcome.
    Hello,
    /// Said join, waiting for joined.
    Joining,
    /// In the room.
    Joined,
    /// Refused by the server; no retry until the config changes.
    Refused,
    /// Waiting until `reconnect_at`.
    Waiting,
}

#[derive(Debug)]
struct PeerSession {
    chat_open: bool,
    file: FileChannel,
    media: MediaState,
    connection: ConnectionState,
    ice_backoff: Backoff,
    ice_restart_at: Option<Instant>,
    /// The peer connection ended by itself (or could not be built); build it again then.
    rebuild_at: Option<Instant>,
    name: String,
    role: OfferRole,
    /// The remote's last offer and the candidates since, replayed to a rebuilt answerer.
    last_offer: Option<SignalData>,
    candidates: Vec<SignalData>,
    /// The latest send estimate towards this peer, kbit/s.
    estimate_kbps: Option<u32>,
    /// Our offer that has no answer yet. Another ICE restart while it is on its way would
    /// make the remote answer twice, and the first answer would be applied to the second
    /// offer; so a restart waits for the answer, up to [`ANSWER_TIMEOUT`].
    offer_sent_at: Option<Instant>,
}

/// An offer without an answer for this long is taken as lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Remote candidates kept for a replay; a browser sends a handful.
const KEPT_CANDIDATES: usize = 64;

/// The kiosk's room session (see the module docs).
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    state: Signaling,
    me: Option<PeerId>,
    resume_token: Option<String>,
    ice_servers: Vec<IceServer>,
    doc_token: Option<String>,
    room: Option<Room>,
    sessions: BTreeMap<PeerId, PeerSession>,
    chat: ChatLog,
    chat_serial: u64,
    stage: Stage,
    backoff: Backoff,
    reconnect_at: Option<Instant>,
    rejoin_at: Option<Instant>,
    media: MediaState,
    existing_files: HashSet<String>,
    session_serial: u64,
    /// Peers kept across a reconnect that the server has not listed again, with the time
    /// they are given up.
    unconfirmed: BTreeMap<PeerId, Instant>,
    /// The video bitrate last asked for, kbit/s.
    bitrate_kbps: u32,
    out: VecDeque<Output>,
}

impl Engine {
    /// A new session; the first output asks to connect.
    pub fn new(config: EngineConfig) -> Self {
        let backoff = Backoff::new(config.reconnect, config.seed);
        let mut engine = Engine {
            chat: ChatLog::new(config.chat_capacity),
            stage: Stage::new(config.stage),
            config,
            state: Signaling::Connecting,
            me: None,
            resume_token: None,
            ice_servers: Vec::new(),
            doc_token: None,
            room: None,
            sessions: BTreeMap::new(),
            chat_serial: 0,
            backoff,
            reconnect_at: None,
            rejoin_at: None,
            media: MediaState {
                audio: true,
                video: true,
                screen: false,
                recording: false,
            },
            existing_files: HashSet::new(),
            session_serial: 0,
            unconfirmed: BTreeMap::new(),
            bitrate_kbps: 0,
            out: VecDeque::new(),
        };
        engine.bitrate_kbps = engine
            .config
            .bitrate
            .clamp(engine.config.bitrate.start_kbps);
        engine.out.push_back(Output::Connect);
        engine
    }

    // ---- driving ----

    /// The next thing to do, in order; `None` when there is nothing until the next input
    /// or timeout.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Engine::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self
            .sessions
            .values()
            .flat_map(|s| [s.ice_restart_at, s.rebuild_at, s.file.poll_timeout()]);
        [self.reconnect_at, self.rejoin_at]
            .into_iter()
            .chain(self.unconfirmed.values().copied().map(Some))
            .chain(sessions)
            .flatten()
            .min()
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.state = Signaling::Connecting;
            tracing::info!(
                attempt = self.backoff.attempt(),
                "reconnecting to the server"
            );
            self.out.push_back(Output::Connect);
        }
        if self.rejoin_at.is_some_and(|t| t <= now) {
            self.rejoin_at = None;
            if self.state == Signaling::Joining {
                self.send_join();
            }
        }
        let expired: Vec<PeerId> = self
            .unconfirmed
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.unconfirmed.remove(&id);
            tracing::info!(peer = %id, "peer did not come back after the reconnect");
            if let Some(change) = self.room.as_mut().and_then(|r| r.peer_left(id)) {
                self.apply_changes(vec![change]);
            }
        }
        let peers: Vec<PeerId> = self.sessions.keys().copied().collect();
        for peer in peers {
            let Some(s) = self.sessions.get_mut(&peer) else {
                continue;
            };
            if s.ice_restart_at.is_some_and(|t| t <= now) {
                s.ice_restart_at = None;
                let waiting = s
                    .offer_sent_at
                    .map(|t| t + ANSWER_TIMEOUT)
                    .filter(|t| *t > now);
                if let Some(until) = waiting.filter(|_| s.connection == ConnectionState::Failed) {
                    tracing::debug!(%peer, "ICE restart waits for the answer to our last offer");
                    s.ice_restart_at = Some(until);
                } else if s.connection == ConnectionState::Failed {
                    tracing::info!(%peer, "restarting ICE");
                    self.out.push_back(Output::RestartIce { peer });
                    let delay = s.ice_backoff.next_delay();
                    s.ice_restart_at = Some(now + delay);
                }
            }
            if s.rebuild_at.is_some_and(|t| t <= now) {
                s.rebuild_at = None;
                s.connection = ConnectionState::Connecting;
                tracing::info!(%peer, attempt = s.ice_backoff.attempt(), "building the peer connection again");
                self.out.push_back(Output::StartPeer {
                    peer,
                    name: s.name.clone(),
                    role: s.role,
                });
                if s.role == OfferRole::Answerer {
                    // The remote's offer went to the connection that ended; the new one
                    // answers it (a remote that restarts ICE later sends a fresh one).
                    for data in s.last_offer.iter().chain(&s.candidates) {
                        self.out.push_back(Output::Signal {
                            from: peer,
                            data: data.clone(),
                        });
                    }
                }
            }
            s.file.handle_timeout(now);
            self.flush_file(peer);
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::SignalingOpened => self.signaling_opened(),
            Input::SignalingClosed => self.signaling_closed(now),
            Input::Server(msg) => self.server_message(now, msg),
            Input::Connection { peer, state } => self.connection_state(now, peer, state),
            Input::SendEstimate {
                peer,
                bits_per_second,
            } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    s.estimate_kbps =
                        Some(u32::try_from(bits_per_second / 1000).unwrap_or(u32::MAX));
                }
                self.update_bitrate(false);
            }
            Input::ChannelOpened { peer, channel } => self.channel_opened(peer, channel),
            Input::ChannelClosed { peer, channel } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    match channel {
                        Channel::Chat => s.chat_open = false,
                        Channel::File => s.file.closed(),
                    }
                }
                self.flush_file(peer);
            }
            Input::ChatText { peer, text } => self.chat_text(now, peer, &text),
            Input::FileText { peer, text } => {
                let taken = self.taken_names();
                if let Some(s) = self.sessions.get_mut(&peer) {
                    s.file.on_text(now, &text, &taken);
                }
                self.flush_file(peer);
            }
            Input::FileBinary { peer, frame } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    s.file.on_binary(&frame);
                }
                self.flush_file(peer);
            }
            Input::FileBuffered { peer, amount } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    s.file.set_buffered(amount);
                }
                self.flush_file(peer);
            }
            Input::FileData { peer, id, bytes } => {
                if let Some(s) = self.sessions.get_mut(&peer)
                    && let Err(e) = s.file.provide(id, &bytes)
                {
                    tracing::debug!(%peer, id, error = %e, "file data not used");
                }
                self.flush_file(peer);
            }
            Input::FileReadFailed { peer, id, reason } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    let _ = s.file.read_failed(id, &reason);
                }
                self.flush_file(peer);
            }
            Input::FileStored { peer, id } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    if let Some(name) = s
                        .file
                        .transfer(TransferSide::Receiver, id)
                        .and_then(|t| t.stored_name.clone())
                    {
                        self.existing_files.insert(name);
                    }
                    if let Err(e) = s.file.stored(id) {
                        tracing::warn!(%peer, id, error = %e, "stored file for no finishing transfer");
                    }
                }
                self.flush_file(peer);
            }
            Input::FileStoreFailed { peer, id, reason } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    let _ = s.file.store_failed(id, &reason);
                }
                self.flush_file(peer);
            }
            Input::AudioLevel { peer, level } => {
                self.stage.audio_level(now, peer, level);
                self.update_stage();
            }
        }
    }

    // ---- commands ----

    /// Sends a chat line to every peer whose chat channel is open, and logs it.
    /// `wall_ms` is the wall clock (ms since the Unix epoch) shown to the others.
    pub fn send_chat(&mut self, wall_ms: f64, text: &str) -> Result<(), EngineError> {
        validate_text(text)?;
        let me = self.me.ok_or(EngineError::NotJoined)?;
        self.chat_serial += 1;
        let id = format!("{me}-{}", self.chat_serial);
        let msg = ChatChannelMessage::Chat {
            id: id.clone(),
            from: self.config.name.clone(),
            time: wall_ms,
            text: text.to_owned(),
        };
        let json = msg.to_json();
        for (peer, s) in &self.sessions {
            if s.chat_open {
                self.out.push_back(Output::Chat {
                    peer: *peer,
                    text: json.clone(),
                });
            }
        }
        self.chat.push(ChatEntry {
            peer: None,
            id,
            from: self.config.name.clone(),
            time: wall_ms,
            text: text.to_owned(),
        });
        Ok(())
    }

    /// Sends our description or candidate to `peer` through the server. An offer to a
    /// peer we answer is refused: the answerer never (re-)offers.
    pub fn send_signal(
        &mut self,
        now: Instant,
        peer: PeerId,
        data: SignalData,
    ) -> Result<(), EngineError> {
        let role = self
            .room
            .as_ref()
            .and_then(|r| r.get(peer))
            .map(|p| p.offer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        if let SignalData::Sdp(sdp) = &data
            && sdp.kind == SdpType::Offer
            && role == OfferRole::Answerer
        {
            return Err(EngineError::AnswererOffer(peer));
        }
        if let SignalData::Sdp(sdp) = &data
            && sdp.kind == SdpType::Offer
            && let Some(s) = self.sessions.get_mut(&peer)
        {
            s.offer_sent_at = Some(now);
        }
        self.out
            .push_back(Output::Send(ClientMessage::Signal { to: peer, data }));
        Ok(())
    }

    /// Offers a file to `peer`; the returned id names the transfer in later
    /// [`FileAction::Read`]s.
    pub fn send_file(
        &mut self,
        peer: PeerId,
        name: &str,
        size: u64,
        mime: &str,
    ) -> Result<u32, EngineError> {
        let s = self
            .sessions
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        let id = s.file.offer(name, size, mime)?;
        self.flush_file(peer);
        Ok(id)
    }

    /// A person accepts an offered file.
    pub fn accept_file(&mut self, peer: PeerId, id: u32) -> Result<(), EngineError> {
        let taken = self.taken_names();
        let s = self
            .sessions
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        let result = s.file.accept(id, &taken);
        self.flush_file(peer);
        Ok(result?)
    }

    /// A person declines an offered file.
    pub fn decline_file(&mut self, peer: PeerId, id: u32) -> Result<(), EngineError> {
        let s = self
            .sessions
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        let result = s.file.decline(id);
        self.flush_file(peer);
        Ok(result?)
    }

    /// Stops a transfer; `side` is this kiosk's side of it.
    pub fn cancel_transfer(
        &mut self,
        peer: PeerId,
        side: TransferSide,
        id: u32,
        reason: &str,
    ) -> Result<(), EngineError> {
        let s = self
            .sessions
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        let result = s.file.cancel(side, id, reason);
        self.flush_file(peer);
        Ok(result?)
    }

    /// Names already in the download directory (never overwritten). Call at start and
    /// whenever the directory changes behind the engine's back.
    pub fn set_existing_files<I: IntoIterator<Item = String>>(&mut self, names: I) {
        self.existing_files = names.into_iter().collect();
    }

    /// Pins a peer on stage, or unpins.
    pub fn pin(&mut self, peer: Option<PeerId>) {
        self.stage.pin(peer);
        self.update_stage();
    }

    /// Our own media state, sent to every peer on its chat channel.
    pub fn set_media_state(&mut self, state: MediaState) {
        if state == self.media {
            return;
        }
        self.media = state;
        let json = self.state_json();
        for (peer, s) in &self.sessions {
            if s.chat_open {
                self.out.push_back(Output::Chat {
                    peer: *peer,
                    text: json.clone(),
                });
            }
        }
    }

    // ---- queries ----

    /// Our peer id once welcomed.
    pub fn me(&self) -> Option<PeerId> {
        self.me
    }

    /// STUN/TURN servers from the last `welcome`, for new peer connections.
    pub fn ice_servers(&self) -> &[IceServer] {
        &self.ice_servers
    }

    /// The room document's access token from the last `joined`.
    pub fn doc_token(&self) -> Option<&str> {
        self.doc_token.as_deref()
    }

    pub fn is_joined(&self) -> bool {
        self.state == Signaling::Joined
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The peers in the room, in order of arrival.
    pub fn peers(&self) -> Vec<&Peer> {
        self.room.as_ref().map(Room::peers).unwrap_or_default()
    }

    pub fn peer_media(&self, peer: PeerId) -> Option<MediaState> {
        self.sessions.get(&peer).map(|s| s.media)
    }

    pub fn peer_connection(&self, peer: PeerId) -> Option<ConnectionState> {
        self.sessions.get(&peer).map(|s| s.connection)
    }

    pub fn chat(&self) -> impl ExactSizeIterator<Item = &ChatEntry> {
        self.chat.entries()
    }

    /// Every transfer with every peer.
    pub fn transfers(&self) -> Vec<(PeerId, &Transfer)> {
        self.sessions
            .iter()
            .flat_map(|(peer, s)| s.file.transfers().map(move |t| (*peer, t)))
            .collect()
    }

    pub fn transfer(&self, peer: PeerId, side: TransferSide, id: u32) -> Option<&Transfer> {
        self.sessions.get(&peer)?.file.transfer(side, id)
    }

    /// Who is on stage and why.
    pub fn stage(&self) -> Option<(PeerId, StageReason)> {
        self.stage.current()
    }

    // ---- internals ----

    fn signaling_opened(&mut self) {
        self.reconnect_at = None;
        self.state = Signaling::Hello;
        self.out.push_back(Output::Send(ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            name: self.config.name.clone(),
            role: self.config.role,
            resume: self.resume_token.clone(),
        }));
    }

    fn signaling_closed(&mut self, now: Instant) {
        if self.state == Signaling::Waiting {
            return;
        }
        let delay = self.backoff.next_delay();
        tracing::info!(?delay, "signaling connection lost");
        self.state = Signaling::Waiting;
        self.rejoin_at = None;
        self.reconnect_at = Some(now + delay);
        self.out
            .push_back(Output::Event(Event::Disconnected { retry_in: delay }));
    }

    fn send_join(&mut self) {
        self.out.push_back(Output::Send(ClientMessage::Join {
            room: self.config.room.clone(),
            password: self.config.password.clone(),
        }));
    }

    fn server_message(&mut self, now: Instant, msg: ServerMessage) {
        match msg {
            ServerMessage::Welcome {
                peer_id,
                resume_token,
                resumed,
                ice_servers,
                ..
            } => {
                self.ice_servers = ice_servers;
                if !resumed && self.me.is_some_and(|old| old != peer_id) {
                    tracing::info!(old = ?self.me, new = %peer_id, "new peer id: restarting every peer connection");
                    let gone = self.room.as_mut().map(Room::clear).unwrap_or_default();
                    self.apply_changes(gone);
                    self.room = None;
                    self.unconfirmed.clear();
                }
                self.me = Some(peer_id);
                self.resume_token = Some(resume_token);
                self.state = Signaling::Joining;
                self.send_join();
            }
            ServerMessage::Joined {
                peer_id,
                peers,
                doc_token,
                ..
            } => {
                self.doc_token = Some(doc_token);
                if self.room.as_ref().is_some_and(|r| r.me() != peer_id) {
                    let gone = self.room.as_mut().map(Room::clear).unwrap_or_default();
                    self.apply_changes(gone);
                    self.room = None;
                }
                self.me = Some(peer_id);
                let room = self
                    .room
                    .get_or_insert_with(|| Room::new(peer_id, self.config.role));
                // Known peers with a live connection that the server does not list may be
                // reconnecting themselves: keep them for the resume grace.
                let live: HashSet<PeerId> = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.connection != ConnectionState::Closed)
                    .map(|(id, _)| *id)
                    .collect();
                let changes = room.joined_keeping(&peers, |id| live.contains(&id));
                let listed: HashSet<PeerId> = peers.iter().map(|p| p.id).collect();
                for p in room.peers() {
                    if listed.contains(&p.id) {
                        self.unconfirmed.remove(&p.id);
                    } else {
                        self.unconfirmed
                            .entry(p.id)
                            .or_insert(now + self.config.resume_grace);
                    }
                }
                self.state = Signaling::Joined;
                self.backoff.reset();
                tracing::info!(me = %peer_id, room = %self.config.room, peers = peers.len(), "joined");
                self.out
                    .push_back(Output::Event(Event::Joined { me: peer_id }));
                self.apply_changes(changes);
            }
            ServerMessage::PeerJoined { peer } => {
                // The same peer back under its id (it resumed): its connection goes on, as
                // the browser client keeps its own.
                let keep = self
                    .sessions
                    .get(&peer.id)
                    .is_some_and(|s| s.connection != ConnectionState::Closed);
                self.unconfirmed.remove(&peer.id);
                if let Some(room) = self.room.as_mut() {
                    let changes = room.peer_joined_keeping(&peer, keep);
                    self.apply_changes(changes);
                }
            }
            ServerMessage::PeerLeft { peer_id } => {
                self.unconfirmed.remove(&peer_id);
                if let Some(change) = self.room.as_mut().and_then(|r| r.peer_left(peer_id)) {
                    self.apply_changes(vec![change]);
                }
            }
            ServerMessage::Left { .. } => {
                self.unconfirmed.clear();
                let gone = self.room.as_mut().map(Room::clear).unwrap_or_default();
                self.apply_changes(gone);
            }
            ServerMessage::Signal { from, data } => self.remote_signal(from, data),
            ServerMessage::Error { code, message } => self.server_error(now, code, message),
            ServerMessage::Watch { .. } | ServerMessage::Pong { .. } => {}
        }
    }

    fn server_error(&mut self, now: Instant, code: ErrorCode, message: String) {
        tracing::warn!(%code, message, "server error");
        if self.state != Signaling::Joining {
            return;
        }
        match code {
            ErrorCode::RoomFull | ErrorCode::RateLimited | ErrorCode::TooManyRooms => {
                let delay = self.backoff.next_delay();
                self.rejoin_at = Some(now + delay);
                self.out.push_back(Output::Event(Event::JoinFailed {
                    code,
                    message,
                    retrying: true,
                }));
            }
            ErrorCode::WrongPassword | ErrorCode::InvalidRoomName | ErrorCode::InvalidName => {
                self.state = Signaling::Refused;
                self.out.push_back(Output::Event(Event::JoinFailed {
                    code,
                    message,
                    retrying: false,
                }));
            }
            _ => {}
        }
    }

    fn remote_signal(&mut self, from: PeerId, data: SignalData) {
        let Some(peer) = self.room.as_ref().and_then(|r| r.get(from)) else {
            tracing::debug!(%from, "signal from a peer not in the room");
            return;
        };
        if let SignalData::Sdp(sdp) = &data
            && sdp.kind == SdpType::Offer
            && peer.offer == OfferRole::Offerer
        {
            // We are this peer's offerer; its offer breaks the offer rule. Applying it would
            // flip DTLS roles, which Chromium rejects.
            tracing::warn!(%from, "ignoring an offer from a peer we offer to");
            return;
        }
        if let Some(s) = self.sessions.get_mut(&from) {
            match &data {
                SignalData::Sdp(sdp) if sdp.kind == SdpType::Offer => {
                    s.last_offer = Some(data.clone());
                    s.candidates.clear();
                }
                SignalData::Sdp(sdp) if sdp.kind == SdpType::Answer => s.offer_sent_at = None,
                SignalData::Candidate(_) if s.candidates.len() < KEPT_CANDIDATES => {
                    s.candidates.push(data.clone());
                }
                _ => {}
            }
        }
        self.out.push_back(Output::Signal { from, data });
    }

    fn connection_state(&mut self, now: Instant, peer: PeerId, state: ConnectionState) {
        let offerer = self
            .room
            .as_ref()
            .and_then(|r| r.get(peer))
            .is_some_and(|p| p.offer == OfferRole::Offerer);
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        if s.rebuild_at.is_some() {
            // Last words of the connection that ended; the rebuilt one reports afresh.
            return;
        }
        s.connection = state;
        match state {
            ConnectionState::Connected => {
                s.ice_backoff.reset();
                s.ice_restart_at = None;
            }
            ConnectionState::Failed if offerer && s.ice_restart_at.is_none() => {
                // The first restart goes out at once; later ones back off.
                s.ice_restart_at = Some(now);
                self.handle_timeout(now);
            }
            ConnectionState::Closed => {
                // We did not stop it (a stopped peer has no session): it ended by itself
                // or could not be built. The peer is still in the room, so build it again.
                let delay = s.ice_backoff.next_delay();
                tracing::info!(%peer, ?delay, "peer connection ended; building it again");
                s.ice_restart_at = None;
                s.offer_sent_at = None;
                s.rebuild_at = Some(now + delay);
                s.chat_open = false;
                s.file.closed();
                s.estimate_kbps = None;
                self.flush_file(peer);
                self.update_bitrate(false);
            }
            _ => {}
        }
    }

    fn channel_opened(&mut self, peer: PeerId, channel: Channel) {
        let json = self.state_json();
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        match channel {
            Channel::Chat => {
                s.chat_open = true;
                self.out.push_back(Output::Chat { peer, text: json });
            }
            Channel::File => s.file.opened(),
        }
        self.flush_file(peer);
    }

    fn chat_text(&mut self, now: Instant, peer: PeerId, text: &str) {
        let Ok(msg) = ChatChannelMessage::parse(text) else {
            tracing::debug!(%peer, "ignoring an unknown chat channel message");
            return;
        };
        match &msg {
            ChatChannelMessage::Chat { .. } => {
                if let Some(entry) = self.chat.push_remote(peer, &msg) {
                    self.out
                        .push_back(Output::Event(Event::Chat(entry.clone())));
                }
            }
            ChatChannelMessage::State {
                audio,
                video,
                screen,
                recording,
            } => {
                let state = MediaState {
                    audio: *audio,
                    video: *video,
                    screen: *screen,
                    recording: *recording,
                };
                if let Some(s) = self.sessions.get_mut(&peer)
                    && s.media != state
                {
                    s.media = state;
                    self.out
                        .push_back(Output::Event(Event::PeerMedia { peer, state }));
                }
                self.stage.set_screen(now, peer, state.screen);
                self.update_stage();
            }
        }
    }

    fn apply_changes(&mut self, changes: Vec<RoomChange>) {
        for change in changes {
            match change {
                RoomChange::Added(peer) => {
                    self.session_serial += 1;
                    let tag = format!("{}-{}", peer.id, self.session_serial);
                    let seed = self.config.seed ^ peer.id.0.rotate_left(17);
                    self.sessions.insert(
                        peer.id,
                        PeerSession {
                            chat_open: false,
                            file: FileChannel::new(self.config.files.clone(), &tag),
                            // Until its first `state` message a peer counts as sending
                            // both (the browser's own default for a missing field).
                            media: MediaState {
                                audio: true,
                                video: true,
                                screen: false,
                                recording: false,
                            },
                            connection: ConnectionState::Connecting,
                            ice_backoff: Backoff::new(self.config.ice_restart, seed),
                            ice_restart_at: None,
                            rebuild_at: None,
                            name: peer.name.clone(),
                            role: peer.offer,
                            last_offer: None,
                            candidates: Vec::new(),
                            estimate_kbps: None,
                            offer_sent_at: None,
                        },
                    );
                    self.stage.add(peer.id);
                    tracing::info!(peer = %peer.id, name = peer.name, role = ?peer.role, offer = ?peer.offer, "peer added");
                    self.out.push_back(Output::StartPeer {
                        peer: peer.id,
                        name: peer.name,
                        role: peer.offer,
                    });
                    self.out.push_back(Output::Event(Event::PeerAdded(peer.id)));
                }
                RoomChange::Removed(id) => {
                    if let Some(mut s) = self.sessions.remove(&id) {
                        s.file.closed();
                        let actions: Vec<FileAction> = s.file.drain_actions().collect();
                        for action in actions {
                            // Nothing can be sent to a peer that is gone; local file work
                            // (discarding partial files) still has to happen.
                            if !matches!(
                                action,
                                FileAction::SendText(_) | FileAction::SendBinary(_)
                            ) {
                                self.out.push_back(Output::File { peer: id, action });
                            }
                        }
                    }
                    self.stage.remove(id);
                    self.update_bitrate(true);
                    tracing::info!(peer = %id, "peer removed");
                    self.out.push_back(Output::StopPeer { peer: id });
                    self.out.push_back(Output::Event(Event::PeerRemoved(id)));
                }
            }
        }
        self.update_stage();
    }

    /// Follows the lowest send estimate of the peers that have one; `force` applies even a
    /// small change (a peer left, so the estimate that held the rate down may be gone).
    fn update_bitrate(&mut self, force: bool) {
        let config = self.config.bitrate;
        let lowest = self.sessions.values().filter_map(|s| s.estimate_kbps).min();
        let target = config.clamp(lowest.unwrap_or(config.start_kbps));
        let current = self.bitrate_kbps.max(1);
        let change = u64::from(target.abs_diff(current)) * 100;
        let step = u64::from(current) * u64::from(config.hysteresis_percent);
        if target != current && (force || change >= step) {
            self.bitrate_kbps = target;
            self.out.push_back(Output::VideoBitrate { kbps: target });
        }
    }

    /// The video bitrate the engine last asked for, kbit/s.
    pub fn video_bitrate(&self) -> u32 {
        self.bitrate_kbps
    }

    fn update_stage(&mut self) {
        if let Some(now_on) = self.stage.update() {
            self.out.push_back(Output::Event(Event::Stage(now_on)));
        }
    }

    fn flush_file(&mut self, peer: PeerId) {
        if let Some(s) = self.sessions.get_mut(&peer) {
            for action in s.file.drain_actions() {
                self.out.push_back(Output::File { peer, action });
            }
        }
    }

    fn taken_names(&self) -> HashSet<String> {
        let mut taken = self.existing_files.clone();
        for s in self.sessions.values() {
            taken.extend(s.file.reserved_names().map(str::to_owned));
        }
        taken
    }

    fn state_json(&self) -> String {
        ChatChannelMessage::State {
            audio: self.media.audio,
            video: self.media.video,
            screen: self.media.screen,
            recording: self.media.recording,
        }
        .to_json()
    }
}

/// Every pending output at once; handy for tests and simple I/O loops.
pub fn drain(engine: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| engine.poll_output()).collect()
}

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
//!
//! Watch-together: the engine keeps the room's watch state from `joined.watch` and every
//! `watch` message ([`Engine::watch`], [`Event::Watch`]); the kiosk's player loop asks
//! [`Engine::watch_target`] where the video should be at the server's time (measured by
//! the signaling transport) and lets a [`crate::watch::SyncController`] decide how to
//! get there.
//!
//! The stage: one rule ([`crate::stage`]) picks what the room display shows large from
//! the screen shares, the presenting laptop ([`Engine::set_presenter`]), the editor's
//! presenter ([`Engine::set_editor_presenter`]), the watch state and the peers' audio
//! levels; a tap ([`Engine::tap`], [`Engine::pin`]) overrides it until the rule changes.
//! Every change is an [`Event::Stage`].
//!
//! The session's parts live in submodules, each an `impl Engine` block over the same
//! state: [`call`] (the server: hello, join, resume, backoff, what is final), `peers`
//! (peer connections, ICE restarts, bitrate), `content` (chat, files, our own microphone
//! and camera), `watch` (the room's watch state) and `on_stage` (the
//! stage's commands); [`types`] holds what goes in and comes out.

mod call;
mod content;
mod on_stage;
mod peers;
mod types;
mod watch;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Instant;

use portal_proto::channel::TransferSide;
use portal_proto::{ErrorCode, IceServer, PeerId, WatchSnapshot};

use crate::backoff::Backoff;
use crate::chat::{ChatEntry, ChatLog};
use crate::room::{Peer, Room};
use crate::stage::Stage;
use crate::transfer::Transfer;
use call::Signaling;
use peers::PeerSession;
pub use types::{
    BitrateConfig, CallState, Channel, ConnectionState, EngineConfig, EngineError, Event, Input,
    MediaState, Output,
};

/// The kiosk's room session (see the module docs).
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    state: Signaling,
    /// Reached the room at least once (a lost seat is then waited for).
    was_joined: bool,
    /// Why the server refused us for good.
    failure: Option<(ErrorCode, String)>,
    /// The call state last reported with [`Event::Call`].
    shown_call: Option<CallState>,
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
    /// Our own microphone and camera, as the peers are told.
    media: MediaState,
    existing_files: HashSet<String>,
    /// Free bytes where received files go, as last measured (`None`: unknown).
    free_bytes: Option<u64>,
    session_serial: u64,
    /// Peers kept across a reconnect that the server has not listed again, with the time
    /// they are given up.
    unconfirmed: BTreeMap<PeerId, Instant>,
    /// The video bitrate last asked for, kbit/s.
    bitrate_kbps: u32,
    /// The room's watch-together state.
    watch: Option<WatchSnapshot>,
    out: VecDeque<Output>,
}

impl Engine {
    /// A new session; the first output asks to connect (or, for settings the server
    /// would refuse anyway, the first outputs report the failure).
    pub fn new(config: EngineConfig) -> Self {
        let backoff = Backoff::new(config.reconnect, config.seed);
        let mut engine = Engine {
            chat: ChatLog::new(config.chat_capacity),
            stage: Stage::new(config.stage),
            config,
            state: Signaling::Connecting,
            was_joined: false,
            failure: None,
            shown_call: None,
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
            free_bytes: None,
            session_serial: 0,
            unconfirmed: BTreeMap::new(),
            bitrate_kbps: 0,
            watch: None,
            out: VecDeque::new(),
        };
        engine.bitrate_kbps = engine
            .config
            .bitrate
            .clamp(engine.config.bitrate.start_kbps);
        if let Some((code, message)) = call::precheck(&engine.config) {
            engine.refuse(code, message);
        } else {
            engine.out.push_back(Output::Connect);
        }
        engine.settle();
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
        self.call_timers(now);
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
        self.peer_timers(now);
        self.settle();
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            input @ (Input::SignalingOpened | Input::SignalingClosed | Input::Server(_)) => {
                self.signaling_input(now, input);
            }
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
            input @ (Input::FileText { .. }
            | Input::FileBinary { .. }
            | Input::FileBuffered { .. }
            | Input::FileData { .. }
            | Input::FileReadFailed { .. }
            | Input::FileStored { .. }
            | Input::FileStoreFailed { .. }) => self.file_input(now, input),
            Input::AudioLevel { peer, level } => {
                self.stage.audio_level(now, peer, level);
                self.update_stage();
            }
        }
        self.settle();
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
}

/// Every pending output at once; handy for tests and simple I/O loops.
pub fn drain(engine: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| engine.poll_output()).collect()
}

//! The engine's vocabulary: its settings, what goes in, what comes out.

use std::time::Duration;

use portal_proto::channel::TransferSide;
pub use portal_proto::media::{Channel, ConnectionState};
use portal_proto::{
    ClientMessage, ErrorCode, PeerId, Role, ServerMessage, SignalData, WatchSnapshot,
};

use crate::backoff::BackoffConfig;
use crate::chat::{ChatEntry, ChatError};
use crate::file_key::FileKey;
use crate::room::OfferRole;
use crate::stage::{StageChoice, StageConfig};
use crate::transfer::{FileAction, FileConfig, TransferError};

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Display name ("Room 4.01").
    pub name: String,
    pub room: String,
    pub password: Option<String>,
    /// What this client is; a kiosk unless a test plays a browser.
    pub role: Role,
    /// An enrolled kiosk's device token: `hello` carries it (not as the control
    /// connection), so the server lets this call use the enrolled name and lets the
    /// kiosk's paired laptops into its room.
    pub device_token: Option<String>,
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
    /// A full room is waited for (retried with backoff) instead of being final. Off for a
    /// person choosing a room on the touch screen (they are told and pick again); on for
    /// a headless kiosk whose one room may free a seat later. A kiosk that was in the room
    /// and lost its connection always waits for its seat.
    pub wait_for_seat: bool,
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
            device_token: None,
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
            wait_for_seat: false,
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
    /// Open the signaling WebSocket now (closing one that is still open).
    Connect,
    /// Close the signaling WebSocket (after a final refusal or a leave); nothing more is
    /// sent until the next [`Output::Connect`].
    Disconnect,
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
    /// Open or close the microphone and camera gates (mute, camera off).
    LocalMedia(MediaState),
    /// The camera came back on: start every video encoder with a keyframe, so the
    /// peers' decoders have something to start from.
    Keyframe,
    /// For the UI and the status endpoint.
    Event(Event),
}

/// News for the UI and the status endpoint.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// Where the call stands changed (see [`CallState`]); sent with every change, so a
    /// view can show it without asking.
    Call(CallState),
    /// In the room as `me`.
    Joined {
        me: PeerId,
    },
    /// The signaling connection is gone; attempt `attempt` (from 1) starts in `retry_in`.
    Disconnected {
        retry_in: Duration,
        attempt: u32,
    },
    /// The server refused to let us in; `retrying` says whether the engine tries again.
    JoinFailed {
        code: ErrorCode,
        message: String,
        retrying: bool,
    },
    /// Left the room on purpose ([`crate::Engine::leave`]).
    Left,
    PeerAdded(PeerId),
    PeerRemoved(PeerId),
    /// A peer's media state changed.
    PeerMedia {
        peer: PeerId,
        state: MediaState,
    },
    Chat(ChatEntry),
    /// Our own microphone or camera state changed.
    LocalMedia(MediaState),
    /// A file transfer was offered, moved on, or ended.
    Transfer {
        key: FileKey,
        side: TransferSide,
    },
    /// What fills the stage changed.
    Stage(StageChoice),
    /// The room's watch-together state: sent on every join (with what the room watches,
    /// or `None`) and whenever the server changes it; `None` again after leaving. A
    /// player re-aligns on each one ([`crate::watch::SyncController::state_changed`]).
    Watch(Option<WatchSnapshot>),
}

/// Errors of the engine's commands.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("not in a room")]
    NotJoined,
    #[error("no peer {0} in the room")]
    UnknownPeer(PeerId),
    #[error("no peer in the room")]
    NoPeer,
    #[error("no offered file {0}")]
    NoOffer(u32),
    #[error("several offered files have id {0}: name the peer as PEER-{0}")]
    AmbiguousOffer(u32),
    #[error("peer {0} offers to us; the answerer never offers")]
    AnswererOffer(PeerId),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Transfer(#[from] TransferError),
}

/// Where the kiosk's call stands, for the touch screen and the status endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallState {
    /// Opening the connection and saying hello and join, the first time.
    Connecting,
    /// In the room.
    Joined,
    /// Lost the connection, or the server asked us to come back later (room full, rate
    /// limited); `attempt` counts from 1 since the room was last reached.
    Reconnecting { attempt: u32 },
    /// Refused for good: nothing is retried (wrong password, invalid room, a server that
    /// speaks another protocol, a full room the person is told about).
    Failed { code: ErrorCode, message: String },
    /// Left on purpose.
    Left,
}

impl CallState {
    /// The word `/status` shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            CallState::Connecting => "connecting",
            CallState::Joined => "joined",
            CallState::Reconnecting { .. } => "reconnecting",
            CallState::Failed { .. } => "failed",
            CallState::Left => "left",
        }
    }
}

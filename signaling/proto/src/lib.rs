//! Portal's signaling protocol: the JSON messages that browsers, kiosks and the rooms
//! server exchange over one WebSocket at `/ws`.
//!
//! Every frame is a JSON text frame holding one object whose `type` names the message
//! (`#[serde(tag = "type")]`), with camelCase names throughout. The first message a client
//! sends is [`ClientMessage::Hello`] carrying [`PROTOCOL_VERSION`]; a server that speaks
//! another version answers [`ErrorCode::UnsupportedProtocol`] and closes.
//!
//! This crate holds types and pure validation only (serde, no I/O), so the server, the
//! kiosk and the generated TypeScript in `signaling/web/src/gen/` all agree on one
//! definition. Times on the wire are milliseconds since the Unix epoch as numbers, the
//! same unit as JavaScript's `Date.now()`.

pub mod channel;
pub mod media;
pub mod names;
pub mod pairing;
mod validate;

pub use validate::{Invalid, validate_display_name, validate_password, validate_room_name};

use std::fmt;

use serde::{Deserialize, Serialize};

/// The protocol version this crate describes. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest room name, in bytes (room names are ASCII).
pub const MAX_ROOM_NAME_LEN: usize = 64;
/// Longest display name, in characters (see [`names`]).
pub const MAX_DISPLAY_NAME_LEN: usize = names::MAX_NAME_CHARS;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_LEN: usize = 256;
/// Longest direct video URL accepted for watch-together, in bytes.
pub const MAX_VIDEO_URL_LEN: usize = 2048;
/// Slowest and fastest watch-together playback rates.
pub const WATCH_RATE_RANGE: (f64, f64) = (0.25, 4.0);
/// Most room names one `rooms` query may ask about.
pub const MAX_ROOMS_QUERY: usize = 32;

/// A peer's id, unique on one server for the life of the process. Kiosks compare ids
/// to decide who offers (the lower id), so ids are numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(type = "number"))]
#[serde(transparent)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What kind of client a peer is. The offer rule depends on it: a browser always offers
/// to a kiosk; between browsers the newcomer offers; between kiosks the lower id offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Browser,
    Kiosk,
}

/// Messages a client sends to the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ClientMessage {
    /// First message on a connection. `resume` is the `resumeToken` of an earlier
    /// `welcome`: the server gives back the same peer id when it can, so the other peers
    /// keep their connections to this one across a signaling drop or a server restart.
    Hello {
        protocol: u32,
        name: String,
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        resume: Option<String>,
        /// An enrolled kiosk's identity ([`pairing::DeviceHello`]); browsers leave it out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        device: Option<pairing::DeviceHello>,
    },
    /// Enter a room, creating it when it does not exist. A password given when creating
    /// protects the room from then on.
    Join {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        password: Option<String>,
    },
    /// Leave the current room; the connection stays open.
    Leave,
    /// Relay `data` to one peer in the same room.
    Signal { to: PeerId, data: SignalData },
    /// Replace the room's watch-together state.
    Watch { state: WatchState },
    /// Clock probe; answered with [`ServerMessage::Pong`].
    Ping { id: u64, client_time: f64 },
    /// How many peers are in each of these rooms (at most [`MAX_ROOMS_QUERY`] names);
    /// answered with [`ServerMessage::Rooms`]. Allowed after `hello`, in a room or not.
    Rooms { rooms: Vec<String> },
    /// A laptop redeems the code a kiosk shows (as typed; the server normalizes it with
    /// [`pairing::normalize_code`]). Answered with [`ServerMessage::PairAccepted`] or an
    /// error: `invalidCode`, `codeExpired`, `kioskOffline`, `rateLimited`,
    /// `alreadyPaired`.
    Pair { code: String },
    /// Ends a pairing. From a laptop: its own (`peer` absent). From a kiosk's control
    /// connection: the pairing with the laptop `peer`.
    Unpair {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        peer: Option<PeerId>,
    },
    /// A paired laptop's command for its kiosk, relayed as [`ServerMessage::Command`];
    /// `id` is the laptop's own, echoed in the answer.
    Command {
        id: u32,
        command: pairing::RemoteCommand,
    },
    /// The kiosk's answer to the command `id` from the laptop `to`: done (no `error`),
    /// with the room it is in when that matters to the laptop (`present`).
    CommandResult {
        to: PeerId,
        id: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        error: Option<pairing::CommandError>,
    },
    /// The kiosk's state, sent by its control connection on every change; the server
    /// keeps the latest and passes it to every paired laptop.
    KioskState { state: pairing::KioskState },
}

/// Messages the server sends to a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    /// Answer to a valid `hello`. `resumed` is true when the id of `hello.resume` was
    /// given back. `ice_servers` holds no TURN credentials: those come with
    /// [`ServerMessage::IceServers`] after a join.
    Welcome {
        protocol: u32,
        peer_id: PeerId,
        server_time: f64,
        ice_servers: Vec<IceServer>,
        resume_token: String,
        resumed: bool,
    },
    /// You are in `room`; `peers` are the others already there.
    Joined {
        room: String,
        peer_id: PeerId,
        peers: Vec<PeerInfo>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        watch: Option<WatchSnapshot>,
        /// Grants access to the room's shared document at `/yjs/{room}?token=...`.
        doc_token: String,
        /// Whether the room is password-protected. Protection is decided when the room
        /// is created and never changes, so a client that was given a password can refuse
        /// a room that turns out open. Absent (from an older server) reads as false.
        #[serde(default)]
        protected: bool,
    },
    /// The ICE servers with relay (TURN) credentials, sent just before `joined` on every
    /// successful join, and only then: a connection that has not entered a room gets
    /// STUN alone in `welcome`, so TURN cannot be used as an anonymous relay. The
    /// credentials are made for this peer id; use this list for the room's connections.
    IceServers {
        ice_servers: Vec<IceServer>,
    },
    /// Answer to `leave`.
    Left {
        room: String,
    },
    PeerJoined {
        peer: PeerInfo,
    },
    PeerLeft {
        peer_id: PeerId,
    },
    /// `data` relayed verbatim from peer `from`.
    Signal {
        from: PeerId,
        data: SignalData,
    },
    /// The room's watch-together state changed (or was set by `by`).
    Watch {
        state: WatchState,
        server_time: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        by: Option<PeerId>,
    },
    Pong {
        id: u64,
        client_time: f64,
        server_time: f64,
    },
    /// Answer to `rooms`: one entry per name asked, in the same order.
    Rooms {
        rooms: Vec<RoomOccupancy>,
    },
    /// To an enrolled kiosk's control connection: the code to show, its link
    /// (`https://SERVER/p/CODE`) and when it stops working (server time, ms).
    PairingCode {
        code: String,
        url: String,
        expires_at: f64,
    },
    /// To a kiosk's control connection: the laptop `peer` (named `name`) paired with it.
    Paired {
        peer: PeerId,
        name: String,
    },
    /// To a laptop: it is paired with the kiosk `kiosk` named `kiosk_name` until
    /// `expires_at` (server time, ms); the kiosk's latest state follows as `kioskState`.
    PairAccepted {
        kiosk: PeerId,
        kiosk_name: String,
        expires_at: f64,
    },
    /// To both sides: the pairing with `peer` ended.
    Unpaired {
        peer: PeerId,
        reason: pairing::UnpairReason,
    },
    /// To a kiosk's control connection: a command from its paired laptop `from`.
    Command {
        from: PeerId,
        id: u32,
        command: pairing::RemoteCommand,
    },
    /// To a laptop: the answer to its command `id`.
    CommandResult {
        id: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        error: Option<pairing::CommandError>,
    },
    /// To a laptop: its kiosk's state.
    KioskState {
        state: pairing::KioskState,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// Typed error codes. The connection stays usable after every code except
/// `unsupportedProtocol`, `idleTimeout`, `serverFull` and `shuttingDown`, which the
/// server follows with a close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed JSON, an unknown message type, or a field out of range.
    BadRequest,
    UnsupportedProtocol,
    /// A message other than `hello` before `hello`, or a second `hello`.
    HelloRequired,
    AlreadyHello,
    NotInRoom,
    AlreadyInRoom,
    InvalidRoomName,
    InvalidName,
    RoomFull,
    /// A protected room was joined without its password, or with a wrong one.
    WrongPassword,
    /// A password was given for a room that exists and is open: protection is decided
    /// when a room is created, so a later joiner cannot protect it (nor join it believing
    /// it is protected).
    PasswordMismatch,
    UnknownPeer,
    TooLarge,
    /// Too many messages on this connection, or too many room creations or failed
    /// password checks from this address (or against this room): retry later.
    RateLimited,
    IdleTimeout,
    ServerFull,
    TooManyRooms,
    ShuttingDown,
    Internal,
    /// `pair`: no kiosk shows this code.
    InvalidCode,
    /// `pair`: the code was good but has expired or was used.
    CodeExpired,
    /// `pair`: the code's kiosk is not connected.
    KioskOffline,
    /// `pair`: this connection is already paired (unpair first).
    AlreadyPaired,
    /// `command`/`commandResult`/`unpair`: no such pairing.
    NotPaired,
    /// `hello`: the device token is not (or no longer) enrolled. Final.
    InvalidDeviceToken,
    /// `hello`: the name belongs to an enrolled kiosk.
    NameReserved,
    /// A newer control connection of the same kiosk took over. Final.
    Replaced,
}

impl ErrorCode {
    /// Every code, in declaration order (for metrics and docs).
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::BadRequest,
        ErrorCode::UnsupportedProtocol,
        ErrorCode::HelloRequired,
        ErrorCode::AlreadyHello,
        ErrorCode::NotInRoom,
        ErrorCode::AlreadyInRoom,
        ErrorCode::InvalidRoomName,
        ErrorCode::InvalidName,
        ErrorCode::RoomFull,
        ErrorCode::WrongPassword,
        ErrorCode::PasswordMismatch,
        ErrorCode::UnknownPeer,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::IdleTimeout,
        ErrorCode::ServerFull,
        ErrorCode::TooManyRooms,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
        ErrorCode::InvalidCode,
        ErrorCode::CodeExpired,
        ErrorCode::KioskOffline,
        ErrorCode::AlreadyPaired,
        ErrorCode::NotPaired,
        ErrorCode::InvalidDeviceToken,
        ErrorCode::NameReserved,
        ErrorCode::Replaced,
    ];

    /// The camelCase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "badRequest",
            ErrorCode::UnsupportedProtocol => "unsupportedProtocol",
            ErrorCode::HelloRequired => "helloRequired",
            ErrorCode::AlreadyHello => "alreadyHello",
            ErrorCode::NotInRoom => "notInRoom",
            ErrorCode::AlreadyInRoom => "alreadyInRoom",
            ErrorCode::InvalidRoomName => "invalidRoomName",
            ErrorCode::InvalidName => "invalidName",
            ErrorCode::RoomFull => "roomFull",
            ErrorCode::WrongPassword => "wrongPassword",
            ErrorCode::PasswordMismatch => "passwordMismatch",
            ErrorCode::UnknownPeer => "unknownPeer",
            ErrorCode::TooLarge => "tooLarge",
            ErrorCode::RateLimited => "rateLimited",
            ErrorCode::IdleTimeout => "idleTimeout",
            ErrorCode::ServerFull => "serverFull",
            ErrorCode::TooManyRooms => "tooManyRooms",
            ErrorCode::ShuttingDown => "shuttingDown",
            ErrorCode::Internal => "internal",
            ErrorCode::InvalidCode => "invalidCode",
            ErrorCode::CodeExpired => "codeExpired",
            ErrorCode::KioskOffline => "kioskOffline",
            ErrorCode::AlreadyPaired => "alreadyPaired",
            ErrorCode::NotPaired => "notPaired",
            ErrorCode::InvalidDeviceToken => "invalidDeviceToken",
            ErrorCode::NameReserved => "nameReserved",
            ErrorCode::Replaced => "replaced",
        }
    }

    /// Whether the server closes the connection after sending this code.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::UnsupportedProtocol
                | ErrorCode::IdleTimeout
                | ErrorCode::ServerFull
                | ErrorCode::ShuttingDown
                | ErrorCode::InvalidDeviceToken
                | ErrorCode::Replaced
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Another peer as seen from inside a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: String,
    pub role: Role,
}

/// How many peers a room holds, as `rooms` reports it. `peers` counts the peers
/// connected in the room now (not those inside their resume grace); a room that does
/// not exist, and a password-protected room the asker is not in, read as 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RoomOccupancy {
    pub room: String,
    pub peers: u32,
}

/// One `RTCIceServer` entry, in the shape the browser's `RTCPeerConnection` takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub credential: Option<String>,
}

/// What `signal` carries between two peers: a session description or an ICE candidate.
/// On the wire: `{"sdp": {"type": "offer", "sdp": "v=0..."}}` or `{"candidate": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum SignalData {
    Sdp(SessionDescription),
    Candidate(IceCandidate),
}

/// `RTCSessionDescriptionInit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SessionDescription {
    #[serde(rename = "type")]
    #[cfg_attr(test, ts(rename = "type"))]
    pub kind: SdpType,
    pub sdp: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum SdpType {
    Offer,
    Answer,
    Pranswer,
    Rollback,
}

/// `RTCIceCandidateInit`. An empty `candidate` marks the end of candidates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub username_fragment: Option<String>,
}

/// The room's watch-together state: what plays, and where it stood at a server time.
/// A client computes the position now as
/// `position + (serverNow - serverTime) / 1000 * rate` while `playing`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WatchState {
    pub source: Option<VideoSource>,
    pub playing: bool,
    /// Seconds into the video at the accompanying server time.
    pub position: f64,
    pub rate: f64,
}

/// A watch state with the server time it refers to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WatchSnapshot {
    pub state: WatchState,
    pub server_time: f64,
}

/// What a room watches together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum VideoSource {
    /// A YouTube video, played through the official IFrame player.
    Youtube { video_id: String },
    /// A direct `http(s)` URL of an mp4 or webm file.
    Url { url: String },
}

/// A frame that could not be read as a [`ClientMessage`].
#[derive(Debug)]
pub struct ParseError(serde_json::Error);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // serde's text names the field or the unknown `type`; keep it short and single-line.
        let text = self.0.to_string();
        let text: String = text.chars().take(200).collect();
        write!(f, "malformed message: {text}")
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl ClientMessage {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        serde_json::from_str(text).map_err(ParseError)
    }
}

impl ServerMessage {
    /// Serializes to one text frame.
    pub fn to_json(&self) -> String {
        // A ServerMessage holds only strings, numbers, bools and lists of them; serde_json
        // cannot fail on it (non-finite floats become `null`).
        serde_json::to_string(self).expect("server messages always serialize")
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }

    /// Parses one text frame (used by Rust clients: the kiosk and the tests).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        serde_json::from_str(text).map_err(ParseError)
    }
}

impl ClientMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialize")
    }
}

#[cfg(test)]
mod tests;

//! Portal kiosk's room logic, without I/O.
//!
//! This crate holds the decisions a kiosk makes in a room, and nothing that moves bytes:
//! no sockets, no files, no clock, no threads. The I/O layer (portal-net, with tokio,
//! webrtc-rs and GStreamer) feeds it what happened and does what it says. Time is an
//! input: `Engine::handle(now, input)`, then drain `Engine::poll_output()` and wake at
//! `Engine::poll_timeout()`. That makes every decision testable in simulated time, two
//! engines against each other over an in-memory link (see `tests/`).
//!
//! - [`room`]: the peer table from the server's `joined`/`peerJoined`/`peerLeft`, and the
//!   offer rule (a browser always offers to a kiosk; between kiosks the lower id offers;
//!   the answerer never re-offers).
//! - [`chat`]: the chat log of the `chat` channel.
//! - [`transfer`]: file transfer state machines for sending and receiving on the `file`
//!   channel, exactly as `portal_proto::channel` specifies; [`names`] makes offered file
//!   names safe.
//! - [`backoff`]: reconnect and ICE-restart delays with seeded jitter.
//! - [`stage`]: what the room display shows large: a screen share, else the editor's
//!   presenter, else the watch-together video, else the active speaker, else the
//!   filmstrip; a tap pins something else until the rule changes.
//! - [`watch`]: watch-together: where the room's video stands on the server's clock
//!   ([`watch::position_at`]) and what a local
//!   player must do to be there ([`watch::SyncController`], the browser's
//!   `watchsync.ts` in Rust).
//! - [`follow`]: whose cursor the read-along editor keeps in sight.
//! - [`file_key`]: `PEER-ID`, how people and tools name a transfer.
//! - [`lobby`]: the home screen's occupancy question (how many people are in a room).
//! - [`engine`]: the session that ties them together: the call with the server, the
//!   peer connections, chat and files, the room's watch state, the stage.
//!
//! `cargo xtask lint` checks that this crate never depends on tokio, gstreamer, webrtc,
//! rtc or slint.

pub mod backoff;
pub mod chat;
pub mod engine;
pub mod file_key;
pub mod follow;
pub mod lobby;
pub mod names;
pub mod remote;
pub mod room;
pub mod stage;
pub mod transfer;
pub mod watch;

pub use engine::{
    BitrateConfig, CallState, Channel, ConnectionState, Engine, EngineConfig, EngineError, Event,
    Input, MediaState, Output,
};
pub use file_key::{BadFileId, FileKey, FileRef};
pub use room::{OfferRole, Peer};
pub use stage::{StageChoice, StageContent, StageReason};
pub use transfer::{FileAction, FileStats, ReceivePolicy, Transfer, TransferState};

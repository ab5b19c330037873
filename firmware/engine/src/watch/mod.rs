//! Watch-together on the kiosk: the room's shared timeline and how a local player follows it.
//!
//! The server holds the room's [`WatchState`](portal_proto::WatchState) with the server
//! time it was set at; every player, browsers and kiosks alike, follows that one timeline.
//! This module is the Rust twin of the browser's `watchsync.ts` (same tuning, same
//! decisions, so a kiosk and a laptop in one room land on the same frame):
//!
//! - [`PlayerSample`]: what a local player reports at one instant;
//! - [`SyncController`]: sample by sample, what the player must do (seek, nudge the rate,
//!   play, pause);
//! - [`position_at`]: where the room's video stands at a server time.
//!
//! The engine keeps the room's snapshot (`Engine::watch`, `Engine::watch_target`); the
//! server's clock is measured by the signaling transport (`portal_net::signaling`, the
//! browser's `clock.ts` in Rust) and comes in as a number, like every time here. The
//! kiosk's player loop samples its player, asks the controller, and applies the
//! decision.

mod sync;
#[cfg(test)]
mod tests;

pub use sync::{
    NATIVE_TUNING, SyncController, SyncDecision, SyncStatus, SyncTuning, VIDEO_TUNING,
    YOUTUBE_TUNING, nudged_rate, position_at,
};

/// What a player reports at one instant (the same fields as the browser's `PlayerSample`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(clippy::struct_excessive_bools)] // what a player reports, as the browser's sample
pub struct PlayerSample {
    /// Local time in ms (monotonic, any origin), for cool-downs.
    pub now: f64,
    /// The player's current position, in seconds.
    pub time: f64,
    pub paused: bool,
    /// A seek has been issued and not completed.
    pub seeking: bool,
    /// Asked to play but waiting for data.
    pub buffering: bool,
    pub ended: bool,
    /// Seconds; NaN or infinity when unknown.
    pub duration: f64,
    /// The rate the player runs at right now (nudges included).
    pub rate: f64,
    /// The player knows the media well enough to seek.
    pub ready: bool,
}

//! `cargo xtask bench`: measured comparisons, each against its peer in the same run on
//! the same machine. Every benchmark starts its own servers and returns a Markdown
//! report.
//!
//! - [`signaling`]: the signaling relay, Portal against a Socket.IO relay (Node.js).
//! - [`docs`]: shared-document fan-out, Portal against `@y/websocket-server` (Node.js).
//! - [`browser`]: the browser client's join and file figures, which the kiosk is held to.
//! - [`kiosk`]: the release kiosk beside a headless Chromium in the same 1:1 720p30 call.
//! - [`pair`]: pairing a laptop with the kiosk and presenting, against a Chromium screen share.
//! - [`shared`]: watch-together drift, editor latency and CPU of the kiosk beside Chromium peers.
//! - [`ota`]: the update agent's download against curl, and the cost of resuming.
//! - [`ui`]: the kiosk UI's frame time with four 720p tiles against one, software renderer.

mod browser;
mod docs;
mod kiosk;
mod ota;
mod pair;
mod server;
mod shared;
mod signaling;
mod ui;

pub(crate) use browser::browser;
pub(crate) use docs::docs;
pub(crate) use kiosk::kiosk;
pub(crate) use ota::ota;
pub(crate) use pair::pair;
pub(crate) use shared::shared;
pub(crate) use signaling::signaling;
pub(crate) use ui::ui;

//! `cargo xtask bench`: measured comparisons, each against its peer in the same run on
//! the same machine. Every benchmark starts its own servers and returns a Markdown
//! report.
//!
//! - [`signaling`]: the signaling relay, Portal against a Socket.IO relay (Node.js).
//! - [`docs`]: shared-document fan-out, Portal against `@y/websocket-server` (Node.js).
//! - [`browser`]: the browser client's join and file figures, which the kiosk is held to.

mod browser;
mod docs;
mod signaling;

pub(crate) use browser::browser;
pub(crate) use docs::docs;
pub(crate) use signaling::signaling;

//! Portal's rooms server.
//!
//! - [`hub`]: room membership and routing, pure (no sockets, no clock).
//! - [`store`]: SQLite on its own thread: rooms, password hashes, watch state, documents.
//! - [`guard`]: the one limiter for password and token checks (per address, per room,
//!   argon2 on a bounded pool) and for room creation.
//! - [`server`]: HTTP and WebSocket front (`/ws`, `/healthz`, `/metrics`, static files),
//!   TLS, limits and shutdown.
//! - [`pairing`]: enrolled kiosks, pairing codes, laptops paired with kiosks and the
//!   commands relayed between them (sans-IO, beside the hub); `portal-server kiosk`.
//! - [`updates`]: the kiosks' update feed (`--updates-dir`): manifests and RAUC bundles.
//! - [`config`]: flags and `PORTAL_*` variables.

pub mod config;
pub mod docs;
pub mod guard;
pub mod hub;
pub mod ice;
pub mod limits;
pub mod metrics;
pub mod pairing;
pub mod server;
pub mod store;
pub mod token;
pub mod updates;
mod web;

pub use config::Config;
pub use server::{Server, ServerHandle};

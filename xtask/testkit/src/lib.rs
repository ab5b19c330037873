//! Test support shared by Portal's crates, so every test starts the real `portal-server`,
//! makes temp dirs, waits and drives Node.js the same way.
//!
//! - [`TempDir`]: a fresh directory, removed on drop.
//! - [`Process`]: a child process killed on drop, started once it prints its first line.
//! - [`ServerProc`]: the real `portal-server` on a free port ([`server_bin`] says which).
//! - [`wait_until`]: polls a condition until it holds or a time limit passes.
//! - With the `tokio` feature: [`wait_until_async`], [`NodeDriver`] (a `node` script
//!   spoken to in JSON lines), [`http`] (one raw HTTP/1.1 request), and for video:
//!   [`make_clip`] (a GStreamer-made test clip) and [`RangeServer`] (a file over HTTP with
//!   byte ranges).
//! - With the `rauc` feature: [`rauc`]: test keys, signed bundles and a RAUC system
//!   with file-backed slots on a private bus.

mod bytes;
mod process;
mod server;
mod temp;
mod wait;

#[cfg(feature = "tokio")]
mod http;
#[cfg(feature = "tokio")]
mod media_http;
#[cfg(feature = "tokio")]
mod node;
#[cfg(feature = "rauc")]
pub mod rauc;

pub use bytes::noise;
pub use process::Process;
pub use server::{
    ServerBuilder, ServerProc, enrol_kiosk, listen_addr, server_bin, web_dist, workspace_root,
};
pub use temp::TempDir;
pub use wait::wait_until;

#[cfg(feature = "tokio")]
pub use http::{HttpReply, http};
#[cfg(feature = "tokio")]
pub use media_http::{RangeServer, make_clip};
#[cfg(feature = "tokio")]
pub use node::NodeDriver;
#[cfg(feature = "tokio")]
pub use wait::wait_until_async;

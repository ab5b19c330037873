//! The room's shared document as a read-only y-websocket client: the kiosk's read-along
//! view of the code editor.
//!
//! [`DocClient::start`] connects to `{server}/yjs/{room}?readonly=1&token=T` (the
//! `docToken` of `joined`), speaks y-protocols with `yrs::sync` message types and keeps a
//! local `yrs::Doc` in step with the server's. It publishes [`DocView`] snapshots on a
//! `watch` channel: the text (`Y.Text "code"`), the language (`Y.Map "meta"` key
//! `language`), who is there from awareness (name, colour, `presenter`, the line of their
//! cursor), whether it is connected, who edited last.
//!
//! Read-only, twice over: the server drops a read-only connection's updates, and this
//! client never makes one. The only message it sends is its sync step 1 (its state
//! vector); it does not answer the server's sync step 1 with a step 2 and sets no
//! awareness state of its own.
//!
//! - Reconnects with backoff (doubling from [`DocConfig::retry_first`] to
//!   [`DocConfig::retry_max`], with jitter) after a drop, a server close (1001, 1011,
//!   1013, 4507, ...), a malformed frame or a failed attempt; a 429 waits its
//!   `Retry-After`. A reconnect sends the state vector it holds, so it catches up with
//!   what it missed; a server whose document lacks what it holds (the room went and came
//!   back) makes it start from an empty one.
//! - A refused token (HTTP 403), a room that does not exist (4404) or became protected
//!   (4401) and an invalid room name are final ([`DocError::is_final`]): it waits for
//!   [`DocClient::set_token`], which the kiosk calls with the token of each `joined`.
//! - Views are published at most every [`DocConfig::publish_every`] (50 ms), and the text
//!   is copied only when it changed.

mod conn;
mod error;
mod mirror;
mod view;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use error::DocError;
pub use view::{AwarenessPeer, DEFAULT_LANGUAGE, DocView, LANGUAGE_IDS};

/// The root `Y.Text` holding the code.
pub const CODE_TEXT: &str = "code";
/// The root `Y.Map` holding the document's settings.
pub const META_MAP: &str = "meta";
/// The language's key in [`META_MAP`].
pub const LANGUAGE_KEY: &str = "language";

/// Where the document is and how patiently to follow it.
#[derive(Clone, Debug)]
pub struct DocConfig {
    /// The rooms server's WebSocket base: `ws://HOST:PORT` or `wss://HOST:PORT`.
    pub server: String,
    pub room: String,
    /// The `docToken` of `joined` (an open room's document needs none).
    pub token: Option<String>,
    /// TLS settings for `wss://`; `None` uses the webpki roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Limit for the TCP/TLS/WebSocket handshake.
    pub connect_timeout: Duration,
    /// A connection that hears nothing for this long is dropped (the server pings every
    /// 30 s).
    pub silence_timeout: Duration,
    /// Views are published at most this often.
    pub publish_every: Duration,
    /// The first wait before trying again ...
    pub retry_first: Duration,
    /// ... doubling up to this.
    pub retry_max: Duration,
    /// Largest message accepted, in bytes (the sync step 2 holds the whole document; the
    /// server's cap is 16 MiB).
    pub max_message: usize,
}

impl DocConfig {
    pub fn new(server: impl Into<String>, room: impl Into<String>, token: Option<String>) -> Self {
        DocConfig {
            server: server.into(),
            room: room.into(),
            token,
            tls: None,
            connect_timeout: Duration::from_secs(10),
            silence_timeout: Duration::from_secs(100),
            publish_every: Duration::from_millis(50),
            retry_first: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            max_message: 64 << 20,
        }
    }

    /// `{server}/yjs/{room}?readonly=1[&token=T]`.
    pub fn url(&self, token: Option<&str>) -> String {
        let mut url = format!(
            "{}/yjs/{}?readonly=1",
            self.server.trim_end_matches('/'),
            self.room
        );
        if let Some(token) = token {
            url.push_str("&token=");
            url.push_str(&percent_encode(token));
        }
        url
    }
}

/// A running read-only document client. Dropping it stops the client.
#[derive(Debug)]
pub struct DocClient {
    commands: mpsc::UnboundedSender<conn::Command>,
    view: watch::Receiver<DocView>,
    task: tokio::task::JoinHandle<()>,
}

impl DocClient {
    /// Starts following the document (on the current tokio runtime). Fails at once for a
    /// URL that is not `ws://`/`wss://` or a room name the server would refuse.
    pub fn start(config: DocConfig) -> Result<DocClient, DocError> {
        if !(config.server.starts_with("ws://") || config.server.starts_with("wss://")) {
            return Err(DocError::InvalidUrl { url: config.server });
        }
        if portal_proto::validate_room_name(&config.room).is_err() {
            return Err(DocError::InvalidRoom { room: config.room });
        }
        let (commands, rx) = mpsc::unbounded_channel();
        let (out, view) = watch::channel(DocView::default());
        let task = tokio::spawn(conn::run(config, rx, out));
        Ok(DocClient {
            commands,
            view,
            task,
        })
    }

    /// The latest view and its changes.
    pub fn view(&self) -> watch::Receiver<DocView> {
        self.view.clone()
    }

    /// A fresh token (after a rejoin): used from the next connection on; a client waiting
    /// after a final refusal tries again at once.
    pub fn set_token(&self, token: impl Into<String>) {
        let _ = self.commands.send(conn::Command::Token(token.into()));
    }

    /// Closes the connection (with a close frame) and stops.
    pub async fn shutdown(self) {
        let _ = self.commands.send(conn::Command::Shutdown);
        let _ = self.task.await;
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_asks_for_a_read_only_connection_with_the_token() {
        let config = DocConfig::new("ws://h:1/", "room-1", None);
        assert_eq!(config.url(None), "ws://h:1/yjs/room-1?readonly=1");
        assert_eq!(
            config.url(Some("v1.3.9.a+b/c=")),
            "ws://h:1/yjs/room-1?readonly=1&token=v1.3.9.a%2Bb%2Fc%3D"
        );
    }

    #[tokio::test]
    async fn bad_urls_and_rooms_fail_at_once() {
        assert!(matches!(
            DocClient::start(DocConfig::new("http://h", "r", None)),
            Err(DocError::InvalidUrl { .. })
        ));
        assert!(matches!(
            DocClient::start(DocConfig::new("ws://h", "no/such room", None)),
            Err(DocError::InvalidRoom { .. })
        ));
    }
}

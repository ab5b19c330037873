//! The kiosk's signaling transport: one WebSocket to the rooms server's `/ws`.
//!
//! It carries [`ClientMessage`]s out and [`ServerMessage`]s in and decides nothing about
//! the room: when to connect, what to say (`hello`, `join`), what an error means and when
//! to try again are `portal-engine`'s decisions. The transport only
//!
//! - opens a connection when told ([`SignalingTransport::connect`]; an open one is closed
//!   first) and reports [`TransportEvent::Opened`], every server message as
//!   [`TransportEvent::Message`], and [`TransportEvent::Closed`] when the connection
//!   drops or could not be opened (never for a close it was told to make);
//! - probes the server clock with `ping` once the server has said `welcome` (five quick
//!   ones, then one every [`TransportConfig::ping_interval`]) and keeps a
//!   [`ClockOffset`]; `pong`s are its own and are not passed on;
//! - treats a connection that hears nothing for [`TransportConfig::silence_timeout`] as
//!   dropped (the server pings every 20 s by default);
//! - on [`SignalingTransport::disconnect`] sends a close frame and waits briefly for the
//!   server's, so the server knows we went on purpose.
//!
//! TLS (`wss://`) uses rustls with the webpki roots unless a config is given; a TLS
//! failure is a failed connection like any other: there is no plaintext fallback.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use portal_proto::{ClientMessage, ServerMessage};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::clock::{ClockOffset, ClockSample};

/// Why a call on the transport failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The URL is not `ws://` or `wss://`.
    #[error("signaling URL {url:?} is not ws:// or wss://")]
    InvalidUrl { url: String },
    /// No connection is open right now; nothing was sent.
    #[error("not connected to the rooms server")]
    NotConnected,
    /// The transport has been closed for good.
    #[error("the signaling transport is closed")]
    Closed,
}

/// Where to connect and how patiently.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// `ws://HOST:PORT/ws` or `wss://HOST:PORT/ws`.
    pub url: String,
    /// TLS settings for `wss://`; `None` uses the webpki roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Pings after the first five quick ones.
    pub ping_interval: Duration,
    /// A connection that hears nothing for this long is treated as dropped.
    pub silence_timeout: Duration,
    /// Limit for the TCP/TLS/WebSocket handshake.
    pub connect_timeout: Duration,
}

impl TransportConfig {
    pub fn new(url: impl Into<String>) -> Self {
        TransportConfig {
            url: url.into(),
            tls: None,
            ping_interval: Duration::from_secs(10),
            silence_timeout: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(10),
        }
    }

    fn validate(&self) -> Result<(), TransportError> {
        if self.url.starts_with("ws://") || self.url.starts_with("wss://") {
            Ok(())
        } else {
            Err(TransportError::InvalidUrl {
                url: self.url.clone(),
            })
        }
    }
}

/// What the transport reports, in order.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TransportEvent {
    /// The connection asked for is open.
    Opened,
    /// A message from the server (every one but `pong`).
    Message(ServerMessage),
    /// The connection dropped or could not be opened; `reason` is for the log.
    Closed { reason: String },
}

#[derive(Debug)]
enum Command {
    Connect,
    Send(ClientMessage),
    Disconnect,
    Shutdown,
}

#[derive(Debug, Default)]
struct State {
    open: bool,
    stopped: bool,
    clock: ClockOffset,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The handle to the transport's task; cheap to clone.
#[derive(Clone, Debug)]
pub struct SignalingTransport {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

/// Starts the transport's task on the current tokio runtime. Nothing is opened until
/// [`SignalingTransport::connect`]. Read the events promptly: the task waits while the
/// channel is full.
pub fn start(
    config: TransportConfig,
) -> Result<(SignalingTransport, mpsc::Receiver<TransportEvent>), TransportError> {
    config.validate()?;
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, event_rx) = mpsc::channel(256);
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        task: Mutex::new(None),
    });
    let task = tokio::spawn(run(config, command_rx, events, Arc::clone(&shared)));
    *shared.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
    Ok((SignalingTransport { commands, shared }, event_rx))
}

impl SignalingTransport {
    /// Opens a connection (closing the open one, without a [`TransportEvent::Closed`]).
    pub fn connect(&self) {
        let _ = self.commands.send(Command::Connect);
    }

    /// Sends `msg` on the open connection, in order with every message before it.
    pub fn send(&self, msg: ClientMessage) -> Result<(), TransportError> {
        let (open, stopped) = self.shared.with(|s| (s.open, s.stopped));
        if stopped {
            return Err(TransportError::Closed);
        }
        if !open {
            return Err(TransportError::NotConnected);
        }
        self.commands
            .send(Command::Send(msg))
            .map_err(|_| TransportError::Closed)
    }

    /// Closes the connection with a close frame (no [`TransportEvent::Closed`] follows).
    pub fn disconnect(&self) {
        let _ = self.commands.send(Command::Disconnect);
    }

    /// Whether a connection is open right now.
    pub fn is_open(&self) -> bool {
        self.shared.with(|s| s.open)
    }

    /// Milliseconds to add to local wall-clock time to get server time.
    pub fn clock_offset_ms(&self) -> f64 {
        self.shared.with(|s| s.clock.offset_ms())
    }

    /// Clock samples gathered so far.
    pub fn clock_samples(&self) -> usize {
        self.shared.with(|s| s.clock.len())
    }

    /// The server's time now, in ms since the Unix epoch.
    pub fn server_now_ms(&self) -> f64 {
        wall_ms() + self.clock_offset_ms()
    }

    /// Closes the connection (messages sent before go out first) and ends the task.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
        let task = self
            .shared
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Opening = Pin<Box<dyn Future<Output = Result<Ws, String>> + Send>>;

/// One open connection and its clock probes.
struct Connection {
    ws: Ws,
    last_heard: Instant,
    /// No pings before `welcome` (the server wants `hello` first).
    next_ping: Option<Instant>,
    pings_sent: u32,
    next_ping_id: u64,
    pending_pings: HashMap<u64, f64>,
}

impl Connection {
    fn new(ws: Ws) -> Self {
        Connection {
            ws,
            last_heard: Instant::now(),
            next_ping: None,
            pings_sent: 0,
            next_ping_id: 1,
            pending_pings: HashMap::new(),
        }
    }

    async fn send(&mut self, msg: &ClientMessage) -> Result<(), String> {
        self.ws
            .send(Message::Text(msg.to_json().into()))
            .await
            .map_err(|e| format!("send failed: {e}"))
    }

    async fn ping(&mut self, interval: Duration) -> Result<(), String> {
        let id = self.next_ping_id;
        self.next_ping_id += 1;
        self.pings_sent = self.pings_sent.saturating_add(1);
        let now = wall_ms();
        self.pending_pings.insert(id, now);
        if self.pending_pings.len() > 32
            && let Some(oldest) = self.pending_pings.keys().min().copied()
        {
            self.pending_pings.remove(&oldest);
        }
        let gap = if self.pings_sent < 5 {
            Duration::from_millis(200)
        } else {
            interval
        };
        self.next_ping = Some(Instant::now() + gap);
        self.send(&ClientMessage::Ping {
            id,
            client_time: now,
        })
        .await
    }

    /// A close frame, then up to 2 s for the server's.
    async fn close(mut self) {
        let _ = self
            .ws
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            })))
            .await;
        let _ = timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// What a frame meant for the connection.
enum Read {
    Pass(ServerMessage),
    Nothing,
    Dropped(String),
}

async fn run(
    config: TransportConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<TransportEvent>,
    shared: Arc<Shared>,
) {
    let mut conn: Option<Connection> = None;
    let mut opening: Option<Opening> = None;
    let far = || Instant::now() + Duration::from_secs(3600);
    loop {
        let silence_at = conn
            .as_ref()
            .map_or_else(far, |c| c.last_heard + config.silence_timeout);
        let ping_at = conn.as_ref().and_then(|c| c.next_ping).unwrap_or_else(far);
        let dropped: Option<String> = tokio::select! {
            cmd = commands.recv() => match cmd {
                None | Some(Command::Shutdown) => break,
                Some(Command::Connect) => {
                    if let Some(old) = conn.take() {
                        shared.with(|s| s.open = false);
                        old.close().await;
                    }
                    opening = Some(Box::pin(open(config.clone())));
                    None
                }
                Some(Command::Disconnect) => {
                    opening = None;
                    if let Some(old) = conn.take() {
                        shared.with(|s| s.open = false);
                        old.close().await;
                    }
                    None
                }
                Some(Command::Send(msg)) => {
                    if let Some(c) = conn.as_mut() {
                        c.send(&msg).await.err()
                    } else {
                        tracing::debug!(?msg, "dropping a message sent while not connected");
                        None
                    }
                }
            },
            opened = async { opening.as_mut().expect("guarded").await }, if opening.is_some() => {
                opening = None;
                match opened {
                    Ok(ws) => {
                        conn = Some(Connection::new(ws));
                        shared.with(|s| s.open = true);
                        let _ = events.send(TransportEvent::Opened).await;
                        None
                    }
                    Err(reason) => Some(reason),
                }
            },
            frame = async { conn.as_mut().expect("guarded").ws.next().await }, if conn.is_some() => {
                let c = conn.as_mut().expect("guarded");
                c.last_heard = Instant::now();
                match read(c, frame, &shared).await {
                    Read::Pass(msg) => {
                        let _ = events.send(TransportEvent::Message(msg)).await;
                        None
                    }
                    Read::Nothing => None,
                    Read::Dropped(reason) => Some(reason),
                }
            },
            () = sleep_until(ping_at), if conn.as_ref().is_some_and(|c| c.next_ping.is_some()) => {
                conn.as_mut().expect("guarded").ping(config.ping_interval).await.err()
            },
            () = sleep_until(silence_at), if conn.is_some() => Some(format!(
                "nothing heard for {} s",
                config.silence_timeout.as_secs()
            )),
        };
        if let Some(reason) = dropped {
            conn = None;
            shared.with(|s| s.open = false);
            tracing::info!(%reason, "signaling connection closed");
            let _ = events.send(TransportEvent::Closed { reason }).await;
        }
    }
    // Messages queued before the shutdown (a `leave`) go out first.
    while let Ok(cmd) = commands.try_recv() {
        if let (Command::Send(msg), Some(c)) = (cmd, conn.as_mut()) {
            let _ = c.send(&msg).await;
        }
    }
    shared.with(|s| {
        s.open = false;
        s.stopped = true;
    });
    if let Some(c) = conn.take() {
        c.close().await;
    }
}

async fn read(
    c: &mut Connection,
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    shared: &Shared,
) -> Read {
    match frame {
        None => Read::Dropped("connection closed".to_owned()),
        Some(Err(e)) => Read::Dropped(format!("websocket error: {e}")),
        Some(Ok(Message::Text(text))) => match ServerMessage::parse(&text) {
            Ok(ServerMessage::Pong {
                id, server_time, ..
            }) => {
                if let Some(sent) = c.pending_pings.remove(&id) {
                    let sample = ClockSample {
                        client_send: sent,
                        client_receive: wall_ms(),
                        server_time,
                    };
                    shared.with(|s| s.clock.add(sample));
                }
                Read::Nothing
            }
            Ok(msg) => {
                if matches!(msg, ServerMessage::Welcome { .. }) {
                    // The server knows us now: start the clock probes.
                    c.pings_sent = 0;
                    c.next_ping = Some(Instant::now());
                }
                Read::Pass(msg)
            }
            Err(e) => {
                tracing::warn!(error = %e, "unreadable server message");
                Read::Nothing
            }
        },
        Some(Ok(Message::Close(frame))) => Read::Dropped(frame.map_or_else(
            || "closed by the server".to_owned(),
            |f| format!("closed by the server: {} {}", f.code, f.reason),
        )),
        // Pings are answered by tungstenite on the next write or flush.
        Some(Ok(_)) => {
            let _ = c.ws.flush().await;
            Read::Nothing
        }
    }
}

async fn open(config: TransportConfig) -> Result<Ws, String> {
    let connector = if config.url.starts_with("wss://") {
        let tls = match &config.tls {
            Some(tls) => Arc::clone(tls),
            None => default_tls().map_err(|e| format!("TLS setup failed: {e}"))?,
        };
        Some(Connector::Rustls(tls))
    } else {
        None
    };
    let handshake =
        tokio_tungstenite::connect_async_tls_with_config(&config.url, None, false, connector);
    match timeout(config.connect_timeout, handshake).await {
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(e)) => Err(format!("connect failed: {e}")),
        Err(_) => Err("connect timed out".to_owned()),
    }
}

/// The web's root certificates, ring, safe protocol versions: the TLS of every
/// connection this crate opens to the rooms server without a configured one.
pub(crate) fn default_tls() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_websocket_urls_are_taken() {
        assert!(
            TransportConfig::new("ws://127.0.0.1:1/ws")
                .validate()
                .is_ok()
        );
        assert!(
            TransportConfig::new("wss://rooms.example/ws")
                .validate()
                .is_ok()
        );
        assert!(matches!(
            TransportConfig::new("http://x/ws").validate(),
            Err(TransportError::InvalidUrl { .. })
        ));
    }
}

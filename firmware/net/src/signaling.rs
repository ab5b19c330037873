//! The kiosk's signaling client: one WebSocket to the rooms server's `/ws`.
//!
//! It speaks the wire types of `portal-proto` and behaves like the browser client
//! (`signaling/web/src/signaling.ts`):
//!
//! 1. connect, send `hello {protocol, name, role: kiosk, resume?}`;
//! 2. on `welcome`, keep the `resumeToken` and send `join {room, password?}`;
//! 3. probe the server clock with `ping` (five quick ones, then one every 10 s) and keep a
//!    [`ClockOffset`];
//! 4. when the connection drops (without a close from us), reconnect with exponential
//!    backoff and jitter, say `hello` with the resume token so the server gives back the
//!    same peer id (the browsers then keep their peer connections to us), and `join` again.
//!
//! Errors after which a retry cannot help (`unsupportedProtocol`, `roomFull`,
//! `wrongPassword`, `invalidRoomName`, `invalidName`) stop the client with a typed
//! [`SignalingError`]; other server errors are reported as [`SignalingEvent::ServerError`]
//! and the connection goes on.
//!
//! [`connect`] returns a cloneable [`SignalingHandle`] for sending and an `mpsc` receiver of
//! [`SignalingEvent`]s; read it promptly (the client waits while it is full). The client
//! owns no room logic: what to do with `peerJoined`, an offer or a `welcome` that did not
//! resume is the caller's decision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use portal_proto::{
    ClientMessage, ErrorCode, IceServer, PROTOCOL_VERSION, PeerId, PeerInfo, Role, ServerMessage,
    SignalData, WatchSnapshot, WatchState,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::clock::{Backoff, ClockOffset, ClockSample};

/// Why the signaling client cannot go on, or why a call on its handle failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalingError {
    /// The URL is not `ws://` or `wss://`.
    #[error("signaling URL {url:?} is not ws:// or wss://")]
    InvalidUrl { url: String },
    /// The name, room or password would be refused by the server.
    #[error(transparent)]
    InvalidConfig(#[from] portal_proto::Invalid),
    /// The server speaks another protocol version.
    #[error("the server refused protocol {PROTOCOL_VERSION}: {0}")]
    UnsupportedProtocol(String),
    /// The room is protected and the password is missing or wrong.
    #[error("wrong password: {0}")]
    WrongPassword(String),
    /// The room holds its maximum number of peers.
    #[error("room full: {0}")]
    RoomFull(String),
    /// The server refused the room name.
    #[error("invalid room name: {0}")]
    InvalidRoomName(String),
    /// The server refused the display name.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// Not joined right now (connecting or reconnecting); nothing was sent.
    #[error("not connected to the rooms server")]
    NotConnected,
    /// The client has stopped (after [`SignalingHandle::leave`] or a final error).
    #[error("the signaling client has stopped")]
    Closed,
}

impl SignalingError {
    /// The typed error for a server error code after which reconnecting cannot help.
    pub fn from_final_code(code: ErrorCode, message: String) -> Option<Self> {
        Some(match code {
            ErrorCode::UnsupportedProtocol => Self::UnsupportedProtocol(message),
            ErrorCode::WrongPassword => Self::WrongPassword(message),
            ErrorCode::RoomFull => Self::RoomFull(message),
            ErrorCode::InvalidRoomName => Self::InvalidRoomName(message),
            ErrorCode::InvalidName => Self::InvalidName(message),
            _ => return None,
        })
    }
}

/// Where and as whom to connect.
#[derive(Clone, Debug)]
pub struct SignalingConfig {
    /// `ws://HOST:PORT/ws` or `wss://HOST:PORT/ws`.
    pub url: String,
    /// Display name shown to the others.
    pub name: String,
    pub room: String,
    pub password: Option<String>,
    /// TLS settings for `wss://`; `None` uses the webpki roots. A TLS failure is an error
    /// like any other connection failure: there is no plaintext fallback.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub backoff: Backoff,
    /// Pings after the first five quick ones.
    pub ping_interval: Duration,
    /// A connection that hears nothing for this long (the server pings every 20 s by
    /// default) is treated as dropped.
    pub silence_timeout: Duration,
    /// Limit for the TCP/TLS/WebSocket handshake.
    pub connect_timeout: Duration,
}

impl SignalingConfig {
    pub fn new(url: impl Into<String>, name: impl Into<String>, room: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            name: name.into(),
            room: room.into(),
            password: None,
            tls: None,
            backoff: Backoff::default(),
            ping_interval: Duration::from_secs(10),
            silence_timeout: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(10),
        }
    }

    fn validate(&self) -> Result<(), SignalingError> {
        if !(self.url.starts_with("ws://") || self.url.starts_with("wss://")) {
            return Err(SignalingError::InvalidUrl {
                url: self.url.clone(),
            });
        }
        portal_proto::validate_display_name(&self.name)?;
        portal_proto::validate_room_name(&self.room)?;
        if let Some(p) = &self.password {
            portal_proto::validate_password(p)?;
        }
        Ok(())
    }
}

/// What the client reports, in order.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SignalingEvent {
    /// Opening connection attempt `attempt` (0 first, then 0 again after every join).
    Connecting {
        attempt: u32,
    },
    /// The server accepted `hello`. `resumed` is true when it gave back the id of the
    /// previous connection; when `previous` is `Some` and differs from `peer_id`, the
    /// others have torn down their connections to the old id, so ours to them are stale.
    Welcome {
        peer_id: PeerId,
        previous: Option<PeerId>,
        resumed: bool,
        ice_servers: Vec<IceServer>,
        server_time: f64,
    },
    /// In the room; `peers` are the others there now (after a reconnect it may list peers
    /// the caller already has).
    Joined {
        room: String,
        peer_id: PeerId,
        peers: Vec<PeerInfo>,
        watch: Option<WatchSnapshot>,
        doc_token: String,
    },
    PeerJoined(PeerInfo),
    PeerLeft(PeerId),
    /// `data` relayed from peer `from`.
    Signal {
        from: PeerId,
        data: SignalData,
    },
    Watch {
        state: WatchState,
        server_time: f64,
        by: Option<PeerId>,
    },
    /// A non-final error from the server; the connection goes on.
    ServerError {
        code: ErrorCode,
        message: String,
    },
    /// The connection dropped; the next attempt starts after `retry_in`.
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    /// The client ended: `None` after [`SignalingHandle::leave`], else the final error.
    Stopped(Option<Arc<SignalingError>>),
}

#[derive(Debug)]
enum Command {
    Send(ClientMessage),
    Leave,
}

#[derive(Debug, Default)]
struct State {
    peer_id: Option<PeerId>,
    joined: bool,
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

/// Sends through the signaling connection; cheap to clone.
#[derive(Clone, Debug)]
pub struct SignalingHandle {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

/// Starts the client on the current tokio runtime.
pub fn connect(
    config: SignalingConfig,
) -> Result<(SignalingHandle, mpsc::Receiver<SignalingEvent>), SignalingError> {
    config.validate()?;
    let (commands, command_rx) = mpsc::channel(256);
    let (events, event_rx) = mpsc::channel(256);
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        task: Mutex::new(None),
    });
    let task = tokio::spawn(run(config, command_rx, events, Arc::clone(&shared)));
    *shared.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
    Ok((SignalingHandle { commands, shared }, event_rx))
}

impl SignalingHandle {
    /// Relays `data` to peer `to` in the room. Fails with [`SignalingError::NotConnected`]
    /// while (re)connecting: an SDP or candidate is not worth replaying into a later
    /// connection, the offerer restarts ICE instead.
    pub async fn signal(&self, to: PeerId, data: SignalData) -> Result<(), SignalingError> {
        self.send_joined(ClientMessage::Signal { to, data }).await
    }

    /// Replaces the room's watch-together state.
    pub async fn watch(&self, state: WatchState) -> Result<(), SignalingError> {
        self.send_joined(ClientMessage::Watch { state }).await
    }

    async fn send_joined(&self, msg: ClientMessage) -> Result<(), SignalingError> {
        let (joined, stopped) = self.shared.with(|s| (s.joined, s.stopped));
        if stopped {
            return Err(SignalingError::Closed);
        }
        if !joined {
            return Err(SignalingError::NotConnected);
        }
        self.commands
            .send(Command::Send(msg))
            .await
            .map_err(|_| SignalingError::Closed)
    }

    /// Our peer id from the last `welcome`.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.shared.with(|s| s.peer_id)
    }

    /// Whether we are in the room right now.
    pub fn is_joined(&self) -> bool {
        self.shared.with(|s| s.joined)
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

    /// Leaves the room (the others see `peerLeft` at once), closes the connection and waits
    /// for the client to end.
    pub async fn leave(&self) {
        let _ = self.commands.send(Command::Leave).await;
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

/// How one connection ended.
enum End {
    /// We left; stop.
    Left,
    /// A final error; stop.
    Final(SignalingError),
    /// Dropped; reconnect. `joined` tells whether the room was reached.
    Dropped { reason: String, joined: bool },
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn run(
    config: SignalingConfig,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<SignalingEvent>,
    shared: Arc<Shared>,
) {
    let mut resume: Option<String> = None;
    let mut attempt: u32 = 0;
    let stop = loop {
        let _ = events.send(SignalingEvent::Connecting { attempt }).await;
        let end = match open(&config).await {
            Ok(ws) => {
                let mut conn = Connection {
                    ws,
                    config: &config,
                    events: &events,
                    shared: &shared,
                    resume: &mut resume,
                    joined: false,
                    pending_pings: HashMap::new(),
                    next_ping_id: 1,
                    pings_sent: 0,
                };
                conn.serve(&mut commands).await
            }
            Err(reason) => End::Dropped {
                reason,
                joined: false,
            },
        };
        shared.with(|s| s.joined = false);
        match end {
            End::Left => break None,
            End::Final(e) => break Some(Arc::new(e)),
            End::Dropped { reason, joined } => {
                if joined {
                    attempt = 0;
                }
                let retry_in = config.backoff.delay(attempt, rand::random::<f64>());
                attempt = attempt.saturating_add(1);
                tracing::info!(%reason, ?retry_in, "signaling connection dropped; reconnecting");
                let _ = events
                    .send(SignalingEvent::Disconnected { reason, retry_in })
                    .await;
                if wait_or_leave(retry_in, &mut commands).await {
                    break None;
                }
            }
        }
    };
    shared.with(|s| s.stopped = true);
    if let Some(e) = &stop {
        tracing::warn!(error = %e, "signaling stopped");
    }
    let _ = events.send(SignalingEvent::Stopped(stop)).await;
}

/// Sleeps `delay`; true when the caller left meanwhile. Anything else sent while
/// disconnected is dropped.
async fn wait_or_leave(delay: Duration, commands: &mut mpsc::Receiver<Command>) -> bool {
    let deadline = sleep(delay);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return false,
            cmd = commands.recv() => match cmd {
                None | Some(Command::Leave) => return true,
                Some(Command::Send(msg)) => {
                    tracing::debug!(?msg, "dropping a message sent while disconnected");
                }
            },
        }
    }
}

async fn open(config: &SignalingConfig) -> Result<Ws, String> {
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

fn default_tls() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
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

struct Connection<'a> {
    ws: Ws,
    config: &'a SignalingConfig,
    events: &'a mpsc::Sender<SignalingEvent>,
    shared: &'a Shared,
    resume: &'a mut Option<String>,
    joined: bool,
    pending_pings: HashMap<u64, f64>,
    next_ping_id: u64,
    pings_sent: u32,
}

impl Connection<'_> {
    async fn serve(&mut self, commands: &mut mpsc::Receiver<Command>) -> End {
        let hello = ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            name: self.config.name.clone(),
            role: Role::Kiosk,
            resume: self.resume.clone(),
        };
        if let Err(e) = self.send(&hello).await {
            return self.dropped(format!("sending hello failed: {e}"));
        }
        let mut last_heard = Instant::now();
        // No pings before `welcome`.
        let mut next_ping: Option<Instant> = None;
        loop {
            let silence_deadline = last_heard + self.config.silence_timeout;
            let ping_at = next_ping.unwrap_or(silence_deadline + Duration::from_secs(3600));
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Leave) => {
                        self.leave().await;
                        return End::Left;
                    }
                    Some(Command::Send(msg)) => {
                        if let Err(e) = self.send(&msg).await {
                            return self.dropped(format!("send failed: {e}"));
                        }
                    }
                },
                frame = self.ws.next() => {
                    last_heard = Instant::now();
                    match frame {
                        None => return self.dropped("connection closed".to_owned()),
                        Some(Err(e)) => return self.dropped(format!("websocket error: {e}")),
                        Some(Ok(Message::Text(text))) => {
                            match ServerMessage::parse(&text) {
                                Ok(msg) => {
                                    if let Some(end) = self.handle(msg, &mut next_ping).await {
                                        return end;
                                    }
                                }
                                Err(e) => tracing::warn!(error = %e, "unreadable server message"),
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let reason = frame.map_or_else(
                                || "closed by the server".to_owned(),
                                |f| format!("closed by the server: {} {}", f.code, f.reason),
                            );
                            return self.dropped(reason);
                        }
                        // Pings are answered by tungstenite on the next write or flush.
                        Some(Ok(_)) => {
                            let _ = self.ws.flush().await;
                        }
                    }
                },
                () = sleep_until(ping_at), if next_ping.is_some() => {
                    if let Err(e) = self.ping().await {
                        return self.dropped(format!("ping failed: {e}"));
                    }
                    let gap = if self.pings_sent < 5 {
                        Duration::from_millis(200)
                    } else {
                        self.config.ping_interval
                    };
                    next_ping = Some(Instant::now() + gap);
                },
                () = sleep_until(silence_deadline) => {
                    return self.dropped(format!(
                        "nothing heard for {} s",
                        self.config.silence_timeout.as_secs()
                    ));
                }
            }
        }
    }

    fn dropped(&self, reason: String) -> End {
        End::Dropped {
            reason,
            joined: self.joined,
        }
    }

    async fn send(
        &mut self,
        msg: &ClientMessage,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(Message::Text(msg.to_json().into())).await
    }

    async fn ping(&mut self) -> Result<(), tokio_tungstenite::tungstenite::Error> {
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
        self.send(&ClientMessage::Ping {
            id,
            client_time: now,
        })
        .await
    }

    async fn leave(&mut self) {
        if self.joined {
            let _ = self.send(&ClientMessage::Leave).await;
        }
        // A close frame tells the server we went on purpose: no resume grace.
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

    async fn emit(&self, event: SignalingEvent) {
        let _ = self.events.send(event).await;
    }

    /// Handles one server message; `Some` ends the connection.
    async fn handle(&mut self, msg: ServerMessage, next_ping: &mut Option<Instant>) -> Option<End> {
        match msg {
            ServerMessage::Welcome {
                peer_id,
                server_time,
                ice_servers,
                resume_token,
                resumed,
                ..
            } => {
                *self.resume = Some(resume_token);
                let previous = self.shared.with(|s| s.peer_id.replace(peer_id));
                tracing::info!(%peer_id, resumed, "welcome");
                self.emit(SignalingEvent::Welcome {
                    peer_id,
                    previous,
                    resumed,
                    ice_servers,
                    server_time,
                })
                .await;
                let join = ClientMessage::Join {
                    room: self.config.room.clone(),
                    password: self.config.password.clone(),
                };
                if let Err(e) = self.send(&join).await {
                    return Some(self.dropped(format!("sending join failed: {e}")));
                }
                self.pings_sent = 0;
                *next_ping = Some(Instant::now());
            }
            ServerMessage::Joined {
                room,
                peer_id,
                peers,
                watch,
                doc_token,
            } => {
                self.joined = true;
                self.shared.with(|s| s.joined = true);
                tracing::info!(%room, %peer_id, peers = peers.len(), "joined");
                self.emit(SignalingEvent::Joined {
                    room,
                    peer_id,
                    peers,
                    watch,
                    doc_token,
                })
                .await;
            }
            ServerMessage::Left { .. } => {}
            ServerMessage::PeerJoined { peer } => self.emit(SignalingEvent::PeerJoined(peer)).await,
            ServerMessage::PeerLeft { peer_id } => {
                self.emit(SignalingEvent::PeerLeft(peer_id)).await;
            }
            ServerMessage::Signal { from, data } => {
                self.emit(SignalingEvent::Signal { from, data }).await;
            }
            ServerMessage::Watch {
                state,
                server_time,
                by,
            } => {
                self.emit(SignalingEvent::Watch {
                    state,
                    server_time,
                    by,
                })
                .await;
            }
            ServerMessage::Pong {
                id, server_time, ..
            } => {
                if let Some(sent) = self.pending_pings.remove(&id) {
                    let sample = ClockSample {
                        client_send: sent,
                        client_receive: wall_ms(),
                        server_time,
                    };
                    self.shared.with(|s| s.clock.add(sample));
                }
            }
            ServerMessage::Error { code, message } => {
                if let Some(e) = SignalingError::from_final_code(code, message.clone()) {
                    return Some(End::Final(e));
                }
                tracing::warn!(%code, %message, "server error");
                self.emit(SignalingEvent::ServerError { code, message })
                    .await;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked_before_connecting() {
        let ok = SignalingConfig::new("ws://127.0.0.1:1/ws", "Room 4.01", "lobby");
        assert!(ok.validate().is_ok());
        let bad_url = SignalingConfig::new("http://x/ws", "Room", "lobby");
        assert!(matches!(
            bad_url.validate(),
            Err(SignalingError::InvalidUrl { .. })
        ));
        let bad_room = SignalingConfig::new("ws://x/ws", "Room", "../etc");
        assert!(matches!(
            bad_room.validate(),
            Err(SignalingError::InvalidConfig(_))
        ));
        let bad_name = SignalingConfig::new("wss://x/ws", "  ", "lobby");
        assert!(bad_name.validate().is_err());
    }

    #[test]
    fn final_codes_map_to_typed_errors() {
        assert!(matches!(
            SignalingError::from_final_code(ErrorCode::WrongPassword, "x".into()),
            Some(SignalingError::WrongPassword(_))
        ));
        assert!(matches!(
            SignalingError::from_final_code(ErrorCode::RoomFull, "x".into()),
            Some(SignalingError::RoomFull(_))
        ));
        assert!(SignalingError::from_final_code(ErrorCode::RateLimited, "x".into()).is_none());
        assert!(SignalingError::from_final_code(ErrorCode::ShuttingDown, "x".into()).is_none());
    }
}

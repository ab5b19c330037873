//! The sockets around the hub: HTTP/1.1 (hyper), WebSocket (tokio-tungstenite), TLS
//! (rustls), per-connection limits, heartbeat and graceful shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use portal_proto::{ClientMessage, ErrorCode, PeerId, ServerMessage, validate_password};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role as WsRole, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use crate::config::Config;
use crate::docs::DocsHub;
use crate::guard::{Denied, Guard, HashPool, TokenVerdict};
use crate::hub::{Action, Credential, Hub, RoomAccess, StoreOp};
use crate::limits::TokenBucket;
use crate::metrics::{HubGauges, Metrics};
use crate::pairing::Registry;
use crate::store::{PEER_ID_BLOCK, Store, StoreError, StoreThread, now_ms, reserve_peer_ids};
use crate::token::{DocTokens, TokenError};
use crate::web::{CONTENT_SECURITY_POLICY, WebRoot, parse_range};

mod conn;
mod http;
mod slots;

use conn::{Connection, Tracker};
use http::serve_http;
use slots::{AddrSlots, Slot};

/// Frames queued for one connection before it counts as too slow and is dropped.
const OUTBOX_CAPACITY: usize = 1024;
/// A TLS client has this long to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client has this long to send a request's headers (the first, or the next on a
/// kept-alive connection): a slow or silent client does not hold its slot longer.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not start. Each is a clear message for the operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("cannot read TLS certificate {path}: {reason}")]
    TlsCert { path: String, reason: String },
    #[error("cannot read TLS key {path}: {reason}")]
    TlsKey { path: String, reason: String },
    #[error("TLS certificate and key do not fit together: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// State shared by every connection.
#[derive(Debug)]
struct Shared {
    routing: Mutex<Routing>,
    metrics: Metrics,
    store: Store,
    docs: Arc<DocsHub>,
    web: WebRoot,
    updates: Option<crate::updates::UpdateFeed>,
    tokens: DocTokens,
    limits: Limits,
    /// Every password and token check, and room creation, per address and per room.
    guard: Arc<Guard>,
    /// Open connections per client address.
    slots: Arc<AddrSlots>,
    /// Refused connections being answered now (see [`refuse`]).
    refusing: AtomicUsize,
    next_peer: AtomicU64,
    shutdown: watch::Receiver<bool>,
    tasks: Tracker,
    /// Monotonic base for rate limits and timeouts.
    epoch: Instant,
    /// `--public-url`, for pairing links.
    public_base: Option<String>,
    tls: bool,
    local_addr: SocketAddr,
}

/// The hub and the outboxes of the connections it routes to, under one lock so that
/// routing and delivery happen in one order.
#[derive(Debug)]
struct Routing {
    hub: Hub,
    /// Kiosks, codes and pairings (see [`crate::pairing`]).
    pairing: Registry,
    outboxes: HashMap<PeerId, mpsc::Sender<Message>>,
}

#[derive(Debug, Clone)]
struct Limits {
    max_connections: usize,
    max_frame: usize,
    msg_rate: f64,
    msg_burst: f64,
    idle_timeout: Duration,
    hello_timeout: Duration,
    /// Frames above this close a document connection (a little over the update limit).
    max_doc_frame: usize,
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    store_thread: StoreThread,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Stops a running server from elsewhere.
#[derive(Debug, Clone)]
pub struct ServerHandle(watch::Sender<bool>);

impl ServerHandle {
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

impl Server {
    /// Checks the settings, loads TLS material, opens the store and binds the port.
    /// Any failure is returned, never papered over (no plaintext fallback).
    pub async fn bind(config: &Config) -> Result<Server, StartError> {
        config.check().map_err(StartError::Config)?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
            _ => None,
        };
        let (store, store_thread, loaded) = Store::open(&config.data_dir)?;
        let tokens = DocTokens::new(loaded.token_key, 12.0 * 3600.0 * 1000.0);
        let hub = Hub::new(config.hub_config(), tokens.clone(), loaded.rooms);
        let (kiosks, codes) = store.call(crate::pairing::store::load).await?;
        let pairing = Registry::new(config.pairing_config(), kiosks, codes, now_ms());
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let local_addr = listener.local_addr().unwrap_or(config.bind);
        let shared = Arc::new(Shared {
            routing: Mutex::new(Routing {
                hub,
                pairing,
                outboxes: HashMap::new(),
            }),
            metrics: Metrics::default(),
            docs: DocsHub::new(store.clone(), config.docs_config()),
            store,
            web: config
                .web_dir
                .clone()
                .map_or(WebRoot::Embedded, WebRoot::Dir),
            updates: config
                .updates_dir
                .clone()
                .map(crate::updates::UpdateFeed::new),
            tokens,
            limits: Limits {
                max_connections: config.max_connections,
                max_frame: config.max_frame,
                msg_rate: config.msg_rate,
                msg_burst: config.msg_burst.max(1.0),
                idle_timeout: config.idle_timeout(),
                hello_timeout: config.hello_timeout(),
                max_doc_frame: config.docs_config().max_update + 64 * 1024,
            },
            guard: Guard::new(config.guard_config(), HashPool::threads_for_this_machine()),
            slots: AddrSlots::new(config.max_conns_per_addr),
            refusing: AtomicUsize::new(0),
            next_peer: AtomicU64::new(loaded.first_peer_id),
            shutdown,
            tasks: Tracker::default(),
            epoch: Instant::now(),
            public_base: config.public_base(),
            tls: tls.is_some(),
            local_addr,
        });
        Ok(Server {
            listener,
            tls,
            shared,
            shutdown_tx,
            store_thread,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    pub fn handle(&self) -> ServerHandle {
        ServerHandle(self.shutdown_tx.clone())
    }

    /// Serves until `stop` resolves or [`ServerHandle::shutdown`] is called; then closes
    /// every connection with a close frame, waits for them (5 s at most) and flushes the
    /// store.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let Server {
            listener,
            tls,
            shared,
            shutdown_tx,
            store_thread,
        } = self;
        let mut shutdown = shared.shutdown.clone();
        let expiry = tokio::spawn(expire_rooms(shared.clone()));
        let away = tokio::spawn(expire_away(shared.clone()));
        let pairing = tokio::spawn(conn::pairing::pairing_ticks(shared.clone()));
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, addr)) => {
                        // Counted from accept to close, before any TLS or HTTP work.
                        let Some(slot) = shared.slots.take(addr.ip()) else {
                            shared.metrics.connections_refused_per_addr.fetch_add(1, Relaxed);
                            tracing::debug!(%addr, "too many connections from this address");
                            tokio::spawn(refuse(tcp, tls.is_some(), shared.clone()));
                            continue;
                        };
                        let slot = Arc::new(slot);
                        let _ = tcp.set_nodelay(true);
                        let shared = shared.clone();
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            match tls {
                                Some(acceptor) => {
                                    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                                    match handshake {
                                        Ok(Ok(stream)) => serve_http(stream, addr, shared, slot).await,
                                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                                    }
                                }
                                None => serve_http(tcp, addr, shared, slot).await,
                            }
                        });
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        tracing::info!("shutting down");
        drop(listener);
        let _ = shutdown_tx.send(true);
        expiry.abort();
        away.abort();
        pairing.abort();
        if !shared.tasks.wait_idle(Duration::from_secs(5)).await {
            tracing::warn!("some connections did not close in time");
        }
        shared.store.shutdown();
        drop(shared);
        tokio::task::spawn_blocking(move || store_thread.join())
            .await
            .ok();
        tracing::info!("store flushed; bye");
    }
}

/// Refused connections being answered at once at most; beyond, they are closed unanswered.
const MAX_REFUSING: usize = 256;

/// Ends a connection from an address over its limit: plain HTTP reads a 429 (what the
/// client sent is drained briefly so the answer is not lost to a reset), TLS is closed
/// before the handshake. At most [`MAX_REFUSING`] answers (half a second each) at once.
async fn refuse(mut tcp: tokio::net::TcpStream, tls: bool, shared: Arc<Shared>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if tls {
        return;
    }
    if shared.refusing.fetch_add(1, Relaxed) >= MAX_REFUSING {
        shared.refusing.fetch_sub(1, Relaxed);
        return;
    }
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        let _ = tcp.write_all(slots::REFUSAL).await;
        let _ = tcp.shutdown().await;
        let mut sink = [0u8; 1024];
        for _ in 0..16 {
            if matches!(tcp.read(&mut sink).await, Ok(0) | Err(_)) {
                break;
            }
        }
    })
    .await;
    shared.refusing.fetch_sub(1, Relaxed);
}

fn load_tls(cert: &Path, key: &Path) -> Result<TlsAcceptor, StartError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| StartError::TlsCert {
            path: cert.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(StartError::TlsCert {
            path: cert.display().to_string(),
            reason: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| StartError::TlsKey {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Forgets long-unused rooms once an hour.
async fn expire_rooms(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        let actions = shared.lock().hub.expire(now_ms());
        shared.carry_out(actions);
    }
}

/// Ends the grace of peers whose connection dropped and who did not come back, and
/// forgets quiet addresses in the limiter now and then.
async fn expire_away(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    for tick in 0u64.. {
        every.tick().await;
        let actions = shared.lock().hub.expire_away(now_ms());
        shared.carry_out(actions);
        if tick % 60 == 59 {
            shared.guard.prune();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Routing> {
        // A panic while holding the lock is a bug; the hub's state is still consistent
        // enough to keep routing (every method leaves it valid between statements).
        self.routing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn mono_ms(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64() * 1000.0
    }

    /// Carries out hub actions, taking the lock.
    fn carry_out(&self, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        let mut routing = self.lock();
        self.deliver(&mut routing, actions);
    }

    /// Carries out hub actions with the lock held, so delivery keeps routing's order.
    fn deliver(&self, routing: &mut Routing, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, msg } => {
                    if let ServerMessage::Error { code, .. } = &msg {
                        self.metrics.error(*code);
                    }
                    let frame: Utf8Bytes = msg.to_json().into();
                    for peer in to {
                        self.push(routing, peer, Message::Text(frame.clone()));
                    }
                }
                Action::Close { peer, code } => {
                    // Dropping the outbox ends the connection once it has sent what was
                    // queued (the error that explains why).
                    routing.outboxes.remove(&peer);
                    tracing::debug!(%peer, %code, "closing connection");
                }
                Action::Store(op) => {
                    let changed = match &op {
                        StoreOp::CreateRoom { room, .. } | StoreOp::DeleteRoom { room } => {
                            Some(room.clone())
                        }
                        StoreOp::TouchRoom { .. } | StoreOp::SaveWatch { .. } => None,
                    };
                    self.store.apply(op);
                    // A loaded document checks its room at once (it went, or came back
                    // under the same name).
                    if let Some(room) = changed {
                        self.docs.room_changed(&room);
                    }
                }
                Action::Rekey { from, to } => {
                    if let Some(outbox) = routing.outboxes.remove(&from) {
                        routing.outboxes.insert(to, outbox);
                    }
                }
            }
        }
    }

    fn push(&self, routing: &mut Routing, peer: PeerId, frame: Message) {
        let Some(outbox) = routing.outboxes.get(&peer) else {
            return;
        };
        let len = frame.len() as u64;
        match outbox.try_send(frame) {
            Ok(()) => {
                self.metrics.messages_out.fetch_add(1, Relaxed);
                self.metrics.bytes_out.fetch_add(len, Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(%peer, "dropping a connection that does not read");
                self.metrics.slow_consumers.fetch_add(1, Relaxed);
                routing.outboxes.remove(&peer);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

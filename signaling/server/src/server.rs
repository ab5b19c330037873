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
use crate::store::{PEER_ID_BLOCK, Store, StoreError, StoreThread, now_ms, reserve_peer_ids};
use crate::token::{DocTokens, TokenError};
use crate::web::{WebRoot, parse_range};

/// Frames queued for one connection before it counts as too slow and is dropped.
const OUTBOX_CAPACITY: usize = 1024;

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
    tokens: DocTokens,
    limits: Limits,
    /// Every password and token check, and room creation, per address and per room.
    guard: Arc<Guard>,
    next_peer: AtomicU64,
    shutdown: watch::Receiver<bool>,
    tasks: Tracker,
    /// Monotonic base for rate limits and timeouts.
    epoch: Instant,
}

/// The hub and the outboxes of the connections it routes to, under one lock so that
/// routing and delivery happen in one order.
#[derive(Debug)]
struct Routing {
    hub: Hub,
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
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            routing: Mutex::new(Routing {
                hub,
                outboxes: HashMap::new(),
            }),
            metrics: Metrics::default(),
            docs: DocsHub::new(store.clone(), config.docs_config()),
            store,
            web: config
                .web_dir
                .clone()
                .map_or(WebRoot::Embedded, WebRoot::Dir),
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
            next_peer: AtomicU64::new(loaded.first_peer_id),
            shutdown,
            tasks: Tracker::default(),
            epoch: Instant::now(),
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
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, addr)) => {
                        let _ = tcp.set_nodelay(true);
                        let shared = shared.clone();
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            match tls {
                                Some(acceptor) => {
                                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                                    match handshake {
                                        Ok(Ok(stream)) => serve_http(stream, addr, shared).await,
                                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                                    }
                                }
                                None => serve_http(tcp, addr, shared).await,
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

async fn serve_http<S>(stream: S, addr: SocketAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(route(req, addr, shared).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%addr, error = %e, "http connection ended with an error");
    }
}

type Body = Full<Bytes>;

async fn route(req: Request<Incoming>, addr: SocketAddr, shared: Arc<Shared>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/ws") => match may_upgrade(&req, &shared) {
            Ok(accept) => upgrade(req, addr, shared, Endpoint::Signaling, &accept),
            Err(resp) => *resp,
        },
        (&Method::GET, p) if p.starts_with("/yjs/") => {
            // Everything cheap first (a WebSocket request, room for one more connection),
            // then the password, through the limiter.
            let accept = match may_upgrade(&req, &shared) {
                Ok(accept) => accept,
                Err(resp) => return *resp,
            };
            match doc_access(&req, &p[5..], addr, &shared).await {
                Ok(endpoint) => upgrade(req, addr, shared, endpoint, &accept),
                Err(resp) => *resp,
            }
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metrics") => {
            let gauges = {
                let routing = shared.lock();
                HubGauges {
                    peers: routing.hub.peer_count(),
                    active_rooms: routing.hub.active_rooms(),
                    known_rooms: routing.hub.known_rooms(),
                }
            };
            let mut body = String::new();
            shared.metrics.render(gauges, &mut body);
            shared.docs.render_metrics(&mut body);
            let mut resp = text(StatusCode::OK, body);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        (&Method::GET | &Method::HEAD, _) => static_file(&req, &path, &shared),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn static_file(req: &Request<Incoming>, path: &str, shared: &Shared) -> Response<Body> {
    let Some(asset) = shared.web.get(path) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let len = asset.body.len();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let mut resp = match parse_range(range, len) {
        Ok(None) => Response::new(Full::new(Bytes::from(asset.body))),
        Ok(Some((start, end))) => {
            let mut resp = Response::new(Full::new(Bytes::from(asset.body).slice(start..=end)));
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("ascii"),
            );
            resp
        }
        Err(()) => {
            let mut resp = text(StatusCode::RANGE_NOT_SATISFIABLE, "");
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return resp;
        }
    };
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    resp
}

/// What a WebSocket connection is for.
#[derive(Debug)]
enum Endpoint {
    Signaling,
    Document { room: String, read_only: bool },
}

/// Checks access to `/yjs/{room}`: the room's rules apply. A protected room needs the
/// `token` a `joined` message carried, or its `password`; `readonly=1` asks for a
/// connection whose updates are dropped. Both checks go through the limiter: an address
/// or room locked out gets 429 with `Retry-After` and no argon2 runs; argon2 runs on the
/// hashing threads, never on this task's worker.
async fn doc_access(
    req: &Request<Incoming>,
    room: &str,
    addr: SocketAddr,
    shared: &Shared,
) -> Result<Endpoint, Box<Response<Body>>> {
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                .map(|(k, v)| (k.to_owned(), percent_decode(v)))
                .collect()
        })
        .unwrap_or_default();
    let read_only = query
        .get("readonly")
        .is_some_and(|v| v == "1" || v == "true");
    let access = shared.lock().hub.room_access(room);
    let hash = match access {
        Err(code) => {
            return Err(Box::new(text(
                StatusCode::BAD_REQUEST,
                format!("{code}: invalid room name\n"),
            )));
        }
        Ok(RoomAccess::New | RoomAccess::Open) => {
            return Ok(Endpoint::Document {
                room: room.to_owned(),
                read_only,
            });
        }
        Ok(RoomAccess::Protected(hash)) => hash,
    };
    let ip = addr.ip();
    let mut granted = false;
    if let Some(token) = query.get("token") {
        let verdict = match shared.tokens.verify(token, room, now_ms()) {
            Ok(_) => TokenVerdict::Valid,
            Err(TokenError::Expired) => TokenVerdict::Expired,
            Err(_) => TokenVerdict::Forged,
        };
        granted = shared
            .guard
            .check_token(ip, verdict)
            .map_err(|denied| denied_response(shared, denied))?;
    }
    // The password path is for clients that cannot join first.
    if !granted && let Some(password) = query.get("password") {
        granted = validate_password(password).is_ok()
            && shared
                .guard
                .verify_password(ip, room, password.clone(), hash)
                .await
                .map_err(|denied| denied_response(shared, denied))?;
    }
    if granted {
        Ok(Endpoint::Document {
            room: room.to_owned(),
            read_only,
        })
    } else {
        shared.metrics.error(ErrorCode::WrongPassword);
        Err(Box::new(text(
            StatusCode::FORBIDDEN,
            "wrongPassword: this room's document needs a token from joining, or the password\n",
        )))
    }
}

/// 429 (or 500) for a check the limiter refused.
fn denied_response(shared: &Shared, denied: Denied) -> Box<Response<Body>> {
    let code = denied.code();
    shared.metrics.error(code);
    let status = if code == ErrorCode::Internal {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    let mut resp = text(status, format!("{code}: {denied}\n"));
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(denied.retry_secs()));
    Box::new(resp)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(()) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `req` is a WebSocket upgrade the server can take now (not shutting down,
/// under the connection limit); its `Sec-WebSocket-Accept` value when so.
fn may_upgrade(req: &Request<Incoming>, shared: &Shared) -> Result<String, Box<Response<Body>>> {
    let headers = req.headers();
    let is_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| is_upgrade && version_ok)
    else {
        return Err(Box::new(text(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket (version 13)\n",
        )));
    };
    if *shared.shutdown.borrow() {
        return Err(Box::new(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n",
        )));
    }
    let open = shared.metrics.connections.load(Relaxed);
    if usize::try_from(open).unwrap_or(0) >= shared.limits.max_connections {
        shared.metrics.connections_rejected.fetch_add(1, Relaxed);
        shared.metrics.error(ErrorCode::ServerFull);
        return Err(Box::new(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "serverFull: too many connections, try again later\n",
        )));
    }
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// Answers a WebSocket upgrade that [`may_upgrade`] allowed and starts the connection's
/// task.
fn upgrade(
    req: Request<Incoming>,
    addr: SocketAddr,
    shared: Arc<Shared>,
    endpoint: Endpoint,
    accept: &str,
) -> Response<Body> {
    let guard = shared.tasks.enter();
    shared.metrics.connections.fetch_add(1, Relaxed);
    shared.metrics.connections_total.fetch_add(1, Relaxed);
    tokio::spawn(async move {
        let _guard = guard;
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let cap = match endpoint {
                    Endpoint::Signaling => hard_frame_cap(shared.limits.max_frame),
                    // Documents enforce their own update limit with a clear close reason.
                    Endpoint::Document { .. } => shared.limits.max_doc_frame,
                };
                let config = WebSocketConfig::default()
                    .read_buffer_size(4096)
                    .write_buffer_size(0)
                    .max_frame_size(Some(cap))
                    .max_message_size(Some(cap));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    WsRole::Server,
                    Some(config),
                )
                .await;
                match endpoint {
                    Endpoint::Signaling => Connection::run(ws, addr, &shared).await,
                    Endpoint::Document { room, read_only } => {
                        let docs = shared.docs.clone();
                        docs.serve(ws, room, read_only, shared.shutdown.clone())
                            .await;
                    }
                }
            }
            Err(e) => tracing::debug!(%addr, error = %e, "upgrade failed"),
        }
        shared.metrics.connections.fetch_sub(1, Relaxed);
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(accept).expect("base64 is a valid header"),
    );
    resp
}

/// Frames above `max_frame` get `tooLarge` and the connection stays; frames above this
/// cap are not even buffered: `tooLarge` and close.
fn hard_frame_cap(max_frame: usize) -> usize {
    (max_frame * 4).max(256 * 1024)
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

/// One signaling connection's task.
struct Connection<'a, S> {
    ws: WebSocketStream<S>,
    addr: SocketAddr,
    peer: PeerId,
    shared: &'a Shared,
    bucket: TokenBucket,
    last_rate_error: f64,
    hello: bool,
}

/// How a connection ended, for the close frame.
enum End {
    /// The client closed (`clean`: with a close frame) or the socket failed: nothing
    /// more to send.
    Gone { clean: bool },
    /// Send `code` (if any) and a close frame with `close`.
    Close(Option<(ErrorCode, String)>, CloseCode, &'static str),
}

impl<S> Connection<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn run(ws: WebSocketStream<S>, addr: SocketAddr, shared: &Shared) {
        let id = shared.next_peer.fetch_add(1, Relaxed);
        if id.is_multiple_of(PEER_ID_BLOCK) {
            // Crossing into the next reserved block: reserve the one after it.
            let floor = id + PEER_ID_BLOCK;
            let _ = shared.store.call(move |c| reserve_peer_ids(c, floor)).await;
        }
        let peer = PeerId(id);
        let (tx, mut rx) = mpsc::channel(OUTBOX_CAPACITY);
        {
            let mut routing = shared.lock();
            routing.hub.connect(peer);
            routing.outboxes.insert(peer, tx);
        }
        tracing::debug!(%addr, %peer, "connected");
        let mut conn = Connection {
            ws,
            addr,
            peer,
            shared,
            bucket: TokenBucket::new(
                shared.limits.msg_rate,
                shared.limits.msg_burst,
                shared.mono_ms(),
            ),
            last_rate_error: f64::NEG_INFINITY,
            hello: false,
        };
        let end = conn.serve(&mut rx).await;
        let clean = matches!(end, End::Gone { clean: true });
        conn.finish(end).await;
        // A resumed connection has taken another peer's id.
        let peer = conn.peer;
        let actions = {
            let mut routing = shared.lock();
            routing.outboxes.remove(&peer);
            routing.hub.disconnect(peer, now_ms(), clean)
        };
        shared.carry_out(actions);
        tracing::debug!(%addr, %peer, "disconnected");
    }

    async fn serve(&mut self, rx: &mut mpsc::Receiver<Message>) -> End {
        let limits = self.shared.limits.clone();
        let mut shutdown = self.shared.shutdown.clone();
        let started = Instant::now();
        let mut last_seen = Instant::now();
        let mut heartbeat = tokio::time::interval(limits.idle_timeout / 3);
        heartbeat.tick().await;
        let hello_deadline = tokio::time::sleep(limits.hello_timeout);
        tokio::pin!(hello_deadline);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    return End::Close(
                        Some((ErrorCode::ShuttingDown, "the server is restarting; reconnect".into())),
                        CloseCode::Away,
                        "server shutting down",
                    );
                }
                out = rx.recv() => match out {
                    Some(frame) => {
                        if self.send_queued(frame, rx).await.is_err() {
                            return End::Gone { clean: false };
                        }
                    }
                    None => return End::Close(None, CloseCode::Policy, "closed by server"),
                },
                incoming = self.ws.next() => {
                    last_seen = Instant::now();
                    match incoming {
                        None => return End::Gone { clean: false },
                        Some(Ok(frame)) => {
                            if let Some(end) = self.on_frame(frame).await {
                                return end;
                            }
                        }
                        Some(Err(tungstenite::Error::Capacity(e))) => {
                            return End::Close(
                                Some((ErrorCode::TooLarge, format!("frame too large: {e}"))),
                                CloseCode::Size,
                                "frame too large",
                            );
                        }
                        Some(Err(e)) => {
                            tracing::debug!(addr = %self.addr, error = %e, "websocket error");
                            return End::Gone { clean: false };
                        }
                    }
                }
                () = &mut hello_deadline, if !self.hello => {
                    return End::Close(
                        Some((ErrorCode::HelloRequired, "no hello in time".into())),
                        CloseCode::Policy,
                        "no hello",
                    );
                }
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() >= limits.idle_timeout {
                        return End::Close(
                            Some((ErrorCode::IdleTimeout, format!("nothing heard for {} s", limits.idle_timeout.as_secs()))),
                            CloseCode::Policy,
                            "idle",
                        );
                    }
                    let stamp = Bytes::from(started.elapsed().as_millis().to_string());
                    if self.ws.send(Message::Ping(stamp)).await.is_err() {
                        return End::Gone { clean: false };
                    }
                }
            }
        }
    }

    /// Writes `first` and whatever else is queued, then flushes once.
    async fn send_queued(
        &mut self,
        first: Message,
        rx: &mut mpsc::Receiver<Message>,
    ) -> Result<(), tungstenite::Error> {
        self.ws.feed(first).await?;
        let mut n = 1;
        while n < 64 {
            match rx.try_recv() {
                Ok(frame) => {
                    self.ws.feed(frame).await?;
                    n += 1;
                }
                Err(_) => break,
            }
        }
        self.ws.flush().await
    }

    /// Handles one frame; `Some` ends the connection.
    async fn on_frame(&mut self, frame: Message) -> Option<End> {
        let metrics = &self.shared.metrics;
        let text = match frame {
            Message::Text(text) => text,
            Message::Binary(_) => {
                self.reply_error(
                    ErrorCode::BadRequest,
                    "binary frames are not part of the protocol; send JSON text",
                )
                .await;
                return None;
            }
            Message::Close(_) => return Some(End::Gone { clean: true }),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return None,
        };
        metrics.messages_in.fetch_add(1, Relaxed);
        metrics.bytes_in.fetch_add(text.len() as u64, Relaxed);
        if text.len() > self.shared.limits.max_frame {
            let max = self.shared.limits.max_frame;
            self.reply_error(
                ErrorCode::TooLarge,
                &format!("frame of {} bytes is over the {max}-byte limit", text.len()),
            )
            .await;
            return None;
        }
        let now = self.shared.mono_ms();
        if !self.bucket.take(now) {
            // One error a second at most, so a flood does not double itself.
            if now - self.last_rate_error >= 1000.0 {
                self.last_rate_error = now;
                self.reply_error(ErrorCode::RateLimited, "too many messages; slow down")
                    .await;
            }
            return None;
        }
        let msg = match ClientMessage::parse(&text) {
            Ok(msg) => msg,
            Err(e) => {
                self.reply_error(ErrorCode::BadRequest, &e.to_string())
                    .await;
                return None;
            }
        };
        match msg {
            ClientMessage::Join { room, password } if self.hello => {
                self.join(room, password).await;
            }
            msg => {
                let is_hello = matches!(msg, ClientMessage::Hello { .. });
                let mut routing = self.shared.lock();
                let actions = routing.hub.handle(self.peer, now_ms(), msg);
                if let Some(Action::Rekey { to, .. }) =
                    actions.iter().find(|a| matches!(a, Action::Rekey { .. }))
                {
                    self.peer = *to;
                }
                self.shared.deliver(&mut routing, actions);
                if is_hello && !self.hello {
                    self.hello = routing.hub.has_hello(self.peer);
                }
            }
        }
        None
    }

    /// `join`: the password is checked or hashed through the limiter (on its hashing
    /// threads), then the hub decides with the outcome (see [`Credential`]) if the room
    /// is still as it was when the check began (else the check is made again).
    async fn join(&mut self, room: String, password: Option<String>) {
        if let Some(p) = &password
            && let Err(e) = validate_password(p)
        {
            self.reply_error(e.code(), &e.to_string()).await;
            return;
        }
        let guard = self.shared.guard.clone();
        let ip = self.addr.ip();
        for _ in 0..3 {
            let (access, in_room) = {
                let routing = self.shared.lock();
                (
                    routing.hub.room_access(&room),
                    routing.hub.room_of(self.peer).is_some(),
                )
            };
            let outcome = match (&access, &password) {
                // The hub answers these without a password check: a peer already in a
                // room (or back in its own after a resume), an invalid name, a room that
                // exists and no password.
                _ if in_room => Ok(Credential::None),
                (Err(_), _) | (Ok(RoomAccess::Open | RoomAccess::Protected(_)), None) => {
                    Ok(Credential::None)
                }
                (Ok(RoomAccess::Open), Some(_)) => Ok(Credential::Unchecked),
                (Ok(RoomAccess::New), None) => guard.allow_create(ip).map(|()| Credential::None),
                (Ok(RoomAccess::New), Some(p)) => match guard.allow_create(ip) {
                    Ok(()) => guard
                        .hash_password(p.clone())
                        .await
                        .map(Credential::NewHash),
                    Err(denied) => Err(denied),
                },
                (Ok(RoomAccess::Protected(hash)), Some(p)) => guard
                    .verify_password(ip, &room, p.clone(), hash.clone())
                    .await
                    .map(|ok| {
                        if ok {
                            Credential::Verified(hash.clone())
                        } else {
                            Credential::Rejected
                        }
                    }),
            };
            let credential = match outcome {
                Ok(credential) => credential,
                Err(denied) => {
                    self.reply_error(denied.code(), &denied.to_string()).await;
                    return;
                }
            };
            let mut routing = self.shared.lock();
            if routing.hub.room_access(&room) != access {
                // Created, or forgotten, while the password was checked: decide again.
                continue;
            }
            let actions = routing.hub.join(self.peer, now_ms(), room, &credential);
            self.shared.deliver(&mut routing, actions);
            return;
        }
        self.reply_error(ErrorCode::RateLimited, "the room keeps changing; retry")
            .await;
    }

    /// Sends an error straight on this connection (not through the hub).
    async fn reply_error(&mut self, code: ErrorCode, message: &str) {
        self.shared.metrics.error(code);
        let frame = ServerMessage::error(code, message).to_json();
        let _ = self.ws.send(Message::Text(frame.into())).await;
    }

    /// Sends the last word and a close frame, then waits briefly for the client's close.
    async fn finish(&mut self, end: End) {
        let End::Close(error, code, reason) = end else {
            return;
        };
        if let Some((code, message)) = error {
            self.reply_error(code, &message).await;
        }
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.ws.send(Message::Close(Some(frame))).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// Counts running connection tasks so shutdown can wait for them.
#[derive(Debug, Default)]
struct Tracker {
    active: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

struct TrackerGuard {
    active: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl Tracker {
    fn enter(&self) -> TrackerGuard {
        self.active.fetch_add(1, Relaxed);
        TrackerGuard {
            active: self.active.clone(),
            idle: self.idle.clone(),
        }
    }

    /// `true` when every task ended within `limit`.
    async fn wait_idle(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, async {
            loop {
                let notified = self.idle.notified();
                if self.active.load(Relaxed) == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    }
}

impl Drop for TrackerGuard {
    fn drop(&mut self) {
        if self.active.fetch_sub(1, Relaxed) == 1 {
            self.idle.notify_waiters();
        }
    }
}

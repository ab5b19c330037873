//! The local channel between the kiosk and its player page: an HTTP server on
//! `127.0.0.1:0` that serves the page (`GET /player?key=K`: YouTube needs an http(s)
//! origin) and one WebSocket (`/channel?key=K`) that carries commands to the page and its
//! reports back.
//!
//! Any web page or process on the kiosk's machine can reach this port, so:
//! - every request needs the launch's 128-bit random key, compared in constant time;
//! - a WebSocket upgrade must come from the server's own origin (another page's script
//!   sends its own `Origin`, which a browser does not let it forge);
//! - one page at a time: a second connection is refused while one is open;
//! - messages are capped at [`MAX_MESSAGE`] bytes (a bigger one closes the connection);
//! - unknown or malformed messages are counted, logged and otherwise ignored.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

/// The largest message either side may send, in bytes (a report is about 300).
pub(crate) const MAX_MESSAGE: usize = 4096;

/// Commands waiting for a page: enough for a start-up burst, not for an unbounded pile.
const QUEUE: usize = 64;

/// The page served at `/player`; `/*PORTAL_CONFIG*/null` is replaced by its settings.
const PAGE: &str = include_str!("page.html");
const PAGE_SLOT: &str = "/*PORTAL_CONFIG*/null";

/// What the kiosk tells the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "cmd", rename_all = "camelCase")]
pub(crate) enum Command {
    /// Cue another video, paused at `start` seconds.
    Load {
        video: String,
        start: f64,
    },
    Play,
    Pause,
    /// `seq` comes back in reports as `seeked` once the seek is over.
    Seek {
        time: f64,
        seq: u64,
    },
    Rate {
        rate: f64,
    },
    /// 0.0 ..= 1.0.
    Volume {
        volume: f64,
    },
}

/// The player's state as the page last reported it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    /// `getCurrentTime()`, seconds.
    pub time: f64,
    /// The IFrame API's `PlayerState` (-1 unstarted, 0 ended, 1 playing, 2 paused,
    /// 3 buffering, 5 cued).
    pub state: i32,
    /// Seconds; 0 when unknown.
    pub duration: f64,
    pub rate: f64,
    /// `getAvailablePlaybackRates()`.
    #[serde(default)]
    pub rates: Vec<f64>,
    #[serde(default)]
    pub muted: bool,
    /// 0 ..= 100, as the API has it.
    #[serde(default)]
    pub volume: f64,
    /// The player fired `onReady`.
    pub ready: bool,
    /// Not playing and not asked to.
    pub paused: bool,
    /// The `seq` of the last seek that is over.
    #[serde(default)]
    pub seeked: u64,
    /// The video the player holds.
    #[serde(default)]
    pub video: String,
}

/// What the page tells the kiosk.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum PageMessage {
    Sample(Report),
    /// The player's `onError` code.
    Error {
        code: i64,
    },
    /// The IFrame API script could not be loaded.
    ApiError,
}

/// What the kiosk knows of its page.
#[derive(Clone, Debug, Default)]
pub(crate) struct PageState {
    /// A page is connected now.
    pub connected: bool,
    /// Pages that connected so far.
    pub connections: u64,
    pub report: Option<Report>,
    /// When `report` arrived.
    pub received: Option<Instant>,
    /// The last `onError` code.
    pub error: Option<i64>,
    /// `onError` reports so far (a new video counts only those after it).
    pub errors: u64,
    pub api_failed: bool,
}

/// Counts of what the channel turned away, for logs and tests.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Requests refused: wrong key, foreign origin, a second page.
    pub refused: AtomicU64,
    /// Page messages that were not understood.
    pub ignored: AtomicU64,
}

/// Why a command was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// [`QUEUE`] commands wait already (no page is taking them).
    Full,
    /// The server is gone.
    Closed,
}

/// The running server; dropping it stops the server and closes the page's connection.
#[derive(Debug)]
pub(crate) struct Channel {
    addr: SocketAddr,
    key: String,
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<PageState>,
    #[cfg(test)]
    stats: Arc<Stats>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    key: String,
    origin: String,
    page: String,
    /// Held by the connected page's task: a second page finds it locked.
    commands: Arc<Mutex<mpsc::Receiver<Command>>>,
    state: watch::Sender<PageState>,
    stats: Arc<Stats>,
    shutdown: watch::Receiver<bool>,
}

impl Channel {
    /// Listens on a free port of 127.0.0.1; the page will load the IFrame API from
    /// `iframe_api` and start with `video`.
    pub(crate) async fn start(iframe_api: &str, video: &str) -> io::Result<Channel> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let key = format!("{:032x}", rand::random::<u128>());
        let config = serde_json::json!({ "api": iframe_api, "video": video, "key": key });
        // Safe inside <script>: no `</script>` or `<!--` can appear.
        let config = config.to_string().replace('<', "\\u003c");
        let (tx, rx) = mpsc::channel(QUEUE);
        let (state_tx, state) = watch::channel(PageState::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            key: key.clone(),
            origin: format!("http://{addr}"),
            page: PAGE.replacen(PAGE_SLOT, &config, 1),
            commands: Arc::new(Mutex::new(rx)),
            state: state_tx,
            stats: stats.clone(),
            shutdown: shutdown_rx,
        });
        let task = tokio::spawn(accept(listener, shared));
        Ok(Channel {
            addr,
            key,
            commands: tx,
            state,
            #[cfg(test)]
            stats,
            shutdown,
            task,
        })
    }

    /// The page's address, key included.
    pub(crate) fn page_url(&self) -> String {
        format!("http://{}/player?key={}", self.addr, self.key)
    }

    #[cfg(test)]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    #[cfg(test)]
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Queues `cmd` for the page; never waits.
    pub(crate) fn send(&self, cmd: Command) -> Result<(), SendError> {
        self.commands.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    pub(crate) fn state(&self) -> &watch::Receiver<PageState> {
        &self.state
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<PageState> {
        self.state.clone()
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => { tokio::spawn(serve(stream, shared.clone())); }
                Err(e) => {
                    tracing::warn!(error = %e, "player channel: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(route(req, &shared)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        _ = shutdown.changed() => {}
        r = conn => if let Err(e) = r {
            tracing::debug!(error = %e, "player channel: http connection ended with an error");
        },
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn refuse(shared: &Shared, status: StatusCode, why: &'static str) -> Response<Full<Bytes>> {
    shared.stats.refused.fetch_add(1, Relaxed);
    tracing::warn!(why, "player channel: request refused");
    text(status, why)
}

fn route(req: Request<Incoming>, shared: &Arc<Shared>) -> Response<Full<Bytes>> {
    let key_ok = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("key=")))
        .is_some_and(|k| same(k.as_bytes(), shared.key.as_bytes()));
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/player") if key_ok => {
            let mut resp = Response::new(Full::new(Bytes::from(shared.page.clone())));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            // No other page may frame the player and script it.
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("frame-ancestors 'none'"),
            );
            resp
        }
        (&Method::GET, "/channel") if key_ok => upgrade(req, shared),
        (_, "/player" | "/channel") => refuse(shared, StatusCode::FORBIDDEN, "wrong key\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Answers a WebSocket upgrade from the server's own page, if no other page holds the
/// channel.
fn upgrade(req: Request<Incoming>, shared: &Arc<Shared>) -> Response<Full<Bytes>> {
    let headers = req.headers();
    let origin_ok = headers
        .get(header::ORIGIN)
        .is_some_and(|o| o.as_bytes() == shared.origin.as_bytes());
    if !origin_ok {
        return refuse(shared, StatusCode::FORBIDDEN, "foreign origin\n");
    }
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
        return text(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket (version 13)\n",
        );
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let Ok(commands) = shared.commands.clone().try_lock_owned() else {
        return refuse(shared, StatusCode::CONFLICT, "a player page is connected\n");
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .max_frame_size(Some(MAX_MESSAGE))
                    .max_message_size(Some(MAX_MESSAGE));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                run_page(ws, commands, &shared).await;
            }
            Err(e) => tracing::debug!(error = %e, "player channel: upgrade failed"),
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header"),
    );
    resp
}

/// Carries commands to the connected page and its reports back, until either side ends.
async fn run_page<S>(
    ws: WebSocketStream<S>,
    mut commands: OwnedMutexGuard<mpsc::Receiver<Command>>,
    shared: &Shared,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    shared.state.send_modify(|s| {
        s.connected = true;
        s.connections += 1;
    });
    tracing::info!("player page connected");
    let mut shutdown = shared.shutdown.clone();
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { break };
                let json = serde_json::to_string(&cmd).expect("commands serialize");
                if let Err(e) = sink.send(Message::text(json)).await {
                    tracing::debug!(error = %e, "player channel: sending failed");
                    break;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => handle(text.as_str(), shared),
                Some(Ok(Message::Binary(_))) => ignore(shared, "a binary message"),
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "player channel: closing the page's connection");
                    if matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)) {
                        let frame = CloseFrame { code: CloseCode::Size, reason: "message too big".into() };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                    }
                    break;
                }
            },
        }
    }
    shared.state.send_modify(|s| s.connected = false);
    tracing::info!("player page disconnected");
}

fn handle(text: &str, shared: &Shared) {
    match serde_json::from_str::<PageMessage>(text) {
        Ok(PageMessage::Sample(report)) => shared.state.send_modify(|s| {
            s.report = Some(report);
            s.received = Some(Instant::now());
        }),
        Ok(PageMessage::Error { code }) => {
            tracing::warn!(code, "the YouTube player reported an error");
            shared.state.send_modify(|s| {
                s.error = Some(code);
                s.errors += 1;
            });
        }
        Ok(PageMessage::ApiError) => {
            tracing::warn!("the player page could not load the IFrame API");
            shared.state.send_modify(|s| s.api_failed = true);
        }
        Err(_) => ignore(shared, "a message it does not understand"),
    }
}

fn ignore(shared: &Shared, what: &'static str) {
    let n = shared.stats.ignored.fetch_add(1, Relaxed) + 1;
    tracing::warn!(what, ignored = n, "player channel: page message ignored");
}

/// Equal slices, in a time that depends on their length only (the length of a key is no
/// secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

//! One document connection: reads and decodes frames, hands them to the room, writes
//! what the room sends back, pings, and closes with a code and reason that say why.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use super::actor::{Port, ToRoom};
use super::metrics::{DocsMetrics, Rejection};
use super::room::{
    CLOSE_AWARENESS_TOO_LARGE, CLOSE_IDLE, CLOSE_MALFORMED, CLOSE_SHUTDOWN, CLOSE_TEXT,
    CLOSE_TOO_MANY_DOCS, CLOSE_UNAVAILABLE, CLOSE_UPDATE_TOO_LARGE, Close, ConnId,
};
use super::throttle::Throttle;
use super::wire::{self, FrameError};
use super::{DocsHub, Entered};

/// Frames queued for one connection before it counts as too slow (bytes are bounded
/// too: `DocsQuotas::outbox_bytes`).
const OUTBOX_CAPACITY: usize = 1024;
/// Frames written before one flush.
const WRITE_BATCH: usize = 64;
/// Ping this often; a client heard from in none of three pings is dropped.
const PING_EVERY: Duration = Duration::from_secs(30);
/// How long a leaving connection waits for its room to commit (and compact).
const LEAVE_WAIT: Duration = Duration::from_secs(4);
/// How long to wait for the client's close frame after sending ours.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How a connection ended.
enum End {
    /// The client closed or the socket failed.
    Gone,
    /// Send this close frame.
    Close(Close),
}

/// Counts the connection in the gauge while it lives.
struct Counted<'a>(&'a DocsMetrics);

impl<'a> Counted<'a> {
    fn new(m: &'a DocsMetrics) -> Self {
        m.connections.fetch_add(1, Relaxed);
        Counted(m)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Relaxed);
    }
}

/// The connection's place in its room. Leaving is explicit (it waits for the room); if
/// the task is dropped before, the leave is sent from a new task so the room's count
/// stays right.
struct Link {
    tx: mpsc::Sender<ToRoom>,
    conn: ConnId,
    left: bool,
}

impl Link {
    async fn leave(&mut self) {
        self.left = true;
        let (done, answered) = oneshot::channel();
        if self
            .tx
            .send(ToRoom::Leave {
                conn: self.conn,
                done,
            })
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(LEAVE_WAIT, answered).await;
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        let tx = self.tx.clone();
        let conn = self.conn;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let (done, _) = oneshot::channel();
                let _ = tx.send(ToRoom::Leave { conn, done }).await;
            });
        }
    }
}

pub(super) async fn serve<S>(
    hub: Arc<DocsHub>,
    mut ws: WebSocketStream<S>,
    room: String,
    read_only: bool,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let metrics = hub.metrics.clone();
    let _counted = Counted::new(&metrics);
    let conn = hub.next_conn.fetch_add(1, Relaxed);
    let tx = match hub.enter(&room) {
        Entered::Room(tx) => tx,
        Entered::TooMany => {
            metrics.reject(Rejection::TooManyDocuments);
            tracing::info!(%room, "refusing a document: too many loaded");
            close(&mut ws, CLOSE_TOO_MANY_DOCS).await;
            return;
        }
    };
    let mut link = Link {
        tx,
        conn,
        left: false,
    };
    let (outbox, rx) = mpsc::channel(OUTBOX_CAPACITY);
    let queued = Arc::new(AtomicUsize::new(0));
    let mut rx = Outbox {
        rx,
        queued: queued.clone(),
    };
    let (kick, mut kicked) = oneshot::channel();
    let joined = link
        .tx
        .send(ToRoom::Join {
            conn,
            read_only,
            port: Port {
                outbox,
                queued,
                kick,
            },
        })
        .await;
    let end = if joined.is_ok() {
        run(&hub, &mut ws, &link, &mut rx, &mut kicked, shutdown).await
    } else {
        link.left = true;
        End::Close(CLOSE_UNAVAILABLE)
    };
    match end {
        End::Gone => link.leave().await,
        End::Close(why) => {
            tracing::debug!(%room, conn, code = why.code, reason = why.reason, "closing document connection");
            if link.left {
                close(&mut ws, why).await;
            } else {
                tokio::join!(link.leave(), close(&mut ws, why));
            }
        }
    }
}

/// The frames the room queued for this connection, and their bytes.
struct Outbox {
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    async fn recv(&mut self) -> Option<Bytes> {
        let frame = self.rx.recv().await?;
        self.queued.fetch_sub(frame.len(), Relaxed);
        Some(frame)
    }

    fn try_recv(&mut self) -> Option<Bytes> {
        let frame = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(frame.len(), Relaxed);
        Some(frame)
    }
}

async fn run<S>(
    hub: &DocsHub,
    ws: &mut WebSocketStream<S>,
    link: &Link,
    rx: &mut Outbox,
    kicked: &mut oneshot::Receiver<Close>,
    mut shutdown: watch::Receiver<bool>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let max_update = hub.config.max_update;
    let mut heartbeat = tokio::time::interval(PING_EVERY);
    heartbeat.tick().await;
    let mut last_seen = Instant::now();
    let mut throttle = Throttle::new(&hub.quotas, Instant::now());
    // Over its rate, the connection's next frame is read at this time.
    let mut held: Option<Instant> = None;
    loop {
        let resume = tokio::time::Instant::from_std(held.unwrap_or_else(Instant::now));
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => return End::Close(CLOSE_SHUTDOWN),
            why = &mut *kicked => return End::Close(why.unwrap_or(CLOSE_UNAVAILABLE)),
            frame = rx.recv() => match frame {
                Some(frame) => {
                    if write(ws, frame, rx).await.is_err() {
                        return End::Gone;
                    }
                }
                None => return End::Close(CLOSE_UNAVAILABLE),
            },
            () = tokio::time::sleep_until(resume), if held.is_some() => held = None,
            incoming = ws.next(), if held.is_none() => {
                last_seen = Instant::now();
                let frame = match incoming {
                    None | Some(Ok(Message::Close(_))) => return End::Gone,
                    Some(Ok(Message::Binary(frame))) => frame,
                    Some(Ok(Message::Text(_))) => {
                        hub.metrics.reject(Rejection::Malformed);
                        return End::Close(CLOSE_TEXT);
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(tungstenite::Error::Capacity(_))) => {
                        hub.metrics.reject(Rejection::UpdateTooLarge);
                        return End::Close(CLOSE_UPDATE_TOO_LARGE);
                    }
                    Some(Err(e)) => {
                        tracing::debug!(conn = link.conn, error = %e, "document connection failed");
                        return End::Gone;
                    }
                };
                match wire::decode_frame(&frame, max_update) {
                    Ok(Some(msg)) => {
                        held = throttle.charge(&msg, Instant::now());
                        if held.is_some() {
                            hub.metrics.reject(Rejection::RateLimited);
                        }
                        let sent = link.tx.send(ToRoom::Message { conn: link.conn, msg }).await;
                        if sent.is_err() {
                            return End::Close(CLOSE_UNAVAILABLE);
                        }
                    }
                    Ok(None) => {}
                    Err(FrameError::TooLarge(len)) => {
                        tracing::info!(conn = link.conn, len, max_update, "document update too large");
                        hub.metrics.reject(Rejection::UpdateTooLarge);
                        return End::Close(CLOSE_UPDATE_TOO_LARGE);
                    }
                    Err(FrameError::AwarenessTooLarge(len)) => {
                        tracing::info!(conn = link.conn, len, "awareness message too large");
                        hub.metrics.reject(Rejection::AwarenessTooLarge);
                        return End::Close(CLOSE_AWARENESS_TOO_LARGE);
                    }
                    Err(FrameError::Malformed(why)) => {
                        tracing::info!(conn = link.conn, why, "malformed document message");
                        hub.metrics.reject(Rejection::Malformed);
                        return End::Close(CLOSE_MALFORMED);
                    }
                }
            }
            _ = heartbeat.tick() => {
                if last_seen.elapsed() >= PING_EVERY * 3 {
                    return End::Close(CLOSE_IDLE);
                }
                if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                    return End::Gone;
                }
            }
        }
    }
}

/// Resolves once `shutdown` is true (never, if its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        let stop = *shutdown.borrow_and_update();
        if stop {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Writes `first` and whatever else is queued, then flushes once.
async fn write<S>(
    ws: &mut WebSocketStream<S>,
    first: Bytes,
    rx: &mut Outbox,
) -> Result<(), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.feed(Message::Binary(first)).await?;
    for _ in 1..WRITE_BATCH {
        match rx.try_recv() {
            Some(frame) => ws.feed(Message::Binary(frame)).await?,
            None => break,
        }
    }
    ws.flush().await
}

async fn close<S>(ws: &mut WebSocketStream<S>, why: Close)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code: why.code.into(),
        reason: why.reason.into(),
    };
    let _ = ws.send(Message::Close(Some(frame))).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

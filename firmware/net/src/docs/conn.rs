//! The client's task: connects, runs one connection at a time through the [`Mirror`],
//! publishes views at a bounded rate, and waits between attempts (with backoff, or for a
//! fresh token after a final refusal).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::mirror::Mirror;
use super::{DocConfig, DocError, DocView};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the server's sync step 1 may take before ours goes out anyway (ours waits for
/// it so that a document the server no longer has is noticed before we ask).
const ASK_WAIT: Duration = Duration::from_secs(1);
/// How long to wait for the server's close frame after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Wait after a 429 that names no time.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(super) enum Command {
    Token(String),
    Shutdown,
}

/// Why the task woke while waiting.
enum Wake {
    Time,
    Token,
    Stop,
}

/// The task's state beside the replica.
struct Task {
    config: DocConfig,
    token: Option<String>,
    commands: mpsc::UnboundedReceiver<Command>,
    out: watch::Sender<DocView>,
    mirror: Mirror,
    attempts: u32,
    error: Option<DocError>,
    backoff: Backoff,
    published: Instant,
}

pub(super) async fn run(
    config: DocConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    out: watch::Sender<DocView>,
) {
    let backoff = Backoff::new(config.retry_first, config.retry_max);
    let mut task = Task {
        token: config.token.clone(),
        config,
        commands,
        out,
        mirror: Mirror::new(),
        attempts: 0,
        error: None,
        backoff,
        published: Instant::now(),
    };
    task.run().await;
}

impl Task {
    async fn run(&mut self) {
        loop {
            let error = match self.connect().await {
                Ok(Some(ws)) => match self.session(ws).await {
                    Some(error) => error,
                    None => return,
                },
                Ok(None) => return,
                Err(error) => error,
            };
            self.mirror.disconnected();
            self.attempts = self.attempts.saturating_add(1);
            tracing::info!(room = %self.config.room, attempt = self.attempts, %error, "document connection lost");
            let wait = if error.is_final() {
                None
            } else if let DocError::RateLimited { retry_after } = &error {
                Some((*retry_after).max(self.backoff.next()))
            } else {
                Some(self.backoff.next())
            };
            self.error = Some(error);
            self.publish();
            match self.wait(wait).await {
                Wake::Time | Wake::Token => {}
                Wake::Stop => return,
            }
        }
    }

    /// One attempt; `Ok(None)` when told to stop meanwhile.
    async fn connect(&mut self) -> Result<Option<Ws>, DocError> {
        let url = self.config.url(self.token.as_deref());
        let attempt = open(&self.config, &url);
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                opened = &mut attempt => return opened.map(Some),
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Token(token)) => self.token = Some(token),
                    Some(Command::Shutdown) | None => return Ok(None),
                },
            }
        }
    }

    /// Runs one connection; the error that ended it, or `None` when told to stop.
    async fn session(&mut self, mut ws: Ws) -> Option<DocError> {
        let opened = Instant::now();
        let mut heard = Instant::now();
        loop {
            let was_synced = self.mirror.synced();
            let publish_at = self.published + self.config.publish_every;
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    // A token matters at the upgrade only: the open connection stays.
                    Some(Command::Token(token)) => self.token = Some(token),
                    Some(Command::Shutdown) | None => {
                        close(&mut ws, CloseCode::Normal).await;
                        self.mirror.disconnected();
                        self.publish();
                        return None;
                    }
                },
                // Before frames: a burst of them still shows every `publish_every`.
                () = sleep_until(publish_at), if self.mirror.dirty() => self.publish(),
                frame = ws.next() => {
                    heard = Instant::now();
                    let frame = match frame {
                        Some(Ok(Message::Binary(frame))) => frame,
                        Some(Ok(Message::Close(frame))) => return Some(closed(frame)),
                        Some(Ok(Message::Text(_))) => {
                            close(&mut ws, CloseCode::Unsupported).await;
                            return Some(DocError::Malformed("a text frame".into()));
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Some(DocError::Connection(e.to_string())),
                        None => return Some(DocError::Connection("the connection ended".into())),
                    };
                    match self.mirror.handle(&frame) {
                        Ok(reply) => {
                            if let Some(reply) = reply
                                && let Err(e) = ws.send(Message::Binary(reply.into())).await
                            {
                                return Some(DocError::Connection(e.to_string()));
                            }
                        }
                        Err(error) => {
                            if !error.is_final() {
                                close(&mut ws, CloseCode::Invalid).await;
                            }
                            return Some(error);
                        }
                    }
                    if self.mirror.synced() && !was_synced {
                        tracing::debug!(room = %self.config.room, "document synced");
                        self.attempts = 0;
                        self.error = None;
                        self.backoff.reset();
                        self.publish();
                    }
                }
                () = sleep_until(opened + ASK_WAIT), if !self.mirror.asked() => {
                    if let Some(ask) = self.mirror.ask()
                        && let Err(e) = ws.send(Message::Binary(ask.into())).await
                    {
                        return Some(DocError::Connection(e.to_string()));
                    }
                }
                () = sleep_until(heard + self.config.silence_timeout) => {
                    return Some(DocError::Connection("the server went silent".into()));
                }
            }
        }
    }

    /// Sleeps `wait` (for ever when `None`) or until told something.
    async fn wait(&mut self, wait: Option<Duration>) -> Wake {
        let until = wait.map(|w| Instant::now() + w);
        tokio::select! {
            () = sleep_until(until.unwrap_or_else(Instant::now)), if until.is_some() => Wake::Time,
            cmd = self.commands.recv() => match cmd {
                Some(Command::Token(token)) => {
                    self.token = Some(token);
                    Wake::Token
                }
                Some(Command::Shutdown) | None => Wake::Stop,
            },
        }
    }

    fn publish(&mut self) {
        let mut view = self.mirror.view();
        view.attempts = self.attempts;
        view.error.clone_from(&self.error);
        self.out.send_replace(view);
        self.published = Instant::now();
    }
}

/// Opens `url`: the upgrade's refusals are told apart by their HTTP status.
async fn open(config: &DocConfig, url: &str) -> Result<Ws, DocError> {
    let connector = if url.starts_with("wss://") {
        let tls = match &config.tls {
            Some(tls) => Arc::clone(tls),
            None => crate::signaling::default_tls()
                .map_err(|e| DocError::Connection(format!("TLS setup failed: {e}")))?,
        };
        Some(Connector::Rustls(tls))
    } else {
        None
    };
    let limits = WebSocketConfig::default()
        .max_message_size(Some(config.max_message))
        .max_frame_size(Some(config.max_message));
    let handshake =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(limits), false, connector);
    match timeout(config.connect_timeout, handshake).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(resp))) => Err(match resp.status().as_u16() {
            400 => DocError::InvalidRoom {
                room: config.room.clone(),
            },
            403 => DocError::Refused,
            429 => DocError::RateLimited {
                retry_after: resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())
                    .map_or(RATE_LIMIT_WAIT, Duration::from_secs),
            },
            status => DocError::Connection(format!("the server answered HTTP {status}")),
        }),
        Ok(Err(e)) => Err(DocError::Connection(e.to_string())),
        Err(_) => Err(DocError::Connection("connect timed out".into())),
    }
}

/// What a close frame from the server means.
fn closed(frame: Option<CloseFrame>) -> DocError {
    match frame {
        Some(frame) => match u16::from(frame.code) {
            4404 => DocError::NoRoom,
            4401 => DocError::Revoked,
            code => DocError::Closed {
                code,
                reason: frame.reason.to_string(),
            },
        },
        None => DocError::Connection("closed without a code".into()),
    }
}

/// Sends a close frame and waits briefly for the server's.
async fn close(ws: &mut Ws, code: CloseCode) {
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    let _ = ws.send(Message::Close(Some(frame))).await;
    let _ = timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Waits between attempts: doubling from `first` up to `max`, each with ±25 % jitter so
/// kiosks that lost the server together do not come back together.
#[derive(Debug)]
struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(0.75 + rand::random::<f64>() / 2.0)
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<_> = (0..5).map(|_| b.next()).collect();
        let bounds = [100, 200, 350, 350, 350];
        for (w, base) in waits.iter().zip(bounds) {
            let base = Duration::from_millis(base);
            assert!(
                *w >= base.mul_f64(0.75) && *w <= base.mul_f64(1.25),
                "{w:?}"
            );
        }
        b.reset();
        assert!(b.next() <= Duration::from_millis(125));
    }

    #[test]
    fn close_codes_are_typed() {
        let frame = |code: u16| {
            Some(CloseFrame {
                code: code.into(),
                reason: "why".into(),
            })
        };
        assert_eq!(closed(frame(4404)), DocError::NoRoom);
        assert_eq!(closed(frame(4401)), DocError::Revoked);
        assert_eq!(
            closed(frame(1013)),
            DocError::Closed {
                code: 1013,
                reason: "why".into()
            }
        );
        assert!(!closed(None).is_final());
    }
}

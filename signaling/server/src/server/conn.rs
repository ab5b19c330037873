//! One signaling connection: its frames, limits, heartbeat and end.

#![allow(clippy::wildcard_imports)]
use super::*;

pub(super) mod pairing;

/// One signaling connection's task.
pub(super) struct Connection<'a, S> {
    ws: WebSocketStream<S>,
    addr: SocketAddr,
    peer: PeerId,
    shared: &'a Shared,
    bucket: TokenBucket,
    last_rate_error: f64,
    hello: bool,
    /// The base of this connection's pairing links, should it be a kiosk's.
    base_url: String,
}

/// How a connection ended, for the close frame.
pub(super) enum End {
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
    pub(super) async fn run(
        ws: WebSocketStream<S>,
        addr: SocketAddr,
        shared: &Shared,
        base_url: String,
    ) {
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
            base_url,
        };
        let end = conn.serve(&mut rx).await;
        let clean = matches!(end, End::Gone { clean: true });
        conn.finish(end).await;
        // A resumed connection has taken another peer's id.
        let peer = conn.peer;
        {
            let mut routing = shared.lock();
            routing.outboxes.remove(&peer);
            let actions = routing.hub.disconnect(peer, now_ms(), clean);
            shared.deliver(&mut routing, actions);
            // A peer the hub forgot (not one inside its resume grace) leaves its pairing.
            shared.pairing_forget(&mut routing);
        }
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
            msg @ ClientMessage::Hello { .. } => return self.hello(msg).await,
            msg @ (ClientMessage::Pair { .. }
            | ClientMessage::Unpair { .. }
            | ClientMessage::Command { .. }
            | ClientMessage::CommandResult { .. }
            | ClientMessage::KioskState { .. })
                if self.hello =>
            {
                self.pairing_message(msg);
            }
            msg => {
                let mut routing = self.shared.lock();
                self.hub_handle(&mut routing, msg);
            }
        }
        None
    }

    /// Hands `msg` to the hub and carries out its answer, with the lock held.
    fn hub_handle(&mut self, routing: &mut Routing, msg: ClientMessage) {
        let is_hello = matches!(msg, ClientMessage::Hello { .. });
        let actions = routing.hub.handle(self.peer, now_ms(), msg);
        if let Some(Action::Rekey { to, .. }) =
            actions.iter().find(|a| matches!(a, Action::Rekey { .. }))
        {
            self.peer = *to;
        }
        self.shared.deliver(routing, actions);
        if is_hello && !self.hello {
            self.hello = routing.hub.has_hello(self.peer);
        }
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
            let (access, in_room, kiosk_inside) = {
                let routing = self.shared.lock();
                // A laptop paired with a kiosk that is in the room comes in with it.
                let kiosk_inside = routing
                    .pairing
                    .paired_kiosk_conns(self.peer)
                    .into_iter()
                    .any(|k| routing.hub.room_of(k) == Some(room.as_str()));
                (
                    routing.hub.room_access(&room),
                    routing.hub.room_of(self.peer).is_some(),
                    kiosk_inside,
                )
            };
            let outcome = match (&access, &password) {
                // The hub answers these without a password check: a peer already in a
                // room (or back in its own after a resume), an invalid name, a room that
                // exists and no password.
                _ if in_room => Ok(Credential::None),
                (Ok(RoomAccess::Protected(hash)), _) if kiosk_inside => {
                    Ok(Credential::Verified(hash.clone()))
                }
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
pub(super) struct Tracker {
    active: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

pub(super) struct TrackerGuard {
    active: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl Tracker {
    pub(super) fn enter(&self) -> TrackerGuard {
        self.active.fetch_add(1, Relaxed);
        TrackerGuard {
            active: self.active.clone(),
            idle: self.idle.clone(),
        }
    }

    /// `true` when every task ended within `limit`.
    pub(super) async fn wait_idle(&self, limit: Duration) -> bool {
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

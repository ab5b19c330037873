//! A y-websocket client built on `yrs::sync` for the document tests: the same protocol a
//! kiosk speaks, over a real WebSocket to the real server.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::sync::{AwarenessUpdate, Message as YMessage, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The shared text the tests edit (what the editor uses).
pub const TEXT: &str = "code";

/// How a connection attempt or a connection ended.
#[derive(Debug)]
pub enum Ended {
    /// The upgrade was refused with this HTTP status.
    Refused(u16),
    /// A close frame arrived.
    Closed(Option<CloseFrame>),
    /// The socket ended without a close frame.
    Dropped,
}

pub struct DocClient {
    pub ws: Ws,
    pub doc: Doc,
    /// Every document update received, as sent by the server.
    pub received: Vec<Vec<u8>>,
    /// Awareness states by client id (`None`: removed).
    pub awareness: HashMap<u64, Option<String>>,
    pub synced: bool,
    pub closed: Option<Ended>,
}

pub fn url(addr: SocketAddr, room: &str, query: &str) -> String {
    if query.is_empty() {
        format!("ws://{addr}/yjs/{room}")
    } else {
        format!("ws://{addr}/yjs/{room}?{query}")
    }
}

impl DocClient {
    /// Connects (no sync yet). A document exists only while its room does, and an open
    /// room only while someone is in it: the room is joined first and kept (see
    /// [`keep_room`]).
    pub async fn try_connect(
        addr: SocketAddr,
        room: &str,
        query: &str,
    ) -> Result<DocClient, Ended> {
        keep_room(addr, room).await;
        Self::connect_raw(addr, room, query).await
    }

    /// Connects without making sure the room exists (no sync yet).
    pub async fn connect_raw(
        addr: SocketAddr,
        room: &str,
        query: &str,
    ) -> Result<DocClient, Ended> {
        match tokio_tungstenite::connect_async(url(addr, room, query)).await {
            Ok((ws, _)) => Ok(DocClient {
                ws,
                doc: Doc::new(),
                received: Vec::new(),
                awareness: HashMap::new(),
                synced: false,
                closed: None,
            }),
            Err(tungstenite::Error::Http(resp)) => Err(Ended::Refused(resp.status().as_u16())),
            Err(e) => panic!("connect to {room}: {e}"),
        }
    }

    /// Connects and syncs (sends step 1, waits for step 2).
    pub async fn join(addr: SocketAddr, room: &str) -> DocClient {
        Self::join_with(addr, room, "").await
    }

    pub async fn join_with(addr: SocketAddr, room: &str, query: &str) -> DocClient {
        let mut c = Self::try_connect(addr, room, query)
            .await
            .unwrap_or_else(|e| panic!("connect to {room}: {e:?}"));
        c.sync().await;
        c
    }

    pub async fn sync(&mut self) {
        let sv = self.doc.transact().state_vector();
        self.send(YMessage::Sync(SyncMessage::SyncStep1(sv))).await;
        self.pump_until(|c| c.synced, "sync step 2").await;
    }

    pub async fn send(&mut self, msg: YMessage) {
        self.send_raw(msg.encode_v1()).await;
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// Inserts `s` at the end of the text and sends the update; returns the update.
    pub async fn type_text(&mut self, s: &str) -> Vec<u8> {
        let update = self.local_edit(s);
        self.send(YMessage::Sync(SyncMessage::Update(update.clone())))
            .await;
        update
    }

    /// Inserts `s` locally and returns the update without sending it.
    pub fn local_edit(&self, s: &str) -> Vec<u8> {
        let text = self.doc.get_or_insert_text(TEXT);
        let mut txn = self.doc.transact_mut();
        let len = text.len(&txn);
        text.insert(&mut txn, len, s);
        txn.encode_update_v1()
    }

    pub fn text(&self) -> String {
        let text = self.doc.get_or_insert_text(TEXT);
        text.get_string(&self.doc.transact())
    }

    pub fn state_vector(&self) -> StateVector {
        self.doc.transact().state_vector()
    }

    /// Sets this client's awareness state (clock `clock`).
    pub async fn set_awareness(&mut self, clock: u32, json: &str) {
        let id = self.doc.client_id();
        let update = AwarenessUpdate {
            clients: [(
                id,
                yrs::sync::awareness::AwarenessUpdateEntry {
                    clock,
                    json: json.into(),
                },
            )]
            .into(),
        };
        self.send(YMessage::Awareness(update)).await;
    }

    /// Handles one incoming frame; `false` once the connection ended.
    pub async fn step(&mut self) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let frame = match self.ws.next().await {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(frame))) => {
                self.closed = Some(Ended::Closed(frame));
                return false;
            }
            Some(Ok(_)) => return true,
            Some(Err(_)) | None => {
                self.closed = Some(Ended::Dropped);
                return false;
            }
        };
        let msg = YMessage::decode_v1(&frame).expect("server sends valid messages");
        match msg {
            YMessage::Sync(SyncMessage::SyncStep1(sv)) => {
                let update = self.doc.transact().encode_state_as_update_v1(&sv);
                self.send(YMessage::Sync(SyncMessage::SyncStep2(update)))
                    .await;
            }
            YMessage::Sync(SyncMessage::SyncStep2(update)) => {
                self.apply(&update);
                self.synced = true;
            }
            YMessage::Sync(SyncMessage::Update(update)) => {
                self.apply(&update);
                self.received.push(update);
            }
            YMessage::Awareness(update) => {
                for (id, entry) in update.clients {
                    let state = (&*entry.json != "null").then(|| entry.json.to_string());
                    self.awareness.insert(id.get(), state);
                }
            }
            _ => {}
        }
        true
    }

    fn apply(&self, update: &[u8]) {
        self.doc
            .transact_mut()
            .apply_update(Update::decode_v1(update).expect("valid update"))
            .expect("update applies");
    }

    /// Handles frames until `done` holds (5 s at most).
    pub async fn pump_until(&mut self, done: impl Fn(&DocClient) -> bool, what: &str) {
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            while !done(self) {
                let open = self.step().await;
                assert!(
                    open,
                    "connection ended while waiting for {what}: {:?}",
                    self.closed
                );
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "timed out waiting for {what}; text {:?}",
            self.text()
        );
    }

    /// Handles frames for `ms` milliseconds (or until the connection ends).
    pub async fn pump_for(&mut self, ms: u64) {
        let _ = tokio::time::timeout(Duration::from_millis(ms), async {
            while self.step().await {}
        })
        .await;
    }

    /// Reads until the connection ends; returns how.
    pub async fn until_closed(&mut self) -> &Ended {
        let ended =
            tokio::time::timeout(Duration::from_secs(5), async { while self.step().await {} })
                .await;
        assert!(ended.is_ok(), "the connection did not close");
        self.closed.as_ref().expect("ended")
    }

    /// The close frame's code and reason; panics if the connection did not close with one.
    pub async fn close_code(&mut self) -> (u16, String) {
        match self.until_closed().await {
            Ended::Closed(Some(frame)) => (u16::from(frame.code), frame.reason.to_string()),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// A metric's value from `/metrics` (the line starting with `name`).
pub async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let body = metrics(addr).await;
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no metric {name} in\n{body}"))
}

pub async fn metrics(addr: SocketAddr) -> String {
    portal_testkit::http(addr, "GET", "/metrics", &[], None)
        .await
        .text()
}

/// Waits until `portal_docs_loaded` reaches `n` (rooms unload when their last client left).
pub async fn wait_loaded(addr: SocketAddr, n: u64) {
    for _ in 0..200 {
        if metric(addr, "portal_docs_loaded ").await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("portal_docs_loaded did not reach {n}");
}

/// Every (client, clock) `a` has, `b` has too.
pub fn covers(b: &StateVector, a: &StateVector) -> bool {
    a.iter().all(|(client, clock)| b.get(client) >= *clock)
}

/// Waits until the metric `name` is at least `n` (some counters move just after the
/// frames that show their cause).
pub async fn wait_metric(addr: SocketAddr, name: &str, n: u64) {
    for _ in 0..200 {
        if metric(addr, name).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} did not reach {n}");
}

/// A signaling connection (JSON over `/ws`) that said hello.
pub struct Signaling {
    pub ws: Ws,
}

impl Signaling {
    pub async fn hello(addr: SocketAddr, name: &str) -> Signaling {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("signaling connect");
        let mut s = Signaling { ws };
        s.send(serde_json::json!({
            "type": "hello",
            "protocol": portal_proto::PROTOCOL_VERSION,
            "name": name,
            "role": "browser",
        }))
        .await;
        let welcome = s.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        s
    }

    pub async fn send(&mut self, msg: serde_json::Value) {
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("signaling send");
    }

    /// The next JSON message within 5 s.
    pub async fn recv(&mut self) -> serde_json::Value {
        let next = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(frame) = self.ws.next().await {
                match frame {
                    Ok(Message::Text(t)) => return serde_json::from_str(&t).expect("JSON"),
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            panic!("the signaling connection closed")
        });
        next.await.expect("a signaling message within 5 s")
    }

    /// Joins `room` (creating it, protected by `password` if given); the `joined`
    /// message, or the `error` one.
    pub async fn join(&mut self, room: &str, password: Option<&str>) -> serde_json::Value {
        let mut msg = serde_json::json!({"type": "join", "room": room});
        if let Some(p) = password {
            msg["password"] = p.into();
        }
        self.send(msg).await;
        loop {
            let reply = self.recv().await;
            if reply["type"] == "joined" || reply["type"] == "error" {
                return reply;
            }
        }
    }

    /// The `docToken` of a `joined` message.
    pub fn doc_token(joined: &serde_json::Value) -> String {
        joined["docToken"]
            .as_str()
            .unwrap_or_else(|| panic!("not joined: {joined}"))
            .to_owned()
    }

    /// Leaves the room and closes (an open room left empty goes).
    pub async fn leave(mut self) {
        self.send(serde_json::json!({"type": "leave"})).await;
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// Rooms kept for document tests, by server: one signaling connection in each, reading
/// (so it answers pings) until the server or the test's runtime goes.
static KEEPERS: std::sync::Mutex<Vec<(SocketAddr, String, tokio::task::JoinHandle<()>)>> =
    std::sync::Mutex::new(Vec::new());

/// Makes sure `room` exists on the server at `addr` and stays: joins it (open) from a
/// signaling connection kept in the background, unless one is there already. A room
/// that turns out protected is left alone (its document needs a token anyway).
pub async fn keep_room(addr: SocketAddr, room: &str) {
    let kept = |keepers: &[(SocketAddr, String, tokio::task::JoinHandle<()>)]| {
        keepers
            .iter()
            .any(|(a, r, task)| *a == addr && r == room && !task.is_finished())
    };
    if kept(&KEEPERS.lock().unwrap()) {
        return;
    }
    let mut keeper = Signaling::hello(addr, "room keeper").await;
    let joined = keeper.join(room, None).await;
    if joined["type"] != "joined" {
        return;
    }
    let task = tokio::spawn(async move { while let Some(Ok(_)) = keeper.ws.next().await {} });
    let mut keepers = KEEPERS.lock().unwrap();
    keepers.retain(|(_, _, task)| !task.is_finished());
    keepers.push((addr, room.to_owned(), task));
}

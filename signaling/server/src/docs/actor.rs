//! The task that owns one loaded room: it takes the connections' messages in one order,
//! applies them, appends the updates to the store, and only after the commit sends
//! anything on. Queued messages are taken together, so one commit (one fsync, shared with
//! other rooms by the store's group commit) covers many updates.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::persist;
use super::room::{
    CLOSE_SLOW, CLOSE_UNAVAILABLE, Close, ConnId, Effects, Out, Room, RoomLimits, merge_updates,
};
use super::wire::Incoming;
use super::{DocsHub, Rejection};
use crate::store::now_ms;

/// Messages taken into one commit at most.
const MAX_BATCH: usize = 256;
/// Update bytes taken into one commit at most.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// How often stale awareness states are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// What a connection's task tells its room.
#[derive(Debug)]
pub(crate) enum ToRoom {
    Join {
        conn: ConnId,
        read_only: bool,
        port: Port,
    },
    Message {
        conn: ConnId,
        msg: Incoming,
    },
    /// The connection is gone; `done` is answered once what it sent is committed (and,
    /// if it was the last, once the log is compacted).
    Leave {
        conn: ConnId,
        done: oneshot::Sender<()>,
    },
}

/// How the room reaches a connection.
#[derive(Debug)]
pub(crate) struct Port {
    pub(crate) outbox: mpsc::Sender<Bytes>,
    pub(crate) kick: oneshot::Sender<Close>,
}

/// The store failed: the room cannot promise durability any more.
#[derive(Debug)]
struct Broken;

pub(crate) struct Actor {
    hub: Arc<DocsHub>,
    name: String,
    generation: u64,
    ports: HashMap<ConnId, Port>,
    epoch: Instant,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("name", &self.name)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Takes the room out of the registry however the task ends (a panic included), so the
/// next connection loads a fresh one.
struct Unregister {
    hub: Arc<DocsHub>,
    name: String,
    generation: u64,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        self.hub.forget(&self.name, self.generation);
    }
}

/// One batch in progress.
#[derive(Default)]
struct Batch {
    fx: Effects,
    acks: Vec<oneshot::Sender<()>>,
    taken: usize,
    bytes: usize,
    /// The last connection left during this batch.
    emptied: bool,
}

impl Actor {
    pub(crate) fn new(hub: Arc<DocsHub>, name: String, generation: u64) -> Actor {
        Actor {
            hub,
            name,
            generation,
            ports: HashMap::new(),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<ToRoom>) {
        let _unregister = Unregister {
            hub: self.hub.clone(),
            name: self.name.clone(),
            generation: self.generation,
        };
        let limits = RoomLimits {
            max_doc: self.hub.config.max_doc,
            compact_every: self.hub.config.compact_every,
        };
        let Ok(stored) = self.load().await else {
            self.refuse_all(&mut rx);
            return;
        };
        let mut room = Room::load(&stored, limits, self.hub.metrics.clone());
        tracing::debug!(room = %self.name, "document loaded");
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                msg = rx.recv() => msg,
                _ = sweep.tick() => {
                    let mut batch = Batch::default();
                    room.expire_awareness(self.now(), &mut batch.fx);
                    if self.commit(&mut room, &mut batch).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            // Every sender is gone only once the registry forgot this room.
            let Some(first) = first else { break };
            match self.batch(&mut room, first, &mut rx).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(room = %self.name, "document unloaded");
                    return;
                }
                Err(Broken) => break,
            }
        }
        self.fail();
    }

    /// Takes `first` and whatever else is queued, commits, sends. `Ok(false)`: the room
    /// is empty and unloaded.
    async fn batch(
        &mut self,
        room: &mut Room,
        first: ToRoom,
        rx: &mut mpsc::Receiver<ToRoom>,
    ) -> Result<bool, Broken> {
        let mut batch = Batch::default();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            self.take(room, msg, &mut batch);
            if batch.fx.reload {
                // Commit what came before, then rebuild the document from the store so
                // memory holds exactly what was stored and sent.
                self.commit(room, &mut batch).await?;
                let stored = self.load().await?;
                room.reload(&stored);
            }
            if batch.taken < MAX_BATCH && batch.bytes < MAX_BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        self.commit(room, &mut batch).await?;
        if room.needs_compaction() {
            self.compact(room).await;
        }
        let mut unloaded = false;
        if batch.emptied && room.is_empty() {
            if room.has_log() {
                self.compact(room).await;
            }
            unloaded = self.hub.unload(&self.name, self.generation);
        }
        // Leaves are answered last: a connection's task (and with the last one, a
        // server's shutdown) ends only after its updates and the compaction are stored.
        for ack in batch.acks {
            let _ = ack.send(());
        }
        Ok(!unloaded)
    }

    fn take(&mut self, room: &mut Room, msg: ToRoom, batch: &mut Batch) {
        batch.taken += 1;
        let now = self.now();
        match msg {
            ToRoom::Join {
                conn,
                read_only,
                port,
            } => {
                self.ports.insert(conn, port);
                room.join(conn, read_only, &mut batch.fx);
            }
            ToRoom::Message { conn, msg } => {
                if let Incoming::Update(raw) = &msg {
                    batch.bytes += raw.len();
                }
                room.handle(conn, msg, now, &mut batch.fx);
            }
            ToRoom::Leave { conn, done } => {
                room.leave(conn, now, &mut batch.fx);
                self.ports.remove(&conn);
                batch.acks.push(done);
                if self.hub.left(&self.name, self.generation) == 0 {
                    batch.emptied = true;
                }
            }
        }
    }

    /// Appends the batch's updates durably, then carries out its frames and closes.
    async fn commit(&mut self, room: &mut Room, batch: &mut Batch) -> Result<(), Broken> {
        let rows = std::mem::take(&mut batch.fx.rows);
        batch.fx.reload = false;
        if !rows.is_empty() {
            let n = rows.len() as u64;
            let bytes: u64 = rows.iter().map(|(_, d)| d.len() as u64).sum();
            let name = self.name.clone();
            let stored = self
                .hub
                .store
                .call(move |c| persist::append(c, &name, &rows))
                .await;
            if let Err(e) = stored {
                tracing::error!(room = %self.name, error = %e, "cannot store document updates; closing the room");
                return Err(Broken);
            }
            let m = &self.hub.metrics;
            m.updates.fetch_add(n, Relaxed);
            m.bytes_persisted.fetch_add(bytes, Relaxed);
        }
        let mut out = merge_updates(std::mem::take(&mut batch.fx.out));
        let now = self.now();
        while !out.is_empty() {
            let mut slow = Vec::new();
            for o in out.drain(..) {
                match o {
                    Out::Send(to, frame) => self.send(&to, &frame, &mut slow),
                    Out::Update { .. } => unreachable!("merge_updates turned updates into frames"),
                    Out::Close(conn, close) => {
                        if let Some(port) = self.ports.remove(&conn) {
                            let _ = port.kick.send(close);
                        }
                    }
                }
            }
            // Dropping a slow reader may itself send (its cursors leave).
            let mut more = Effects::default();
            for conn in slow {
                tracing::info!(room = %self.name, conn, "dropping a document client that does not read");
                self.hub.metrics.reject(Rejection::SlowClient);
                room.kick(conn, CLOSE_SLOW, now, &mut more);
            }
            out = more.out;
        }
        Ok(())
    }

    fn send(&self, to: &[ConnId], frame: &Bytes, slow: &mut Vec<ConnId>) {
        for conn in to {
            let Some(port) = self.ports.get(conn) else {
                continue;
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = port.outbox.try_send(frame.clone())
                && !slow.contains(conn)
            {
                slow.push(*conn);
            }
        }
    }

    /// Folds the log into a snapshot. A failure loses nothing (the log stays) and is
    /// retried at the next occasion.
    async fn compact(&mut self, room: &mut Room) {
        let Some((upto, state)) = room.snapshot() else {
            return;
        };
        let len = state.len();
        let name = self.name.clone();
        let result = self
            .hub
            .store
            .call(move |c| persist::compact(c, &name, upto, &state, now_ms()))
            .await;
        match result {
            Ok(()) => {
                room.compacted(upto, len);
                let m = &self.hub.metrics;
                m.compactions.fetch_add(1, Relaxed);
                m.bytes_persisted.fetch_add(len as u64, Relaxed);
                tracing::debug!(room = %self.name, upto, bytes = len, "document compacted");
            }
            Err(e) => {
                tracing::warn!(room = %self.name, error = %e, "document compaction failed; the log is kept");
            }
        }
    }

    async fn load(&self) -> Result<persist::StoredDoc, Broken> {
        let name = self.name.clone();
        self.hub
            .store
            .call(move |c| persist::load(c, &name))
            .await
            .map_err(|e| {
                tracing::error!(room = %self.name, error = %e, "cannot load document");
                Broken
            })
    }

    /// The store failed: close every connection so that clients reconnect (and resend
    /// what they have) to a fresh copy.
    fn fail(&mut self) {
        for (_, port) in self.ports.drain() {
            let _ = port.kick.send(CLOSE_UNAVAILABLE);
        }
    }

    /// Loading failed: refuse who is already queued; the registry entry goes with us.
    fn refuse_all(&mut self, rx: &mut mpsc::Receiver<ToRoom>) {
        self.hub.forget(&self.name, self.generation);
        while let Ok(msg) = rx.try_recv() {
            match msg {
                ToRoom::Join { port, .. } => {
                    let _ = port.kick.send(CLOSE_UNAVAILABLE);
                }
                ToRoom::Leave { done, .. } => {
                    let _ = done.send(());
                }
                ToRoom::Message { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DocsConfig, DocsHub, Entered};
    use super::*;
    use crate::store::{Store, StoreThread};
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, StateVector, Text, Transact, Update};

    struct Harness {
        hub: Arc<DocsHub>,
        store: Store,
        _thread: StoreThread,
        dir: std::path::PathBuf,
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn harness(compact_every: usize) -> Harness {
        let dir = std::env::temp_dir().join(format!("portal-docs-actor-{}", rand::random::<u64>()));
        let (store, thread, _) = Store::open(&dir).unwrap();
        let hub = DocsHub::new(
            store.clone(),
            DocsConfig {
                compact_every,
                ..DocsConfig::default()
            },
        );
        Harness {
            hub,
            store,
            _thread: thread,
            dir,
        }
    }

    /// A connection without a socket.
    struct Client {
        tx: mpsc::Sender<ToRoom>,
        conn: ConnId,
        frames: mpsc::Receiver<Bytes>,
        _kicked: oneshot::Receiver<Close>,
    }

    impl Client {
        async fn join(hub: &Arc<DocsHub>, room: &str) -> Client {
            let Entered::Room(tx) = hub.enter(room) else {
                panic!("refused")
            };
            let conn = hub.next_conn.fetch_add(1, Relaxed);
            let (outbox, frames) = mpsc::channel(4096);
            let (kick, kicked) = oneshot::channel();
            tx.send(ToRoom::Join {
                conn,
                read_only: false,
                port: Port { outbox, kick },
            })
            .await
            .unwrap();
            Client {
                tx,
                conn,
                frames,
                _kicked: kicked,
            }
        }

        async fn update(&self, raw: Vec<u8>) {
            self.tx
                .send(ToRoom::Message {
                    conn: self.conn,
                    msg: Incoming::Update(raw.into()),
                })
                .await
                .unwrap();
        }

        async fn leave(self) {
            let (done, answered) = oneshot::channel();
            self.tx
                .send(ToRoom::Leave {
                    conn: self.conn,
                    done,
                })
                .await
                .unwrap();
            answered.await.unwrap();
        }
    }

    fn typed(doc: &Doc, s: &str) -> Vec<u8> {
        let text = doc.get_or_insert_text("code");
        let mut txn = doc.transact_mut();
        let len = text.len(&txn);
        text.insert(&mut txn, len, s);
        txn.encode_update_v1()
    }

    async fn stored_text(store: &Store, room: &str) -> (String, persist::StoredDoc) {
        let name = room.to_owned();
        let stored = store.call(move |c| persist::load(c, &name)).await.unwrap();
        let doc = Doc::new();
        for data in stored
            .snapshot
            .iter()
            .map(|(_, s)| s)
            .chain(stored.log.iter().map(|(_, d)| d))
        {
            doc.transact_mut()
                .apply_update(Update::decode_v1(data).unwrap())
                .unwrap();
        }
        let text = doc.get_or_insert_text("code");
        let s = text.get_string(&doc.transact());
        (s, stored)
    }

    #[tokio::test]
    async fn updates_are_stored_before_the_others_see_them_and_the_last_leave_compacts() {
        let h = harness(1000);
        let mut a = Client::join(&h.hub, "r").await;
        let mut b = Client::join(&h.hub, "r").await;
        a.frames.recv().await.unwrap(); // sync step 1
        b.frames.recv().await.unwrap();
        let alice = Doc::with_client_id(1);
        for s in ["he", "ll", "o"] {
            a.update(typed(&alice, s)).await;
        }
        // Whatever b has seen is already in the store.
        let seen = Doc::new();
        while seen.get_or_insert_text("code").get_string(&seen.transact()) != "hello" {
            let frame = b.frames.recv().await.unwrap();
            let msg = <yrs::sync::Message as Decode>::decode_v1(&frame).unwrap();
            let yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update)) = msg else {
                panic!("{msg:?}")
            };
            seen.transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            let (stored, _) = stored_text(&h.store, "r").await;
            let now = seen.get_or_insert_text("code").get_string(&seen.transact());
            assert!(
                stored.starts_with(&now),
                "sent {now:?} before storing it ({stored:?})"
            );
        }
        let (text, stored) = stored_text(&h.store, "r").await;
        assert_eq!(text, "hello");
        assert_eq!(stored.log.len(), 3);
        assert!(
            a.frames.try_recv().is_err(),
            "the sender does not get its own update back"
        );

        a.leave().await;
        assert_eq!(h.hub.loaded(), 1);
        b.leave().await;
        assert_eq!(h.hub.loaded(), 0);
        let (text, stored) = stored_text(&h.store, "r").await;
        assert_eq!(text, "hello");
        assert!(stored.log.is_empty());
        assert_eq!(stored.snapshot.as_ref().unwrap().0, 3);
        assert_eq!(h.hub.metrics().compactions.load(Relaxed), 1);
        assert_eq!(h.hub.metrics().updates.load(Relaxed), 3);
    }

    #[tokio::test]
    async fn compaction_while_updates_stream_loses_none() {
        let h = harness(5);
        let a = Client::join(&h.hub, "r").await;
        let alice = Doc::with_client_id(1);
        let mut want = String::new();
        for i in 0..57 {
            let s = format!("{i},");
            want.push_str(&s);
            a.update(typed(&alice, &s)).await;
            if i % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // A second client syncing from scratch sees everything.
        let mut b = Client::join(&h.hub, "r").await;
        b.tx.send(ToRoom::Message {
            conn: b.conn,
            msg: Incoming::SyncStep1(StateVector::default()),
        })
        .await
        .unwrap();
        b.frames.recv().await.unwrap(); // step 1
        let step2 = b.frames.recv().await.unwrap();
        let fresh = Doc::new();
        let msg = <yrs::sync::Message as Decode>::decode_v1(&step2).unwrap();
        let yrs::sync::Message::Sync(yrs::sync::SyncMessage::SyncStep2(update)) = msg else {
            panic!("{msg:?}")
        };
        fresh
            .transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        assert_eq!(
            fresh
                .get_or_insert_text("code")
                .get_string(&fresh.transact()),
            want
        );
        let (text, stored) = stored_text(&h.store, "r").await;
        assert_eq!(text, want);
        assert!(stored.log.len() < 57);
        assert!(stored.snapshot.is_some());
        a.leave().await;
        b.leave().await;
        assert_eq!(stored_text(&h.store, "r").await.0, want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clients_coming_and_going_never_split_a_room() {
        // Many short visits: each joins, types once, leaves, often while the room is
        // unloading. One owner at a time means every update ends up in the store.
        let h = harness(3);
        let mut tasks = Vec::new();
        for client in 1..=40u64 {
            let hub = h.hub.clone();
            tasks.push(tokio::spawn(async move {
                let doc = Doc::with_client_id(client);
                for round in 0..5 {
                    let c = Client::join(&hub, "busy").await;
                    c.update(typed(&doc, &format!("<{client}.{round}>"))).await;
                    c.leave().await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(h.hub.loaded(), 0);
        let (text, _) = stored_text(&h.store, "busy").await;
        for client in 1..=40u64 {
            for round in 0..5 {
                assert!(
                    text.contains(&format!("<{client}.{round}>")),
                    "missing {client}.{round}"
                );
            }
        }
    }

    #[tokio::test]
    async fn too_many_documents_are_refused() {
        let dir = std::env::temp_dir().join(format!("portal-docs-actor-{}", rand::random::<u64>()));
        let (store, _thread, _) = Store::open(&dir).unwrap();
        let hub = DocsHub::new(
            store,
            DocsConfig {
                max_loaded: 2,
                ..DocsConfig::default()
            },
        );
        let a = Client::join(&hub, "a").await;
        let _b = Client::join(&hub, "b").await;
        assert!(matches!(hub.enter("c"), Entered::TooMany));
        a.leave().await;
        assert!(matches!(hub.enter("c"), Entered::Room(_)));
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! The task that owns one loaded room: it takes the connections' messages in one order,
//! applies them, appends the updates to the store, and only after the commit sends
//! anything on. Queued messages are taken together, so one commit (one fsync, shared with
//! other rooms by the store's group commit) covers many updates.
//!
//! The room's record (which incarnation of the name, its password hash) is read with the
//! document and checked again now and then ([`ToRoom::Recheck`]); every write names the
//! incarnation, so a room deleted (or created anew) under a loaded document ends it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::persist::{self, Opened, RoomRecord, StoreCaps};
use super::room::{
    CLOSE_NO_ROOM, CLOSE_REVOKED, CLOSE_ROOM_GONE, CLOSE_SLOW, CLOSE_STORAGE_FULL,
    CLOSE_UNAVAILABLE, Close, ConnId, Effects, Out, Room, RoomLimits, merge_updates,
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
    /// The room's record may have changed: check it now.
    Recheck,
}

/// How the room reaches a connection.
#[derive(Debug)]
pub(crate) struct Port {
    pub(crate) outbox: mpsc::Sender<Bytes>,
    /// Bytes in `outbox`: added here when a frame is queued, taken off by the
    /// connection when it takes the frame out.
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) kick: oneshot::Sender<Close>,
}

/// Why the room's task ends with connections still on it.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// The store failed: the room cannot promise durability any more.
    Broken,
    /// The room is gone (or is another room now): close everyone with this.
    Gone(Close),
}

pub(crate) struct Actor {
    hub: Arc<DocsHub>,
    name: String,
    generation: u64,
    ports: HashMap<ConnId, Port>,
    /// The password hash (if any) each member was let in under: the room's when it
    /// joined.
    admitted: HashMap<ConnId, Option<String>>,
    /// The room as last read from the store.
    record: RoomRecord,
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
    /// A connection asked for the room's record to be checked.
    recheck: bool,
}

impl Actor {
    pub(crate) fn new(hub: Arc<DocsHub>, name: String, generation: u64) -> Actor {
        Actor {
            hub,
            name,
            generation,
            ports: HashMap::new(),
            admitted: HashMap::new(),
            record: RoomRecord {
                created_at: f64::NAN,
                password_hash: None,
            },
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
        let stored = match self.open().await {
            Ok(Opened::Doc { room, doc }) => {
                self.record = room;
                doc
            }
            Ok(Opened::NoRoom) => {
                tracing::debug!(room = %self.name, "refusing the document of a room that does not exist");
                self.stop(&mut rx, Stop::Gone(CLOSE_NO_ROOM));
                return;
            }
            Ok(Opened::Full) => {
                tracing::warn!(room = %self.name, "refusing a new document: the store holds as many as it may");
                self.stop(&mut rx, Stop::Gone(CLOSE_STORAGE_FULL));
                return;
            }
            Err(stop) => {
                self.stop(&mut rx, stop);
                return;
            }
        };
        let mut room = Room::load(&stored, limits, self.hub.metrics.clone());
        tracing::debug!(room = %self.name, "document loaded");
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let every = self.hub.quotas.recheck_every;
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = loop {
            let first = tokio::select! {
                msg = rx.recv() => msg,
                _ = sweep.tick() => {
                    let mut batch = Batch::default();
                    room.expire_awareness(self.now(), &mut batch.fx);
                    if let Err(stop) = self.commit(&mut room, &mut batch).await {
                        break stop;
                    }
                    continue;
                }
                _ = recheck.tick() => {
                    if let Err(stop) = self.recheck(&mut room).await {
                        break stop;
                    }
                    continue;
                }
            };
            // Every sender is gone only once the registry forgot this room.
            let Some(first) = first else {
                break Stop::Broken;
            };
            match self.batch(&mut room, first, &mut rx).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(room = %self.name, "document unloaded");
                    return;
                }
                Err(stop) => break stop,
            }
        };
        self.stop(&mut rx, stop);
    }

    /// Takes `first` and whatever else is queued, commits, sends. `Ok(false)`: the room
    /// is empty and unloaded.
    async fn batch(
        &mut self,
        room: &mut Room,
        first: ToRoom,
        rx: &mut mpsc::Receiver<ToRoom>,
    ) -> Result<bool, Stop> {
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
        if batch.recheck {
            self.recheck(room).await?;
        }
        if room.needs_compaction() {
            self.compact(room).await?;
        }
        let mut unloaded = false;
        if batch.emptied && room.is_empty() {
            if room.has_log() {
                self.compact(room).await?;
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
                self.admitted
                    .insert(conn, self.record.password_hash.clone());
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
                self.admitted.remove(&conn);
                batch.acks.push(done);
                if self.hub.left(&self.name, self.generation) == 0 {
                    batch.emptied = true;
                }
            }
            ToRoom::Recheck => batch.recheck = true,
        }
    }

    /// Appends the batch's updates durably, then carries out its frames and closes. A
    /// room gone under it gets nothing written and nothing sent.
    async fn commit(&mut self, room: &mut Room, batch: &mut Batch) -> Result<(), Stop> {
        let rows = std::mem::take(&mut batch.fx.rows);
        batch.fx.reload = false;
        if !rows.is_empty() {
            let n = rows.len() as u64;
            let bytes: u64 = rows.iter().map(|(_, d)| d.len() as u64).sum();
            let name = self.name.clone();
            let born = self.record.created_at;
            let stored = self
                .hub
                .store
                .call(move |c| persist::append(c, &name, born, &rows))
                .await;
            match stored {
                Ok(true) => {}
                Ok(false) => return Err(self.gone().await),
                Err(e) => {
                    tracing::error!(room = %self.name, error = %e, "cannot store document updates; closing the room");
                    return Err(Stop::Broken);
                }
            }
            let m = &self.hub.metrics;
            m.updates.fetch_add(n, Relaxed);
            m.bytes_persisted.fetch_add(bytes, Relaxed);
        }
        let out = merge_updates(std::mem::take(&mut batch.fx.out));
        self.carry_out(room, out);
        Ok(())
    }

    /// Sends frames and closes; a member too slow to take its frames is dropped.
    fn carry_out(&mut self, room: &mut Room, mut out: Vec<Out>) {
        let now = self.now();
        while !out.is_empty() {
            let mut slow = Vec::new();
            for o in out.drain(..) {
                match o {
                    Out::Send(to, frame) => self.send(&to, &frame, &mut slow),
                    Out::Update { .. } => unreachable!("merge_updates turned updates into frames"),
                    Out::Close(conn, close) => {
                        self.admitted.remove(&conn);
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
    }

    /// Queues `frame` for each of `to`; those whose outbox is full (in frames or bytes)
    /// go to `slow`. A frame always fits an empty outbox, however large.
    fn send(&self, to: &[ConnId], frame: &Bytes, slow: &mut Vec<ConnId>) {
        let cap = self.hub.quotas.outbox_bytes;
        for conn in to {
            let Some(port) = self.ports.get(conn) else {
                continue;
            };
            let queued = port.queued.load(Relaxed);
            let fits = queued == 0 || queued.saturating_add(frame.len()) <= cap;
            // Counted before it is queued: the connection takes it off once it took it.
            let sent = fits && {
                port.queued.fetch_add(frame.len(), Relaxed);
                match port.outbox.try_send(frame.clone()) {
                    Ok(()) => true,
                    Err(e) => {
                        port.queued.fetch_sub(frame.len(), Relaxed);
                        matches!(e, mpsc::error::TrySendError::Closed(_))
                    }
                }
            };
            if !sent && !slow.contains(conn) {
                slow.push(*conn);
            }
        }
    }

    /// Reads the room's record again and acts on what changed: a room gone (or created
    /// anew) ends the task; a room now protected closes who was let in without.
    async fn recheck(&mut self, room: &mut Room) -> Result<(), Stop> {
        let now = match self.read_record().await? {
            Some(r) if r.born_at(self.record.created_at) => r,
            other => return Err(self.verdict(other.as_ref())),
        };
        if now.password_hash != self.record.password_hash {
            tracing::info!(room = %self.name, protected = now.password_hash.is_some(), "the room's protection changed");
            let mut batch = Batch::default();
            let at = self.now();
            if now.password_hash.is_some() {
                let revoked: Vec<ConnId> = room
                    .members()
                    .filter(|c| self.admitted.get(c) != Some(&now.password_hash))
                    .collect();
                for conn in revoked {
                    self.hub.metrics.reject(Rejection::AccessRevoked);
                    room.kick(conn, CLOSE_REVOKED, at, &mut batch.fx);
                }
            }
            self.record = now;
            self.commit(room, &mut batch).await?;
        }
        Ok(())
    }

    /// A write found the room gone: how to close everyone.
    async fn gone(&self) -> Stop {
        match self.read_record().await {
            Ok(now) => self.verdict(now.as_ref()),
            Err(stop) => stop,
        }
    }

    /// The close for everyone when the room is `now` (not the one this task loaded).
    fn verdict(&self, now: Option<&RoomRecord>) -> Stop {
        tracing::info!(room = %self.name, "the room went; closing its document");
        match now {
            Some(r) if r.password_hash.is_some() => Stop::Gone(CLOSE_REVOKED),
            _ => Stop::Gone(CLOSE_ROOM_GONE),
        }
    }

    async fn read_record(&self) -> Result<Option<RoomRecord>, Stop> {
        let name = self.name.clone();
        self.hub
            .store
            .call(move |c| persist::room(c, &name))
            .await
            .map_err(|e| {
                tracing::error!(room = %self.name, error = %e, "cannot read the room");
                Stop::Broken
            })
    }

    /// Folds the log into a snapshot. A failure loses nothing (the log stays) and is
    /// retried at the next occasion; a room gone ends the task.
    async fn compact(&mut self, room: &mut Room) -> Result<(), Stop> {
        let Some((upto, state)) = room.snapshot() else {
            return Ok(());
        };
        let len = state.len();
        let name = self.name.clone();
        let born = self.record.created_at;
        let result = self
            .hub
            .store
            .call(move |c| persist::compact(c, &name, born, upto, &state, now_ms()))
            .await;
        match result {
            Ok(true) => {
                room.compacted(upto, len);
                let m = &self.hub.metrics;
                m.compactions.fetch_add(1, Relaxed);
                m.bytes_persisted.fetch_add(len as u64, Relaxed);
                tracing::debug!(room = %self.name, upto, bytes = len, "document compacted");
            }
            Ok(false) => return Err(self.gone().await),
            Err(e) => {
                tracing::warn!(room = %self.name, error = %e, "document compaction failed; the log is kept");
            }
        }
        Ok(())
    }

    /// The room's record and document, the document created if the room has none yet.
    async fn open(&self) -> Result<Opened, Stop> {
        let name = self.name.clone();
        let caps = StoreCaps {
            max_docs: self.hub.quotas.max_stored_docs,
            max_bytes: self.hub.quotas.max_stored_bytes,
        };
        self.hub
            .store
            .call(move |c| persist::open(c, &name, caps, now_ms()))
            .await
            .map_err(|e| {
                tracing::error!(room = %self.name, error = %e, "cannot load document");
                Stop::Broken
            })
    }

    async fn load(&self) -> Result<persist::StoredDoc, Stop> {
        let name = self.name.clone();
        self.hub
            .store
            .call(move |c| persist::load(c, &name))
            .await
            .map_err(|e| {
                tracing::error!(room = %self.name, error = %e, "cannot load document");
                Stop::Broken
            })
    }

    /// The task ends with connections on it: the registry forgets the room first (a
    /// newcomer starts afresh), then everyone, and whoever is still queued, is closed
    /// (the store failed: 1011, so that clients reconnect, and resend what they have, to
    /// a fresh copy).
    fn stop(&mut self, rx: &mut mpsc::Receiver<ToRoom>, stop: Stop) {
        self.hub.forget(&self.name, self.generation);
        let close = match stop {
            Stop::Broken => CLOSE_UNAVAILABLE,
            Stop::Gone(close) => close,
        };
        let why = match close {
            CLOSE_NO_ROOM | CLOSE_ROOM_GONE => Some(Rejection::NoRoom),
            CLOSE_REVOKED => Some(Rejection::AccessRevoked),
            CLOSE_STORAGE_FULL => Some(Rejection::StorageFull),
            _ => None,
        };
        let kick = |port: Port| {
            if let Some(why) = why {
                self.hub.metrics.reject(why);
            }
            let _ = port.kick.send(close);
        };
        for (_, port) in self.ports.drain() {
            kick(port);
        }
        self.admitted.clear();
        while let Ok(msg) = rx.try_recv() {
            match msg {
                ToRoom::Join { port, .. } => kick(port),
                ToRoom::Leave { done, .. } => {
                    let _ = done.send(());
                }
                ToRoom::Message { .. } | ToRoom::Recheck => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DocsConfig, DocsHub, DocsQuotas, Entered};
    use super::*;
    use crate::hub::StoreOp;
    use crate::store::{Store, StoreThread};
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, StateVector, Text, Transact, Update};

    /// Creates `room` as the hub does (queued: whatever the store does next sees it).
    fn create_room(store: &Store, room: &str, password_hash: Option<&str>) {
        store.apply(StoreOp::CreateRoom {
            room: room.into(),
            password_hash: password_hash.map(Into::into),
            now: now_ms(),
        });
    }

    /// Rooms the tests use.
    const ROOMS: [&str; 5] = ["r", "busy", "a", "b", "c"];

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
        harness_with(compact_every, DocsQuotas::default())
    }

    fn harness_with(compact_every: usize, quotas: DocsQuotas) -> Harness {
        let dir = std::env::temp_dir().join(format!("portal-docs-actor-{}", rand::random::<u64>()));
        let (store, thread, _) = Store::open(&dir).unwrap();
        for room in ROOMS {
            create_room(&store, room, None);
        }
        let hub = DocsHub::with_quotas(
            store.clone(),
            DocsConfig {
                compact_every,
                ..DocsConfig::default()
            },
            quotas,
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
        queued: Arc<AtomicUsize>,
        kicked: oneshot::Receiver<Close>,
    }

    impl Client {
        async fn join(hub: &Arc<DocsHub>, room: &str) -> Client {
            let Entered::Room(tx) = hub.enter(room) else {
                panic!("refused")
            };
            let conn = hub.next_conn.fetch_add(1, Relaxed);
            let (outbox, frames) = mpsc::channel(4096);
            let (kick, kicked) = oneshot::channel();
            let queued = Arc::new(AtomicUsize::new(0));
            tx.send(ToRoom::Join {
                conn,
                read_only: false,
                port: Port {
                    outbox,
                    queued: queued.clone(),
                    kick,
                },
            })
            .await
            .unwrap();
            Client {
                tx,
                conn,
                frames,
                queued,
                kicked,
            }
        }

        /// The next frame, taken out as a connection does.
        async fn recv(&mut self) -> Bytes {
            let frame = self.frames.recv().await.unwrap();
            self.queued.fetch_sub(frame.len(), Relaxed);
            frame
        }

        /// How the room closed this connection (within 5 s).
        async fn closed(&mut self) -> Close {
            tokio::time::timeout(Duration::from_secs(5), &mut self.kicked)
                .await
                .expect("closed within 5 s")
                .expect("a close")
        }

        /// Syncs from scratch; the text the room holds.
        async fn sync(&mut self) -> String {
            self.tx
                .send(ToRoom::Message {
                    conn: self.conn,
                    msg: Incoming::SyncStep1(StateVector::default()),
                })
                .await
                .unwrap();
            loop {
                let frame = self.frames.recv().await.unwrap();
                let msg = <yrs::sync::Message as Decode>::decode_v1(&frame).unwrap();
                if let yrs::sync::Message::Sync(yrs::sync::SyncMessage::SyncStep2(update)) = msg {
                    let doc = Doc::new();
                    doc.transact_mut()
                        .apply_update(Update::decode_v1(&update).unwrap())
                        .unwrap();
                    return doc.get_or_insert_text("code").get_string(&doc.transact());
                }
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
        for room in ROOMS {
            create_room(&store, room, None);
        }
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

    #[tokio::test]
    async fn a_document_exists_only_with_its_room() {
        let h = harness(1000);
        let mut nobody = Client::join(&h.hub, "nowhere").await;
        assert_eq!(nobody.closed().await, CLOSE_NO_ROOM);

        let mut a = Client::join(&h.hub, "r").await;
        a.frames.recv().await.unwrap();
        a.update(typed(&Doc::with_client_id(1), "secret")).await;
        assert_eq!(a.sync().await, "secret");
        // The room goes: the document is closed at once when told, and deleted.
        h.store.apply(StoreOp::DeleteRoom { room: "r".into() });
        h.hub.room_changed("r");
        assert_eq!(a.closed().await, CLOSE_ROOM_GONE);
        let (text, stored) = stored_text(&h.store, "r").await;
        assert!(text.is_empty() && stored.snapshot.is_none() && stored.log.is_empty());
        // Whoever creates the name again gets an empty document.
        create_room(&h.store, "r", None);
        let mut b = Client::join(&h.hub, "r").await;
        assert_eq!(b.sync().await, "");
        assert_eq!(h.hub.metrics().rejected(Rejection::NoRoom), 2);
    }

    #[tokio::test]
    async fn a_room_that_goes_unnoticed_ends_its_document_at_the_next_write() {
        let h = harness(1000);
        let mut a = Client::join(&h.hub, "r").await;
        let mut b = Client::join(&h.hub, "r").await;
        a.frames.recv().await.unwrap();
        b.frames.recv().await.unwrap();
        // Deleted and created anew, protected, without telling the document.
        h.store.apply(StoreOp::DeleteRoom { room: "r".into() });
        tokio::time::sleep(Duration::from_millis(2)).await;
        create_room(&h.store, "r", Some("$argon2id$new"));
        a.update(typed(&Doc::with_client_id(1), "after")).await;
        assert_eq!(a.closed().await, CLOSE_REVOKED);
        assert_eq!(b.closed().await, CLOSE_REVOKED);
        // Nothing reached b, and nothing was written into the new room's document.
        while let Ok(frame) = b.frames.try_recv() {
            let msg = <yrs::sync::Message as Decode>::decode_v1(&frame).unwrap();
            assert!(
                !matches!(
                    msg,
                    yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(_))
                ),
                "{msg:?}"
            );
        }
        let (text, _) = stored_text(&h.store, "r").await;
        assert_eq!(text, "");
    }

    #[tokio::test]
    async fn a_room_protected_after_connections_came_in_closes_them() {
        let h = harness_with(
            1000,
            DocsQuotas {
                recheck_every: Duration::from_millis(100),
                ..DocsQuotas::default()
            },
        );
        let mut a = Client::join(&h.hub, "r").await;
        let mut b = Client::join(&h.hub, "r").await;
        a.recv().await; // sync step 1: the room took them in
        b.recv().await;
        // The record changes in place (same room, now with a password); nobody tells the
        // document: its periodic check finds it.
        create_room(&h.store, "r", Some("$argon2id$h"));
        assert_eq!(a.closed().await, CLOSE_REVOKED);
        assert_eq!(b.closed().await, CLOSE_REVOKED);
        // Let in under the password now, a connection stays.
        let mut c = Client::join(&h.hub, "r").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(c.kicked.try_recv().is_err());
        assert_eq!(h.hub.metrics().rejected(Rejection::AccessRevoked), 2);
    }

    #[tokio::test]
    async fn new_documents_beyond_the_store_caps_are_refused() {
        let h = harness_with(
            1000,
            DocsQuotas {
                max_stored_docs: 1,
                ..DocsQuotas::default()
            },
        );
        let a = Client::join(&h.hub, "a").await;
        let mut b = Client::join(&h.hub, "b").await;
        assert_eq!(b.closed().await, CLOSE_STORAGE_FULL);
        // The stored one still opens (again, after it unloaded).
        a.leave().await;
        let mut a = Client::join(&h.hub, "a").await;
        assert_eq!(a.sync().await, "");
        assert_eq!(h.hub.metrics().rejected(Rejection::StorageFull), 1);
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_dropped_by_bytes_too() {
        let h = harness_with(
            1000,
            DocsQuotas {
                outbox_bytes: 10_000,
                update_bytes_rate: 0.0,
                ..DocsQuotas::default()
            },
        );
        let writer = Client::join(&h.hub, "r").await;
        // Room for 4096 frames, but it never takes one out: its bytes add up.
        let mut idle = Client::join(&h.hub, "r").await;
        let mut reader = Client::join(&h.hub, "r").await;
        reader.recv().await; // sync step 1
        let alice = Doc::with_client_id(1);
        for _ in 0..5 {
            writer.update(typed(&alice, &"x".repeat(3000))).await;
            // A client that reads stays: its outbox empties as it goes.
            let frame = reader.recv().await;
            let msg = <yrs::sync::Message as Decode>::decode_v1(&frame).unwrap();
            assert!(matches!(
                msg,
                yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(_))
            ));
        }
        assert_eq!(idle.closed().await, CLOSE_SLOW);
        assert!(reader.kicked.try_recv().is_err());
        assert_eq!(h.hub.metrics().rejected(Rejection::SlowClient), 1);
    }
}

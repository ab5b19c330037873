//! Shared documents: `/yjs/{room}` speaks the y-websocket protocol (sync step 1/2,
//! update, awareness, query-awareness) with `yrs`, persisted in the store.
//!
//! - `wire`: frames in and out, checked before yrs decodes them.
//! - `room`: one room's document, awareness and members, sans-IO.
//! - `actor`: the task that owns a loaded room: one order for apply, store, broadcast.
//! - `conn`: a connection's task (socket, limits, close codes).
//! - `throttle`: how fast a connection is read (token buckets).
//! - `persist`: the room's snapshot and update log in SQLite.
//!
//! Documents follow their rooms (the `rooms` table the hub keeps through the store):
//! - A document exists only for a room that exists: a connection for any other name is
//!   closed with 4404. A room's document is deleted with the room (a store trigger), and
//!   a document's writes name the room's incarnation, so nothing of it reaches the next
//!   room of that name.
//! - A loaded document checks its room every [`DocsQuotas::recheck_every`], and at once
//!   when told through [`DocsHub::room_changed`]: if the room went, every connection is
//!   closed (4404; 4401 when the name is now a protected room); if the room became
//!   protected, connections let in without its password are closed with 4401.
//! - Access itself (password, token) is checked by the server at the upgrade.
//! - The store keeps at most `max_stored_docs` documents and `max_stored_bytes`; a room
//!   that has no document yet beyond that is refused with 4507 (y-websocket retries 45xx).
//!
//! Rules a client can rely on:
//! - An update is on disk (committed, `synchronous=FULL`) before any other client sees it.
//! - Updates go to the other members; when one commit holds several, they go out merged
//!   into one update, to every member (a sender's own part is a no-op for it). Awareness
//!   goes to every member, the sender too (y-websocket clients take their own renewals
//!   as a sign of life).
//! - A read-only connection (`?readonly=1`) receives everything and may send awareness
//!   (so a read-along viewer shows up), but its document updates are dropped, never
//!   applied, stored or sent on.
//! - A connection's awareness states are removed for everyone when it goes.
//! - An awareness client id belongs to the connection that first set a state for it,
//!   until that connection goes or the state lapses (30 s without renewal); entries for
//!   ids another connection holds are dropped. A read-only connection's `presenter`
//!   claim is taken out of its state. Awareness messages are checked (size, JSON, at most
//!   16 states a connection) before anything is applied.
//! - Each connection is read at a rate (messages, update bytes, SyncStep1s; see
//!   [`DocsQuotas`]); over it, its next frame waits. Frames queued for a connection are
//!   bounded in bytes (`outbox_bytes`) as well as in number; over either, it is closed as
//!   too slow.
//! - Close codes: 1001 shutdown, 1003 text frame, 1007 malformed message or an update yrs
//!   cannot apply, 1008 too slow / idle / too many awareness states, 1009 update over
//!   `max_update` or awareness message over 64 KiB, 1011 the store failed, 1013
//!   `max_loaded` documents already loaded, 4401 the room became protected after the
//!   connection was let in, 4404 no such room (or it went), 4413 the document would grow
//!   over `max_doc`, 4507 the store holds as many documents as it may (y-websocket 3 does
//!   not retry 44xx, and retries the others).

mod actor;
mod awareness;
mod conn;
mod metrics;
mod persist;
mod room;
mod throttle;
mod wire;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;

pub use awareness::awareness_update;
pub use metrics::{DocsMetrics, Rejection};

use crate::store::Store;
use actor::{Actor, ToRoom};

/// Messages queued for one room before connections wait.
const ROOM_QUEUE: usize = 1024;

/// Limits for documents.
#[derive(Debug, Clone)]
pub struct DocsConfig {
    /// Largest single update a client may send, in bytes.
    pub max_update: usize,
    /// Largest encoded document per room, in bytes.
    pub max_doc: usize,
    /// Documents held in memory at most.
    pub max_loaded: usize,
    /// Compact a document's update log into a snapshot after this many updates.
    pub compact_every: usize,
}

impl Default for DocsConfig {
    fn default() -> Self {
        Self {
            max_update: 1024 * 1024,
            max_doc: 16 * 1024 * 1024,
            max_loaded: 1000,
            compact_every: 500,
        }
    }
}

/// Limits against abuse: how much the store keeps, how fast a connection is read, how
/// much may wait for it. [`DocsQuotas::for_config`] gives the defaults.
#[derive(Debug, Clone)]
pub struct DocsQuotas {
    /// Documents the store keeps at most; a room without one gets none beyond (4507).
    pub max_stored_docs: usize,
    /// Bytes the stored documents take (snapshots and logs) before new ones are refused
    /// (a stored document still grows up to `max_doc`).
    pub max_stored_bytes: u64,
    /// Messages a connection may send a second (sustained; 0: no limit) ...
    pub msg_rate: f64,
    /// ... and at once.
    pub msg_burst: f64,
    /// Update bytes a connection may send a second (0: no limit) ...
    pub update_bytes_rate: f64,
    /// ... and at once.
    pub update_bytes_burst: f64,
    /// Sync requests (SyncStep1) a connection may send a second (0: no limit) ...
    pub sync_rate: f64,
    /// ... and at once (a client sends one when it connects).
    pub sync_burst: f64,
    /// Bytes that may wait for a connection before it counts as too slow (one frame
    /// always may, however large).
    pub outbox_bytes: usize,
    /// How often a loaded document checks that its room is still the same.
    pub recheck_every: Duration,
}

impl DocsQuotas {
    /// The defaults for documents of `config`'s sizes.
    pub fn for_config(config: &DocsConfig) -> DocsQuotas {
        DocsQuotas {
            max_stored_docs: 10_000,
            max_stored_bytes: 2 << 30,
            msg_rate: 200.0,
            msg_burst: 400.0,
            update_bytes_rate: 1024.0 * 1024.0,
            update_bytes_burst: (4 * config.max_update) as f64,
            sync_rate: 0.5,
            sync_burst: 4.0,
            outbox_bytes: config.max_doc + 4 * config.max_update,
            recheck_every: Duration::from_secs(2),
        }
    }
}

impl Default for DocsQuotas {
    fn default() -> Self {
        DocsQuotas::for_config(&DocsConfig::default())
    }
}

/// Every room's document.
#[derive(Debug)]
pub struct DocsHub {
    store: Store,
    config: DocsConfig,
    quotas: DocsQuotas,
    metrics: Arc<DocsMetrics>,
    registry: Mutex<Registry>,
    next_conn: AtomicU64,
}

/// Loaded rooms. A room stays here until its task, under this lock, sees no connection
/// left; connections are counted here (in on entering, out when the room takes their
/// leave), so a room never unloads while a newcomer is on its way in, and two tasks
/// never own the same room.
#[derive(Debug, Default)]
struct Registry {
    rooms: HashMap<String, Entry>,
    next_generation: u64,
}

#[derive(Debug)]
struct Entry {
    tx: mpsc::Sender<ToRoom>,
    clients: usize,
    generation: u64,
}

enum Entered {
    Room(mpsc::Sender<ToRoom>),
    TooMany,
}

impl DocsHub {
    pub fn new(store: Store, config: DocsConfig) -> Arc<Self> {
        let quotas = DocsQuotas::for_config(&config);
        Self::with_quotas(store, config, quotas)
    }

    pub fn with_quotas(store: Store, config: DocsConfig, quotas: DocsQuotas) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            quotas,
            metrics: Arc::default(),
            registry: Mutex::default(),
            next_conn: AtomicU64::new(1),
        })
    }

    /// Serves one client of `room`'s document until it leaves or `shutdown` turns true.
    /// Returns once what the client sent is committed (and, for a room's last client,
    /// once its log is compacted), so the store can be closed after every `serve` ended.
    pub async fn serve<S>(
        self: &Arc<Self>,
        ws: WebSocketStream<S>,
        room: String,
        read_only: bool,
        shutdown: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        conn::serve(self.clone(), ws, room, read_only, shutdown).await;
    }

    /// Tells a loaded document that its room's record changed (created, protected,
    /// deleted): it checks the room at once instead of at its next periodic check. Call
    /// it after handing the change to the store ([`Store::apply`]), for
    /// `StoreOp::CreateRoom` and `StoreOp::DeleteRoom`; it never blocks, and does nothing
    /// for a room whose document is not loaded.
    pub fn room_changed(&self, room: &str) {
        if let Some(entry) = self.lock().rooms.get(room) {
            // A full queue is a busy room: its periodic check comes soon enough.
            let _ = entry.tx.try_send(ToRoom::Recheck);
        }
    }

    /// Appends the documents' metrics in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let loaded = self.lock().rooms.len();
        self.metrics.render(loaded, out);
    }

    /// Counters, for tests and embedding.
    pub fn metrics(&self) -> &DocsMetrics {
        &self.metrics
    }

    /// Rooms in memory.
    pub fn loaded(&self) -> usize {
        self.lock().rooms.len()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a connection into `room`, starting the room's task if it is not loaded.
    fn enter(self: &Arc<Self>, room: &str) -> Entered {
        let mut reg = self.lock();
        if let Some(entry) = reg.rooms.get_mut(room)
            && !entry.tx.is_closed()
        {
            entry.clients += 1;
            return Entered::Room(entry.tx.clone());
        }
        reg.rooms.remove(room);
        if reg.rooms.len() >= self.config.max_loaded {
            return Entered::TooMany;
        }
        reg.next_generation += 1;
        let generation = reg.next_generation;
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        reg.rooms.insert(
            room.to_owned(),
            Entry {
                tx: tx.clone(),
                clients: 1,
                generation,
            },
        );
        drop(reg);
        let actor = Actor::new(self.clone(), room.to_owned(), generation);
        tokio::spawn(actor.run(rx));
        Entered::Room(tx)
    }

    /// The room took a connection's leave; how many are still counted in.
    fn left(&self, room: &str, generation: u64) -> usize {
        let mut reg = self.lock();
        match reg.rooms.get_mut(room) {
            Some(e) if e.generation == generation => {
                e.clients = e.clients.saturating_sub(1);
                e.clients
            }
            _ => 0,
        }
    }

    /// Unloads the room if nobody is counted in; `false` means someone is on the way.
    fn unload(&self, room: &str, generation: u64) -> bool {
        let mut reg = self.lock();
        match reg.rooms.get(room) {
            Some(e) if e.generation == generation && e.clients > 0 => false,
            Some(e) if e.generation == generation => {
                reg.rooms.remove(room);
                true
            }
            _ => true,
        }
    }

    /// Drops the room's entry whatever its count (its task ended).
    fn forget(&self, room: &str, generation: u64) {
        let mut reg = self.lock();
        if reg
            .rooms
            .get(room)
            .is_some_and(|e| e.generation == generation)
        {
            reg.rooms.remove(room);
        }
    }
}

//! Shared documents: `/yjs/{room}` speaks the y-websocket protocol (sync step 1/2,
//! update, awareness, query-awareness) with `yrs`, persisted in the store.
//!
//! - `wire`: frames in and out, checked before yrs decodes them.
//! - `room`: one room's document, awareness and members, sans-IO.
//! - `actor`: the task that owns a loaded room: one order for apply, store, broadcast.
//! - `conn`: a connection's task (socket, limits, close codes).
//! - `persist`: the room's snapshot and update log in SQLite.
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
//! - Close codes: 1001 shutdown, 1003 text frame, 1007 malformed message or an update yrs
//!   cannot apply, 1008 too slow / idle / too many awareness states, 1009 update over
//!   `max_update`, 1011 the store failed, 1013 `max_loaded` documents already loaded,
//!   4413 the document would grow over `max_doc` (y-websocket 3 does not retry 44xx).

mod actor;
mod awareness;
mod conn;
mod metrics;
mod persist;
mod room;
mod wire;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;

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

/// Every room's document.
#[derive(Debug)]
pub struct DocsHub {
    store: Store,
    config: DocsConfig,
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
        Arc::new(Self {
            store,
            config,
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

//! The embedded SQLite store, owned by one thread.
//!
//! Callers send closures over a channel; the thread runs whatever is queued inside one
//! transaction, commits (WAL, `synchronous=FULL`, so one fsync per batch), and only then
//! answers each caller. A caller that awaits [`Store::call`] therefore knows its write is
//! on disk: group commit without giving up durability.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::hub::{Millis, StoreOp, StoredRoom};

/// How many queued jobs one transaction takes at most.
const MAX_BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database was written by a newer Portal (schema {found}, this build knows {known})"
    )]
    TooNew { found: i64, known: i64 },
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the store is closed")]
    Closed,
}

type Done = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Done + Send>;

/// Handle to the store thread. Cloning shares the thread.
#[derive(Clone, Debug)]
pub struct Store {
    /// `None` asks the thread to finish what is queued and stop.
    tx: mpsc::Sender<Option<Job>>,
}

/// What the store holds at start.
#[derive(Debug)]
pub struct Loaded {
    pub rooms: Vec<StoredRoom>,
    /// Key for document tokens, made on first start.
    pub token_key: [u8; 32],
    /// Peer ids from here on were never handed out before (see [`PEER_ID_BLOCK`]).
    pub first_peer_id: u64,
}

/// Peer ids are reserved in blocks: each start takes the next block, so an id is never
/// handed out twice, even across restarts (resumed peers keep theirs).
pub const PEER_ID_BLOCK: u64 = 1_000_000;

/// Joins the store thread; dropping every [`Store`] and then this flushes and closes.
#[derive(Debug)]
pub struct StoreThread(Option<JoinHandle<()>>);

impl StoreThread {
    /// Waits until every queued write is committed and the database is closed.
    pub fn join(mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

/// Migrations, in order; `user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: rooms and server secrets.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
     CREATE TABLE rooms (
         name TEXT PRIMARY KEY,
         password_hash TEXT,
         created_at REAL NOT NULL,
         last_active REAL NOT NULL,
         watch TEXT
     );",
    // 2: shared documents: a snapshot per room and the log of updates after it.
    "CREATE TABLE doc_snapshots (
         room TEXT PRIMARY KEY,
         seq INTEGER NOT NULL,
         state BLOB NOT NULL,
         updated_at REAL NOT NULL
     );
     CREATE TABLE doc_updates (
         room TEXT NOT NULL,
         seq INTEGER NOT NULL,
         data BLOB NOT NULL,
         PRIMARY KEY (room, seq)
     );",
    // 3: a room's document goes with the room; the bytes of documents are counted.
    MIGRATION_FOLLOW_ROOMS,
    // 4: enrolled kiosks and their pairing codes.
    MIGRATION_PAIRING,
];

/// Enrolled kiosks and their pairing codes ([`crate::pairing::store`]).
pub(crate) const MIGRATION_PAIRING: &str = "
    CREATE TABLE kiosks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        token_hash BLOB NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        last_seen REAL
    );
    CREATE TABLE pairing_codes (
        code TEXT PRIMARY KEY,
        kiosk INTEGER NOT NULL REFERENCES kiosks(id) ON DELETE CASCADE,
        issued_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        used INTEGER NOT NULL DEFAULT 0
    );
";

/// Migration: documents follow their rooms, and the bytes they take are counted.
///
/// - Documents of rooms that no longer exist (earlier versions left them) are deleted,
///   and so is a room's document whenever the room is deleted.
/// - Every stored document has a snapshot row (a document that never had one gets an
///   empty one at position 0), so `doc_snapshots` counts the stored documents.
/// - `doc_totals` holds the bytes of every snapshot and logged update, kept by triggers,
///   for the cap on the store's documents.
const MIGRATION_FOLLOW_ROOMS: &str = "
    DELETE FROM doc_updates WHERE room NOT IN (SELECT name FROM rooms);
    DELETE FROM doc_snapshots WHERE room NOT IN (SELECT name FROM rooms);
    INSERT INTO doc_snapshots (room, seq, state, updated_at)
        SELECT DISTINCT room, 0, x'0000', 0 FROM doc_updates
        WHERE room NOT IN (SELECT room FROM doc_snapshots);
    CREATE TABLE doc_totals (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL);
    INSERT INTO doc_totals (id, bytes) VALUES (1,
        (SELECT coalesce(sum(length(state)), 0) FROM doc_snapshots)
        + (SELECT coalesce(sum(length(data)), 0) FROM doc_updates));
    CREATE TRIGGER doc_updates_added AFTER INSERT ON doc_updates BEGIN
        UPDATE doc_totals SET bytes = bytes + length(NEW.data);
    END;
    CREATE TRIGGER doc_updates_removed AFTER DELETE ON doc_updates BEGIN
        UPDATE doc_totals SET bytes = bytes - length(OLD.data);
    END;
    CREATE TRIGGER doc_snapshots_added AFTER INSERT ON doc_snapshots BEGIN
        UPDATE doc_totals SET bytes = bytes + length(NEW.state);
    END;
    CREATE TRIGGER doc_snapshots_replaced AFTER UPDATE OF state ON doc_snapshots BEGIN
        UPDATE doc_totals SET bytes = bytes + length(NEW.state) - length(OLD.state);
    END;
    CREATE TRIGGER doc_snapshots_removed AFTER DELETE ON doc_snapshots BEGIN
        UPDATE doc_totals SET bytes = bytes - length(OLD.state);
    END;
    CREATE TRIGGER rooms_take_their_documents AFTER DELETE ON rooms BEGIN
        DELETE FROM doc_updates WHERE room = OLD.name;
        DELETE FROM doc_snapshots WHERE room = OLD.name;
    END;
";

impl Store {
    /// Opens (or creates) `{dir}/portal.sqlite3` and starts the store thread.
    pub fn open(dir: &Path) -> Result<(Store, StoreThread, Loaded), StoreError> {
        let conn = open_connection(dir)?;
        let loaded = load(&conn)?;

        let (tx, rx) = mpsc::channel::<Option<Job>>();
        let handle = std::thread::Builder::new()
            .name("portal-store".into())
            .spawn(move || run(&conn, &rx))
            .expect("spawn store thread");
        Ok((Store { tx }, StoreThread(Some(handle)), loaded))
    }

    /// Runs `f` on the store thread inside the current batch's transaction and returns its
    /// result once the transaction is committed.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.submit(f, reply)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Like [`Store::call`] for callers outside async code; blocks the current thread.
    pub fn call_blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.submit(f, reply)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    fn submit<R, F>(
        &self,
        f: F,
        reply: oneshot::Sender<Result<R, StoreError>>,
    ) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            Box::new(move |commit: Result<(), String>| {
                let outcome = match (result, commit) {
                    (Ok(r), Ok(())) => Ok(r),
                    (Err(e), _) => Err(StoreError::Sqlite(e)),
                    (Ok(_), Err(e)) => Err(StoreError::Commit(e)),
                };
                let _ = reply.send(outcome);
            })
        });
        self.tx.send(Some(job)).map_err(|_| StoreError::Closed)
    }

    /// Applies a hub change without waiting for it (room records are not on the hot path;
    /// the batch they join is committed before the thread takes new work).
    pub fn apply(&self, op: StoreOp) {
        let job: Job = Box::new(move |conn| {
            if let Err(e) = apply_op(conn, &op) {
                tracing::error!(error = %e, ?op, "store write failed");
            }
            Box::new(|commit| {
                if let Err(e) = commit {
                    tracing::error!(error = %e, "store commit failed");
                }
            })
        });
        if self.tx.send(Some(job)).is_err() {
            tracing::warn!("store closed; change dropped");
        }
    }

    /// Runs `f` on the store thread without waiting for it; a failure is logged.
    pub fn exec<F>(&self, what: &'static str, f: F)
    where
        F: FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    {
        let job: Job = Box::new(move |conn| {
            if let Err(e) = f(conn) {
                tracing::error!(error = %e, what, "store write failed");
            }
            Box::new(move |commit| {
                if let Err(e) = commit {
                    tracing::error!(error = %e, what, "store commit failed");
                }
            })
        });
        if self.tx.send(Some(job)).is_err() {
            tracing::warn!(what, "store closed; change dropped");
        }
    }

    /// Asks the thread to commit what is queued and stop; later calls get
    /// [`StoreError::Closed`]. Join the [`StoreThread`] to wait for it.
    pub fn shutdown(&self) {
        let _ = self.tx.send(None);
    }
}

/// Opens (or creates) `{dir}/portal.sqlite3` with the store's settings (WAL, full
/// sync, foreign keys, a busy timeout) and brings its schema up to date. The store
/// thread uses one; `portal-server kiosk ...` opens another beside a running server.
pub fn open_connection(dir: &Path) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut conn = Connection::open(dir.join("portal.sqlite3"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = i64::try_from(MIGRATIONS.len()).expect("few migrations");
    if version > known {
        return Err(StoreError::TooNew {
            found: version,
            known,
        });
    }
    for (i, sql) in (1_i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i)?;
        tx.commit()?;
    }
    Ok(())
}

/// Lets other modules add their own tables (documents) with the same discipline.
pub fn ensure_schema(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.execute_batch(sql)
}

fn load(conn: &Connection) -> Result<Loaded, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name, password_hash, last_active, watch FROM rooms ORDER BY name")?;
    let rooms = stmt
        .query_map([], |row| {
            let watch: Option<String> = row.get(3)?;
            Ok(StoredRoom {
                name: row.get(0)?,
                password_hash: row.get(1)?,
                last_active: row.get(2)?,
                watch: watch.and_then(|w| serde_json::from_str(&w).ok()),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let key: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'token_key'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let token_key = if let Some(k) = key.and_then(|k| <[u8; 32]>::try_from(k).ok()) {
        k
    } else {
        let k: [u8; 32] = rand::random();
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('token_key', ?1)",
            params![k.to_vec()],
        )?;
        k
    };
    let floor: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'peer_id_floor'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let first_peer_id = floor
        .and_then(|f| u64::try_from(f).ok())
        .unwrap_or(1)
        .max(1);
    reserve_peer_ids(conn, first_peer_id + PEER_ID_BLOCK)?;
    Ok(Loaded {
        rooms,
        token_key,
        first_peer_id,
    })
}

/// Records that ids below `floor` may have been handed out.
pub fn reserve_peer_ids(conn: &Connection, floor: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('peer_id_floor', ?1)",
        params![i64::try_from(floor).unwrap_or(i64::MAX)],
    )
    .map(drop)
}

fn apply_op(conn: &Connection, op: &StoreOp) -> rusqlite::Result<()> {
    match op {
        StoreOp::CreateRoom {
            room,
            password_hash,
            now,
        } => conn
            .prepare_cached(
                "INSERT INTO rooms (name, password_hash, created_at, last_active) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash, last_active = excluded.last_active",
            )?
            .execute(params![room, password_hash, now])
            .map(drop),
        StoreOp::TouchRoom { room, now } => conn
            .prepare_cached("UPDATE rooms SET last_active = ?2 WHERE name = ?1")?
            .execute(params![room, now])
            .map(drop),
        StoreOp::SaveWatch { room, snapshot } => {
            let json = serde_json::to_string(snapshot).expect("watch state serializes");
            conn.prepare_cached("UPDATE rooms SET watch = ?2 WHERE name = ?1")?
                .execute(params![room, json])
                .map(drop)
        }
        StoreOp::DeleteRoom { room } => conn
            .prepare_cached("DELETE FROM rooms WHERE name = ?1")?
            .execute(params![room])
            .map(drop),
    }
}

fn run(conn: &Connection, rx: &mpsc::Receiver<Option<Job>>) {
    let mut stopping = false;
    while !stopping {
        let Ok(Some(first)) = rx.recv() else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Some(job)) => batch.push(job),
                Ok(None) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let began = conn.execute_batch("BEGIN IMMEDIATE");
        let dones: Vec<Done> = batch.into_iter().map(|job| job(conn)).collect();
        let committed = began
            .and_then(|()| conn.execute_batch("COMMIT"))
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                e.to_string()
            });
        for done in dones {
            done(committed.clone());
        }
    }
    // Every sender is gone: fold the WAL into the database before closing.
    if let Err(e) = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
        tracing::warn!(error = %e, "WAL checkpoint at close failed");
    }
}

/// Milliseconds since the Unix epoch, as the wire uses them.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_and_key_survive_reopen() {
        let dir = std::env::temp_dir().join(format!("portal-store-{}", rand::random::<u64>()));
        let (store, thread, loaded) = Store::open(&dir).unwrap();
        assert!(loaded.rooms.is_empty());
        let key = loaded.token_key;
        store.apply(StoreOp::CreateRoom {
            room: "r".into(),
            password_hash: Some("$argon2id$x".into()),
            now: 5.0,
        });
        store.apply(StoreOp::TouchRoom {
            room: "r".into(),
            now: 9.0,
        });
        let n: i64 = store
            .call_blocking(|c| c.query_row("SELECT count(*) FROM rooms", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(n, 1);
        drop(store);
        thread.join();

        let (_store, _thread, loaded) = Store::open(&dir).unwrap();
        assert_eq!(loaded.token_key, key);
        assert_eq!(loaded.rooms.len(), 1);
        assert_eq!(
            loaded.rooms[0].password_hash.as_deref(),
            Some("$argon2id$x")
        );
        assert!((loaded.rooms[0].last_active - 9.0).abs() < f64::EPSILON);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = std::env::temp_dir().join(format!("portal-store-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let conn = Connection::open(dir.join("portal.sqlite3")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(&dir),
            Err(StoreError::TooNew { found: 99, .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

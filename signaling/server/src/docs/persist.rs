//! A document in SQLite: one snapshot (the merged state up to a log position) and the
//! log of updates after it. Tables come from the store's migrations (`doc_snapshots`,
//! `doc_updates`, and `store::MIGRATION_FOLLOW_ROOMS`); these functions run on the store thread inside
//! its batch transaction.
//!
//! A document belongs to a room of the `rooms` table and goes with it: deleting the room
//! deletes its document (a trigger, whatever deletes the room). Every write names the
//! room's incarnation (its `created_at`) and writes nothing when the room is gone or was
//! created anew since, so a document never outlives its room or passes to the next room
//! of that name.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

/// An empty Yjs update: no structs, no deletions.
const EMPTY_STATE: [u8; 2] = [0, 0];

/// What the store holds for one room.
#[derive(Debug, Default, Clone)]
pub(crate) struct StoredDoc {
    /// `(last folded log position, state)`.
    pub(crate) snapshot: Option<(i64, Vec<u8>)>,
    /// Updates after the snapshot, in log order.
    pub(crate) log: Vec<(i64, Vec<u8>)>,
}

impl StoredDoc {
    /// The log position after which new updates go.
    pub(crate) fn last_seq(&self) -> i64 {
        let snap = self.snapshot.as_ref().map_or(0, |(seq, _)| *seq);
        self.log.last().map_or(snap, |(seq, _)| (*seq).max(snap))
    }
}

/// A room as the store has it: which one (rooms deleted and created again under the same
/// name are told apart by `created_at`) and how it is entered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RoomRecord {
    pub(crate) created_at: f64,
    pub(crate) password_hash: Option<String>,
}

impl RoomRecord {
    /// Whether this is the room created at `created_at` (the very value, not one near).
    pub(crate) fn born_at(&self, created_at: f64) -> bool {
        self.created_at.to_bits() == created_at.to_bits()
    }
}

/// Caps on the documents the store keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreCaps {
    pub(crate) max_docs: usize,
    pub(crate) max_bytes: u64,
}

/// The outcome of opening a room's document.
#[derive(Debug)]
pub(crate) enum Opened {
    /// The room does not exist: neither does its document.
    NoRoom,
    /// The room has no document yet and the store holds as many as it may.
    Full,
    Doc {
        room: RoomRecord,
        doc: StoredDoc,
    },
}

/// The room's record, `None` when there is no such room.
pub(crate) fn room(conn: &Connection, room: &str) -> rusqlite::Result<Option<RoomRecord>> {
    conn.prepare_cached("SELECT created_at, password_hash FROM rooms WHERE name = ?1")?
        .query_row(params![room], |r| {
            Ok(RoomRecord {
                created_at: r.get(0)?,
                password_hash: r.get(1)?,
            })
        })
        .optional()
}

/// Whether the room named `room` is still the one created at `created_at`.
fn is_current(conn: &Connection, room: &str, created_at: f64) -> rusqlite::Result<bool> {
    Ok(self::room(conn, room)?.is_some_and(|r| r.born_at(created_at)))
}

/// Documents stored and the bytes they take.
pub(crate) fn totals(conn: &Connection) -> rusqlite::Result<(usize, u64)> {
    let docs: i64 = conn
        .prepare_cached("SELECT count(*) FROM doc_snapshots")?
        .query_row([], |r| r.get(0))?;
    let bytes: i64 = conn
        .prepare_cached("SELECT bytes FROM doc_totals WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    Ok((
        usize::try_from(docs).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    ))
}

/// Opens `name`'s document: the room must exist, and a document the room does not have
/// yet is created (an empty snapshot) only within `caps`, in this same transaction, so
/// two rooms opening at once cannot both take the last place.
pub(crate) fn open(
    conn: &Connection,
    name: &str,
    caps: StoreCaps,
    now: f64,
) -> rusqlite::Result<Opened> {
    let Some(room) = self::room(conn, name)? else {
        return Ok(Opened::NoRoom);
    };
    let mut doc = load(conn, name)?;
    if doc.snapshot.is_none() {
        // Updates without a snapshot were stored by an earlier version (the migration
        // gave those a snapshot); a room without either has no document yet.
        if doc.log.is_empty() {
            let (docs, bytes) = totals(conn)?;
            if docs >= caps.max_docs || bytes >= caps.max_bytes {
                return Ok(Opened::Full);
            }
        }
        conn.prepare_cached(
            "INSERT INTO doc_snapshots (room, seq, state, updated_at) VALUES (?1, 0, ?2, ?3)",
        )?
        .execute(params![name, &EMPTY_STATE[..], now])?;
        doc.snapshot = Some((0, EMPTY_STATE.to_vec()));
    }
    Ok(Opened::Doc { room, doc })
}

pub(crate) fn load(conn: &Connection, room: &str) -> rusqlite::Result<StoredDoc> {
    let snapshot = conn
        .prepare_cached("SELECT seq, state FROM doc_snapshots WHERE room = ?1")?
        .query_row(params![room], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let after = snapshot
        .as_ref()
        .map_or(0, |(seq, _): &(i64, Vec<u8>)| *seq);
    let log = conn
        .prepare_cached(
            "SELECT seq, data FROM doc_updates WHERE room = ?1 AND seq > ?2 ORDER BY seq",
        )?
        .query_map(params![room, after], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StoredDoc { snapshot, log })
}

/// Appends updates at the given log positions to the document of the room created at
/// `created_at`; `false` (nothing written) when that room is gone.
pub(crate) fn append(
    conn: &Connection,
    room: &str,
    created_at: f64,
    rows: &[(i64, Bytes)],
) -> rusqlite::Result<bool> {
    if !is_current(conn, room, created_at)? {
        return Ok(false);
    }
    let mut stmt =
        conn.prepare_cached("INSERT INTO doc_updates (room, seq, data) VALUES (?1, ?2, ?3)")?;
    for (seq, data) in rows {
        stmt.execute(params![room, seq, &data[..]])?;
    }
    Ok(true)
}

/// Replaces the snapshot with `state` (which contains every update up to `upto`) and
/// drops those updates from the log, in the one transaction the store commits; updates
/// after `upto` stay in the log. `false` (nothing written) when the room created at
/// `created_at` is gone.
pub(crate) fn compact(
    conn: &Connection,
    room: &str,
    created_at: f64,
    upto: i64,
    state: &[u8],
    now: f64,
) -> rusqlite::Result<bool> {
    if !is_current(conn, room, created_at)? {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO doc_snapshots (room, seq, state, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(room) DO UPDATE SET seq = excluded.seq, state = excluded.state, updated_at = excluded.updated_at",
    )?
    .execute(params![room, upto, state, now])?;
    conn.prepare_cached("DELETE FROM doc_updates WHERE room = ?1 AND seq <= ?2")?
        .execute(params![room, upto])?;
    Ok(true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hub::StoreOp;
    use crate::store::Store;

    pub(crate) fn temp_store() -> (Store, crate::store::StoreThread, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("portal-docs-{}", rand::random::<u64>()));
        let (store, thread, _) = Store::open(&dir).unwrap();
        (store, thread, dir)
    }

    /// Creates `room` in the store as the hub would; returns its incarnation.
    pub(crate) fn create_room(store: &Store, room: &str, password_hash: Option<&str>) -> f64 {
        store.apply(StoreOp::CreateRoom {
            room: room.into(),
            password_hash: password_hash.map(Into::into),
            now: crate::store::now_ms(),
        });
        let name = room.to_owned();
        store
            .call_blocking(move |c| self::room(c, &name))
            .unwrap()
            .expect("created")
            .created_at
    }

    const CAPS: StoreCaps = StoreCaps {
        max_docs: 100,
        max_bytes: 1 << 30,
    };

    fn opened(store: &Store, room: &str, caps: StoreCaps) -> Opened {
        let name = room.to_owned();
        store
            .call_blocking(move |c| open(c, &name, caps, 1.0))
            .unwrap()
    }

    /// The bytes counted in `doc_totals` match the rows.
    fn assert_totals_exact(store: &Store) {
        let (counted, actual): (i64, i64) = store
            .call_blocking(|c| {
                c.query_row(
                    "SELECT (SELECT bytes FROM doc_totals),
                            (SELECT coalesce(sum(length(state)), 0) FROM doc_snapshots)
                            + (SELECT coalesce(sum(length(data)), 0) FROM doc_updates)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .unwrap();
        assert_eq!(counted, actual);
    }

    #[test]
    fn compaction_keeps_later_updates() {
        let (store, thread, dir) = temp_store();
        let born = create_room(&store, "r", None);
        assert!(matches!(opened(&store, "r", CAPS), Opened::Doc { .. }));
        let rows: Vec<(i64, Bytes)> = (1..=5).map(|i| (i, Bytes::from(vec![i as u8]))).collect();
        assert!(
            store
                .call_blocking(move |c| append(c, "r", born, &rows))
                .unwrap()
        );
        assert!(
            store
                .call_blocking(move |c| compact(c, "r", born, 3, b"state", 1.0))
                .unwrap()
        );
        let doc = store.call_blocking(|c| load(c, "r")).unwrap();
        assert_eq!(doc.snapshot, Some((3, b"state".to_vec())));
        assert_eq!(doc.log, vec![(4, vec![4]), (5, vec![5])]);
        assert_eq!(doc.last_seq(), 5);
        assert_eq!(
            store
                .call_blocking(|c| load(c, "other"))
                .unwrap()
                .last_seq(),
            0
        );
        assert_totals_exact(&store);
        drop(store);
        thread.join();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_document_exists_only_with_its_room_and_goes_with_it() {
        let (store, thread, dir) = temp_store();
        assert!(matches!(opened(&store, "r", CAPS), Opened::NoRoom));
        let born = create_room(&store, "r", Some("$argon2id$h"));
        let Opened::Doc { room, doc } = opened(&store, "r", CAPS) else {
            panic!("no document")
        };
        assert_eq!(room.password_hash.as_deref(), Some("$argon2id$h"));
        assert_eq!(doc.snapshot, Some((0, EMPTY_STATE.to_vec())));
        let rows = vec![(1, Bytes::from_static(b"secret"))];
        assert!(
            store
                .call_blocking(move |c| append(c, "r", born, &rows))
                .unwrap()
        );
        assert_totals_exact(&store);

        // The room goes: its document too, and a late write of its task writes nothing.
        store.apply(StoreOp::DeleteRoom { room: "r".into() });
        let rows = vec![(2, Bytes::from_static(b"late"))];
        assert!(
            !store
                .call_blocking(move |c| append(c, "r", born, &rows))
                .unwrap()
        );
        assert!(
            !store
                .call_blocking(move |c| compact(c, "r", born, 2, b"late", 1.0))
                .unwrap()
        );
        let doc = store.call_blocking(|c| load(c, "r")).unwrap();
        assert!(doc.snapshot.is_none() && doc.log.is_empty());
        assert_totals_exact(&store);
        assert_eq!(store.call_blocking(totals).unwrap(), (0, 0));

        // Whoever creates the name again starts from nothing, and the old task cannot
        // write into the new room's document.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let again = create_room(&store, "r", None);
        assert_ne!(again.to_bits(), born.to_bits());
        let Opened::Doc { doc, .. } = opened(&store, "r", CAPS) else {
            panic!("no document")
        };
        assert_eq!(doc.last_seq(), 0);
        let rows = vec![(1, Bytes::from_static(b"old"))];
        assert!(
            !store
                .call_blocking(move |c| append(c, "r", born, &rows))
                .unwrap()
        );
        drop(store);
        thread.join();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn new_documents_are_refused_beyond_the_caps() {
        let (store, thread, dir) = temp_store();
        for room in ["a", "b", "c"] {
            create_room(&store, room, None);
        }
        let two = StoreCaps {
            max_docs: 2,
            max_bytes: 1 << 30,
        };
        assert!(matches!(opened(&store, "a", two), Opened::Doc { .. }));
        assert!(matches!(opened(&store, "b", two), Opened::Doc { .. }));
        assert!(matches!(opened(&store, "c", two), Opened::Full));
        // Stored documents still open.
        assert!(matches!(opened(&store, "a", two), Opened::Doc { .. }));
        // A room going makes room.
        store.apply(StoreOp::DeleteRoom { room: "b".into() });
        assert!(matches!(opened(&store, "c", two), Opened::Doc { .. }));

        // Bytes: once the stored documents take the cap, no new one.
        create_room(&store, "d", None);
        let small = StoreCaps {
            max_docs: 100,
            max_bytes: 1000,
        };
        let (_, bytes) = store.call_blocking(totals).unwrap();
        assert!(bytes < 1000, "{bytes}");
        let a_born = store
            .call_blocking(|c| room(c, "a"))
            .unwrap()
            .unwrap()
            .created_at;
        let rows = vec![(1, Bytes::from(vec![7u8; 1000]))];
        store
            .call_blocking(move |c| append(c, "a", a_born, &rows).map(drop))
            .unwrap();
        assert!(matches!(opened(&store, "d", small), Opened::Full));
        assert_totals_exact(&store);
        drop(store);
        thread.join();
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! A document in SQLite: one snapshot (the merged state up to a log position) and the
//! log of updates after it. Tables come from the store's migrations (`doc_snapshots`,
//! `doc_updates`); these functions run on the store thread inside its batch transaction.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

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

/// Appends updates at the given log positions.
pub(crate) fn append(conn: &Connection, room: &str, rows: &[(i64, Bytes)]) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare_cached("INSERT INTO doc_updates (room, seq, data) VALUES (?1, ?2, ?3)")?;
    for (seq, data) in rows {
        stmt.execute(params![room, seq, &data[..]])?;
    }
    Ok(())
}

/// Replaces the snapshot with `state` (which contains every update up to `upto`) and
/// drops those updates from the log, in the one transaction the store commits; updates
/// after `upto` stay in the log.
pub(crate) fn compact(
    conn: &Connection,
    room: &str,
    upto: i64,
    state: &[u8],
    now: f64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO doc_snapshots (room, seq, state, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(room) DO UPDATE SET seq = excluded.seq, state = excluded.state, updated_at = excluded.updated_at",
    )?
    .execute(params![room, upto, state, now])?;
    conn.prepare_cached("DELETE FROM doc_updates WHERE room = ?1 AND seq <= ?2")?
        .execute(params![room, upto])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    pub(crate) fn temp_store() -> (Store, crate::store::StoreThread, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("portal-docs-{}", rand::random::<u64>()));
        let (store, thread, _) = Store::open(&dir).unwrap();
        (store, thread, dir)
    }

    #[test]
    fn compaction_keeps_later_updates() {
        let (store, thread, dir) = temp_store();
        let rows: Vec<(i64, Bytes)> = (1..=5).map(|i| (i, Bytes::from(vec![i as u8]))).collect();
        store.call_blocking(move |c| append(c, "r", &rows)).unwrap();
        store
            .call_blocking(|c| compact(c, "r", 3, b"state", 1.0))
            .unwrap();
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
        drop(store);
        thread.join();
        let _ = std::fs::remove_dir_all(dir);
    }
}

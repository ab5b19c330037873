//! One room's document, awareness and members, without sockets, store or clock: messages
//! in, effects out. The actor around it persists [`Effects::rows`] and only then carries
//! out [`Effects::out`], so nothing reaches a client before it is on disk.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use yrs::sync::AwarenessUpdate;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use super::awareness::AwarenessTable;
use super::metrics::{DocsMetrics, Rejection};
use super::persist::StoredDoc;
use super::wire::{self, Incoming};

/// A connection, unique for the server's life.
pub(crate) type ConnId = u64;

/// A close code and reason for a WebSocket close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Close {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

pub(crate) const CLOSE_SHUTDOWN: Close = Close {
    code: 1001,
    reason: "server shutting down",
};
pub(crate) const CLOSE_TEXT: Close = Close {
    code: 1003,
    reason: "binary frames only",
};
pub(crate) const CLOSE_MALFORMED: Close = Close {
    code: 1007,
    reason: "malformed message",
};
pub(crate) const CLOSE_BAD_UPDATE: Close = Close {
    code: 1007,
    reason: "update could not be applied",
};
pub(crate) const CLOSE_SLOW: Close = Close {
    code: 1008,
    reason: "too slow to keep up",
};
pub(crate) const CLOSE_IDLE: Close = Close {
    code: 1008,
    reason: "idle",
};
pub(crate) const CLOSE_AWARENESS: Close = Close {
    code: 1008,
    reason: "too many awareness states",
};
pub(crate) const CLOSE_UPDATE_TOO_LARGE: Close = Close {
    code: 1009,
    reason: "update too large",
};
pub(crate) const CLOSE_UNAVAILABLE: Close = Close {
    code: 1011,
    reason: "document unavailable",
};
pub(crate) const CLOSE_TOO_MANY_DOCS: Close = Close {
    code: 1013,
    reason: "too many documents loaded",
};
pub(crate) const CLOSE_AWARENESS_TOO_LARGE: Close = Close {
    code: 1009,
    reason: "awareness update too large",
};
/// 44xx: y-websocket 3 does not reconnect after these (the server decided; retrying
/// cannot help).
pub(crate) const CLOSE_DOC_TOO_LARGE: Close = Close {
    code: 4413,
    reason: "document too large",
};
/// The room does not exist: neither does its document.
pub(crate) const CLOSE_NO_ROOM: Close = Close {
    code: 4404,
    reason: "no such room",
};
/// The room was deleted (or deleted and created anew, open) while connected.
pub(crate) const CLOSE_ROOM_GONE: Close = Close {
    code: 4404,
    reason: "the room no longer exists",
};
/// The room is protected by a password this connection was not let in with.
pub(crate) const CLOSE_REVOKED: Close = Close {
    code: 4401,
    reason: "the room now needs its password or token",
};
/// 45xx: y-websocket 3 retries these (with its backoff).
pub(crate) const CLOSE_STORAGE_FULL: Close = Close {
    code: 4507,
    reason: "document storage full",
};

/// Awareness states one connection may hold (a browser tab holds one).
pub(crate) const MAX_STATES_PER_CONNECTION: usize = 16;
/// States not renewed for this long are dropped (clients renew every 15 s).
pub(crate) const AWARENESS_TIMEOUT_MS: u64 = 30_000;

/// Who a frame goes to, fixed when the message is handled: a member who joins later
/// in the same batch gets the document through its own sync instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    One(ConnId),
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Out {
    Send(Vec<ConnId>, Bytes),
    /// A document update for `to` (the sender's fellow members). Kept apart from other
    /// frames so that the updates of one commit can go out merged, as one frame.
    Update {
        to: Vec<ConnId>,
        update: Bytes,
    },
    Close(ConnId, Close),
}

/// What handling messages produced, in order.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Updates to append to the log, `(position, update)`.
    pub(crate) rows: Vec<(i64, Bytes)>,
    /// Frames and closes, to carry out once `rows` are committed.
    pub(crate) out: Vec<Out>,
    /// An update failed half way: the in-memory document may differ from what was
    /// stored and sent. Commit `rows`, then [`Room::reload`] from the store.
    pub(crate) reload: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RoomLimits {
    pub(crate) max_doc: usize,
    pub(crate) compact_every: usize,
}

#[derive(Debug, Default)]
struct Member {
    read_only: bool,
    /// Awareness client ids this connection claimed: it alone may set their states.
    claimed: HashSet<u64>,
}

/// Encoded document size: measured now and then, plus the length of every update since
/// (merging never makes the encoding larger than the parts by more than a few bytes).
#[derive(Debug, Default)]
struct DocSize {
    measured: usize,
    since: usize,
}

pub(crate) struct Room {
    doc: Doc,
    awareness: AwarenessTable,
    members: HashMap<ConnId, Member>,
    /// Which connection claimed each awareness client id (see [`Room::handle`]).
    owners: HashMap<u64, ConnId>,
    limits: RoomLimits,
    size: DocSize,
    /// Log position of the latest update.
    last_seq: i64,
    /// Updates in the log after the snapshot.
    logged: usize,
    metrics: Arc<DocsMetrics>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("members", &self.members.len())
            .field("last_seq", &self.last_seq)
            .field("logged", &self.logged)
            .finish_non_exhaustive()
    }
}

/// Turns a commit's updates into frames: one update goes to its sender's fellows as it
/// came; several go out merged into one update, to everyone any of them was for, in the
/// place of the first (a sender then also gets its own back, which Yjs ignores, as the
/// reference server's echo shows). Fewer frames is fewer writes for the server and fewer
/// transactions for every client.
pub(crate) fn merge_updates(out: Vec<Out>) -> Vec<Out> {
    let updates = out
        .iter()
        .filter(|o| matches!(o, Out::Update { .. }))
        .count();
    if updates <= 1 {
        return out
            .into_iter()
            .map(|o| match o {
                Out::Update { to, update } => Out::Send(to, wire::sync_update(&update)),
                other => other,
            })
            .collect();
    }
    let mut everyone: Vec<ConnId> = Vec::new();
    let mut parts: Vec<Bytes> = Vec::with_capacity(updates);
    for o in &out {
        if let Out::Update { to, update } = o {
            everyone.extend(to);
            parts.push(update.clone());
        }
    }
    everyone.sort_unstable();
    everyone.dedup();
    let merged = std::panic::catch_unwind(|| yrs::merge_updates_v1(parts.iter()))
        .map_err(|_| "yrs panicked".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let merged = match merged {
        Ok(merged) => merged,
        Err(e) => {
            // Merging is an optimisation; the updates one by one are as good.
            tracing::warn!(error = %e, "merging updates failed; sending them one by one");
            return out
                .into_iter()
                .map(|o| match o {
                    Out::Update { to, update } => Out::Send(to, wire::sync_update(&update)),
                    other => other,
                })
                .collect();
        }
    };
    let mut frame = Some(Out::Send(everyone, wire::sync_update(&merged)));
    out.into_iter()
        .filter_map(|o| match o {
            Out::Update { .. } => frame.take(),
            other => Some(other),
        })
        .collect()
}

/// `json` with its presenter claim taken out (`presenter` set to `false`, no
/// `presenterSince`); `None` when it makes no claim (or is not a JSON object).
fn without_presenter(json: &str) -> Option<String> {
    let mut state: serde_json::Value = serde_json::from_str(json).ok()?;
    let fields = state.as_object_mut()?;
    let claims = fields
        .get("presenter")
        .is_some_and(|p| *p != serde_json::Value::Bool(false));
    let since = fields.remove("presenterSince").is_some();
    if !claims && !since {
        return None;
    }
    if claims {
        fields.insert("presenter".into(), serde_json::Value::Bool(false));
    }
    Some(state.to_string())
}

/// Applies an update; yrs panics are caught and reported like its errors.
fn apply(doc: &Doc, update: Update) -> Result<(), String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| doc.transact_mut().apply_update(update)))
        .map_err(|_| "yrs panicked".to_owned())?
        .map_err(|e| e.to_string())
}

/// A document built from a snapshot and its log. Entries that no longer decode are
/// skipped with an error in the log (they cannot be fixed here, and the rest is still
/// worth serving).
fn build(stored: &StoredDoc) -> (Doc, usize) {
    let doc = Doc::new();
    let mut bytes = 0;
    let parts = stored
        .snapshot
        .iter()
        .map(|(seq, state)| (*seq, state))
        .chain(stored.log.iter().map(|(seq, data)| (*seq, data)));
    for (seq, data) in parts {
        bytes += data.len();
        let result = Update::decode_v1(data)
            .map_err(|e| e.to_string())
            .and_then(|u| apply(&doc, u));
        if let Err(e) = result {
            tracing::error!(seq, error = %e, "skipping a stored document update");
        }
    }
    (doc, bytes)
}

impl Room {
    pub(crate) fn load(stored: &StoredDoc, limits: RoomLimits, metrics: Arc<DocsMetrics>) -> Room {
        let (doc, bytes) = build(stored);
        Room {
            doc,
            awareness: AwarenessTable::default(),
            members: HashMap::new(),
            owners: HashMap::new(),
            limits,
            size: DocSize {
                measured: 0,
                since: bytes,
            },
            last_seq: stored.last_seq(),
            logged: stored.log.len(),
            metrics,
        }
    }

    /// Replaces the document with what the store holds; members and awareness stay.
    pub(crate) fn reload(&mut self, stored: &StoredDoc) {
        let (doc, bytes) = build(stored);
        self.doc = doc;
        self.size = DocSize {
            measured: 0,
            since: bytes,
        };
        self.last_seq = stored.last_seq();
        self.logged = stored.log.len();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(crate) fn join(&mut self, conn: ConnId, read_only: bool, fx: &mut Effects) {
        self.members.insert(
            conn,
            Member {
                read_only,
                claimed: HashSet::new(),
            },
        );
        let sv = self.doc.transact().state_vector();
        self.send(fx, To::One(conn), wire::sync_step1(&sv));
        if let Some(states) = self.awareness.snapshot() {
            self.send(fx, To::One(conn), wire::awareness(&states));
        }
    }

    /// Members now, in no particular order.
    pub(crate) fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.members.keys().copied()
    }

    /// A member leaves (or is dropped): its awareness states go for everyone else, and
    /// the client ids it claimed are free again.
    pub(crate) fn leave(&mut self, conn: ConnId, now: u64, fx: &mut Effects) {
        let Some(member) = self.members.remove(&conn) else {
            return;
        };
        for id in &member.claimed {
            self.owners.remove(id);
        }
        if let Some(gone) = self.awareness.remove(member.claimed, now) {
            self.send(fx, To::All, wire::awareness(&gone));
        }
    }

    /// Drops a member with a close frame.
    pub(crate) fn kick(&mut self, conn: ConnId, close: Close, now: u64, fx: &mut Effects) {
        self.leave(conn, now, fx);
        fx.out.push(Out::Close(conn, close));
    }

    pub(crate) fn handle(&mut self, conn: ConnId, msg: Incoming, now: u64, fx: &mut Effects) {
        let Some(member) = self.members.get_mut(&conn) else {
            // Dropped earlier; what it still had in flight does not count.
            return;
        };
        match msg {
            Incoming::SyncStep1(sv) => {
                let update = self.doc.transact().encode_state_as_update_v1(&sv);
                self.send(fx, To::One(conn), wire::sync_step2(update));
            }
            Incoming::Update(raw) => {
                let Ok(update) = Update::decode_v1(&raw) else {
                    self.metrics.reject(Rejection::Malformed);
                    self.kick(conn, CLOSE_MALFORMED, now, fx);
                    return;
                };
                if update.is_empty() {
                    return;
                }
                if member.read_only {
                    self.metrics.reject(Rejection::ReadOnly);
                    return;
                }
                if !self.admit(raw.len()) {
                    self.metrics.reject(Rejection::DocTooLarge);
                    self.kick(conn, CLOSE_DOC_TOO_LARGE, now, fx);
                    return;
                }
                if let Err(e) = apply(&self.doc, update) {
                    tracing::warn!(conn, error = %e, "an update could not be applied; reloading the document");
                    self.metrics.reject(Rejection::Malformed);
                    self.kick(conn, CLOSE_BAD_UPDATE, now, fx);
                    fx.reload = true;
                    return;
                }
                self.size.since += raw.len();
                self.last_seq += 1;
                self.logged += 1;
                let to: Vec<ConnId> = self
                    .members
                    .keys()
                    .copied()
                    .filter(|c| *c != conn)
                    .collect();
                if !to.is_empty() {
                    fx.out.push(Out::Update {
                        to,
                        update: raw.clone(),
                    });
                }
                fx.rows.push((self.last_seq, raw));
            }
            Incoming::Awareness(update) => self.awareness_update(conn, update, now, fx),
            Incoming::QueryAwareness => {
                if let Some(states) = self.awareness.snapshot() {
                    self.send(fx, To::One(conn), wire::awareness(&states));
                }
            }
        }
    }

    /// A connection's awareness update. A client id belongs to the first connection
    /// that sets a state for it, until that connection goes or the state lapses; entries
    /// for ids another connection holds are dropped (anyone could send any id with a
    /// higher clock and take over a name, a colour or a presenter claim). A read-only
    /// connection shows its presence but cannot present: its `presenter` claim is
    /// stripped. How many states the connection would hold is checked before anything is
    /// applied.
    fn awareness_update(
        &mut self,
        conn: ConnId,
        update: AwarenessUpdate,
        now: u64,
        fx: &mut Effects,
    ) {
        let member = self.members.get(&conn).expect("checked by the caller");
        let mut kept = HashMap::with_capacity(update.clients.len());
        let mut new_claims = 0;
        for (client, mut entry) in update.clients {
            let id = client.get();
            if self.owners.get(&id).is_some_and(|owner| *owner != conn) {
                self.metrics.reject(Rejection::AwarenessNotOwned);
                continue;
            }
            let removal = &*entry.json == "null";
            if !removal && !member.claimed.contains(&id) {
                new_claims += 1;
            }
            if member.read_only
                && !removal
                && let Some(json) = without_presenter(&entry.json)
            {
                self.metrics.reject(Rejection::PresenterStripped);
                entry.json = json.into();
            }
            kept.insert(client, entry);
        }
        if member.claimed.len() + new_claims > MAX_STATES_PER_CONNECTION {
            self.metrics.reject(Rejection::AwarenessTooLarge);
            self.kick(conn, CLOSE_AWARENESS, now, fx);
            return;
        }
        if kept.is_empty() {
            return;
        }
        let applied = self.awareness.apply(AwarenessUpdate { clients: kept }, now);
        let member = self.members.get_mut(&conn).expect("checked by the caller");
        for id in &applied.set {
            self.owners.insert(*id, conn);
            member.claimed.insert(*id);
        }
        if let Some(update) = applied.update {
            // To everyone, the sender too: y-websocket clients count their own awareness
            // renewals as a sign of life.
            self.send(fx, To::All, wire::awareness(&update));
        }
    }

    /// Drops awareness states nobody renewed; their client ids are free again.
    pub(crate) fn expire_awareness(&mut self, now: u64, fx: &mut Effects) {
        let expired = self.awareness.expired(now, AWARENESS_TIMEOUT_MS);
        if expired.is_empty() {
            return;
        }
        for id in &expired {
            if let Some(owner) = self.owners.remove(id)
                && let Some(m) = self.members.get_mut(&owner)
            {
                m.claimed.remove(id);
            }
        }
        if let Some(gone) = self.awareness.remove(expired, now) {
            self.send(fx, To::All, wire::awareness(&gone));
        }
    }

    fn send(&self, fx: &mut Effects, to: To, frame: Bytes) {
        let who = match to {
            To::One(conn) => vec![conn],
            To::All => self.members.keys().copied().collect(),
        };
        if !who.is_empty() {
            fx.out.push(Out::Send(who, frame));
        }
    }

    /// Whether an update of `len` bytes keeps the document within `max_doc`.
    fn admit(&mut self, len: usize) -> bool {
        let max = self.limits.max_doc;
        if self.size.measured + self.size.since + len <= max {
            return true;
        }
        if self.size.since > 0 {
            self.size.measured = self.encoded_len();
            self.size.since = 0;
        }
        self.size.measured + len <= max
    }

    fn encoded_len(&self) -> usize {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
            .len()
    }

    pub(crate) fn needs_compaction(&self) -> bool {
        self.logged >= self.limits.compact_every
    }

    pub(crate) fn has_log(&self) -> bool {
        self.logged > 0
    }

    /// The merged state and the log position it covers (everything applied so far).
    pub(crate) fn snapshot(&self) -> Option<(i64, Vec<u8>)> {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.doc
                .transact()
                .encode_state_as_update_v1(&StateVector::default())
        }))
        .map(|state| (self.last_seq, state))
        .map_err(|_| tracing::error!("encoding the document panicked"))
        .ok()
    }

    /// The snapshot from [`Room::snapshot`] covering `upto` is committed.
    pub(crate) fn compacted(&mut self, upto: i64, state_len: usize) {
        // Positions are consecutive: what is left in the log is what came after `upto`.
        self.logged = usize::try_from(self.last_seq - upto).unwrap_or(0);
        if self.logged == 0 {
            self.size = DocSize {
                measured: state_len,
                since: 0,
            };
        }
    }

    #[cfg(test)]
    pub(crate) fn doc(&self) -> &Doc {
        &self.doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::sync::{Message, SyncMessage};
    use yrs::{ClientID, GetString, Text};

    fn limits() -> RoomLimits {
        RoomLimits {
            max_doc: 1 << 20,
            compact_every: 3,
        }
    }

    fn room() -> Room {
        Room::load(&StoredDoc::default(), limits(), Arc::default())
    }

    /// An update from a client doc that inserts `s` at the end of its text.
    fn edit(client: &Doc, s: &str) -> Incoming {
        let text = client.get_or_insert_text("code");
        let mut txn = client.transact_mut();
        let len = text.len(&txn);
        text.insert(&mut txn, len, s);
        Incoming::Update(Bytes::from(txn.encode_update_v1()))
    }

    fn text(doc: &Doc) -> String {
        let text = doc.get_or_insert_text("code");
        text.get_string(&doc.transact())
    }

    fn decode(frame: &Bytes) -> Message {
        use yrs::updates::decoder::Decode as _;
        Message::decode_v1(frame).unwrap()
    }

    fn awareness(entries: &[(u64, u32, &str)]) -> Incoming {
        Incoming::Awareness(crate::docs::awareness_update(entries))
    }

    #[test]
    fn updates_are_logged_then_sent_to_the_others() {
        let mut r = room();
        let mut fx = Effects::default();
        r.join(1, false, &mut fx);
        r.join(2, false, &mut fx);
        assert!(matches!(
            &fx.out[..],
            [Out::Send(ta, a), Out::Send(tb, b)]
                if ta == &[1] && tb == &[2]
                    && matches!(decode(a), Message::Sync(SyncMessage::SyncStep1(_))) && a == b
        ));
        let alice = Doc::with_client_id(11);
        let mut fx = Effects::default();
        r.handle(1, edit(&alice, "hi"), 0, &mut fx);
        r.handle(1, edit(&alice, "!"), 0, &mut fx);
        assert_eq!(
            fx.rows.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(fx.out.len(), 2);
        assert!(
            fx.out
                .iter()
                .all(|o| matches!(o, Out::Update { to, .. } if to == &[2]))
        );
        assert_eq!(text(r.doc()), "hi!");

        // A newcomer asking with an empty state vector gets everything.
        let mut fx = Effects::default();
        r.join(3, false, &mut fx);
        r.handle(3, Incoming::SyncStep1(StateVector::default()), 0, &mut fx);
        let Out::Send(to, frame) = &fx.out[1] else {
            panic!("{:?}", fx.out)
        };
        assert_eq!(to, &[3]);
        let Message::Sync(SyncMessage::SyncStep2(update)) = decode(frame) else {
            panic!()
        };
        let fresh = Doc::new();
        fresh
            .transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        assert_eq!(text(&fresh), "hi!");
    }

    #[test]
    fn read_only_members_change_nothing_but_show_presence() {
        let mut r = room();
        let mut fx = Effects::default();
        r.join(1, true, &mut fx);
        r.join(2, false, &mut fx);
        let mut fx = Effects::default();
        r.handle(1, edit(&Doc::with_client_id(5), "nope"), 0, &mut fx);
        assert!(fx.rows.is_empty() && fx.out.is_empty());
        assert_eq!(text(r.doc()), "");
        r.handle(1, awareness(&[(5, 1, r#"{"user":"viewer"}"#)]), 0, &mut fx);
        assert!(matches!(&fx.out[..], [Out::Send(to, _)] if to.len() == 2));
    }

    #[test]
    fn a_leaving_member_takes_its_cursors_along() {
        let mut r = room();
        let mut fx = Effects::default();
        r.join(1, false, &mut fx);
        r.join(2, false, &mut fx);
        r.handle(1, awareness(&[(100, 1, r#"{"cursor":1}"#)]), 0, &mut fx);
        r.handle(2, awareness(&[(200, 1, r#"{"cursor":2}"#)]), 0, &mut fx);
        let mut fx = Effects::default();
        r.leave(1, 5, &mut fx);
        let [Out::Send(to, frame)] = &fx.out[..] else {
            panic!("{:?}", fx.out)
        };
        assert_eq!(to, &[2]);
        let Message::Awareness(update) = decode(frame) else {
            panic!()
        };
        assert_eq!(update.clients.len(), 1);
        let entry = &update.clients[&ClientID::new(100)];
        assert_eq!((entry.clock, &*entry.json), (2, "null"));
        // The newcomer sees only the one who stayed.
        let mut fx = Effects::default();
        r.join(3, false, &mut fx);
        let Message::Awareness(update) = decode(match &fx.out[1] {
            Out::Send(_, f) => f,
            other => panic!("{other:?}"),
        }) else {
            panic!()
        };
        assert_eq!(
            update.clients.keys().map(ClientID::get).collect::<Vec<_>>(),
            vec![200]
        );
        // Another connection cannot set a state it did not claim, not even a client
        // coming back with the same id before its old connection went...
        let mut fx = Effects::default();
        r.handle(3, awareness(&[(200, 5, r#"{"cursor":3}"#)]), 0, &mut fx);
        assert!(fx.out.is_empty(), "{:?}", fx.out);
        r.leave(2, 6, &mut fx);
        assert_eq!(fx.out.len(), 1, "the old connection's leave removes it");
        // ...and once that one went, the id is free.
        let mut fx = Effects::default();
        r.handle(3, awareness(&[(200, 5, r#"{"cursor":3}"#)]), 7, &mut fx);
        assert_eq!(fx.out.len(), 1, "{:?}", fx.out);
    }

    /// The states a newcomer is told about, by client id.
    fn states_seen_by_newcomer(r: &mut Room, conn: ConnId) -> HashMap<u64, String> {
        let mut fx = Effects::default();
        r.join(conn, false, &mut fx);
        let Some(Out::Send(_, frame)) = fx.out.get(1) else {
            return HashMap::new();
        };
        let Message::Awareness(update) = decode(frame) else {
            panic!()
        };
        update
            .clients
            .into_iter()
            .map(|(id, e)| (id.get(), e.json.to_string()))
            .collect()
    }

    #[test]
    fn a_connection_sets_only_the_awareness_ids_it_claimed() {
        let metrics = Arc::new(DocsMetrics::default());
        let mut r = Room::load(&StoredDoc::default(), limits(), metrics.clone());
        let mut fx = Effects::default();
        r.join(1, false, &mut fx);
        r.join(2, false, &mut fx);
        r.handle(1, awareness(&[(100, 1, r#"{"user":"ada"}"#)]), 0, &mut fx);
        // A higher clock for someone else's id, next to its own: only its own counts.
        let mut fx = Effects::default();
        r.handle(
            2,
            awareness(&[
                (100, 99, r#"{"user":"mallory","presenter":true}"#),
                (200, 1, r#"{"user":"bob"}"#),
            ]),
            0,
            &mut fx,
        );
        let [Out::Send(_, frame)] = &fx.out[..] else {
            panic!("{:?}", fx.out)
        };
        let Message::Awareness(update) = decode(frame) else {
            panic!()
        };
        assert_eq!(
            update.clients.keys().map(ClientID::get).collect::<Vec<_>>(),
            vec![200]
        );
        // Nor can it remove it.
        r.handle(2, awareness(&[(100, 99, "null")]), 0, &mut fx);
        let seen = states_seen_by_newcomer(&mut r, 3);
        assert_eq!(seen[&100], r#"{"user":"ada"}"#);
        assert_eq!(seen[&200], r#"{"user":"bob"}"#);
        assert_eq!(metrics.rejected(Rejection::AwarenessNotOwned), 2);
        // The owner renews and removes its own as usual.
        let mut fx = Effects::default();
        r.handle(1, awareness(&[(100, 2, "null")]), 0, &mut fx);
        assert_eq!(fx.out.len(), 1);
        assert!(!states_seen_by_newcomer(&mut r, 4).contains_key(&100));
        // A state nobody renews lapses, and its id is free again.
        let mut fx = Effects::default();
        r.expire_awareness(AWARENESS_TIMEOUT_MS, &mut fx);
        assert!(!states_seen_by_newcomer(&mut r, 5).contains_key(&200));
        let mut fx = Effects::default();
        r.handle(5, awareness(&[(200, 9, r#"{"user":"carol"}"#)]), 0, &mut fx);
        assert_eq!(
            states_seen_by_newcomer(&mut r, 6)[&200],
            r#"{"user":"carol"}"#
        );
    }

    #[test]
    fn a_read_only_connection_cannot_present() {
        let metrics = Arc::new(DocsMetrics::default());
        let mut r = Room::load(&StoredDoc::default(), limits(), metrics.clone());
        let mut fx = Effects::default();
        r.join(1, true, &mut fx);
        r.join(2, false, &mut fx);
        r.handle(
            1,
            awareness(&[(
                10,
                1,
                r#"{"user":{"name":"viewer"},"presenter":true,"presenterSince":1e308}"#,
            )]),
            0,
            &mut fx,
        );
        r.handle(
            2,
            awareness(&[(
                20,
                1,
                r#"{"user":{"name":"writer"},"presenter":true,"presenterSince":5}"#,
            )]),
            0,
            &mut fx,
        );
        let seen = states_seen_by_newcomer(&mut r, 3);
        let viewer: serde_json::Value = serde_json::from_str(&seen[&10]).unwrap();
        assert_eq!(
            viewer,
            serde_json::json!({"user": {"name": "viewer"}, "presenter": false})
        );
        let writer: serde_json::Value = serde_json::from_str(&seen[&20]).unwrap();
        assert_eq!(writer["presenter"], true);
        assert_eq!(writer["presenterSince"], 5);
        assert_eq!(metrics.rejected(Rejection::PresenterStripped), 1);
        // A state without a claim passes as it came.
        let mut fx = Effects::default();
        r.handle(
            1,
            awareness(&[(10, 2, r#"{"user":"v","presenter":false}"#)]),
            0,
            &mut fx,
        );
        assert_eq!(
            states_seen_by_newcomer(&mut r, 4)[&10],
            r#"{"user":"v","presenter":false}"#
        );
    }

    #[test]
    fn too_many_awareness_states_are_refused_before_any_is_applied() {
        let mut r = room();
        let mut fx = Effects::default();
        r.join(1, false, &mut fx);
        r.join(2, false, &mut fx);
        let many: Vec<(u64, u32, &str)> = (0..=MAX_STATES_PER_CONNECTION as u64)
            .map(|id| (1000 + id, 1, "{}"))
            .collect();
        let mut fx = Effects::default();
        r.handle(1, awareness(&many), 0, &mut fx);
        assert_eq!(fx.out, vec![Out::Close(1, CLOSE_AWARENESS)]);
        assert!(states_seen_by_newcomer(&mut r, 3).is_empty());
        // One at a time, the same.
        let mut fx = Effects::default();
        for (i, entry) in many.iter().enumerate() {
            r.handle(2, awareness(&[*entry]), 0, &mut fx);
            if i < MAX_STATES_PER_CONNECTION {
                assert!(!fx.out.contains(&Out::Close(2, CLOSE_AWARENESS)));
            }
        }
        assert_eq!(fx.out.last(), Some(&Out::Close(2, CLOSE_AWARENESS)));
        // Its states went with it.
        assert!(states_seen_by_newcomer(&mut r, 4).is_empty());
    }

    #[test]
    fn an_update_over_the_document_limit_is_refused_whole() {
        let mut r = Room::load(
            &StoredDoc::default(),
            RoomLimits {
                max_doc: 200,
                compact_every: 100,
            },
            Arc::default(),
        );
        let mut fx = Effects::default();
        r.join(1, false, &mut fx);
        r.join(2, false, &mut fx);
        let alice = Doc::with_client_id(1);
        let mut fx = Effects::default();
        r.handle(1, edit(&alice, &"a".repeat(100)), 0, &mut fx);
        assert_eq!(fx.rows.len(), 1);
        let mut fx = Effects::default();
        r.handle(1, edit(&alice, &"b".repeat(150)), 0, &mut fx);
        assert!(fx.rows.is_empty());
        assert!(fx.out.contains(&Out::Close(1, CLOSE_DOC_TOO_LARGE)));
        assert_eq!(text(r.doc()), "a".repeat(100));
        // Member 1 is gone: what it still had queued is ignored.
        let mut fx = Effects::default();
        r.handle(1, edit(&alice, "c"), 0, &mut fx);
        assert!(fx.rows.is_empty() && fx.out.is_empty());
    }

    #[test]
    fn snapshot_and_log_rebuild_the_same_document() {
        let mut r = room();
        let mut fx = Effects::default();
        r.join(1, false, &mut fx);
        let alice = Doc::with_client_id(1);
        for s in ["a", "b", "c"] {
            r.handle(1, edit(&alice, s), 0, &mut fx);
        }
        assert!(r.needs_compaction());
        let (upto, state) = r.snapshot().unwrap();
        assert_eq!(upto, 3);
        // An update arrives after the snapshot was taken, before it is committed.
        r.handle(1, edit(&alice, "d"), 0, &mut fx);
        r.compacted(upto, state.len());
        assert!(!r.needs_compaction());
        assert!(r.has_log());
        let stored = StoredDoc {
            snapshot: Some((upto, state)),
            log: fx
                .rows
                .iter()
                .filter(|(s, _)| *s > upto)
                .map(|(s, d)| (*s, d.to_vec()))
                .collect(),
        };
        let again = Room::load(&stored, limits(), Arc::default());
        assert_eq!(text(again.doc()), "abcd");
        assert_eq!(again.last_seq, 4);
        assert_eq!(again.logged, 1);
    }

    #[test]
    fn an_update_yrs_cannot_apply_asks_for_a_reload() {
        let mut r = room();
        let mut fx = Effects::default();
        r.join(1, false, &mut fx);
        r.handle(1, edit(&Doc::with_client_id(1), "ab"), 0, &mut fx);
        // An item whose parent is the string item (1,0), which is not a type.
        let raw = Bytes::from(vec![1, 1, 2, 0, 4, 0, 1, 0, 1, b'x', 0]);
        let mut fx = Effects::default();
        r.handle(1, Incoming::Update(raw), 0, &mut fx);
        assert!(fx.rows.is_empty());
        assert!(fx.reload);
        assert!(fx.out.contains(&Out::Close(1, CLOSE_BAD_UPDATE)));
    }

    #[test]
    fn a_commit_with_several_updates_sends_one_merged_frame() {
        let mut r = room();
        let mut fx = Effects::default();
        for conn in 1..=3 {
            r.join(conn, false, &mut fx);
        }
        let mut fx = Effects::default();
        let (a, b) = (Doc::with_client_id(1), Doc::with_client_id(2));
        r.handle(1, edit(&a, "x"), 0, &mut fx);
        r.handle(2, awareness(&[(2, 1, "{}")]), 0, &mut fx);
        r.handle(2, edit(&b, "y"), 0, &mut fx);
        r.handle(1, edit(&a, "z"), 0, &mut fx);
        let out = merge_updates(fx.out);
        let [Out::Send(first, frame), Out::Send(second, _)] = &out[..] else {
            panic!("{out:?}")
        };
        let sorted = |v: &Vec<ConnId>| {
            let mut v = v.clone();
            v.sort_unstable();
            v
        };
        assert_eq!(sorted(first), [1, 2, 3]);
        assert_eq!(
            sorted(second),
            [1, 2, 3],
            "the awareness frame keeps its place after it"
        );
        let Message::Sync(SyncMessage::Update(update)) = decode(frame) else {
            panic!()
        };
        let copy = Doc::new();
        copy.transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        assert_eq!(text(&copy), text(r.doc()));

        // A single update goes as it came, to the others only.
        let mut fx = Effects::default();
        r.handle(3, edit(&Doc::with_client_id(3), "!"), 0, &mut fx);
        let out = merge_updates(fx.out);
        assert!(matches!(&out[..], [Out::Send(to, _)] if sorted(to) == [1, 2]));
    }
}

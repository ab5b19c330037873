//! The local replica, sans-IO: frames in, at most a sync request out, a [`DocView`] when
//! asked. It never produces a document update: the only message it makes is its own
//! sync step 1 (a state vector), and it does not answer the server's sync step 1 with a
//! step 2, which would be a document update.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use yrs::branch::BranchPtr;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::types::Delta;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Assoc, ClientID, Doc, GetString, ID, Map, MapRef, Observable, OffsetKind, Options, Out,
    ReadTxn, StateVector, StickyIndex, Text, TextRef, Transact, Update,
};

use super::view::{self, AwarenessPeer, DocView, RelPos};
use super::{CODE_TEXT, DocError, LANGUAGE_KEY, META_MAP};

/// What the text observer saw in the last transaction.
#[derive(Debug, Default)]
struct Seen {
    /// The text changed since the last view.
    text_changed: bool,
    /// UTF-16 offset of the first change of the last transaction that changed the text.
    first_change: Option<u32>,
}

/// One awareness entry: its clock, and its JSON state while present.
type State = (u32, Option<Arc<str>>);

pub(crate) struct Mirror {
    doc: Doc,
    text: TextRef,
    meta: MapRef,
    seen: Arc<Mutex<Seen>>,
    states: HashMap<u64, State>,
    /// Our sync step 1 went out on this connection.
    asked: bool,
    /// The server's sync step 2 arrived on this connection.
    synced: bool,
    last_edit_by: Option<u64>,
    last_edit_index: Option<u32>,
    text_cache: Arc<str>,
    /// Something a view shows changed since the last one.
    dirty: bool,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("synced", &self.synced)
            .field("states", &self.states.len())
            .finish_non_exhaustive()
    }
}

impl Mirror {
    pub(crate) fn new() -> Mirror {
        let (doc, text, meta, seen) = fresh();
        Mirror {
            doc,
            text,
            meta,
            seen,
            states: HashMap::new(),
            asked: false,
            synced: false,
            last_edit_by: None,
            last_edit_index: None,
            text_cache: Arc::from(""),
            dirty: true,
        }
    }

    pub(crate) fn synced(&self) -> bool {
        self.synced
    }

    pub(crate) fn asked(&self) -> bool {
        self.asked
    }

    pub(crate) fn dirty(&self) -> bool {
        self.dirty
    }

    /// Our sync step 1, unless it already went out on this connection.
    pub(crate) fn ask(&mut self) -> Option<Vec<u8>> {
        if self.asked {
            return None;
        }
        self.asked = true;
        let sv = self.doc.transact().state_vector();
        Some(Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1())
    }

    /// The connection ended: nobody is known to be here any more (a new connection gets
    /// every present state), and the next one syncs again.
    pub(crate) fn disconnected(&mut self) {
        self.states.clear();
        self.asked = false;
        self.synced = false;
        self.dirty = true;
    }

    /// Handles one frame from the server; what to send back, if anything.
    pub(crate) fn handle(&mut self, frame: &[u8]) -> Result<Option<Vec<u8>>, DocError> {
        let msg = Message::decode_v1(frame).map_err(|e| DocError::Malformed(e.to_string()))?;
        match msg {
            Message::Sync(SyncMessage::SyncStep1(theirs)) => {
                let ours = self.doc.transact().state_vector();
                if !covers(&theirs, &ours) {
                    // The server's document is not the one we hold (the room went and came
                    // back): start over rather than show a mix of both.
                    tracing::info!("the server's document is new: syncing from scratch");
                    self.restart();
                }
                Ok(self.ask())
            }
            Message::Sync(SyncMessage::SyncStep2(update)) => {
                self.apply(&update, false)?;
                self.synced = true;
                self.dirty = true;
                Ok(None)
            }
            Message::Sync(SyncMessage::Update(update)) => {
                self.apply(&update, true)?;
                Ok(None)
            }
            Message::Awareness(update) => {
                self.apply_awareness(update);
                Ok(None)
            }
            // y-websocket's permission message; this server refuses at the upgrade instead.
            Message::Auth(Some(_)) => Err(DocError::Refused),
            // Nothing of ours is in awareness; nothing else is for us.
            Message::Auth(None) | Message::AwarenessQuery | Message::Custom(..) => Ok(None),
        }
    }

    /// A fresh, empty document in place of the one held.
    fn restart(&mut self) {
        (self.doc, self.text, self.meta, self.seen) = fresh();
        self.asked = false;
        self.synced = false;
        self.last_edit_by = None;
        self.last_edit_index = None;
        self.text_cache = Arc::from("");
        self.dirty = true;
    }

    fn apply(&mut self, update: &[u8], live: bool) -> Result<(), DocError> {
        let update = Update::decode_v1(update).map_err(|e| DocError::Malformed(e.to_string()))?;
        let before = live.then(|| self.doc.transact().state_vector());
        self.doc
            .transact_mut()
            .apply_update(update)
            .map_err(|e| DocError::Malformed(e.to_string()))?;
        let first_change = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first_change
            .take();
        if let Some(before) = before {
            let after = self.doc.transact().state_vector();
            let author = after
                .iter()
                .map(|(client, clock)| (*clock - before.get(client), client.get()))
                .filter(|(grew, _)| *grew > 0)
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            if let Some((_, client)) = author {
                self.last_edit_by = Some(client);
            }
            if first_change.is_some() {
                self.last_edit_index = first_change;
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// The y-protocols rule: a state replaces the known one only with a higher clock; a
    /// `null` state with the same or a higher clock removes it.
    fn apply_awareness(&mut self, update: AwarenessUpdate) {
        for (client, entry) in update.clients {
            let id = client.get();
            let new = (&*entry.json != "null").then_some(entry.json);
            let accept = match self.states.get(&id) {
                None => new.is_some(),
                Some((clock, json)) => {
                    *clock < entry.clock
                        || (*clock == entry.clock && new.is_none() && json.is_some())
                }
            };
            if accept {
                self.states.insert(id, (entry.clock, new));
                self.dirty = true;
            }
        }
        self.states.retain(|_, (_, json)| json.is_some());
    }

    /// The replica as a view; copies the text only when it changed since the last one.
    pub(crate) fn view(&mut self) -> DocView {
        self.dirty = false;
        let txn = self.doc.transact();
        let text_changed = std::mem::take(
            &mut self
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .text_changed,
        );
        if text_changed {
            self.text_cache = Arc::from(self.text.get_string(&txn));
        }
        let language = match self.meta.get(&txn, LANGUAGE_KEY) {
            Some(Out::Any(Any::String(s))) => Some(s.to_string()),
            _ => None,
        };
        let text_len = self.text.len(&txn);
        let text_branch = BranchPtr::from(AsRef::<yrs::branch::Branch>::as_ref(&self.text));
        let mut peers: Vec<AwarenessPeer> = self
            .states
            .iter()
            .filter_map(|(id, (_, json))| view::parse_peer(*id, json.as_deref()?))
            .map(|parsed| {
                let index = parsed.head.and_then(|head| match head {
                    RelPos::End { start } => Some(if start { 0 } else { text_len }),
                    RelPos::Item {
                        client,
                        clock,
                        before,
                    } => {
                        let assoc = if before { Assoc::Before } else { Assoc::After };
                        StickyIndex::from_id(ID::new(ClientID::new(client), clock), assoc)
                            .get_offset(&txn)
                            .filter(|offset| offset.branch == text_branch)
                            .map(|offset| offset.index)
                    }
                });
                AwarenessPeer {
                    cursor_line: index.map(|i| view::line_at(&self.text_cache, i)),
                    ..parsed.peer
                }
            })
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name).then(a.client_id.cmp(&b.client_id)));
        DocView {
            text: self.text_cache.clone(),
            language,
            peers,
            connected: self.synced,
            last_edit_by: self.last_edit_by,
            last_edit_line: self
                .last_edit_index
                .map(|i| view::line_at(&self.text_cache, i)),
            attempts: 0,
            error: None,
        }
    }
}

/// A document that counts in UTF-16 code units, as Yjs does (so offsets and relative
/// positions agree with the browsers), with an observer on its text.
fn fresh() -> (Doc, TextRef, MapRef, Arc<Mutex<Seen>>) {
    let doc = Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    });
    let text = doc.get_or_insert_text(CODE_TEXT);
    let meta = doc.get_or_insert_map(META_MAP);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = Arc::clone(&seen);
    text.observe("portal-net", move |txn, event| {
        let mut at = 0u32;
        for delta in event.delta(txn) {
            match delta {
                Delta::Retain(n, _) => at += n,
                Delta::Inserted(..) | Delta::Deleted(_) => break,
            }
        }
        let mut seen = sink.lock().unwrap_or_else(PoisonError::into_inner);
        seen.text_changed = true;
        seen.first_change = Some(at);
    });
    (doc, text, meta, seen)
}

/// Every (client, clock) `ours` has, `theirs` has too.
fn covers(theirs: &StateVector, ours: &StateVector) -> bool {
    ours.iter()
        .all(|(client, clock)| theirs.get(client) >= *clock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::sync::awareness::AwarenessUpdateEntry;

    fn writer() -> Doc {
        Doc::with_options(Options {
            client_id: ClientID::new(77),
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        })
    }

    fn update_frame(doc: &Doc, since: &StateVector, live: bool) -> Vec<u8> {
        let update = doc.transact().encode_state_as_update_v1(since);
        let msg = if live {
            SyncMessage::Update(update)
        } else {
            SyncMessage::SyncStep2(update)
        };
        Message::Sync(msg).encode_v1()
    }

    fn awareness_frame(client: u64, clock: u32, json: &str) -> Vec<u8> {
        Message::Awareness(AwarenessUpdate {
            clients: [(
                ClientID::new(client),
                AwarenessUpdateEntry {
                    clock,
                    json: json.into(),
                },
            )]
            .into(),
        })
        .encode_v1()
    }

    #[test]
    fn it_asks_once_and_never_answers_with_content() {
        let mut m = Mirror::new();
        let w = writer();
        w.get_or_insert_text(CODE_TEXT)
            .insert(&mut w.transact_mut(), 0, "hello");
        m.handle(&update_frame(&w, &StateVector::default(), false))
            .unwrap();
        m.disconnected();
        let sv = w.transact().state_vector();
        let reply = m
            .handle(&Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1())
            .unwrap()
            .expect("our sync step 1");
        match Message::decode_v1(&reply).unwrap() {
            Message::Sync(SyncMessage::SyncStep1(_)) => {}
            other => panic!("sent {other:?}"),
        }
        let again =
            m.handle(&Message::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1());
        // The server lacks what we hold: we start over and ask again, still only a step 1.
        let again = again.unwrap().expect("asked again");
        assert!(matches!(
            Message::decode_v1(&again).unwrap(),
            Message::Sync(SyncMessage::SyncStep1(sv)) if sv == StateVector::default()
        ));
        assert_eq!(&*m.view().text, "");
    }

    #[test]
    fn live_edits_name_their_author_and_line() {
        let mut m = Mirror::new();
        let w = writer();
        let text = w.get_or_insert_text(CODE_TEXT);
        text.insert(&mut w.transact_mut(), 0, "one\ntwo\n");
        m.handle(&update_frame(&w, &StateVector::default(), false))
            .unwrap();
        let view = m.view();
        assert_eq!(&*view.text, "one\ntwo\n");
        assert_eq!(view.last_edit_by, None, "a catch-up is no edit");
        let before = w.transact().state_vector();
        text.insert(&mut w.transact_mut(), 8, "three");
        w.get_or_insert_map(META_MAP)
            .insert(&mut w.transact_mut(), LANGUAGE_KEY, "rust");
        m.handle(&update_frame(&w, &before, true)).unwrap();
        let view = m.view();
        assert_eq!(&*view.text, "one\ntwo\nthree");
        assert_eq!(view.last_edit_by, Some(77));
        assert_eq!(view.last_edit_line, Some(3));
        assert_eq!(view.language.as_deref(), Some("rust"));
        // An unchanged text is shared, not copied.
        let again = m.view();
        assert!(Arc::ptr_eq(&view.text, &again.text));
        assert!(m.handle(&[0, 9]).is_err());
    }

    #[test]
    fn cursors_resolve_to_lines_and_awareness_follows_clocks() {
        let mut m = Mirror::new();
        let w = writer();
        let text = w.get_or_insert_text(CODE_TEXT);
        text.insert(&mut w.transact_mut(), 0, "a\nb\nc");
        m.handle(&update_frame(&w, &StateVector::default(), false))
            .unwrap();
        // The caret just before "c": item (77, 4), as Yjs' createRelativePositionFromTypeIndex.
        let state = r##"{"user":{"name":"Ada","color":"#0090ff"},"presenter":true,
            "selection":{"anchor":{"type":null,"tname":"code","item":{"client":77,"clock":4},"assoc":0},
                         "head":{"type":null,"tname":"code","item":{"client":77,"clock":4},"assoc":0}}}"##;
        m.handle(&awareness_frame(5, 1, state)).unwrap();
        m.handle(&awareness_frame(6, 1, r#"{"user":{"name":"Bo"}}"#))
            .unwrap();
        let view = m.view();
        assert_eq!(view.peers.len(), 2);
        let ada = view.peer(5).unwrap();
        assert_eq!((ada.name.as_str(), ada.cursor_line), ("Ada", Some(3)));
        assert!(ada.presenter);
        assert_eq!(view.peer(6).unwrap().cursor_line, None);
        // An old clock changes nothing; null at the same clock removes.
        m.handle(&awareness_frame(5, 0, "{}")).unwrap();
        assert!(!m.dirty());
        m.handle(&awareness_frame(6, 1, "null")).unwrap();
        assert_eq!(m.view().peers.len(), 1);
        m.disconnected();
        assert!(m.view().peers.is_empty());
    }
}

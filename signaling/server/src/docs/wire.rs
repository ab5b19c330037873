//! The y-websocket framing: one y-protocols message per binary frame.
//!
//! Incoming frames are decoded here, on the connection's task, so the room only applies
//! what is already known to be well formed. Like the reference server, a frame carries one
//! message; bytes after it are ignored, and message types the server does not handle
//! (auth, custom) are ignored too.

use bytes::Bytes;
use yrs::StateVector;
use yrs::encoding::write::Write as _;
use yrs::sync::protocol::{
    MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC, MSG_SYNC_STEP_1, MSG_SYNC_STEP_2, MSG_SYNC_UPDATE,
};
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

/// Deepest nesting of `Any` values (arrays and maps) an update may carry. yrs decodes,
/// encodes and drops these recursively, so an update nested a few hundred thousand levels
/// deep would overflow the stack and abort the whole server.
pub(crate) const MAX_ANY_DEPTH: usize = 128;

/// Largest awareness message, in bytes: a browser's state (name, colour, selection) is a
/// few hundred; every state is sent to every member and to every newcomer.
pub(crate) const MAX_AWARENESS: usize = 64 * 1024;

/// Client ids are below 2^53.
const MAX_CLIENT_ID: u64 = 1 << 53;

/// A decoded client message.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// The client's state vector: answer with what it lacks (sync step 2).
    SyncStep1(StateVector),
    /// Sync step 2 or an update: content for the document, as the client encoded it
    /// (what is stored and broadcast). It passed [`check_update_v1`]; yrs decodes it in
    /// the room (a decoded `Update` cannot cross threads).
    Update(Bytes),
    Awareness(AwarenessUpdate),
    QueryAwareness,
}

/// Why a frame was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// An update longer than the limit.
    TooLarge(usize),
    /// An awareness message longer than [`MAX_AWARENESS`].
    AwarenessTooLarge(usize),
    /// Not the protocol.
    Malformed(&'static str),
}

/// Decodes one frame. `Ok(None)` for messages the server ignores.
pub(crate) fn decode_frame(
    frame: &Bytes,
    max_update: usize,
) -> Result<Option<Incoming>, FrameError> {
    let mut cur = Cursor::new(frame);
    match cur.var_u64()? {
        t if t == u64::from(MSG_SYNC) => {
            let kind = cur.var_u64()?;
            let (start, end) = cur.buf_range()?;
            let body = &frame[start..end];
            match kind {
                k if k == u64::from(MSG_SYNC_STEP_1) => {
                    check_client_ids(body, false)?;
                    StateVector::decode_v1(body)
                        .map(|sv| Some(Incoming::SyncStep1(sv)))
                        .map_err(|_| FrameError::Malformed("bad state vector"))
                }
                k if k == u64::from(MSG_SYNC_STEP_2) || k == u64::from(MSG_SYNC_UPDATE) => {
                    if body.len() > max_update {
                        return Err(FrameError::TooLarge(body.len()));
                    }
                    check_update_v1(body)?;
                    Ok(Some(Incoming::Update(frame.slice(start..end))))
                }
                _ => Err(FrameError::Malformed("unknown sync message")),
            }
        }
        t if t == u64::from(MSG_AWARENESS) => {
            let (start, end) = cur.buf_range()?;
            if end - start > MAX_AWARENESS {
                return Err(FrameError::AwarenessTooLarge(end - start));
            }
            check_client_ids(&frame[start..end], true)?;
            let update = AwarenessUpdate::decode_v1(&frame[start..end])
                .map_err(|_| FrameError::Malformed("bad awareness update"))?;
            // Every client parses every state: one that is not JSON would break them.
            for entry in update.clients.values() {
                serde_json::from_str::<serde::de::IgnoredAny>(&entry.json)
                    .map_err(|_| FrameError::Malformed("awareness state is not JSON"))?;
            }
            Ok(Some(Incoming::Awareness(update)))
        }
        t if t == u64::from(MSG_QUERY_AWARENESS) => Ok(Some(Incoming::QueryAwareness)),
        _ => Ok(None),
    }
}

/// `messageSync, syncStep1, state vector`.
pub(crate) fn sync_step1(sv: &StateVector) -> Bytes {
    Message::Sync(SyncMessage::SyncStep1(sv.clone()))
        .encode_v1()
        .into()
}

/// `messageSync, syncStep2, update`.
pub(crate) fn sync_step2(update: Vec<u8>) -> Bytes {
    Message::Sync(SyncMessage::SyncStep2(update))
        .encode_v1()
        .into()
}

/// `messageSync, update, update` without copying the update twice.
pub(crate) fn sync_update(update: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(update.len() + 8);
    out.write_var(MSG_SYNC);
    out.write_var(MSG_SYNC_UPDATE);
    out.write_buf(update);
    out.into()
}

/// `messageAwareness, update`.
pub(crate) fn awareness(update: &AwarenessUpdate) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.write_var(MSG_AWARENESS);
    out.write_buf(update.encode_v1());
    out.into()
}

/// Walks a v1 update the way yrs decodes it, without building anything, and refuses
/// `Any` values nested deeper than [`MAX_ANY_DEPTH`]. Whatever passes is then decoded by
/// yrs, which stays the judge of everything else.
pub(crate) fn check_update_v1(update: &[u8]) -> Result<(), FrameError> {
    let mut cur = Cursor::new(update);
    let clients = cur.var_u64()?;
    for _ in 0..clients {
        let blocks = cur.var_u64()?;
        cur.client()?;
        cur.var_u64()?; // clock
        for _ in 0..blocks {
            check_block(&mut cur)?;
        }
    }
    // Delete set: clients, each with ranges of (clock, len).
    let clients = cur.var_u64()?;
    for _ in 0..clients {
        cur.client()?;
        let ranges = cur.var_u64()?;
        for _ in 0..ranges {
            cur.var_u64()?;
            cur.var_u64()?;
        }
    }
    Ok(())
}

/// A state vector's (`awareness: false`) or an awareness update's client ids must fit in
/// yrs' 53 bits, as every update's do ([`Cursor::client`]).
fn check_client_ids(body: &[u8], awareness: bool) -> Result<(), FrameError> {
    let mut cur = Cursor::new(body);
    let clients = cur.var_u64()?;
    for _ in 0..clients {
        cur.client()?;
        cur.var_u64()?; // clock
        if awareness {
            cur.buf()?; // state (JSON)
        }
    }
    Ok(())
}

const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
const GC: u8 = 0;
const SKIP: u8 = 10;
const TYPE_XML_ELEMENT: u8 = 3;

fn check_block(cur: &mut Cursor<'_>) -> Result<(), FrameError> {
    let info = cur.u8()?;
    if info == GC || info == SKIP {
        cur.var_u64()?;
        return Ok(());
    }
    if info & HAS_ORIGIN != 0 {
        cur.client()?;
        cur.var_u64()?;
    }
    if info & HAS_RIGHT_ORIGIN != 0 {
        cur.client()?;
        cur.var_u64()?;
    }
    if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
        if cur.var_u64()? == 1 {
            cur.buf()?; // parent type name
        } else {
            cur.client()?; // parent item id
            cur.var_u64()?;
        }
        if info & HAS_PARENT_SUB != 0 {
            cur.buf()?;
        }
    }
    match info & 0b1111 {
        // deleted
        1 => {
            cur.var_u64()?;
        }
        // JSON strings (yrs reads one more than the count it is given)
        2 => {
            let n = cur.var_u64()?;
            for _ in 0..=n {
                cur.buf()?;
            }
        }
        // binary, string, embed (JSON text)
        3..=5 => {
            cur.buf()?;
        }
        // format: key and JSON text
        6 => {
            cur.buf()?;
            cur.buf()?;
        }
        // nested type; XML elements carry their tag name
        7 => {
            if cur.u8()? == TYPE_XML_ELEMENT {
                cur.buf()?;
            }
        }
        // any values
        8 => {
            let n = cur.var_u64()?;
            for _ in 0..n {
                check_any(cur, 0)?;
            }
        }
        // sub-document: guid and options
        9 => {
            cur.buf()?;
            check_any(cur, 0)?;
        }
        _ => return Err(FrameError::Malformed("unknown content type")),
    }
    Ok(())
}

fn check_any(cur: &mut Cursor<'_>, depth: usize) -> Result<(), FrameError> {
    if depth > MAX_ANY_DEPTH {
        return Err(FrameError::Malformed("values nested too deep"));
    }
    match cur.u8()? {
        // undefined, null, booleans
        127 | 126 | 121 | 120 => {}
        // var int
        125 => {
            cur.var_u64()?;
        }
        124 => cur.skip(4)?,
        123 | 122 => cur.skip(8)?,
        // string, buffer
        119 | 116 => {
            cur.buf()?;
        }
        118 => {
            let n = cur.var_u64()?;
            for _ in 0..n {
                cur.buf()?;
                check_any(cur, depth + 1)?;
            }
        }
        117 => {
            let n = cur.var_u64()?;
            for _ in 0..n {
                check_any(cur, depth + 1)?;
            }
        }
        _ => return Err(FrameError::Malformed("unknown value type")),
    }
    Ok(())
}

/// lib0 reading: variable-length unsigned integers and length-prefixed buffers.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(FrameError::Malformed("message ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    /// Seven bits a byte, low bits first; the high bit says more follow. Signed lib0
    /// integers end the same way, so this also skips them.
    fn var_u64(&mut self) -> Result<u64, FrameError> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift < 64 {
                value |= u64::from(b & 0x7f) << shift;
            }
            if b < 0x80 {
                return Ok(value);
            }
            shift += 7;
            if shift > 70 {
                return Err(FrameError::Malformed("integer too long"));
            }
        }
    }

    /// A client id: yrs takes 53 bits (JavaScript's safe integers) and asserts so in
    /// debug builds, silently mangling larger ids in release ones. Found by the
    /// property tests in `wire/fuzz.rs`.
    fn client(&mut self) -> Result<u64, FrameError> {
        let id = self.var_u64()?;
        if id >= MAX_CLIENT_ID {
            return Err(FrameError::Malformed("client id over 53 bits"));
        }
        Ok(id)
    }

    fn skip(&mut self, n: usize) -> Result<(), FrameError> {
        if self.buf.len() - self.pos < n {
            return Err(FrameError::Malformed("message ends early"));
        }
        self.pos += n;
        Ok(())
    }

    /// A length-prefixed buffer, as `start..end` in the underlying bytes.
    fn buf_range(&mut self) -> Result<(usize, usize), FrameError> {
        let len = usize::try_from(self.var_u64()?)
            .map_err(|_| FrameError::Malformed("length too large"))?;
        let start = self.pos;
        self.skip(len)?;
        Ok((start, self.pos))
    }

    fn buf(&mut self) -> Result<&'a [u8], FrameError> {
        let (start, end) = self.buf_range()?;
        Ok(&self.buf[start..end])
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests {
    use super::*;
    use yrs::types::ToJson;
    use yrs::{
        Any, Array, ArrayPrelim, Doc, GetString, Map, MapPrelim, ReadTxn, Text, Transact, Update,
        XmlElementPrelim, XmlFragment, XmlTextPrelim,
    };

    fn frame(bytes: Vec<u8>) -> Bytes {
        Bytes::from(bytes)
    }

    #[test]
    fn every_content_kind_passes_the_check_and_decodes() {
        let doc = Doc::with_client_id(7);
        let text = doc.get_or_insert_text("code");
        let map = doc.get_or_insert_map("meta");
        let array = doc.get_or_insert_array("list");
        let xml = doc.get_or_insert_xml_fragment("xml");
        {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "fn main() {}");
            text.format(&mut txn, 0, 2, [("bold".into(), Any::Bool(true))].into());
            text.insert_embed(&mut txn, 3, Any::from(vec![Any::from(1.5), Any::Null]));
            text.remove_range(&mut txn, 5, 2);
            map.insert(&mut txn, "language", "rust");
            map.insert(&mut txn, "n", 42);
            map.insert(&mut txn, "bin", Any::Buffer(vec![1u8, 2, 3].into()));
            map.insert(
                &mut txn,
                "nested",
                MapPrelim::from([("a", Any::from(vec![Any::from("x")]))]),
            );
            map.insert(&mut txn, "doc", Doc::new());
            array.insert(&mut txn, 0, ArrayPrelim::from([1, 2, 3]));
            array.push_back(&mut txn, Any::Undefined);
            let el = xml.push_back(&mut txn, XmlElementPrelim::empty("div"));
            el.push_back(&mut txn, XmlTextPrelim::new("hello"));
            map.remove(&mut txn, "n");
        }
        let update = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        check_update_v1(&update).unwrap();
        let msg = frame(Message::Sync(SyncMessage::Update(update.clone())).encode_v1());
        let Some(Incoming::Update(raw)) = decode_frame(&msg, 1 << 20).unwrap() else {
            panic!("expected an update");
        };
        assert_eq!(&raw[..], &update[..]);

        let copy = Doc::new();
        copy.transact_mut()
            .apply_update(Update::decode_v1(&raw).unwrap())
            .unwrap();
        let txn = copy.transact();
        assert_eq!(
            txn.get_text("code").unwrap().get_string(&txn),
            text.get_string(&doc.transact())
        );
        assert_eq!(
            txn.get_map("meta").unwrap().to_json(&txn),
            map.to_json(&doc.transact())
        );
    }

    #[test]
    fn deeply_nested_values_are_refused_before_yrs_sees_them() {
        // One item of content type `any` holding [[[[...]]]].
        let depth = 100_000;
        let mut update = vec![1, 1, 1, 0, 8]; // 1 client, 1 block, client 1, clock 0, info=any
        update.extend([1, 4]); // parent by name, "code"
        update.extend(b"code");
        update.push(1); // one value
        for _ in 0..depth {
            update.extend([117, 1]);
        }
        update.push(126);
        update.push(0); // empty delete set
        assert_eq!(
            check_update_v1(&update),
            Err(FrameError::Malformed("values nested too deep"))
        );
        let msg = frame(Message::Sync(SyncMessage::Update(update)).encode_v1());
        assert!(matches!(
            decode_frame(&msg, 1 << 20),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_garbage_and_oversize_are_told_apart() {
        let doc = Doc::with_client_id(1);
        doc.get_or_insert_text("t")
            .insert(&mut doc.transact_mut(), 0, "hello");
        let update = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let msg = Message::Sync(SyncMessage::Update(update.clone())).encode_v1();
        for cut in 1..msg.len() {
            assert!(
                matches!(
                    decode_frame(&frame(msg[..cut].to_vec()), 1 << 20),
                    Err(FrameError::Malformed(_))
                ),
                "cut at {cut}"
            );
        }
        assert_eq!(
            decode_frame(&frame(msg.clone()), update.len() - 1).unwrap_err(),
            FrameError::TooLarge(update.len())
        );
        assert!(matches!(
            decode_frame(&frame(vec![0, 9, 0]), 1 << 20),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode_frame(&frame(vec![0, 2, 3, 0xff, 0xff, 0xff]), 1 << 20),
            Err(FrameError::Malformed(_))
        ));
        // Auth and unknown types are ignored, as the reference server does.
        assert!(decode_frame(&frame(vec![2, 1]), 1 << 20).unwrap().is_none());
        assert!(decode_frame(&frame(vec![42]), 1 << 20).unwrap().is_none());
        assert!(matches!(
            decode_frame(&frame(vec![3]), 1 << 20).unwrap(),
            Some(Incoming::QueryAwareness)
        ));
    }

    #[test]
    fn awareness_states_must_be_json_and_small() {
        let message = |json: &str| {
            let update = AwarenessUpdate {
                clients: [(
                    yrs::ClientID::new(7),
                    yrs::sync::awareness::AwarenessUpdateEntry {
                        clock: 1,
                        json: json.into(),
                    },
                )]
                .into(),
            };
            frame(awareness(&update).to_vec())
        };
        for ok in ["null", "{}", r#"{"user":{"name":"Ada"},"presenter":false}"#] {
            assert!(
                matches!(
                    decode_frame(&message(ok), 1 << 20),
                    Ok(Some(Incoming::Awareness(_)))
                ),
                "{ok}"
            );
        }
        for bad in ["{", "", "{\"a\":1} x"] {
            assert!(
                matches!(
                    decode_frame(&message(bad), 1 << 20),
                    Err(FrameError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_AWARENESS));
        assert!(matches!(
            decode_frame(&message(&big), 1 << 20),
            Err(FrameError::AwarenessTooLarge(n)) if n > MAX_AWARENESS
        ));
    }

    #[test]
    fn update_messages_match_yrs_encoding() {
        let update = vec![1, 2, 3, 4];
        assert_eq!(
            &sync_update(&update)[..],
            &Message::Sync(SyncMessage::Update(update.clone())).encode_v1()[..]
        );
        let sv = StateVector::default();
        assert_eq!(
            &sync_step1(&sv)[..],
            &Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1()[..]
        );
        let aw = AwarenessUpdate {
            clients: std::collections::HashMap::new(),
        };
        assert_eq!(
            &awareness(&aw)[..],
            &Message::Awareness(aw.clone()).encode_v1()[..]
        );
    }
}

//! Property tests of the y-websocket decoder, which takes untrusted bytes from every
//! document connection: nothing panics, neither it nor yrs on what it lets through, and
//! what the server encodes decodes back the same. Bounded case counts (seconds in CI).

use proptest::prelude::*;
use yrs::updates::decoder::Decode as _;
use yrs::{ClientID, Doc, GetString, Map, ReadTxn, StateVector, Text, Transact, Update};

use super::*;
use crate::docs::awareness::awareness_update;

/// Client ids as yrs makes them (JavaScript's safe integers).
const CLIENT_IDS: std::ops::Range<u64> = 0..(1 << 53);

/// A real update: a few edits to a text and a map by one client (ASCII: yrs counts
/// offsets in bytes here, and an offset inside a character is a caller's bug it panics on).
fn real_update(client: u64, edits: &[(u8, String)]) -> Vec<u8> {
    let doc = Doc::with_client_id(client.max(1));
    let text = doc.get_or_insert_text("code");
    let meta = doc.get_or_insert_map("meta");
    for (op, s) in edits {
        let mut txn = doc.transact_mut();
        let len = text.get_string(&txn).chars().count() as u32;
        match op % 3 {
            0 => text.insert(&mut txn, len / 2, s),
            1 if len > 0 => text.remove_range(&mut txn, 0, (len / 3).max(1)),
            _ => {
                meta.insert(&mut txn, s.as_str(), u32::from(*op));
            }
        }
    }
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn edits() -> impl Strategy<Value = Vec<(u8, String)>> {
    proptest::collection::vec((any::<u8>(), "[a-z ]{0,12}"), 0..8)
}

/// Whatever `decode_frame` accepts is safe to hand on: updates decode in yrs.
fn decode_and_follow(frame: &[u8]) {
    let frame = Bytes::copy_from_slice(frame);
    if let Ok(Some(Incoming::Update(update))) = decode_frame(&frame, 1 << 20) {
        let _ = Update::decode_v1(&update);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_and_follow(&bytes);
    }

    #[test]
    fn frames_with_a_valid_prefix_never_panic(
        kind in prop_oneof![Just(vec![0u8, 0]), Just(vec![0u8, 1]), Just(vec![0u8, 2]), Just(vec![1u8]), Just(vec![3u8])],
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut frame = kind.clone();
        frame.write_buf(&body);
        decode_and_follow(&frame);
        let mut raw = kind;
        raw.extend_from_slice(&body);
        decode_and_follow(&raw);
    }

    #[test]
    fn mangled_real_updates_never_panic(
        client in CLIENT_IDS,
        edits in edits(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut frame = sync_update(&real_update(client, &edits)).to_vec();
        for (at, byte) in flips {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        frame.truncate(cut.index(frame.len() + 1).max(1));
        decode_and_follow(&frame);
    }

    #[test]
    fn real_updates_survive_encode_then_decode(client in CLIENT_IDS, edits in edits()) {
        let update = real_update(client, &edits);
        for frame in [sync_update(&update), sync_step2(update.clone())] {
            match decode_frame(&frame, 1 << 20) {
                Ok(Some(Incoming::Update(got))) => prop_assert_eq!(&got[..], &update[..]),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn state_vectors_survive_encode_then_decode(
        clocks in proptest::collection::btree_map(CLIENT_IDS, any::<u32>(), 0..8),
    ) {
        let mut sv = StateVector::default();
        for (client, clock) in &clocks {
            sv.set_max(ClientID::new(*client), *clock);
        }
        match decode_frame(&sync_step1(&sv), 1 << 20) {
            Ok(Some(Incoming::SyncStep1(got))) => prop_assert_eq!(got, sv),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn awareness_survives_encode_then_decode(
        entries in proptest::collection::btree_map(
            CLIENT_IDS,
            (any::<u32>(), prop_oneof![Just("null".to_owned()), "\\PC{0,16}".prop_map(|s| serde_json::json!({ "user": { "name": s } }).to_string())]),
            0..6,
        ),
    ) {
        let list: Vec<(u64, u32, &str)> =
            entries.iter().map(|(id, (clock, json))| (*id, *clock, json.as_str())).collect();
        let update = awareness_update(&list);
        match decode_frame(&awareness(&update), 1 << 20) {
            Ok(Some(Incoming::Awareness(got))) => prop_assert_eq!(got.clients, update.clients),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}

/// Found by the properties above: yrs asserts client ids fit 53 bits (debug builds) and
/// mangles them (release builds); such frames are refused before yrs sees them.
#[test]
fn client_ids_over_53_bits_are_refused() {
    let mut big = Vec::new();
    big.write_var(MAX_CLIENT_ID);
    // A state vector, an awareness update and an update (one GC block), each with the id.
    let mut sv = vec![0u8, 0];
    sv.write_buf([&[1u8][..], &big, &[5]].concat());
    let mut aw = vec![1u8];
    aw.write_buf([&[1u8][..], &big, &[1], &[4], b"null"].concat());
    let mut up = vec![0u8, 2];
    up.write_buf([&[1u8, 1][..], &big, &[0, 0, 1, 0]].concat());
    for frame in [sv, aw, up] {
        assert_eq!(
            decode_frame(&Bytes::from(frame), 1 << 20).unwrap_err(),
            FrameError::Malformed("client id over 53 bits")
        );
    }
}

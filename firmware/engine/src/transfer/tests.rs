//! Tests of the file channel.

use super::*;
use portal_proto::channel::Chunk;
use proptest::prelude::*;
use sha2::Digest;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug)]
enum Op {
    Offer { id: u32, size: u64 },
    Chunk { id: u32, len: usize, byte: u8 },
    End { id: u32, honest: bool },
    Cancel { id: u32 },
    Garbage,
    Decide { id: u32, accept: bool },
    Tick,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..3, 0u64..300).prop_map(|(id, size)| Op::Offer { id, size }),
        (0u32..3, 0usize..120, any::<u8>()).prop_map(|(id, len, byte)| Op::Chunk { id, len, byte }),
        (0u32..3, any::<bool>()).prop_map(|(id, honest)| Op::End { id, honest }),
        (0u32..3).prop_map(|id| Op::Cancel { id }),
        Just(Op::Garbage),
        (0u32..3, any::<bool>()).prop_map(|(id, accept)| Op::Decide { id, accept }),
        Just(Op::Tick),
        Just(Op::Close),
    ]
}

proptest! {
    /// Whatever a remote sender says, in any order, the receiver writes only into
    /// files it created for an accepted transfer, and commits only files whose bytes
    /// have exactly the offered size and the digest of what was received.
    #[test]
    fn a_receiver_never_commits_what_does_not_check_out(
        ask in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let config = FileConfig {
            policy: if ask { ReceivePolicy::Ask } else { ReceivePolicy::Accept },
            max_size: 250,
            ask_timeout: Duration::from_secs(1),
            ..FileConfig::default()
        };
        let mut ch = FileChannel::new(config, "t");
        ch.opened();
        let t0 = Instant::now();
        let mut now = t0;
        let taken = Receiving::ALONE;
        // What the remote sent per id (to build honest digests).
        let mut sent: HashMap<u32, Vec<u8>> = HashMap::new();
        // The "disk": temp name -> bytes, and committed names.
        let mut temps: HashMap<String, Vec<u8>> = HashMap::new();
        let mut temp_of: HashMap<u32, String> = HashMap::new();
        let mut committed: HashSet<String> = HashSet::new();
        for op in ops {
            match op {
                Op::Offer { id, size } => {
                    sent.insert(id, Vec::new());
                    let msg = FileMessage::Offer { id, name: format!("f{id}.bin"), size, mime: String::new() };
                    ch.on_text(now, &msg.to_json(), &taken);
                }
                Op::Chunk { id, len, byte } => {
                    let payload = vec![byte; len];
                    sent.entry(id).or_default().extend_from_slice(&payload);
                    ch.on_binary(&Chunk::encode(id, &payload));
                }
                Op::End { id, honest } => {
                    let digest = if honest {
                        hex(&Sha256::digest(sent.get(&id).map_or(&[][..], Vec::as_slice)))
                    } else {
                        "00".repeat(32)
                    };
                    ch.on_text(now, &FileMessage::End { id, sha256: digest }.to_json(), &taken);
                }
                Op::Cancel { id } => {
                    let msg = FileMessage::Cancel { id, by: TransferSide::Sender, reason: String::new() };
                    ch.on_text(now, &msg.to_json(), &taken);
                }
                Op::Garbage => ch.on_text(now, r#"{"type":"surprise","id":1}"#, &taken),
                Op::Decide { id, accept } => {
                    let _ = if accept { ch.accept(id, &taken) } else { ch.decline(id) };
                }
                Op::Tick => {
                    now += Duration::from_millis(400);
                    ch.handle_timeout(now);
                }
                Op::Close => {
                    ch.closed();
                    ch.opened();
                }
            }
            let actions: Vec<FileAction> = ch.drain_actions().collect();
            for action in actions {
                match action {
                    FileAction::Create { id, temp } => {
                        prop_assert!(temp.starts_with('.'));
                        prop_assert!(temps.insert(temp.clone(), Vec::new()).is_none());
                        temp_of.insert(id, temp);
                    }
                    FileAction::Write { id, offset, bytes } => {
                        let temp = temp_of.get(&id);
                        prop_assert!(temp.is_some(), "write before create");
                        let file = temps.get_mut(temp.unwrap());
                        prop_assert!(file.is_some(), "write after discard/commit");
                        let file = file.unwrap();
                        prop_assert_eq!(file.len() as u64, offset);
                        file.extend_from_slice(&bytes);
                    }
                    FileAction::Commit { id, temp, name } => {
                        let bytes = temps.remove(&temp);
                        prop_assert!(bytes.is_some());
                        let bytes = bytes.unwrap();
                        let t = ch.transfer(TransferSide::Receiver, id).unwrap();
                        prop_assert_eq!(bytes.len() as u64, t.size);
                        prop_assert!(t.size <= 250);
                        prop_assert_eq!(Some(hex(&Sha256::digest(&bytes))), t.sha256.clone());
                        prop_assert!(committed.insert(name));
                        ch.stored(id).unwrap();
                    }
                    FileAction::Discard { temp, .. } => {
                        temps.remove(&temp);
                    }
                    FileAction::SendText(text) => {
                        prop_assert!(FileMessage::parse(&text).is_ok());
                    }
                    FileAction::SendBinary(_) => prop_assert!(false, "a receiver sends no chunks"),
                    FileAction::Read { .. } => prop_assert!(false, "a receiver reads nothing"),
                    FileAction::Changed { .. } | FileAction::Ask { .. } => {}
                }
            }
            // Only unfinished transfers hold temp files.
            for (id, temp) in &temp_of {
                if temps.contains_key(temp) {
                    let state = &ch.transfer(TransferSide::Receiver, *id).unwrap().state;
                    prop_assert!(!state.is_final(), "{id}: {state:?} keeps its temp file");
                }
            }
        }
    }
}

#[test]
fn sender_paces_reads_by_the_buffered_amount() {
    let config = FileConfig {
        high_water: 100_000,
        ..FileConfig::default()
    };
    let mut ch = FileChannel::new(config, "t");
    ch.opened();
    let id = ch.offer("a.bin", 1_000_000, "").unwrap();
    ch.drain_actions().for_each(drop);
    ch.on_text(
        Instant::now(),
        &FileMessage::Accept { id }.to_json(),
        &Receiving::ALONE,
    );
    let mut reads = 0;
    loop {
        let actions: Vec<_> = ch.drain_actions().collect();
        let Some(FileAction::Read { offset, len, .. }) = actions
            .iter()
            .find(|a| matches!(a, FileAction::Read { .. }))
            .cloned()
        else {
            break;
        };
        reads += 1;
        assert_eq!(offset, (reads - 1) * FILE_CHUNK_PAYLOAD as u64);
        ch.provide(id, &vec![0; len]).unwrap();
    }
    // 100 000 bytes of high water allow two 64 KiB frames before the channel waits.
    assert_eq!(reads, 2);
    ch.set_buffered(0);
    assert!(
        ch.drain_actions()
            .any(|a| matches!(a, FileAction::Read { .. }))
    );
    assert_eq!(
        ch.provide(id, &[1, 2, 3]),
        Err(TransferError::ShortRead {
            expected: FILE_CHUNK_PAYLOAD,
            got: 3
        })
    );
    assert!(matches!(
        ch.transfer(TransferSide::Sender, id).unwrap().state,
        TransferState::Cancelled {
            by: TransferSide::Sender,
            ..
        }
    ));
}

// ---- bounds: what a remote sender can make the receiver hold ----

fn offer(id: u32, name: &str, size: u64, mime: &str) -> String {
    FileMessage::Offer {
        id,
        name: name.to_owned(),
        size,
        mime: mime.to_owned(),
    }
    .to_json()
}

/// The messages the channel sent since the last call, and whether it wrote or made files.
fn take(ch: &mut FileChannel) -> (Vec<FileMessage>, usize) {
    let mut sent = Vec::new();
    let mut io = 0;
    for action in ch.drain_actions() {
        match action {
            FileAction::SendText(text) => sent.push(FileMessage::parse(&text).unwrap()),
            FileAction::Create { .. } | FileAction::Write { .. } | FileAction::Commit { .. } => {
                io += 1;
            }
            _ => {}
        }
    }
    (sent, io)
}

fn receiver(policy: ReceivePolicy) -> FileChannel {
    let config = FileConfig {
        policy,
        ask_timeout: Duration::from_secs(60),
        ..FileConfig::default()
    };
    let mut ch = FileChannel::new(config, "t");
    ch.opened();
    ch
}

fn declined(msgs: &[FileMessage], why: DeclineReason) -> usize {
    msgs.iter()
        .filter(|m| matches!(m, FileMessage::Decline { reason, .. } if *reason == why))
        .count()
}

#[test]
fn an_offer_flood_is_declined_busy_and_the_table_stays_bounded() {
    let mut ch = receiver(ReceivePolicy::Ask);
    let config = ch.config().clone();
    let t0 = Instant::now();
    for id in 0..10_000 {
        ch.on_text(t0, &offer(id, "x.bin", 10, ""), &Receiving::ALONE);
    }
    let (sent, io) = take(&mut ch);
    assert_eq!(io, 0);
    // Every excess offer is declined; only a second's share of them hears so.
    let excess = 10_000 - config.max_incoming_per_peer as u64;
    assert_eq!(
        declined(&sent, DeclineReason::Busy),
        DECLINES_PER_SECOND as usize
    );
    assert_eq!(ch.incoming_in_flight(), config.max_incoming_per_peer);
    assert_eq!(ch.transfers().count(), config.max_incoming_per_peer);
    assert_eq!(ch.stats().declined_busy, excess);
    assert_eq!(
        ch.stats().unanswered,
        excess - u64::from(DECLINES_PER_SECOND)
    );
    // The next second answers again.
    ch.on_text(
        t0 + Duration::from_secs(1),
        &offer(20_000, "x", 1, ""),
        &Receiving::ALONE,
    );
    assert_eq!(declined(&take(&mut ch).0, DeclineReason::Busy), 1);
    // Unanswered offers are declined in time and free their places; what ended stays
    // within `keep_finished` however many rounds the flood goes on.
    let mut now = t0;
    for round in 1..=20u32 {
        now += config.ask_timeout;
        ch.handle_timeout(now);
        for id in 0..100 {
            ch.on_text(
                now,
                &offer(round * 1000 + id, "x", 1, ""),
                &Receiving::ALONE,
            );
        }
        take(&mut ch);
        assert!(ch.incoming_in_flight() <= config.max_incoming_per_peer);
        assert!(ch.transfers().count() <= config.max_incoming_per_peer + config.keep_finished);
    }
    assert!(ch.stats().forgotten > 0);
}

#[test]
fn the_call_wide_cap_counts_the_other_peers() {
    let mut ch = receiver(ReceivePolicy::Ask);
    let total = ch.config().max_incoming_total;
    let crowded = Receiving {
        in_flight_elsewhere: total - 1,
        ..Receiving::ALONE
    };
    ch.on_text(Instant::now(), &offer(1, "a", 1, ""), &crowded);
    ch.on_text(Instant::now(), &offer(2, "b", 1, ""), &crowded);
    let (sent, _) = take(&mut ch);
    assert_eq!(declined(&sent, DeclineReason::Busy), 1);
    assert_eq!(ch.incoming_in_flight(), 1);
}

#[test]
fn declined_floods_with_fresh_ids_keep_received_files_listed() {
    let mut ch = receiver(ReceivePolicy::Accept);
    let keep = ch.config().keep_finished;
    let now = Instant::now();
    // One file received properly first.
    ch.on_text(
        now,
        &offer(1, "kept.txt", 3, "text/plain"),
        &Receiving::ALONE,
    );
    ch.on_binary(&Chunk::encode(1, b"abc"));
    let digest = hex(&Sha256::digest(b"abc"));
    ch.on_text(
        now,
        &FileMessage::End {
            id: 1,
            sha256: digest,
        }
        .to_json(),
        &Receiving::ALONE,
    );
    ch.stored(1).unwrap();
    ch.set_policy(ReceivePolicy::Deny);
    for id in 2..5_000 {
        ch.on_text(now, &offer(id, "spam", 1, ""), &Receiving::ALONE);
    }
    let (sent, _) = take(&mut ch);
    assert_eq!(
        declined(&sent, DeclineReason::Policy),
        DECLINES_PER_SECOND as usize
    );
    assert_eq!(ch.transfers().count(), keep);
    assert_eq!(
        ch.transfer(TransferSide::Receiver, 1).map(|t| &t.state),
        Some(&TransferState::Complete)
    );
}

#[test]
fn overlong_names_mime_types_and_frames_are_refused() {
    let mut ch = receiver(ReceivePolicy::Accept);
    let now = Instant::now();
    let long = "n".repeat(MAX_FILE_NAME + 1);
    ch.on_text(now, &offer(1, &long, 1, ""), &Receiving::ALONE);
    ch.on_text(
        now,
        &offer(2, "a.txt", 1, &"m".repeat(256)),
        &Receiving::ALONE,
    );
    ch.on_text(now, &offer(3, "", 1, ""), &Receiving::ALONE);
    let (sent, io) = take(&mut ch);
    assert_eq!(declined(&sent, DeclineReason::Invalid), 3);
    assert_eq!(io, 0);
    assert_eq!(ch.transfers().count(), 0, "invalid offers are not kept");
    // A text frame past the cap is not even parsed.
    let padded = format!("{}{}", offer(4, "a", 1, ""), " ".repeat(9000));
    ch.on_text(now, &padded, &Receiving::ALONE);
    assert_eq!(take(&mut ch).0, []);
    assert_eq!(ch.stats().ignored_frames, 1);
    assert_eq!(ch.stats().declined_invalid, 3);
}

#[test]
fn offered_names_are_shown_and_stored_safely() {
    let mut ch = receiver(ReceivePolicy::Accept);
    let now = Instant::now();
    let taken = |n: &str| n == "_CON.txt";
    let ctx = Receiving {
        taken: &taken,
        ..Receiving::ALONE
    };
    ch.on_text(now, &offer(1, "../CON.txt", 1, "text/\u{202E}plain"), &ctx);
    ch.on_text(now, &offer(2, ".\u{202E}gpj.exe\n", 1, ""), &ctx);
    let one = ch.transfer(TransferSide::Receiver, 1).unwrap();
    assert_eq!(one.stored_name.as_deref(), Some("_CON (1).txt"));
    assert_eq!(one.mime, "text/_plain");
    let two = ch.transfer(TransferSide::Receiver, 2).unwrap();
    assert_eq!(two.offered_name, "._gpj.exe_");
    assert_eq!(two.stored_name.as_deref(), Some("_gpj.exe_"));
}

#[test]
fn chunks_out_of_sequence_do_not_count() {
    let mut ch = receiver(ReceivePolicy::Ask);
    let now = Instant::now();
    // A chunk for no transfer, and one before the person accepted: the latter cancels.
    ch.on_binary(&Chunk::encode(9, b"zz"));
    ch.on_text(now, &offer(1, "a", 4, ""), &Receiving::ALONE);
    take(&mut ch);
    ch.on_binary(&Chunk::encode(1, b"ab"));
    let (sent, io) = take(&mut ch);
    assert_eq!(io, 0);
    assert!(matches!(
        sent.as_slice(),
        [FileMessage::Cancel {
            id: 1,
            by: TransferSide::Receiver,
            ..
        }]
    ));
    // Accepted: an empty chunk writes nothing, bytes past the size fail the transfer.
    ch.on_text(now, &offer(2, "b", 4, ""), &Receiving::ALONE);
    ch.accept(2, &Receiving::ALONE).unwrap();
    take(&mut ch);
    ch.on_binary(&Chunk::encode(2, b""));
    ch.on_binary(&Chunk::encode(2, b"abc"));
    assert_eq!(take(&mut ch).1, 1);
    ch.on_binary(&Chunk::encode(2, b"de"));
    let (sent, io) = take(&mut ch);
    assert_eq!(io, 0);
    assert!(matches!(
        sent.as_slice(),
        [FileMessage::Failed { id: 2, .. }]
    ));
    // `end` early fails; chunks after a good `end` are ignored.
    ch.on_text(now, &offer(3, "c", 2, ""), &Receiving::ALONE);
    ch.accept(3, &Receiving::ALONE).unwrap();
    ch.on_binary(&Chunk::encode(3, b"x"));
    let early = FileMessage::End {
        id: 3,
        sha256: hex(&Sha256::digest(b"x")),
    };
    ch.on_text(now, &early.to_json(), &Receiving::ALONE);
    take(&mut ch);
    assert!(matches!(
        ch.transfer(TransferSide::Receiver, 3).unwrap().state,
        TransferState::Failed(_)
    ));
    ch.on_text(now, &offer(4, "d", 1, ""), &Receiving::ALONE);
    ch.accept(4, &Receiving::ALONE).unwrap();
    ch.on_binary(&Chunk::encode(4, b"y"));
    let end = FileMessage::End {
        id: 4,
        sha256: hex(&Sha256::digest(b"y")),
    };
    ch.on_text(now, &end.to_json(), &Receiving::ALONE);
    take(&mut ch);
    ch.on_binary(&Chunk::encode(4, b"z"));
    assert_eq!(take(&mut ch), (vec![], 0));
    assert_eq!(
        ch.transfer(TransferSide::Receiver, 4).unwrap().transferred,
        1
    );
    assert_eq!(ch.stats().ignored_frames, 4);
}

#[test]
fn offers_need_free_space_next_to_what_is_still_writing() {
    let mut ch = receiver(ReceivePolicy::Accept);
    let margin = ch.config().min_free_bytes;
    let now = Instant::now();
    let disk = Receiving {
        free_bytes: Some(margin + 1000),
        ..Receiving::ALONE
    };
    ch.on_text(now, &offer(1, "a", 600, ""), &disk);
    // Fits alone, not next to the 600 bytes transfer 1 has still to write.
    ch.on_text(now, &offer(2, "b", 600, ""), &disk);
    let (sent, _) = take(&mut ch);
    assert!(sent.contains(&FileMessage::Accept { id: 1 }));
    assert_eq!(declined(&sent, DeclineReason::NoSpace), 1);
    // Other peers' transfers count too.
    let shared = Receiving {
        pending_elsewhere: 500,
        ..disk
    };
    ch.on_text(now, &offer(3, "c", 100, ""), &shared);
    assert_eq!(declined(&take(&mut ch).0, DeclineReason::NoSpace), 1);
    // Asked first, accepted after the disk filled up: declined, and the person is told.
    ch.set_policy(ReceivePolicy::Ask);
    ch.on_text(now, &offer(4, "d", 300, ""), &disk);
    let full = Receiving {
        free_bytes: Some(margin),
        ..Receiving::ALONE
    };
    assert_eq!(ch.accept(4, &full), Err(TransferError::NoSpace));
    assert_eq!(declined(&take(&mut ch).0, DeclineReason::NoSpace), 1);
    assert_eq!(ch.stats().declined_no_space, 3);
    // Unknown free space checks nothing.
    ch.on_text(now, &offer(5, "e", 300, ""), &Receiving::ALONE);
    assert_eq!(ch.accept(5, &Receiving::ALONE), Ok(()));
}

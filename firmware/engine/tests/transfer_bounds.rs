//! What peers in a call can make the kiosk hold through their file channels, decided by
//! the engine over all of them: offers in flight in the whole call, and bytes accepted
//! against the free disk space the I/O layer measured. Simulated time, no I/O.

use std::time::{Duration, Instant};

use portal_engine::transfer::FileConfig;
use portal_engine::{Channel, Engine, EngineConfig, FileAction, Input, Output, ReceivePolicy};
use portal_proto::channel::{DeclineReason, FileMessage};
use portal_proto::{PeerId, ServerMessage};

const ME: PeerId = PeerId(1);

/// A kiosk in a room with browsers `2..2+peers`, every file channel open.
fn kiosk(policy: ReceivePolicy, peers: u64) -> Engine {
    let mut config = EngineConfig::new("bounds", "kiosk");
    config.files = FileConfig {
        policy,
        ..FileConfig::default()
    };
    let mut e = Engine::new(config);
    let now = Instant::now();
    e.handle(now, Input::SignalingOpened);
    let welcome = r#"{"type":"welcome","protocol":1,"peerId":1,"serverTime":0,"iceServers":[],"resumeToken":"t","resumed":false}"#;
    e.handle(now, Input::Server(ServerMessage::parse(welcome).unwrap()));
    let others: Vec<String> = (2..2 + peers)
        .map(|id| format!(r#"{{"id":{id},"name":"b{id}","role":"browser"}}"#))
        .collect();
    let joined = format!(
        r#"{{"type":"joined","room":"bounds","peerId":{},"peers":[{}],"docToken":""}}"#,
        ME.0,
        others.join(",")
    );
    e.handle(now, Input::Server(ServerMessage::parse(&joined).unwrap()));
    for id in 2..2 + peers {
        e.handle(
            now,
            Input::ChannelOpened {
                peer: PeerId(id),
                channel: Channel::File,
            },
        );
    }
    drain(&mut e);
    e
}

/// The file messages the engine sends, by peer.
fn drain(e: &mut Engine) -> Vec<(PeerId, FileMessage)> {
    std::iter::from_fn(|| e.poll_output())
        .filter_map(|out| match out {
            Output::File {
                peer,
                action: FileAction::SendText(text),
            } => Some((peer, FileMessage::parse(&text).unwrap())),
            _ => None,
        })
        .collect()
}

fn offer(e: &mut Engine, now: Instant, peer: u64, id: u32, size: u64) {
    let text = FileMessage::Offer {
        id,
        name: format!("f{id}.bin"),
        size,
        mime: String::new(),
    }
    .to_json();
    e.handle(
        now,
        Input::FileText {
            peer: PeerId(peer),
            text,
        },
    );
}

fn busy(sent: &[(PeerId, FileMessage)]) -> Vec<PeerId> {
    sent.iter()
        .filter(|(_, m)| {
            matches!(
                m,
                FileMessage::Decline {
                    reason: DeclineReason::Busy,
                    ..
                }
            )
        })
        .map(|(p, _)| *p)
        .collect()
}

#[test]
fn offers_in_flight_are_capped_over_the_whole_call() {
    let config = FileConfig::default();
    let per_peer = config.max_incoming_per_peer as u64;
    let total = config.max_incoming_total as u64;
    let peers = total / per_peer + 1;
    let mut e = kiosk(ReceivePolicy::Ask, peers);
    let now = Instant::now();
    for peer in 2..2 + peers {
        for id in 0..per_peer as u32 + 3 {
            offer(&mut e, now, peer, id, 10);
        }
    }
    let declined = busy(&drain(&mut e));
    // Every peer's excess over its own cap, and all of the last peer's offers.
    assert_eq!(declined.len() as u64, peers * 3 + per_peer, "{declined:?}");
    let last = PeerId(1 + peers);
    assert_eq!(
        declined.iter().filter(|p| **p == last).count() as u64,
        per_peer + 3
    );
    let in_flight = e
        .transfers()
        .iter()
        .filter(|(_, t)| !t.state.is_final())
        .count() as u64;
    assert_eq!(in_flight, total);
    assert_eq!(e.file_stats().declined_busy, peers * 3 + per_peer);

    // The ask timeout ends the waiting offers; the places are free again.
    let later = now + config.ask_timeout + Duration::from_secs(1);
    e.handle_timeout(later);
    drain(&mut e);
    offer(&mut e, later, 1 + peers, 100, 10);
    assert!(busy(&drain(&mut e)).is_empty());
}

#[test]
fn free_space_is_shared_by_every_peer_still_writing() {
    let margin = FileConfig::default().min_free_bytes;
    let mut e = kiosk(ReceivePolicy::Accept, 2);
    let now = Instant::now();
    e.set_free_bytes(Some(margin + 1000));
    offer(&mut e, now, 2, 1, 700);
    offer(&mut e, now, 3, 1, 700);
    let sent = drain(&mut e);
    assert!(sent.contains(&(PeerId(2), FileMessage::Accept { id: 1 })));
    assert!(sent.contains(&(
        PeerId(3),
        FileMessage::Decline {
            id: 1,
            reason: DeclineReason::NoSpace
        }
    )));
    assert_eq!(e.file_stats().declined_no_space, 1);
    // Unknown free space (statvfs failed): no check.
    e.set_free_bytes(None);
    offer(&mut e, now, 3, 2, 700);
    assert!(drain(&mut e).contains(&(PeerId(3), FileMessage::Accept { id: 2 })));
}

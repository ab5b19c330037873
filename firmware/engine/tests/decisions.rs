//! Decisions the kiosk used to make itself and now asks the engine: which offer a bare
//! file id means, whose picture a snapshot takes, what muting and the camera do, and that
//! every chat line (ours too) arrives as an event.

use std::time::Instant;

use portal_engine::transfer::FileConfig;
use portal_engine::{
    Channel, Engine, EngineConfig, EngineError, Event, FileKey, FileRef, Input, MediaState, Output,
    ReceivePolicy, StageContent,
};
use portal_proto::channel::{ChatChannelMessage, FileMessage};
use portal_proto::{PeerId, Role};

mod common;

use common::{drain, info, joined, welcome};

/// Kiosk 10 in a room with browsers 3 and 4, both channels open to each.
fn in_room(now: Instant) -> Engine {
    let mut config = EngineConfig::new("r", "Room 4.01");
    config.files = FileConfig {
        policy: ReceivePolicy::Ask,
        ..FileConfig::default()
    };
    let mut e = Engine::new(config);
    e.handle(now, Input::SignalingOpened);
    e.handle(now, welcome(10, false));
    e.handle(
        now,
        joined(10, vec![info(3, Role::Browser), info(4, Role::Browser)]),
    );
    for peer in [PeerId(3), PeerId(4)] {
        for channel in [Channel::Chat, Channel::File] {
            e.handle(now, Input::ChannelOpened { peer, channel });
        }
    }
    drain(&mut e);
    e
}

fn offer(e: &mut Engine, now: Instant, peer: u64, id: u32) {
    let text = FileMessage::Offer {
        id,
        name: format!("notes-{peer}-{id}.txt"),
        size: 10,
        mime: "text/plain".into(),
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

#[test]
fn a_bare_file_id_means_the_one_offer_waiting_under_it() {
    let now = Instant::now();
    let mut e = in_room(now);
    assert_eq!(
        e.resolve_offer("1".parse().unwrap()),
        Err(EngineError::NoOffer(1))
    );
    offer(&mut e, now, 3, 1);
    let outs = drain(&mut e);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::Event(Event::Transfer { key, .. }) if *key == FileKey::new(PeerId(3), 1)
        )),
        "an offer is news for the views: {outs:?}"
    );
    assert_eq!(
        e.resolve_offer("1".parse().unwrap()),
        Ok(FileKey::new(PeerId(3), 1))
    );
    offer(&mut e, now, 4, 1);
    assert_eq!(
        e.resolve_offer("1".parse().unwrap()),
        Err(EngineError::AmbiguousOffer(1))
    );
    let named: FileRef = "4-1".parse().unwrap();
    assert_eq!(e.decide_file(named, false), Ok(FileKey::new(PeerId(4), 1)));
    // Declined, 4's offer no longer waits: the bare id means 3's again.
    assert_eq!(
        e.decide_file("1".parse().unwrap(), true),
        Ok(FileKey::new(PeerId(3), 1))
    );
}

#[test]
fn a_snapshot_takes_the_asked_peer_then_the_stage_then_the_first() {
    let now = Instant::now();
    let mut e = in_room(now);
    assert_eq!(e.snapshot_peer(Some(PeerId(4))), Ok(PeerId(4)));
    assert_eq!(
        e.snapshot_peer(Some(PeerId(9))),
        Err(EngineError::UnknownPeer(PeerId(9)))
    );
    let on_stage = e.stage().content.peer().expect("someone is on stage");
    assert_eq!(e.snapshot_peer(None), Ok(on_stage));
    e.pin(Some(StageContent::Camera(PeerId(4))));
    assert_eq!(e.snapshot_peer(None), Ok(PeerId(4)));

    let mut empty = Engine::new(EngineConfig::new("r", "k"));
    assert_eq!(empty.snapshot_peer(None), Err(EngineError::NoPeer));
    drain(&mut empty);
}

#[test]
fn muting_and_the_camera_gate_the_media_tell_the_peers_and_restart_with_a_keyframe() {
    let now = Instant::now();
    let mut e = in_room(now);
    e.set_mic_muted(true);
    let outs = drain(&mut e);
    let muted = MediaState {
        audio: false,
        video: true,
        screen: false,
        recording: false,
    };
    assert!(outs.contains(&Output::LocalMedia(muted)), "{outs:?}");
    assert!(outs.contains(&Output::Event(Event::LocalMedia(muted))));
    let told: Vec<u64> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Chat { peer, text } if text.contains("\"state\"") => Some(peer.0),
            _ => None,
        })
        .collect();
    assert_eq!(told, [3, 4]);
    e.set_mic_muted(true);
    assert!(drain(&mut e).is_empty(), "no change, no news");

    e.set_camera_off(true);
    assert!(!drain(&mut e).contains(&Output::Keyframe));
    e.set_camera_off(false);
    let outs = drain(&mut e);
    assert!(outs.contains(&Output::Keyframe), "{outs:?}");
    assert_eq!(e.local_media(), muted);
}

#[test]
fn every_chat_line_ours_included_arrives_as_an_event() {
    let now = Instant::now();
    let mut e = in_room(now);
    e.send_chat(1.0, "hello room").unwrap();
    let outs = drain(&mut e);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::Event(Event::Chat(entry)) if entry.peer.is_none() && entry.text == "hello room"
        )),
        "{outs:?}"
    );
    let text = ChatChannelMessage::Chat {
        id: "3-1".into(),
        from: "Browser".into(),
        time: 2.0,
        text: "hi kiosk".into(),
    }
    .to_json();
    e.handle(
        now,
        Input::ChatText {
            peer: PeerId(3),
            text,
        },
    );
    let outs = drain(&mut e);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::Event(Event::Chat(entry))
                if entry.peer == Some(PeerId(3)) && entry.from == "peer 3"
        )),
        "shown under the name the server admitted, not the one claimed: {outs:?}"
    );
    assert_eq!(e.chat().len(), 2);
    // Too long: dropped, not shown.
    let long = ChatChannelMessage::Chat {
        id: "3-2".into(),
        from: "x".repeat(10_000),
        time: 3.0,
        text: "y".repeat(100_000),
    }
    .to_json();
    e.handle(
        now,
        Input::ChatText {
            peer: PeerId(3),
            text: long,
        },
    );
    assert!(drain(&mut e).is_empty());
    assert_eq!(e.chat().len(), 2);
}

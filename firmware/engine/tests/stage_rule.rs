//! The stage rule through the engine: screen shares (from the peers' chat-channel state),
//! the presenting laptop, the editor's presenter, the room's watch state and the peers'
//! audio levels decide what the room display shows; taps pin; every change is one
//! `Event::Stage`, and only a change is.

use std::time::{Duration, Instant};

use portal_engine::{
    Engine, EngineConfig, Event, Input, Output, StageChoice, StageContent, StageReason,
};
use portal_proto::{PeerId, Role, ServerMessage, VideoSource, WatchState};

mod common;

use common::{drain, info, joined, welcome};

const ANNA: PeerId = PeerId(3);
const BEN: PeerId = PeerId(5);

fn in_room(t0: Instant) -> Engine {
    let mut e = Engine::new(EngineConfig::new("r", "Room 4.01"));
    e.handle(t0, Input::SignalingOpened);
    e.handle(t0, welcome(10, false));
    e.handle(
        t0,
        joined(10, vec![info(3, Role::Browser), info(5, Role::Browser)]),
    );
    drain(&mut e);
    e
}

fn stages(outs: &[Output]) -> Vec<StageChoice> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(Event::Stage(choice)) => Some(*choice),
            _ => None,
        })
        .collect()
}

fn on(content: StageContent, reason: StageReason) -> StageChoice {
    StageChoice { content, reason }
}

fn sharing(e: &mut Engine, now: Instant, peer: PeerId, screen: bool) {
    e.handle(
        now,
        Input::ChatText {
            peer,
            text: format!(
                r#"{{"type":"state","audio":true,"video":true,"screen":{screen},"recording":false}}"#
            ),
        },
    );
}

fn watching(e: &mut Engine, now: Instant, source: Option<VideoSource>) {
    e.handle(
        now,
        Input::Server(ServerMessage::Watch {
            state: WatchState {
                source,
                playing: false,
                position: 0.0,
                rate: 1.0,
            },
            server_time: 0.0,
            by: None,
        }),
    );
}

fn youtube() -> VideoSource {
    VideoSource::Youtube {
        video_id: "dQw4w9WgXcQ".into(),
    }
}

/// `peer` talks for a second from `at`.
fn talks(e: &mut Engine, at: Instant, peer: PeerId) {
    for i in 0..=10 {
        e.handle(
            at + Duration::from_millis(i * 100),
            Input::AudioLevel { peer, level: 0.4 },
        );
    }
}

#[test]
fn a_share_then_the_editor_then_the_video_then_the_speaker_then_the_first() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    assert_eq!(
        e.stage(),
        on(StageContent::Camera(ANNA), StageReason::First)
    );

    talks(&mut e, t0, BEN);
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Camera(BEN), StageReason::Speaking)]
    );
    watching(&mut e, t0, Some(youtube()));
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Watch, StageReason::Watching)]
    );
    e.set_editor_presenter(Some("Ada".into()));
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Editor, StageReason::Editor)]
    );
    sharing(&mut e, t0, ANNA, true);
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Screen(ANNA), StageReason::ScreenShare)]
    );

    // And back, as each one ends.
    sharing(&mut e, t0, ANNA, false);
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Editor, StageReason::Editor)]
    );
    e.set_editor_presenter(None);
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Watch, StageReason::Watching)]
    );
    watching(&mut e, t0, None);
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Camera(BEN), StageReason::Speaking)]
    );
}

#[test]
fn the_presenting_laptops_share_comes_before_a_newer_one() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    sharing(&mut e, t0, ANNA, true);
    sharing(&mut e, t0 + Duration::from_secs(1), BEN, true);
    assert_eq!(
        stages(&drain(&mut e)),
        [
            on(StageContent::Screen(ANNA), StageReason::ScreenShare),
            on(StageContent::Screen(BEN), StageReason::ScreenShare)
        ],
        "the most recent share"
    );
    e.set_presenter(Some(ANNA));
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Screen(ANNA), StageReason::Presenting)]
    );
}

#[test]
fn a_tap_pins_until_a_second_tap_and_a_new_speaker_does_not_undo_it() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    e.tap(StageContent::Camera(BEN));
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Camera(BEN), StageReason::Pinned)]
    );
    assert_eq!(e.pinned(), Some(StageContent::Camera(BEN)));
    talks(&mut e, t0, ANNA);
    assert!(stages(&drain(&mut e)).is_empty(), "the pin holds");
    e.tap(StageContent::Camera(BEN));
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Camera(ANNA), StageReason::Speaking)]
    );
    assert_eq!(e.pinned(), None);
}

#[test]
fn a_change_of_rule_or_a_peer_leaving_ends_the_pin() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    sharing(&mut e, t0, ANNA, true);
    e.tap(StageContent::Editor);
    assert_eq!(
        stages(&drain(&mut e)),
        [
            on(StageContent::Screen(ANNA), StageReason::ScreenShare),
            on(StageContent::Editor, StageReason::Pinned)
        ]
    );
    // Watching starts: the pin goes, the share stays on top.
    watching(&mut e, t0, Some(youtube()));
    assert_eq!(
        stages(&drain(&mut e)),
        [on(StageContent::Screen(ANNA), StageReason::ScreenShare)]
    );
    e.pin(Some(StageContent::Camera(BEN)));
    e.handle(t0, Input::Server(ServerMessage::PeerLeft { peer_id: BEN }));
    assert_eq!(
        stages(&drain(&mut e)),
        [
            on(StageContent::Camera(BEN), StageReason::Pinned),
            on(StageContent::Screen(ANNA), StageReason::ScreenShare)
        ]
    );
    assert_eq!(e.pinned(), None);
}

#[test]
fn a_peer_is_pinned_by_its_share_while_it_shares() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    assert_eq!(e.peer_content(ANNA), StageContent::Camera(ANNA));
    sharing(&mut e, t0, ANNA, true);
    assert_eq!(e.peer_content(ANNA), StageContent::Screen(ANNA));
    assert_eq!(e.peer_content(BEN), StageContent::Camera(BEN));
    // Pinning what is not there changes nothing.
    e.pin(Some(StageContent::Screen(BEN)));
    e.pin(Some(StageContent::Camera(PeerId(99))));
    e.pin(Some(StageContent::Watch));
    drain(&mut e);
    assert_eq!(e.pinned(), None);
}

#[test]
fn only_a_change_is_reported() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    e.set_editor_presenter(Some("Ada".into()));
    assert_eq!(stages(&drain(&mut e)).len(), 1);
    e.set_editor_presenter(Some("Grace".into()));
    e.set_presenter(None);
    sharing(&mut e, t0, BEN, false);
    watching(&mut e, t0, Some(youtube()));
    talks(&mut e, t0, BEN);
    e.pin(None);
    assert!(stages(&drain(&mut e)).is_empty());
}

#[test]
fn leaving_empties_the_stage() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    e.set_editor_presenter(Some("Ada".into()));
    e.tap(StageContent::Filmstrip);
    drain(&mut e);
    e.leave();
    assert_eq!(stages(&drain(&mut e)), [StageChoice::EMPTY]);
    assert_eq!(e.pinned(), None);
}

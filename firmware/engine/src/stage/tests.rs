use super::*;
use proptest::prelude::*;

const A: PeerId = PeerId(1);
const B: PeerId = PeerId(2);
const C: PeerId = PeerId(3);

type Change = fn(&mut Stage, Instant);

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn on(content: StageContent, reason: StageReason) -> StageChoice {
    StageChoice { content, reason }
}

fn pinned(content: StageContent) -> StageChoice {
    on(content, StageReason::Pinned)
}

fn first(p: PeerId) -> StageChoice {
    on(StageContent::Camera(p), StageReason::First)
}

fn share(p: PeerId) -> StageChoice {
    on(StageContent::Screen(p), StageReason::ScreenShare)
}

fn editor() -> StageChoice {
    on(StageContent::Editor, StageReason::Editor)
}

fn watching() -> StageChoice {
    on(StageContent::Watch, StageReason::Watching)
}

fn room(peers: &[PeerId]) -> Stage {
    let mut s = Stage::new(StageConfig::default());
    for p in peers {
        s.add(*p);
    }
    s.update();
    s
}

/// `peer` speaks long enough at `at` ms to take a free stage.
fn speak(s: &mut Stage, t0: Instant, at: u64, peer: PeerId) {
    s.audio_level(ms(t0, at), peer, 0.3);
    s.audio_level(ms(t0, at + 400), peer, 0.3);
}

#[test]
fn the_presenters_share_beats_a_newer_share_and_an_older_pin() {
    let t0 = Instant::now();
    let mut s = room(&[A, B, C]);
    s.pin(Some(StageContent::Camera(C)));
    assert_eq!(s.update(), Some(pinned(StageContent::Camera(C))));
    s.set_presenter(Some(A));
    assert_eq!(s.update(), Some(first(A)), "presenting drops the pin");
    s.set_screen(ms(t0, 0), A, true);
    s.set_screen(ms(t0, 10), B, true);
    assert_eq!(
        s.update(),
        Some(on(StageContent::Screen(A), StageReason::Presenting))
    );
    s.pin(Some(StageContent::Camera(C)));
    assert_eq!(s.update(), Some(pinned(StageContent::Camera(C))));
    s.pin(None);
    s.set_presenter(None);
    assert_eq!(s.update(), Some(share(B)));
}

#[test]
fn first_then_speaker_with_hold_then_screen_then_pin() {
    let t0 = Instant::now();
    let mut s = Stage::new(StageConfig::default());
    assert_eq!(s.update(), None, "empty room, nothing on stage, no change");
    assert_eq!(s.current(), StageChoice::EMPTY);
    s.add(A);
    s.add(B);
    s.add(C);
    assert_eq!(s.update(), Some(first(A)));

    // B speaks: takes the stage after min_speech.
    s.audio_level(ms(t0, 0), B, 0.3);
    s.audio_level(ms(t0, 100), B, 0.3);
    assert_eq!(s.update(), None);
    s.audio_level(ms(t0, 400), B, 0.3);
    let speaking = |p| Some(on(StageContent::Camera(p), StageReason::Speaking));
    assert_eq!(s.update(), speaking(B));

    // C talks over B at once: B holds the stage for `hold`.
    for t in (500..2400).step_by(100) {
        s.audio_level(ms(t0, t), C, 0.4);
        assert_eq!(s.update(), None, "at {t} ms");
    }
    s.audio_level(ms(t0, 2500), C, 0.4);
    assert_eq!(s.update(), speaking(C));

    s.set_screen(ms(t0, 3000), A, true);
    assert_eq!(s.update(), Some(share(A)));
    s.set_screen(ms(t0, 3100), B, true);
    assert_eq!(s.update(), Some(share(B)), "latest share");
    s.pin(Some(StageContent::Camera(C)));
    assert_eq!(s.update(), Some(pinned(StageContent::Camera(C))));
    s.remove(C);
    assert_eq!(s.update(), Some(share(B)));
    s.set_screen(ms(t0, 4000), B, false);
    assert_eq!(s.update(), Some(share(A)));
}

#[test]
fn each_tier_gives_way_to_the_one_above() {
    let t0 = Instant::now();
    let mut s = room(&[A, B]);
    assert_eq!(s.current(), first(A));
    speak(&mut s, t0, 0, B);
    assert_eq!(
        s.update(),
        Some(on(StageContent::Camera(B), StageReason::Speaking))
    );
    s.set_watching(true);
    assert_eq!(s.update(), Some(watching()), "the video beats the speaker");
    s.set_editor_presenter(Some("Ada".into()));
    assert_eq!(s.update(), Some(editor()), "the editor beats the video");
    assert_eq!(s.editor_presenter(), Some("Ada"));
    s.set_screen(ms(t0, 1000), A, true);
    assert_eq!(s.update(), Some(share(A)), "a share beats the editor");
    // And back down, one tier at a time.
    s.set_screen(ms(t0, 2000), A, false);
    assert_eq!(s.update(), Some(editor()));
    s.set_editor_presenter(None);
    assert_eq!(s.update(), Some(watching()));
    s.set_watching(false);
    assert_eq!(
        s.update(),
        Some(on(StageContent::Camera(B), StageReason::Speaking))
    );
    s.remove(B);
    assert_eq!(s.update(), Some(first(A)));
    s.remove(A);
    assert_eq!(s.update(), Some(StageChoice::EMPTY));
}

#[test]
fn the_editor_and_the_video_fill_the_stage_of_an_empty_room() {
    let mut s = room(&[]);
    s.set_watching(true);
    assert_eq!(s.update(), Some(watching()));
    s.set_editor_presenter(Some("Ada".into()));
    assert_eq!(s.update(), Some(editor()));
}

#[test]
fn a_pin_outlasts_a_new_speaker_but_not_a_change_of_rule() {
    let t0 = Instant::now();
    let mut s = room(&[A, B, C]);
    s.pin(Some(StageContent::Camera(A)));
    assert_eq!(s.update(), Some(pinned(StageContent::Camera(A))));
    speak(&mut s, t0, 0, B);
    speak(&mut s, t0, 3000, C);
    assert_eq!(s.update(), None, "the speaker changing keeps the pin");
    assert_eq!(s.pinned(), Some(StageContent::Camera(A)));

    // Each tier starting or stopping drops the pin.
    let changes: [(&str, Change); 6] = [
        ("a share starts", |s, t| s.set_screen(t, B, true)),
        ("a share stops", |s, t| s.set_screen(t, B, false)),
        ("an editor presenter appears", |s, _| {
            s.set_editor_presenter(Some("Ada".into()));
        }),
        ("the editor presenter leaves", |s, _| {
            s.set_editor_presenter(None);
        }),
        ("watching starts", |s, _| s.set_watching(true)),
        ("watching stops", |s, _| s.set_watching(false)),
    ];
    for (i, (what, change)) in changes.into_iter().enumerate() {
        s.pin(Some(StageContent::Camera(A)));
        s.update();
        change(&mut s, ms(t0, 10_000 + i as u64));
        assert_eq!(s.pinned(), None, "{what}");
        assert_ne!(s.update().map(|c| c.reason), Some(StageReason::Pinned));
    }

    // Another editor presenter taking over is not a change of rule.
    s.set_editor_presenter(Some("Ada".into()));
    s.pin(Some(StageContent::Camera(A)));
    s.set_editor_presenter(Some("Grace".into()));
    assert_eq!(s.update(), Some(pinned(StageContent::Camera(A))));
    // Nor is the same share or the same video reported again.
    s.set_watching(false);
    s.pin(Some(StageContent::Camera(A)));
    s.set_watching(false);
    s.set_screen(ms(t0, 20_000), C, false);
    assert_eq!(s.pinned(), Some(StageContent::Camera(A)));
}

#[test]
fn a_pin_ends_when_its_content_goes_away() {
    let t0 = Instant::now();
    let mut s = room(&[A, B]);
    s.pin(Some(StageContent::Camera(B)));
    s.remove(B);
    assert_eq!(s.update(), None, "A was first before, and is again");
    assert_eq!(s.pinned(), None);

    s.add(B);
    s.set_screen(ms(t0, 0), B, true);
    s.set_editor_presenter(Some("Ada".into()));
    s.pin(Some(StageContent::Editor));
    assert_eq!(s.update(), Some(pinned(StageContent::Editor)));
    s.set_screen(ms(t0, 100), B, false);
    assert_eq!(
        s.update(),
        Some(editor()),
        "the share stopping ends the pin"
    );

    s.set_watching(true);
    s.pin(Some(StageContent::Watch));
    assert_eq!(s.update(), Some(pinned(StageContent::Watch)));
    s.set_watching(false);
    assert_eq!(s.update(), Some(editor()), "the video closing ends the pin");
}

#[test]
fn a_laptop_starting_to_present_drops_the_pin_once() {
    let t0 = Instant::now();
    let mut s = room(&[A, B]);
    s.set_screen(ms(t0, 0), A, true);
    s.set_presenter(Some(A));
    s.pin(Some(StageContent::Camera(B)));
    s.set_presenter(Some(A));
    assert_eq!(s.update(), Some(pinned(StageContent::Camera(B))), "no news");
    s.set_presenter(None);
    assert_eq!(s.update(), None, "stopping is not a new presenter");
    s.set_presenter(Some(A));
    assert_eq!(
        s.update(),
        Some(on(StageContent::Screen(A), StageReason::Presenting))
    );
}

#[test]
fn a_second_tap_unpins_and_absent_things_are_not_pinned() {
    let t0 = Instant::now();
    let mut s = room(&[A, B]);
    s.tap(StageContent::Camera(B));
    assert_eq!(s.update(), Some(pinned(StageContent::Camera(B))));
    s.tap(StageContent::Camera(B));
    assert_eq!(s.update(), Some(first(A)));
    s.tap(StageContent::Filmstrip);
    assert_eq!(s.update(), Some(pinned(StageContent::Filmstrip)));
    // Tapping something else moves the pin.
    s.tap(StageContent::Editor);
    assert_eq!(s.update(), Some(pinned(StageContent::Editor)));
    for absent in [
        StageContent::Screen(A),
        StageContent::Camera(C),
        StageContent::Watch,
    ] {
        s.tap(absent);
        assert_eq!(s.update(), None, "{absent:?}");
    }
    s.set_screen(ms(t0, 0), A, true);
    s.tap(StageContent::Screen(A));
    assert_eq!(s.update(), Some(pinned(StageContent::Screen(A))));
}

#[test]
fn nothing_is_reported_without_a_change() {
    let t0 = Instant::now();
    let mut s = room(&[A, B]);
    assert_eq!(s.update(), None);
    s.set_screen(ms(t0, 0), A, false);
    s.set_watching(false);
    s.set_editor_presenter(None);
    s.audio_level(ms(t0, 0), B, 0.01);
    s.pin(None);
    assert_eq!(s.update(), None);
    s.set_screen(ms(t0, 10), A, true);
    assert!(s.update().is_some());
    s.set_screen(ms(t0, 20), A, true);
    s.set_watching(true);
    assert_eq!(s.update(), None, "the share still wins");
}

proptest! {
    /// Whatever happens, the stage shows something that is there, and a pin always wins.
    #[test]
    fn the_stage_always_shows_something_that_is_there(
        ops in proptest::collection::vec((0u8..10, 1u64..5, 0u32..1000), 0..200)
    ) {
        let t0 = Instant::now();
        let mut s = Stage::new(StageConfig::default());
        let mut present = std::collections::BTreeSet::new();
        let mut sharing = std::collections::BTreeSet::new();
        let (mut watch, mut presenter) = (false, false);
        for (i, (op, peer, x)) in ops.into_iter().enumerate() {
            let now = t0 + Duration::from_millis(i as u64 * 50);
            let p = PeerId(peer);
            let content = match x % 5 {
                0 => StageContent::Screen(p),
                1 => StageContent::Camera(p),
                2 => StageContent::Editor,
                3 => StageContent::Watch,
                _ => StageContent::Filmstrip,
            };
            match op {
                0 => { s.add(p); present.insert(p); }
                1 => { s.remove(p); present.remove(&p); sharing.remove(&p); }
                2 => s.audio_level(now, p, x as f32 / 1000.0),
                3 => {
                    s.set_screen(now, p, x % 2 == 0);
                    if x % 2 == 0 && present.contains(&p) { sharing.insert(p); } else { sharing.remove(&p); }
                }
                4 => s.pin(Some(content)),
                5 => s.tap(content),
                6 => { watch = x % 2 == 0; s.set_watching(watch); }
                7 => { presenter = x % 2 == 0; s.set_editor_presenter(presenter.then(|| format!("p{peer}"))); }
                8 => s.set_presenter((x % 2 == 0).then_some(p)),
                _ => s.pin(None),
            }
            s.update();
            let now_on = s.current();
            match now_on.content {
                StageContent::Camera(id) => prop_assert!(present.contains(&id)),
                StageContent::Screen(id) => prop_assert!(sharing.contains(&id)),
                StageContent::Watch => prop_assert!(watch),
                StageContent::Editor => prop_assert!(presenter || now_on.reason == StageReason::Pinned),
                StageContent::Filmstrip => prop_assert!(present.is_empty() || now_on.reason == StageReason::Pinned),
            }
            if let Some(pin) = s.pinned() {
                prop_assert_eq!(now_on, pinned(pin));
            }
            if !sharing.is_empty() && s.pinned().is_none() {
                prop_assert!(matches!(now_on.content, StageContent::Screen(_)));
            }
        }
    }
}

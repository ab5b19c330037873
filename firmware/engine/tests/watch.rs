//! Watch-together through the engine in simulated time: the room's watch state from
//! `joined` and `watch` messages, and where a player should be at a server time (the
//! server's clock is the signaling transport's to measure).

use std::time::{Duration, Instant};

use portal_engine::watch::{PlayerSample, SyncController, VIDEO_TUNING};
use portal_engine::{
    Engine, EngineConfig, Event, Input, Output, StageChoice, StageContent, StageReason,
};
use portal_proto::{PeerId, Role, ServerMessage, VideoSource, WatchSnapshot, WatchState};

mod common;

use common::{drain, info, welcome};

/// The server's clock (ms) when the test starts.
const SERVER_AT_T0: f64 = 1_700_000_000_000.0;

fn server_ms(t0: Instant, at: Instant) -> f64 {
    SERVER_AT_T0 + at.duration_since(t0).as_secs_f64() * 1000.0
}

fn video() -> VideoSource {
    VideoSource::Url {
        url: "https://media.example/talk.mp4".into(),
    }
}

fn playing(position: f64, rate: f64) -> WatchState {
    WatchState {
        source: Some(video()),
        playing: true,
        position,
        rate,
    }
}

fn joined_watching(watch: Option<WatchSnapshot>) -> Input {
    Input::Server(ServerMessage::Joined {
        protected: false,
        room: "r".into(),
        peer_id: PeerId(10),
        peers: vec![info(3, Role::Browser)],
        watch,
        doc_token: String::new(),
    })
}

fn watch_msg(t0: Instant, at: Instant, state: WatchState) -> Input {
    Input::Server(ServerMessage::Watch {
        state,
        server_time: server_ms(t0, at),
        by: Some(PeerId(3)),
    })
}

/// Connects and says hello at `t0` (the engine's epoch), joins at `at`.
fn join(t0: Instant, at: Instant, watch: Option<WatchSnapshot>) -> (Engine, Vec<Output>) {
    let mut e = Engine::new(EngineConfig::new("r", "Room 4.01"));
    e.handle(t0, Input::SignalingOpened);
    e.handle(t0, welcome(10, false));
    drain(&mut e);
    e.handle(at, joined_watching(watch));
    let outs = drain(&mut e);
    (e, outs)
}

fn watch_events(outs: &[Output]) -> Vec<Option<WatchSnapshot>> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(Event::Watch(w)) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

#[track_caller]
fn assert_near(a: Option<f64>, b: f64, within: f64) {
    assert!(
        a.is_some_and(|a| (a - b).abs() <= within),
        "{a:?} is not {b} ± {within}"
    );
}

#[test]
fn a_late_joiner_starts_where_the_room_is() {
    let t0 = Instant::now();
    // The room started playing 30 s into the video, 12 s before the kiosk joins.
    let joined_at = t0 + Duration::from_secs(1);
    let started = WatchSnapshot {
        state: playing(30.0, 1.0),
        server_time: server_ms(t0, joined_at) - 12_000.0,
    };
    let (e, outs) = join(t0, joined_at, Some(started.clone()));
    assert_eq!(watch_events(&outs), [Some(started.clone())]);
    assert_eq!(e.watch(), Some(&started));
    assert_eq!(
        e.stage(),
        StageChoice {
            content: StageContent::Watch,
            reason: StageReason::Watching
        }
    );
    assert!(outs.contains(&Output::Event(Event::Stage(e.stage()))));

    let now = joined_at + Duration::from_secs(2);
    let target = e.watch_target(server_ms(t0, now));
    assert_near(target, 44.0, 1e-6);

    // A player that has just opened the video at 0 is sent there, and told to play.
    let mut sync = SyncController::new(VIDEO_TUNING);
    let sample = PlayerSample {
        now: 2000.0,
        time: 0.0,
        paused: true,
        seeking: false,
        buffering: false,
        ended: false,
        duration: 600.0,
        rate: 1.0,
        ready: true,
    };
    let d = sync.decide(&e.watch().unwrap().state, target.unwrap(), &sample);
    assert_eq!(d.play, Some(true));
    assert_near(d.seek, 44.0 + VIDEO_TUNING.initial_seek_latency, 1e-6);
}

#[test]
fn pause_seek_and_rate_changes_move_the_target() {
    let t0 = Instant::now();
    let (mut e, outs) = join(t0, t0, None);
    assert_eq!(
        watch_events(&outs),
        [None],
        "a join always says what the room watches"
    );
    let mut now = t0 + Duration::from_secs(1);
    let server = |at: Instant| server_ms(t0, at);
    assert_eq!(e.watch_target(server(now)), None, "nothing watched");

    // Play from 10 s.
    e.handle(now, watch_msg(t0, now, playing(10.0, 1.0)));
    let outs = drain(&mut e);
    assert_eq!(watch_events(&outs).len(), 1);
    let secs = |s: u64| Duration::from_secs(s);
    assert_near(e.watch_target(server(now + secs(4))), 14.0, 1e-6);
    // The same state again, stamped at the same time: no news.
    e.handle(now, watch_msg(t0, now, playing(10.0, 1.0)));
    assert!(watch_events(&drain(&mut e)).is_empty());

    // Pause at 14 s: the target stands still.
    now += secs(4);
    let paused = WatchState {
        playing: false,
        ..playing(14.0, 1.0)
    };
    e.handle(now, watch_msg(t0, now, paused));
    assert_eq!(watch_events(&drain(&mut e)).len(), 1);
    assert_near(e.watch_target(server(now + secs(60))), 14.0, 1e-9);

    // Seek to 100 s and play at double speed.
    now += secs(60);
    e.handle(now, watch_msg(t0, now, playing(100.0, 2.0)));
    assert_eq!(watch_events(&drain(&mut e)).len(), 1);
    assert_near(e.watch_target(server(now + secs(3))), 106.0, 1e-6);

    // Stop watching: no target, and the stage goes back to the people.
    let before = e.stage();
    assert_eq!(before.content, StageContent::Watch);
    let stopped = WatchState {
        source: None,
        playing: false,
        position: 0.0,
        rate: 1.0,
    };
    e.handle(now, watch_msg(t0, now, stopped));
    let outs = drain(&mut e);
    assert_eq!(watch_events(&outs).len(), 1);
    assert_eq!(e.watch_target(server(now)), None);
    assert_eq!(
        e.stage(),
        StageChoice {
            content: StageContent::Camera(PeerId(3)),
            reason: StageReason::First
        }
    );
    assert!(outs.contains(&Output::Event(Event::Stage(e.stage()))));
}

#[test]
fn the_watch_state_outlives_a_reconnect_and_ends_with_the_call() {
    let t0 = Instant::now();
    let snapshot = WatchSnapshot {
        state: playing(5.0, 1.0),
        server_time: SERVER_AT_T0,
    };
    let (mut e, _) = join(t0, t0, Some(snapshot.clone()));
    e.handle(t0, Input::SignalingClosed);
    assert!(watch_events(&drain(&mut e)).is_empty());
    assert_eq!(e.watch(), Some(&snapshot), "the video plays on meanwhile");
    let due = e.poll_timeout().unwrap();
    e.handle_timeout(due);
    e.handle(due, Input::SignalingOpened);
    e.handle(due, welcome(10, true));
    // The room stopped watching while the kiosk was away: the join says so.
    e.handle(due, joined_watching(None));
    assert_eq!(watch_events(&drain(&mut e)), [None]);
    assert_eq!(e.watch(), None);

    e.handle(due, watch_msg(t0, due, playing(0.0, 1.0)));
    drain(&mut e);
    e.leave();
    assert_eq!(watch_events(&drain(&mut e)), [None]);
    assert_eq!(e.watch(), None);
    assert_eq!(e.stage(), StageChoice::EMPTY);
}

#[test]
fn a_watch_state_the_server_should_not_send_is_not_followed() {
    let t0 = Instant::now();
    let good = WatchSnapshot {
        state: playing(5.0, 1.0),
        server_time: SERVER_AT_T0,
    };
    let (mut e, _) = join(t0, t0, Some(good.clone()));
    let bad_sources = [
        VideoSource::Url {
            url: "file:///etc/passwd".into(),
        },
        VideoSource::Url {
            url: "javascript:alert(1)".into(),
        },
        VideoSource::Youtube {
            video_id: "short".into(),
        },
    ];
    for source in bad_sources {
        let state = WatchState {
            source: Some(source),
            ..playing(0.0, 1.0)
        };
        e.handle(t0, watch_msg(t0, t0, state));
        assert!(watch_events(&drain(&mut e)).is_empty());
        assert_eq!(e.watch(), Some(&good), "the room's video plays on");
    }
    e.handle(t0, watch_msg(t0, t0, playing(0.0, 100.0)));
    e.handle(
        t0,
        Input::Server(ServerMessage::Watch {
            state: playing(1.0, 1.0),
            server_time: f64::NAN,
            by: None,
        }),
    );
    assert!(watch_events(&drain(&mut e)).is_empty());
    assert_eq!(e.watch(), Some(&good));
}

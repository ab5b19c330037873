//! The call with the rooms server in simulated time: what is final and what is retried,
//! reconnecting with backoff and resuming, leaving; and the call state a view shows.

use std::time::{Duration, Instant};

use portal_engine::{CallState, Engine, EngineConfig, Event, Input, OfferRole, Output};
use portal_proto::{ClientMessage, ErrorCode, Role, ServerMessage};

mod common;

use common::{drain, drain_all, info, joined, started, stopped, welcome};

fn error(code: ErrorCode) -> Input {
    Input::Server(ServerMessage::Error {
        code,
        message: format!("{code}"),
    })
}

fn calls(outs: &[Output]) -> Vec<CallState> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(Event::Call(state)) => Some(state.clone()),
            _ => None,
        })
        .collect()
}

fn join_failures(outs: &[Output]) -> Vec<(ErrorCode, bool)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(Event::JoinFailed { code, retrying, .. }) => Some((*code, *retrying)),
            _ => None,
        })
        .collect()
}

/// An engine that has said hello (and, with `welcomed`, been welcomed and said join).
fn saying_hello(config: EngineConfig, t0: Instant, welcomed: bool) -> Engine {
    let mut e = Engine::new(config);
    let outs = drain_all(&mut e);
    assert_eq!(
        outs,
        [
            Output::Connect,
            Output::Event(Event::Call(CallState::Connecting))
        ]
    );
    e.handle(t0, Input::SignalingOpened);
    assert!(matches!(
        &drain(&mut e)[..],
        [Output::Send(ClientMessage::Hello { .. })]
    ));
    if welcomed {
        e.handle(t0, welcome(10, false));
        assert!(matches!(
            &drain(&mut e)[..],
            [Output::Send(ClientMessage::Join { .. })]
        ));
    }
    e
}

/// After a final refusal nothing happens again: no timer, no connect, whatever comes.
fn assert_stays_refused(e: &mut Engine, now: Instant, code: ErrorCode) {
    assert_eq!(e.poll_timeout(), None);
    assert!(matches!(e.call_state(), CallState::Failed { code: c, .. } if c == code));
    e.handle(now, Input::SignalingClosed);
    e.handle_timeout(now + Duration::from_secs(3600));
    assert!(drain_all(e).is_empty());
}

#[test]
fn refusals_that_waiting_cannot_fix_are_final_with_their_code() {
    let t0 = Instant::now();
    for (code, welcomed) in [
        (ErrorCode::WrongPassword, true),
        (ErrorCode::InvalidRoomName, true),
        (ErrorCode::RoomFull, true),
        (ErrorCode::PasswordMismatch, true),
        (ErrorCode::InvalidName, false),
        (ErrorCode::UnsupportedProtocol, false),
        (ErrorCode::UnsupportedProtocol, true),
    ] {
        let mut e = saying_hello(EngineConfig::new("r", "k"), t0, welcomed);
        e.handle(t0, error(code));
        let outs = drain_all(&mut e);
        assert_eq!(join_failures(&outs), [(code, false)], "{code}: {outs:?}");
        assert!(outs.contains(&Output::Disconnect), "{code}: {outs:?}");
        assert!(
            matches!(&calls(&outs)[..], [CallState::Failed { code: c, .. }] if *c == code),
            "{code}: {outs:?}"
        );
        assert_stays_refused(&mut e, t0, code);
    }
}

#[test]
fn a_refused_rejoin_stops_the_calls_that_were_kept() {
    let t0 = Instant::now();
    let mut e = saying_hello(EngineConfig::new("r", "k"), t0, true);
    e.handle(t0, joined(10, vec![info(3, Role::Browser)]));
    assert_eq!(started(&drain(&mut e)), [(3, OfferRole::Answerer)]);
    // The server restarts and the room now has a password (the kiosk's is wrong).
    e.handle(t0, Input::SignalingClosed);
    let due = e.poll_timeout().expect("a reconnect");
    e.handle_timeout(due);
    e.handle(due, Input::SignalingOpened);
    e.handle(due, welcome(10, true));
    drain(&mut e);
    e.handle(due, error(ErrorCode::WrongPassword));
    let outs = drain(&mut e);
    assert_eq!(stopped(&outs), [3]);
    assert_eq!(join_failures(&outs), [(ErrorCode::WrongPassword, false)]);
    assert!(e.peers().is_empty());
    assert_stays_refused(&mut e, due, ErrorCode::WrongPassword);
}

#[test]
fn settings_the_server_would_refuse_fail_before_connecting() {
    let e = &mut Engine::new(EngineConfig::new("../etc", "Room 4.01"));
    let outs = drain_all(e);
    assert!(!outs.contains(&Output::Connect), "{outs:?}");
    assert_eq!(join_failures(&outs), [(ErrorCode::InvalidRoomName, false)]);
    assert_stays_refused(e, Instant::now(), ErrorCode::InvalidRoomName);

    let e = &mut Engine::new(EngineConfig::new("lobby", "   "));
    assert_eq!(
        join_failures(&drain_all(e)),
        [(ErrorCode::InvalidName, false)]
    );
}

#[test]
fn a_kiosk_that_waits_for_a_seat_retries_a_full_room_with_backoff() {
    let t0 = Instant::now();
    let mut config = EngineConfig::new("r", "k");
    config.wait_for_seat = true;
    config.seed = 7;
    let mut e = saying_hello(config, t0, true);
    let mut now = t0;
    let mut delays = Vec::new();
    for attempt in 1..=4 {
        e.handle(now, error(ErrorCode::RoomFull));
        let outs = drain_all(&mut e);
        assert_eq!(join_failures(&outs), [(ErrorCode::RoomFull, true)]);
        assert_eq!(calls(&outs), [CallState::Reconnecting { attempt }]);
        let due = e.poll_timeout().expect("a rejoin");
        delays.push(due - now);
        e.handle_timeout(due);
        assert!(matches!(
            &drain(&mut e)[..],
            [Output::Send(ClientMessage::Join { .. })]
        ));
        now = due;
    }
    assert!(delays[3] > delays[0] * 3, "growing: {delays:?}");
    // A seat frees: in, and the backoff starts afresh.
    e.handle(now, joined(10, vec![info(3, Role::Browser)]));
    assert_eq!(calls(&drain_all(&mut e)), [CallState::Joined]);
    e.handle(now, Input::SignalingClosed);
    let outs = drain_all(&mut e);
    assert_eq!(calls(&outs), [CallState::Reconnecting { attempt: 1 }]);
    assert!(e.poll_timeout().unwrap() - now <= Duration::from_millis(500));
}

#[test]
fn a_seat_lost_with_the_connection_is_waited_for_without_asking() {
    let t0 = Instant::now();
    let mut e = saying_hello(EngineConfig::new("r", "k"), t0, true);
    e.handle(t0, joined(10, vec![]));
    drain(&mut e);
    e.handle(t0, Input::SignalingClosed);
    let due = e.poll_timeout().unwrap();
    e.handle_timeout(due);
    e.handle(due, Input::SignalingOpened);
    e.handle(due, welcome(11, false));
    drain(&mut e);
    // Our old connection still holds the seat until the server notices it is gone.
    e.handle(due, error(ErrorCode::RoomFull));
    assert_eq!(join_failures(&drain(&mut e)), [(ErrorCode::RoomFull, true)]);
    assert!(matches!(e.call_state(), CallState::Reconnecting { .. }));
}

#[test]
fn a_server_that_goes_away_and_comes_back_is_reconnected_and_resumed() {
    let t0 = Instant::now();
    let mut config = EngineConfig::new("r", "k");
    config.seed = 3;
    let mut e = saying_hello(config, t0, true);
    e.handle(t0, joined(10, vec![info(3, Role::Browser)]));
    drain(&mut e);
    // Gone: every attempt to connect fails for a while.
    let mut now = t0;
    e.handle(now, Input::SignalingClosed);
    drain(&mut e);
    for attempt in 1..=5u32 {
        assert_eq!(e.call_state(), CallState::Reconnecting { attempt });
        let due = e.poll_timeout().expect("a reconnect");
        e.handle_timeout(due);
        assert_eq!(drain(&mut e), [Output::Connect]);
        now = due;
        if attempt < 5 {
            e.handle(now, Input::SignalingClosed);
            let outs = drain(&mut e);
            assert!(
                matches!(&outs[..], [Output::Event(Event::Disconnected { attempt: a, .. })] if *a == attempt + 1),
                "{outs:?}"
            );
        }
    }
    // Back: hello carries the resume token, the calls go on.
    e.handle(now, Input::SignalingOpened);
    assert!(matches!(
        &drain(&mut e)[..],
        [Output::Send(ClientMessage::Hello { resume: Some(t), .. })] if t == "token-10"
    ));
    e.handle(now, welcome(10, true));
    drain(&mut e);
    e.handle(now, joined(10, vec![info(3, Role::Browser)]));
    let outs = drain_all(&mut e);
    assert!(
        stopped(&outs).is_empty() && started(&outs).is_empty(),
        "{outs:?}"
    );
    assert_eq!(calls(&outs), [CallState::Joined]);
}

#[test]
fn leaving_says_so_closes_and_never_reconnects() {
    let t0 = Instant::now();
    let mut e = saying_hello(EngineConfig::new("r", "k"), t0, true);
    e.handle(
        t0,
        joined(10, vec![info(3, Role::Browser), info(4, Role::Kiosk)]),
    );
    drain(&mut e);
    e.leave();
    let outs = drain_all(&mut e);
    assert_eq!(outs.first(), Some(&Output::Send(ClientMessage::Leave)));
    assert!(outs.contains(&Output::Disconnect));
    assert_eq!(stopped(&outs), [3, 4]);
    assert!(outs.contains(&Output::Event(Event::Left)));
    assert_eq!(calls(&outs), [CallState::Left]);
    e.handle(t0, Input::SignalingClosed);
    assert_eq!(e.poll_timeout(), None);
    assert!(drain_all(&mut e).is_empty());
}

#[test]
fn a_kiosk_with_a_password_leaves_a_room_someone_made_open() {
    let t0 = Instant::now();
    let mut config = EngineConfig::new("r", "k");
    config.password = Some("our secret".into());
    let mut e = saying_hello(config, t0, true);
    e.handle(
        t0,
        Input::Server(ServerMessage::Joined {
            room: "r".into(),
            peer_id: portal_proto::PeerId(10),
            peers: vec![info(3, Role::Browser)],
            watch: None,
            doc_token: String::new(),
            protected: false,
        }),
    );
    let outs = drain_all(&mut e);
    assert!(
        started(&outs).is_empty(),
        "no camera for a squatter: {outs:?}"
    );
    assert_eq!(outs.first(), Some(&Output::Send(ClientMessage::Leave)));
    assert_eq!(join_failures(&outs), [(ErrorCode::PasswordMismatch, false)]);
    assert_stays_refused(&mut e, t0, ErrorCode::PasswordMismatch);
}

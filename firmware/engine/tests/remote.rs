//! The kiosk's remote control in simulated time: hello with the device token, the code
//! and its expiry on the kiosk's clock, whom it obeys, what each command does and when
//! it is answered, presenting, going offline and being refused for good.

use std::time::{Duration, Instant};

use portal_engine::backoff::BackoffConfig;
use portal_engine::remote::{
    Action, COMMAND_TIMEOUT, Laptop, Remote, RemoteConfig, RemoteEvent, RemoteInput, RemoteOutput,
};
use portal_proto::pairing::{CommandErrorCode, KioskState, RemoteCommand, UnpairReason};
use portal_proto::{ClientMessage, ErrorCode, PeerId, ServerMessage};

const WALL: f64 = 1_000_000.0;
const ALICE: PeerId = PeerId(7);
const MALLORY: PeerId = PeerId(9);

fn config() -> RemoteConfig {
    RemoteConfig {
        name: "Room 4.01".into(),
        token: "tok".into(),
        own_room: "room-4-01".into(),
        backoff: BackoffConfig::default(),
        seed: 1,
    }
}

fn drain(r: &mut Remote) -> Vec<RemoteOutput> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

fn server(r: &mut Remote, now: Instant, msg: ServerMessage) -> Vec<RemoteOutput> {
    r.handle(now, RemoteInput::Server { msg, wall_ms: WALL });
    drain(r)
}

/// A remote that is connected (the server's clock 5 s ahead of ours) and has Alice
/// paired.
fn online(t0: Instant) -> Remote {
    let mut r = Remote::new(config());
    assert_eq!(drain(&mut r), [RemoteOutput::Connect]);
    r.handle(t0, RemoteInput::Opened);
    let hello = drain(&mut r);
    assert!(
        matches!(&hello[..], [RemoteOutput::Send(ClientMessage::Hello { device: Some(d), .. })] if d.token == "tok" && d.control),
        "{hello:?}"
    );
    let outs = server(
        &mut r,
        t0,
        ServerMessage::Welcome {
            protocol: 1,
            peer_id: PeerId(1),
            server_time: WALL + 5_000.0,
            ice_servers: vec![],
            resume_token: "x".into(),
            resumed: false,
        },
    );
    assert!(matches!(
        &outs[..],
        [RemoteOutput::Send(ClientMessage::KioskState { .. })]
    ));
    let outs = server(
        &mut r,
        t0,
        ServerMessage::Paired {
            peer: ALICE,
            name: "Alice's laptop".into(),
        },
    );
    assert_eq!(
        outs,
        [RemoteOutput::Event(RemoteEvent::Paired(vec![Laptop {
            peer: ALICE,
            name: "Alice's laptop".into()
        }]))]
    );
    r
}

fn command(
    r: &mut Remote,
    now: Instant,
    from: PeerId,
    id: u32,
    command: RemoteCommand,
) -> Vec<RemoteOutput> {
    server(r, now, ServerMessage::Command { from, id, command })
}

fn results(outs: &[RemoteOutput]) -> Vec<(u32, Option<String>, Option<CommandErrorCode>)> {
    outs.iter()
        .filter_map(|o| match o {
            RemoteOutput::Send(ClientMessage::CommandResult {
                id, room, error, ..
            }) => Some((*id, room.clone(), error.as_ref().map(|e| e.code))),
            _ => None,
        })
        .collect()
}

fn actions(outs: &[RemoteOutput]) -> Vec<Action> {
    outs.iter()
        .filter_map(|o| match o {
            RemoteOutput::Event(RemoteEvent::Do(a)) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn in_room(room: &str, joined: bool) -> KioskState {
    KioskState {
        room: Some(room.into()),
        in_call: joined,
        volume: 0.8,
        ..KioskState::default()
    }
}

#[test]
fn the_code_expires_on_the_kiosks_clock() {
    let t0 = Instant::now();
    let mut r = online(t0);
    // The server's clock is 5 s ahead: a code that ends 600 s after its "now" ends 600 s
    // after ours.
    let outs = server(
        &mut r,
        t0,
        ServerMessage::PairingCode {
            code: "K7P2XM".into(),
            url: "https://portal.example/p/K7P2XM".into(),
            expires_at: WALL + 5_000.0 + 600_000.0,
        },
    );
    let [RemoteOutput::Event(RemoteEvent::Code(Some(code)))] = &outs[..] else {
        panic!("{outs:?}")
    };
    assert_eq!(code.code, "K7P2XM");
    assert_eq!(code.expires - t0, Duration::from_secs(600));
    assert_eq!(r.code(), Some(code));
}

#[test]
fn only_paired_laptops_are_obeyed() {
    let t0 = Instant::now();
    let mut r = online(t0);
    r.set_state(in_room("standup", true));
    drain(&mut r);
    let outs = command(&mut r, t0, MALLORY, 1, RemoteCommand::Leave);
    assert!(actions(&outs).is_empty());
    assert_eq!(
        results(&outs),
        [(1, None, Some(CommandErrorCode::NotPaired))]
    );
    let outs = command(
        &mut r,
        t0,
        ALICE,
        2,
        RemoteCommand::SetMicMuted { muted: true },
    );
    assert_eq!(actions(&outs), [Action::SetMicMuted(true)]);
    assert_eq!(results(&outs), [(2, None, None)]);
}

#[test]
fn bad_values_change_nothing() {
    let t0 = Instant::now();
    let mut r = online(t0);
    let outs = command(
        &mut r,
        t0,
        ALICE,
        1,
        RemoteCommand::SetVolume { volume: 7.0 },
    );
    assert!(actions(&outs).is_empty());
    assert_eq!(
        results(&outs),
        [(1, None, Some(CommandErrorCode::BadRequest))]
    );
    let outs = command(
        &mut r,
        t0,
        ALICE,
        2,
        RemoteCommand::JoinRoom {
            room: "../../etc".into(),
            password: None,
        },
    );
    assert!(actions(&outs).is_empty());
    assert_eq!(
        results(&outs),
        [(2, None, Some(CommandErrorCode::BadRequest))]
    );
}

#[test]
fn present_at_home_joins_the_own_room_then_answers_and_takes_the_stage() {
    let t0 = Instant::now();
    let mut r = online(t0);
    let outs = command(&mut r, t0, ALICE, 4, RemoteCommand::Present);
    assert_eq!(
        actions(&outs),
        [Action::JoinRoom {
            room: "room-4-01".into(),
            password: None
        }]
    );
    assert!(results(&outs).is_empty(), "answered only once in the room");
    r.set_state(in_room("room-4-01", false));
    assert!(
        results(&drain(&mut r)).is_empty(),
        "connecting is not joined"
    );
    r.set_state(in_room("room-4-01", true));
    let outs = drain(&mut r);
    assert_eq!(results(&outs), [(4, Some("room-4-01".into()), None)]);
    assert!(outs.contains(&RemoteOutput::Event(RemoteEvent::Presenter(Some(ALICE)))));
    assert!(outs.iter().any(|o| matches!(o,
        RemoteOutput::Send(ClientMessage::KioskState { state }) if state.presenting == Some(ALICE))));
    // Stop presenting gives the stage back.
    let outs = command(&mut r, t0, ALICE, 5, RemoteCommand::StopPresenting);
    assert!(outs.contains(&RemoteOutput::Event(RemoteEvent::Presenter(None))));
    assert_eq!(results(&outs), [(5, None, None)]);
}

#[test]
fn present_in_a_call_answers_at_once() {
    let t0 = Instant::now();
    let mut r = online(t0);
    r.set_state(in_room("standup", true));
    drain(&mut r);
    let outs = command(&mut r, t0, ALICE, 1, RemoteCommand::Present);
    assert!(actions(&outs).is_empty());
    assert_eq!(results(&outs), [(1, Some("standup".into()), None)]);
    assert_eq!(r.presenter(), Some(ALICE));
    // The presenter unpairs: the stage is free again.
    let outs = server(
        &mut r,
        t0,
        ServerMessage::Unpaired {
            peer: ALICE,
            reason: UnpairReason::LaptopLeft,
        },
    );
    assert!(outs.contains(&RemoteOutput::Event(RemoteEvent::Presenter(None))));
    assert!(outs.contains(&RemoteOutput::Event(RemoteEvent::Paired(vec![]))));
}

#[test]
fn join_room_is_answered_when_joined_or_failed_and_times_out() {
    let t0 = Instant::now();
    let mut r = online(t0);
    let join = |room: &str| RemoteCommand::JoinRoom {
        room: room.into(),
        password: Some("pw".into()),
    };
    let outs = command(&mut r, t0, ALICE, 1, join("design"));
    assert_eq!(
        actions(&outs),
        [Action::JoinRoom {
            room: "design".into(),
            password: Some("pw".into())
        }]
    );
    r.join_failed("design", "wrong password");
    assert_eq!(
        results(&drain(&mut r)),
        [(1, None, Some(CommandErrorCode::JoinFailed))]
    );
    command(&mut r, t0, ALICE, 2, join("design"));
    r.set_state(in_room("design", true));
    assert_eq!(results(&drain(&mut r)), [(2, Some("design".into()), None)]);
    // Already there: answered at once.
    let outs = command(&mut r, t0, ALICE, 3, join("design"));
    assert!(actions(&outs).is_empty());
    assert_eq!(results(&outs), [(3, Some("design".into()), None)]);
    // Nothing settles: timeout.
    command(&mut r, t0, ALICE, 4, join("other"));
    assert_eq!(r.poll_timeout(), Some(t0 + COMMAND_TIMEOUT));
    r.handle_timeout(t0 + COMMAND_TIMEOUT);
    assert_eq!(
        results(&drain(&mut r)),
        [(4, None, Some(CommandErrorCode::Timeout))]
    );
}

#[test]
fn leave_and_mute_need_a_call_volume_does_not() {
    let t0 = Instant::now();
    let mut r = online(t0);
    for (id, c) in [
        (1, RemoteCommand::Leave),
        (2, RemoteCommand::SetMicMuted { muted: true }),
        (3, RemoteCommand::SetCameraOff { off: true }),
    ] {
        let outs = command(&mut r, t0, ALICE, id, c);
        assert!(actions(&outs).is_empty());
        assert_eq!(
            results(&outs),
            [(id, None, Some(CommandErrorCode::NotInCall))]
        );
    }
    let outs = command(
        &mut r,
        t0,
        ALICE,
        4,
        RemoteCommand::SetVolume { volume: 0.25 },
    );
    assert_eq!(actions(&outs), [Action::SetVolume(0.25)]);
    r.set_state(in_room("standup", true));
    drain(&mut r);
    let outs = command(&mut r, t0, ALICE, 5, RemoteCommand::Leave);
    assert_eq!(actions(&outs), [Action::Leave]);
    assert!(results(&outs).is_empty());
    r.set_state(KioskState::default());
    assert_eq!(results(&drain(&mut r)), [(5, None, None)]);
}

#[test]
fn the_kiosk_ends_a_pairing() {
    let t0 = Instant::now();
    let mut r = online(t0);
    r.unpair(ALICE);
    let outs = drain(&mut r);
    assert!(outs.contains(&RemoteOutput::Send(ClientMessage::Unpair {
        peer: Some(ALICE)
    })));
    assert!(outs.contains(&RemoteOutput::Event(RemoteEvent::Paired(vec![]))));
    let outs = command(&mut r, t0, ALICE, 1, RemoteCommand::Leave);
    assert_eq!(
        results(&outs),
        [(1, None, Some(CommandErrorCode::NotPaired))]
    );
}

#[test]
fn offline_clears_the_code_and_pairings_and_reconnects() {
    let t0 = Instant::now();
    let mut r = online(t0);
    server(
        &mut r,
        t0,
        ServerMessage::PairingCode {
            code: "K7P2XM".into(),
            url: "u".into(),
            expires_at: WALL + 60_000.0,
        },
    );
    r.handle(t0, RemoteInput::Closed);
    let outs = drain(&mut r);
    assert!(outs.contains(&RemoteOutput::Event(RemoteEvent::Code(None))));
    assert!(outs.contains(&RemoteOutput::Event(RemoteEvent::Paired(vec![]))));
    assert!(!r.is_online());
    let at = r.poll_timeout().expect("a reconnect");
    assert!(at > t0);
    r.handle_timeout(at);
    assert_eq!(drain(&mut r), [RemoteOutput::Connect]);
}

#[test]
fn a_refused_token_is_final() {
    let t0 = Instant::now();
    let mut r = online(t0);
    let outs = server(
        &mut r,
        t0,
        ServerMessage::Error {
            code: ErrorCode::InvalidDeviceToken,
            message: "not enrolled".into(),
        },
    );
    assert!(outs.contains(&RemoteOutput::Disconnect));
    assert!(outs.iter().any(|o| matches!(
        o,
        RemoteOutput::Event(RemoteEvent::Refused {
            code: ErrorCode::InvalidDeviceToken,
            ..
        })
    )));
    r.handle(t0, RemoteInput::Closed);
    assert_eq!(r.poll_timeout(), None, "never reconnects");
}

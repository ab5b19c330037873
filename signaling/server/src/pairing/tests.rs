//! The registry in simulated time: plain calls, no sockets, no clock.

use std::net::{IpAddr, Ipv4Addr};

use portal_proto::pairing::{CommandErrorCode, KioskState, RemoteCommand, UnpairReason};
use portal_proto::{ErrorCode, PeerId, ServerMessage};

use super::*;

const KIOSK: PeerId = PeerId(100);
const LAPTOP: PeerId = PeerId(1);
const TTL: Millis = CODE_TTL_SECS as f64 * 1000.0;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn room_401() -> EnrolledKiosk {
    EnrolledKiosk {
        id: KioskId(7),
        name: "Room 4.01".into(),
    }
}

/// A registry with "Room 4.01" enrolled and its control connection online; its code.
fn online() -> (Registry, String) {
    let mut reg = Registry::new(PairingConfig::default(), vec![room_401()], Vec::new(), 0.0);
    let out = reg.kiosk_hello(KIOSK, &room_401(), true, "https://portal.test", 0.0);
    let code = code_sent(&out, KIOSK).expect("a code at hello");
    (reg, code)
}

fn code_sent(out: &[Out], to: PeerId) -> Option<String> {
    out.iter().find_map(|o| match o {
        Out::Send {
            to: t,
            msg:
                ServerMessage::PairingCode {
                    code,
                    url,
                    expires_at,
                },
        } if *t == to => {
            assert_eq!(url, &format!("https://portal.test/p/{code}"));
            assert!(*expires_at > 0.0);
            Some(code.clone())
        }
        _ => None,
    })
}

fn sent_to(out: &[Out], to: PeerId) -> Vec<ServerMessage> {
    out.iter()
        .filter_map(|o| match o {
            Out::Send { to: t, msg } if *t == to => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn error_to(out: &[Out], to: PeerId) -> Option<ErrorCode> {
    sent_to(out, to).into_iter().find_map(|m| match m {
        ServerMessage::Error { code, .. } => Some(code),
        _ => None,
    })
}

fn pair(reg: &mut Registry, laptop: PeerId, addr: IpAddr, code: &str, now: Millis) -> Vec<Out> {
    reg.pair(laptop, addr, "Ada's laptop", code, now)
}

/// Pairs `laptop` with `code`; the kiosk's next code.
fn pair_ok(reg: &mut Registry, laptop: PeerId, code: &str, now: Millis) -> String {
    let out = pair(reg, laptop, ip(1), code, now);
    assert!(
        matches!(sent_to(&out, laptop)[0], ServerMessage::PairAccepted { .. }),
        "{out:?}"
    );
    code_sent(&out, KIOSK).expect("a new code after use")
}

#[test]
fn a_code_pairs_once_and_the_kiosk_gets_a_new_one() {
    let (mut reg, code) = online();
    let typed = format!("{}-{}", &code[..3], code[3..].to_lowercase());
    let out = pair(&mut reg, LAPTOP, ip(1), &typed, 10.0);
    assert_eq!(
        sent_to(&out, LAPTOP)[0],
        ServerMessage::PairAccepted {
            kiosk: KIOSK,
            kiosk_name: "Room 4.01".into(),
            expires_at: 10.0 + PAIRING_TTL_SECS as f64 * 1000.0,
        }
    );
    let to_kiosk = sent_to(&out, KIOSK);
    assert!(to_kiosk.contains(&ServerMessage::Paired {
        peer: LAPTOP,
        name: "Ada's laptop".into()
    }));
    let fresh = code_sent(&out, KIOSK).expect("a new code after use");
    assert_ne!(fresh, code);
    // The used code is dead; the new one works for another laptop.
    let out = pair(&mut reg, PeerId(2), ip(2), &code, 20.0);
    assert_eq!(error_to(&out, PeerId(2)), Some(ErrorCode::CodeExpired));
    let out = pair(&mut reg, PeerId(2), ip(2), &fresh, 20.0);
    assert!(matches!(
        sent_to(&out, PeerId(2))[0],
        ServerMessage::PairAccepted { .. }
    ));
    assert_eq!(reg.pairings(), 2, "several laptops pair with one kiosk");
    // A paired laptop pairs no more.
    let out = pair(&mut reg, LAPTOP, ip(1), "ABCDEF", 30.0);
    assert_eq!(error_to(&out, LAPTOP), Some(ErrorCode::AlreadyPaired));
    assert_eq!(reg.attempts(Outcome::Accepted), 2);
    // The writes: the used code, the new ones.
    assert!(out.iter().all(|o| !matches!(o, Out::Store(_))));
}

#[test]
fn codes_rotate_on_time() {
    let (mut reg, code) = online();
    assert!(code_sent(&reg.tick(TTL - 1.0), KIOSK).is_none());
    let out = reg.tick(TTL);
    let fresh = code_sent(&out, KIOSK).expect("rotated");
    assert_ne!(fresh, code);
    let out = pair(&mut reg, LAPTOP, ip(1), &code, TTL + 1.0);
    assert_eq!(error_to(&out, LAPTOP), Some(ErrorCode::CodeExpired));
    let out = pair(&mut reg, LAPTOP, ip(1), &fresh, TTL + 2.0);
    assert!(matches!(
        sent_to(&out, LAPTOP)[0],
        ServerMessage::PairAccepted { .. }
    ));
}

#[test]
fn wrong_guesses_rotate_every_live_code() {
    let (mut reg, code) = online();
    let mut rotated = None;
    for i in 0..ROTATE_AFTER_WRONG {
        // Spread over addresses so that none is locked out.
        let addr = ip(10 + (i / 4) as u8);
        let out = pair(&mut reg, PeerId(50 + u64::from(i)), addr, "ZZZZZZ", 1.0);
        assert_eq!(
            error_to(&out, PeerId(50 + u64::from(i))),
            Some(ErrorCode::InvalidCode)
        );
        if let Some(c) = code_sent(&out, KIOSK) {
            assert_eq!(i + 1, ROTATE_AFTER_WRONG, "rotated early");
            rotated = Some(c);
        }
    }
    let rotated = rotated.expect("rotated after the 20th wrong guess");
    assert_ne!(rotated, code);
    let out = pair(&mut reg, LAPTOP, ip(1), &code, 2.0);
    assert_eq!(error_to(&out, LAPTOP), Some(ErrorCode::CodeExpired));
}

#[test]
fn an_address_that_guesses_is_locked_out_and_others_still_pair() {
    let (mut reg, code) = online();
    for _ in 0..limiter::PER_ADDR {
        let out = pair(&mut reg, LAPTOP, ip(1), "k7p 2x", 1.0);
        assert_eq!(
            error_to(&out, LAPTOP),
            Some(ErrorCode::InvalidCode),
            "malformed"
        );
    }
    // Locked out: even the right code is not looked at.
    let out = pair(&mut reg, LAPTOP, ip(1), &code, 2.0);
    assert_eq!(error_to(&out, LAPTOP), Some(ErrorCode::RateLimited));
    let out = pair(&mut reg, PeerId(2), ip(2), &code, 2.0);
    assert!(matches!(
        sent_to(&out, PeerId(2))[0],
        ServerMessage::PairAccepted { .. }
    ));
    assert_eq!(reg.attempts(Outcome::Refused(ErrorCode::RateLimited)), 1);
    assert_eq!(reg.attempts(Outcome::Refused(ErrorCode::InvalidCode)), 5);
}

#[test]
fn an_offline_kiosk_cannot_be_paired_and_a_kiosk_does_not_pair() {
    let (mut reg, code) = online();
    let out = pair(&mut reg, KIOSK, ip(1), &code, 1.0);
    assert_eq!(error_to(&out, KIOSK), Some(ErrorCode::BadRequest));
    reg.peer_gone(KIOSK);
    assert_eq!(reg.kiosks_online(), 0);
    let out = pair(&mut reg, LAPTOP, ip(1), &code, 2.0);
    assert_eq!(error_to(&out, LAPTOP), Some(ErrorCode::KioskOffline));
    // Back: a fresh code, the old one is dead.
    let out = reg.kiosk_hello(PeerId(101), &room_401(), true, "https://portal.test", 3.0);
    assert!(code_sent(&out, PeerId(101)).is_some());
    let out = pair(&mut reg, LAPTOP, ip(1), &code, 4.0);
    assert_eq!(error_to(&out, LAPTOP), Some(ErrorCode::CodeExpired));
}

#[test]
fn commands_reach_only_the_paired_kiosk_and_answers_only_its_laptops() {
    let (mut reg, code) = online();
    let mute = RemoteCommand::SetMicMuted { muted: true };
    // Never paired: refused with a result the laptop can match.
    let out = reg.command(LAPTOP, 1, mute.clone());
    assert!(matches!(
        &sent_to(&out, LAPTOP)[0],
        ServerMessage::CommandResult { id: 1, error: Some(e), .. } if e.code == CommandErrorCode::NotPaired
    ));
    assert!(sent_to(&out, KIOSK).is_empty());
    let next = pair_ok(&mut reg, LAPTOP, &code, 1.0);
    let out = reg.command(LAPTOP, 2, mute.clone());
    assert_eq!(
        sent_to(&out, KIOSK),
        vec![ServerMessage::Command {
            from: LAPTOP,
            id: 2,
            command: mute
        }]
    );
    let out = reg.command(LAPTOP, 3, RemoteCommand::SetVolume { volume: 2.0 });
    assert!(matches!(
        &sent_to(&out, LAPTOP)[0],
        ServerMessage::CommandResult { id: 3, error: Some(e), .. } if e.code == CommandErrorCode::BadRequest
    ));
    assert!(sent_to(&out, KIOSK).is_empty());
    // The answer goes to the laptop; one for a stranger is refused.
    let out = reg.command_result(KIOSK, LAPTOP, 2, Some("standup".into()), None);
    assert_eq!(
        sent_to(&out, LAPTOP),
        vec![ServerMessage::CommandResult {
            id: 2,
            room: Some("standup".into()),
            error: None
        }]
    );
    let out = reg.command_result(KIOSK, PeerId(9), 2, None, None);
    assert_eq!(error_to(&out, KIOSK), Some(ErrorCode::NotPaired));
    assert!(sent_to(&out, PeerId(9)).is_empty());
    // A laptop cannot pose as the kiosk.
    let out = reg.command_result(LAPTOP, LAPTOP, 2, None, None);
    assert_eq!(error_to(&out, LAPTOP), Some(ErrorCode::NotPaired));
    // State goes to the paired laptops and to the next one at once.
    let state = KioskState {
        room: Some("standup".into()),
        in_call: true,
        volume: 0.5,
        ..KioskState::default()
    };
    let out = reg.kiosk_state(KIOSK, state.clone());
    assert_eq!(
        sent_to(&out, LAPTOP),
        vec![ServerMessage::KioskState {
            state: state.clone()
        }]
    );
    let out = reg.kiosk_state(LAPTOP, state.clone());
    assert_eq!(error_to(&out, LAPTOP), Some(ErrorCode::NotPaired));
    let out = pair(&mut reg, PeerId(2), ip(2), &next, 2.0);
    let to_laptop = sent_to(&out, PeerId(2));
    assert!(matches!(to_laptop[0], ServerMessage::PairAccepted { .. }));
    assert_eq!(to_laptop[1], ServerMessage::KioskState { state });
}

#[test]
fn pairings_end_from_either_side_when_a_side_goes_and_in_time() {
    let (mut reg, code) = online();
    let code = pair_ok(&mut reg, LAPTOP, &code, 0.0);
    let unpaired = |peer, reason| ServerMessage::Unpaired { peer, reason };
    // The laptop unpairs.
    let out = reg.unpair(LAPTOP, None);
    assert_eq!(
        sent_to(&out, KIOSK),
        vec![unpaired(LAPTOP, UnpairReason::LaptopLeft)]
    );
    assert_eq!(
        sent_to(&out, LAPTOP),
        vec![unpaired(KIOSK, UnpairReason::LaptopLeft)]
    );
    let out = reg.unpair(LAPTOP, None);
    assert_eq!(error_to(&out, LAPTOP), Some(ErrorCode::NotPaired));
    // The kiosk unpairs.
    let code = pair_ok(&mut reg, LAPTOP, &code, 1.0);
    let out = reg.unpair(KIOSK, Some(PeerId(9)));
    assert_eq!(error_to(&out, KIOSK), Some(ErrorCode::NotPaired));
    let out = reg.unpair(KIOSK, Some(LAPTOP));
    assert_eq!(
        sent_to(&out, LAPTOP),
        vec![unpaired(KIOSK, UnpairReason::KioskEnded)]
    );
    // The laptop leaves.
    let code = pair_ok(&mut reg, LAPTOP, &code, 2.0);
    let out = reg.peer_gone(LAPTOP);
    assert_eq!(
        sent_to(&out, KIOSK),
        vec![unpaired(LAPTOP, UnpairReason::LaptopLeft)]
    );
    // Time runs out.
    let code = pair_ok(&mut reg, LAPTOP, &code, 3.0);
    let end = 3.0 + PAIRING_TTL_SECS as f64 * 1000.0;
    let before = reg.tick(end - 1.0);
    assert!(sent_to(&before, LAPTOP).is_empty());
    let code = code_sent(&before, KIOSK).unwrap_or(code);
    let out = reg.tick(end);
    assert_eq!(
        sent_to(&out, LAPTOP),
        vec![unpaired(KIOSK, UnpairReason::Expired)]
    );
    assert!(sent_to(&out, KIOSK).contains(&unpaired(LAPTOP, UnpairReason::Expired)));
    // The kiosk goes.
    let code = code_sent(&out, KIOSK).unwrap_or(code);
    pair_ok(&mut reg, LAPTOP, &code, end + 1.0);
    let out = reg.peer_gone(KIOSK);
    assert_eq!(
        sent_to(&out, LAPTOP),
        vec![unpaired(KIOSK, UnpairReason::KioskGone)]
    );
    assert_eq!(reg.pairings(), 0);
}

#[test]
fn a_newer_control_connection_replaces_the_older() {
    let (mut reg, code) = online();
    pair(&mut reg, LAPTOP, ip(1), &code, 0.0);
    let out = reg.kiosk_hello(PeerId(101), &room_401(), true, "https://portal.test", 1.0);
    assert_eq!(error_to(&out, KIOSK), Some(ErrorCode::Replaced));
    assert!(out.contains(&Out::Close {
        peer: KIOSK,
        code: ErrorCode::Replaced
    }));
    assert!(code_sent(&out, PeerId(101)).is_some());
    assert_eq!(
        sent_to(&out, LAPTOP),
        vec![ServerMessage::Unpaired {
            peer: KIOSK,
            reason: UnpairReason::KioskGone
        }]
    );
    // The old one's end changes nothing for the new one.
    reg.peer_gone(KIOSK);
    assert_eq!(reg.kiosks_online(), 1);
}

#[test]
fn a_removed_kiosk_loses_its_connections_and_laptops() {
    let (mut reg, code) = online();
    let call = PeerId(102);
    reg.kiosk_hello(call, &room_401(), false, "https://portal.test", 0.0);
    pair(&mut reg, LAPTOP, ip(1), &code, 0.0);
    assert_eq!(reg.paired_kiosk_conns(LAPTOP).len(), 2);
    assert!(reg.paired_kiosk_conns(PeerId(2)).is_empty());
    let as_of = reg.hello_seq();
    // Still enrolled: nothing happens.
    assert!(reg.sync_enrolled(vec![room_401()], as_of).is_empty());
    let out = reg.sync_enrolled(Vec::new(), as_of);
    for peer in [KIOSK, call] {
        assert_eq!(error_to(&out, peer), Some(ErrorCode::InvalidDeviceToken));
        assert!(out.contains(&Out::Close {
            peer,
            code: ErrorCode::InvalidDeviceToken
        }));
    }
    assert_eq!(
        sent_to(&out, LAPTOP),
        vec![ServerMessage::Unpaired {
            peer: KIOSK,
            reason: UnpairReason::Removed
        }]
    );
    assert!(!reg.name_reserved("room 4.01"));
    assert_eq!(reg.kiosks_online(), 0);
    let out = pair(&mut reg, PeerId(2), ip(2), &code, 1.0);
    assert_eq!(error_to(&out, PeerId(2)), Some(ErrorCode::InvalidCode));
}

#[test]
fn a_kiosk_enrolled_after_the_read_is_left_alone() {
    let mut reg = Registry::new(PairingConfig::default(), Vec::new(), Vec::new(), 0.0);
    let as_of = reg.hello_seq();
    reg.kiosk_hello(KIOSK, &room_401(), true, "https://portal.test", 0.0);
    assert!(reg.sync_enrolled(Vec::new(), as_of).is_empty());
    assert!(reg.name_reserved("ROOM 4.01"));
    assert_eq!(reg.kiosks_online(), 1);
}

#[test]
fn kiosk_names_are_reserved_without_regard_to_case() {
    let reg = Registry::new(PairingConfig::default(), vec![room_401()], Vec::new(), 0.0);
    assert!(reg.name_reserved("room 4.01"));
    assert!(!reg.name_reserved("Room 4.02"));
}

#[test]
fn metrics_count_outcomes_kiosks_and_pairings() {
    let (mut reg, code) = online();
    pair(&mut reg, LAPTOP, ip(1), &code, 0.0);
    pair(&mut reg, PeerId(2), ip(2), "ZZZZZZ", 0.0);
    let mut text = String::new();
    reg.render_metrics(&mut text);
    assert!(
        text.contains("portal_pairing_attempts_total{outcome=\"accepted\"} 1"),
        "{text}"
    );
    assert!(text.contains("portal_pairing_attempts_total{outcome=\"invalidCode\"} 1"));
    assert!(text.contains("portal_kiosks_online 1"));
    assert!(text.contains("portal_pairings 1"));
}

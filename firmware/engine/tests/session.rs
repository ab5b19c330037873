//! The engine's room session in simulated time: joining, the offer rule, reconnecting
//! with backoff, resuming, ICE restarts and the stage.

use std::time::{Duration, Instant};

use portal_engine::{
    Channel, ConnectionState, Engine, EngineConfig, Event, Input, OfferRole, Output, StageChoice,
    StageContent, StageReason,
};
use portal_proto::{
    ClientMessage, PeerId, Role, SdpType, ServerMessage, SessionDescription, SignalData,
};

mod common;

use common::{drain, info, joined, started, stopped, welcome};

/// A kiosk with id 10 in a room with browser 3 and kiosks 5 and 12.
fn in_room(t0: Instant) -> Engine {
    let mut config = EngineConfig::new("r", "Room 4.01");
    config.seed = 99;
    let mut e = Engine::new(config);
    assert_eq!(drain(&mut e), [Output::Connect]);
    e.handle(t0, Input::SignalingOpened);
    let outs = drain(&mut e);
    assert!(matches!(
        &outs[..],
        [Output::Send(ClientMessage::Hello {
            role: Role::Kiosk,
            resume: None,
            ..
        })]
    ));
    e.handle(t0, welcome(10, false));
    assert!(matches!(
        &drain(&mut e)[..],
        [Output::Send(ClientMessage::Join { room, .. })] if room == "r"
    ));
    e.handle(
        t0,
        joined(
            10,
            vec![
                info(3, Role::Browser),
                info(5, Role::Kiosk),
                info(12, Role::Kiosk),
            ],
        ),
    );
    let outs = drain(&mut e);
    assert_eq!(
        started(&outs),
        [
            (3, OfferRole::Answerer),
            (5, OfferRole::Answerer),
            (12, OfferRole::Offerer)
        ]
    );
    assert!(e.is_joined());
    e
}

#[test]
fn joins_and_applies_the_offer_rule() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    // A kiosk with a higher id joins later: we (10) offer. A browser: it offers.
    e.handle(
        t0,
        Input::Server(ServerMessage::PeerJoined {
            peer: info(20, Role::Kiosk),
        }),
    );
    e.handle(
        t0,
        Input::Server(ServerMessage::PeerJoined {
            peer: info(21, Role::Browser),
        }),
    );
    let outs = drain(&mut e);
    assert_eq!(
        started(&outs),
        [(20, OfferRole::Offerer), (21, OfferRole::Answerer)]
    );
    // Leaving tears down that peer only.
    e.handle(
        t0,
        Input::Server(ServerMessage::PeerLeft { peer_id: PeerId(5) }),
    );
    let outs = drain(&mut e);
    assert_eq!(stopped(&outs), [5]);
    assert_eq!(e.peers().len(), 4);
}

#[test]
fn an_offer_from_a_peer_we_offer_to_is_ignored_and_others_pass() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    let offer = |from| {
        Input::Server(ServerMessage::Signal {
            from: PeerId(from),
            data: SignalData::Sdp(SessionDescription {
                kind: SdpType::Offer,
                sdp: "v=0".into(),
            }),
        })
    };
    e.handle(t0, offer(12));
    assert!(
        drain(&mut e).is_empty(),
        "we are 12's offerer; the answerer never offers"
    );
    e.handle(t0, offer(3));
    assert!(matches!(
        &drain(&mut e)[..],
        [Output::Signal {
            from: PeerId(3),
            ..
        }]
    ));
    e.handle(t0, offer(77));
    assert!(drain(&mut e).is_empty(), "not in the room");

    // Our own offers: to 12 (we offer) they go out; to browser 3 they are refused.
    let sdp = |kind| {
        SignalData::Sdp(SessionDescription {
            kind,
            sdp: "v=0".into(),
        })
    };
    e.send_signal(t0, PeerId(12), sdp(SdpType::Offer)).unwrap();
    assert!(matches!(
        &drain(&mut e)[..],
        [Output::Send(ClientMessage::Signal { to: PeerId(12), .. })]
    ));
    assert_eq!(
        e.send_signal(t0, PeerId(3), sdp(SdpType::Offer)),
        Err(portal_engine::EngineError::AnswererOffer(PeerId(3)))
    );
    e.send_signal(t0, PeerId(3), sdp(SdpType::Answer)).unwrap();
    assert_eq!(drain(&mut e).len(), 1);
}

#[test]
fn reconnects_with_growing_jittered_backoff_and_keeps_calls_when_resumed() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    let mut now = t0;
    let mut delays = Vec::new();
    for _ in 0..5 {
        e.handle(now, Input::SignalingClosed);
        let outs = drain(&mut e);
        assert!(
            stopped(&outs).is_empty(),
            "a signaling drop keeps the peer connections"
        );
        let Some(Output::Event(Event::Disconnected { retry_in, .. })) = outs.last() else {
            panic!("{outs:?}");
        };
        delays.push(*retry_in);
        let due = e.poll_timeout().unwrap();
        assert_eq!(due, now + *retry_in);
        e.handle_timeout(due.checked_sub(Duration::from_millis(1)).unwrap());
        assert!(drain(&mut e).is_empty(), "not before the deadline");
        now = due;
        e.handle_timeout(now);
        assert_eq!(drain(&mut e), [Output::Connect]);
    }
    assert!(delays.windows(2).all(|w| w[1] > w[0] / 2), "{delays:?}");
    assert!(delays[4] > delays[0] * 4, "{delays:?}");

    // Connected again: hello carries the resume token; the server gives the id back.
    e.handle(now, Input::SignalingOpened);
    assert!(matches!(
        &drain(&mut e)[..],
        [Output::Send(ClientMessage::Hello { resume: Some(t), .. })] if t == "token-10"
    ));
    e.handle(now, welcome(10, true));
    drain(&mut e);
    // Meanwhile browser 3 left (or is still reconnecting) and browser 30 came.
    e.handle(
        now,
        joined(
            10,
            vec![
                info(5, Role::Kiosk),
                info(12, Role::Kiosk),
                info(30, Role::Browser),
            ],
        ),
    );
    let outs = drain(&mut e);
    assert!(stopped(&outs).is_empty(), "3 is kept for the resume grace");
    assert_eq!(started(&outs), [(30, OfferRole::Answerer)]);
    let grace = e.poll_timeout().unwrap();
    assert_eq!(grace, now + Duration::from_secs(25));
    e.handle_timeout(grace);
    assert_eq!(stopped(&drain(&mut e)), [3], "not back in time: torn down");
    now = grace;

    // The backoff was reset by the join: the next drop waits the short delay again.
    e.handle(now, Input::SignalingClosed);
    let outs = drain(&mut e);
    let Some(Output::Event(Event::Disconnected { retry_in, .. })) = outs.last() else {
        panic!("{outs:?}");
    };
    assert!(*retry_in <= Duration::from_millis(500));
}

#[test]
fn a_new_peer_id_restarts_every_peer_connection() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    e.handle(t0, Input::SignalingClosed);
    e.handle(t0, Input::SignalingOpened);
    e.handle(t0, welcome(40, false));
    let outs = drain(&mut e);
    let mut gone = stopped(&outs);
    gone.sort_unstable();
    assert_eq!(gone, [3, 5, 12]);
    e.handle(
        t0,
        joined(40, vec![info(5, Role::Kiosk), info(12, Role::Kiosk)]),
    );
    let outs = drain(&mut e);
    // With id 40 we are now the higher id: both kiosks offer to us.
    assert_eq!(
        started(&outs),
        [(5, OfferRole::Answerer), (12, OfferRole::Answerer)]
    );
}

#[test]
fn only_the_offerer_restarts_ice_and_it_backs_off() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    let failed = |peer| Input::Connection {
        peer: PeerId(peer),
        state: ConnectionState::Failed,
    };
    e.handle(t0, failed(3));
    assert!(
        drain(&mut e).is_empty(),
        "browser 3 offers; we wait for its ICE restart"
    );
    e.handle(t0, failed(12));
    assert_eq!(drain(&mut e), [Output::RestartIce { peer: PeerId(12) }]);
    let next = e.poll_timeout().unwrap();
    assert!(next > t0);
    e.handle_timeout(next);
    assert_eq!(drain(&mut e), [Output::RestartIce { peer: PeerId(12) }]);
    e.handle(
        next,
        Input::Connection {
            peer: PeerId(12),
            state: ConnectionState::Connected,
        },
    );
    assert_eq!(e.poll_timeout(), None, "connected: no more restarts");
}

fn sdp(kind: SdpType, body: &str) -> SignalData {
    SignalData::Sdp(SessionDescription {
        kind,
        sdp: body.into(),
    })
}

fn candidate(n: u32) -> SignalData {
    SignalData::Candidate(portal_proto::IceCandidate {
        candidate: format!("candidate:{n} 1 udp 1 192.0.2.1 {n} typ host"),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    })
}

#[test]
fn an_ice_restart_waits_for_the_answer_to_the_last_offer() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    let failed = Input::Connection {
        peer: PeerId(12),
        state: ConnectionState::Failed,
    };
    e.handle(t0, failed.clone());
    assert_eq!(drain(&mut e), [Output::RestartIce { peer: PeerId(12) }]);
    // The link sends the restart offer; the remote is slow to answer.
    e.send_signal(t0, PeerId(12), sdp(SdpType::Offer, "restart 1"))
        .unwrap();
    drain(&mut e);
    let next = e.poll_timeout().unwrap();
    e.handle_timeout(next);
    assert!(
        drain(&mut e).is_empty(),
        "no second offer while the first is unanswered"
    );
    let until = e.poll_timeout().unwrap();
    assert!(until >= t0 + Duration::from_secs(10), "{:?}", until - t0);
    // Unanswered for 10 s: taken as lost, so the next restart goes out.
    e.handle_timeout(until);
    assert_eq!(drain(&mut e), [Output::RestartIce { peer: PeerId(12) }]);
    // An answer clears the wait: after it, a new failure restarts at once.
    e.send_signal(until, PeerId(12), sdp(SdpType::Offer, "restart 2"))
        .unwrap();
    e.handle(
        until,
        Input::Server(ServerMessage::Signal {
            from: PeerId(12),
            data: sdp(SdpType::Answer, "answer 2"),
        }),
    );
    e.handle(
        until,
        Input::Connection {
            peer: PeerId(12),
            state: ConnectionState::Connected,
        },
    );
    drain(&mut e);
    e.handle(until, failed);
    assert_eq!(drain(&mut e), [Output::RestartIce { peer: PeerId(12) }]);
}

#[test]
fn a_connection_that_ends_by_itself_is_built_again_and_replays_the_offer() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    // Browser 3 offers and trickles two candidates; our connection to it then ends
    // (it could not be built, say).
    let offer = sdp(SdpType::Offer, "browser offer");
    for data in [offer.clone(), candidate(1), candidate(2)] {
        e.handle(
            t0,
            Input::Server(ServerMessage::Signal {
                from: PeerId(3),
                data,
            }),
        );
    }
    assert_eq!(drain(&mut e).len(), 3, "relayed to the link");
    let closed = |peer| Input::Connection {
        peer: PeerId(peer),
        state: ConnectionState::Closed,
    };
    e.handle(t0, closed(3));
    assert!(started(&drain(&mut e)).is_empty(), "not at once");
    let at = e.poll_timeout().unwrap();
    assert!(
        at > t0 && at <= t0 + Duration::from_secs(2),
        "{:?}",
        at - t0
    );
    // Late words of the old connection change nothing.
    e.handle(
        t0,
        Input::Connection {
            peer: PeerId(3),
            state: ConnectionState::Failed,
        },
    );
    assert!(drain(&mut e).is_empty());
    e.handle_timeout(at);
    let outs = drain(&mut e);
    assert_eq!(started(&outs), [(3, OfferRole::Answerer)]);
    let replayed: Vec<&SignalData> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Signal { from, data } if *from == PeerId(3) => Some(data),
            _ => None,
        })
        .collect();
    assert_eq!(replayed, [&offer, &candidate(1), &candidate(2)]);
    // It fails again: the next attempt backs off further.
    e.handle(at, closed(3));
    drain(&mut e);
    let again = e.poll_timeout().unwrap();
    assert!(again - at > at - t0, "{:?} then {:?}", at - t0, again - at);
    // An offerer's rebuilt connection makes its own offer: nothing is replayed.
    e.handle(t0, closed(12));
    e.handle_timeout(again + Duration::from_secs(30));
    let outs = drain(&mut e);
    assert_eq!(
        started(&outs),
        [(3, OfferRole::Answerer), (12, OfferRole::Offerer)]
    );
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::Signal { from, .. } if *from == PeerId(12)))
    );
    // A peer that leaves is not built again.
    e.handle(at, closed(5));
    e.handle(
        at,
        Input::Server(ServerMessage::PeerLeft { peer_id: PeerId(5) }),
    );
    e.handle_timeout(again + Duration::from_secs(90));
    assert!(
        !started(&drain(&mut e)).iter().any(|(p, _)| *p == 5),
        "peer 5 left"
    );
}

#[test]
fn the_encoder_follows_the_lowest_send_estimate_within_bounds() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    drain(&mut e);
    assert_eq!(e.video_bitrate(), 1000, "the start rate");
    let estimate = |e: &mut Engine, peer, kbps: u64| {
        e.handle(
            t0,
            Input::SendEstimate {
                peer: PeerId(peer),
                bits_per_second: kbps * 1000,
            },
        );
        drain(e)
            .into_iter()
            .filter_map(|o| match o {
                Output::VideoBitrate { kbps } => Some(kbps),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(estimate(&mut e, 3, 2000), [2000]);
    assert_eq!(estimate(&mut e, 12, 800), [800], "the lowest wins");
    assert!(
        estimate(&mut e, 12, 840).is_empty(),
        "5 % is under the hysteresis"
    );
    assert_eq!(estimate(&mut e, 12, 100), [300], "held at the minimum");
    assert_eq!(
        estimate(&mut e, 3, 9000),
        Vec::<u32>::new(),
        "12 still holds it down"
    );
    assert_eq!(estimate(&mut e, 12, 4000), [2500], "held at the maximum");
    assert!(
        estimate(&mut e, 12, 2400).is_empty(),
        "4 % is under the hysteresis"
    );
    assert_eq!(estimate(&mut e, 12, 1500), [1500]);
    // The peer holding the rate down leaves: the rate follows the others at once.
    e.handle(
        t0,
        Input::Server(ServerMessage::PeerLeft {
            peer_id: PeerId(12),
        }),
    );
    let outs = drain(&mut e);
    assert!(
        outs.contains(&Output::VideoBitrate { kbps: 2500 }),
        "{outs:?}"
    );
}

#[test]
fn chat_state_screen_share_and_audio_drive_the_stage() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    let on = |peer, reason| StageChoice {
        content: StageContent::Camera(PeerId(peer)),
        reason,
    };
    assert_eq!(e.stage(), on(3, StageReason::First));
    for peer in [3, 5, 12] {
        e.handle(
            t0,
            Input::ChannelOpened {
                peer: PeerId(peer),
                channel: Channel::Chat,
            },
        );
    }
    // Opening a chat channel sends our media state.
    let outs = drain(&mut e);
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Output::Chat { text, .. } if text.contains("\"state\"")))
            .count(),
        3
    );
    for i in 0..10 {
        e.handle(
            t0 + Duration::from_millis(i * 100),
            Input::AudioLevel {
                peer: PeerId(5),
                level: 0.5,
            },
        );
    }
    assert_eq!(e.stage(), on(5, StageReason::Speaking));
    e.handle(
        t0 + Duration::from_secs(2),
        Input::ChatText {
            peer: PeerId(12),
            text: r#"{"type":"state","audio":true,"video":true,"screen":true,"recording":false}"#
                .into(),
        },
    );
    assert_eq!(
        e.stage(),
        StageChoice {
            content: StageContent::Screen(PeerId(12)),
            reason: StageReason::ScreenShare
        }
    );
    e.pin(Some(StageContent::Camera(PeerId(3))));
    assert_eq!(e.stage(), on(3, StageReason::Pinned));
    let outs = drain(&mut e);
    assert!(outs.contains(&Output::Event(Event::Stage(on(3, StageReason::Pinned)))));

    // Chat from the kiosk goes to every open chat channel, and is logged once.
    e.send_chat(1_700_000_000_000.0, "Welcome to room 4.01")
        .unwrap();
    let outs = drain(&mut e);
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Output::Chat { .. }))
            .count(),
        3
    );
    assert_eq!(e.chat().len(), 1);
    assert!(e.send_chat(0.0, " ").is_err());
}

#[test]
fn a_peer_back_under_its_id_after_a_server_restart_keeps_its_connection() {
    let t0 = Instant::now();
    let mut e = in_room(t0);
    e.handle(t0, Input::SignalingClosed);
    drain(&mut e);
    let due = e.poll_timeout().unwrap();
    e.handle_timeout(due);
    e.handle(due, Input::SignalingOpened);
    e.handle(due, welcome(10, true));
    // The kiosk is back first: nobody else is listed yet.
    e.handle(due, joined(10, vec![]));
    let outs = drain(&mut e);
    assert!(stopped(&outs).is_empty(), "{outs:?}");
    // Browser 3 and kiosk 5 resume under their ids: their connections go on.
    for peer in [info(3, Role::Browser), info(5, Role::Kiosk)] {
        e.handle(due, Input::Server(ServerMessage::PeerJoined { peer }));
    }
    let outs = drain(&mut e);
    assert!(
        stopped(&outs).is_empty() && started(&outs).is_empty(),
        "{outs:?}"
    );
    // Kiosk 12 never comes back: it goes when the grace is over, the others stay.
    let grace = e.poll_timeout().unwrap();
    assert_eq!(grace, due + Duration::from_secs(25));
    e.handle_timeout(grace);
    assert_eq!(stopped(&drain(&mut e)), [12]);
    let left: Vec<u64> = e.peers().iter().map(|p| p.id.0).collect();
    assert_eq!(left, [3, 5]);
}

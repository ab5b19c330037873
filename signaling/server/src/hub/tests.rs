// Times pass through unchanged, so exact float comparison is the point.
#![allow(clippy::float_cmp)]

use portal_proto::{
    IceCandidate, MAX_ROOMS_QUERY, SdpType, SessionDescription, SignalData, VideoSource,
    WatchSnapshot,
};

use super::*;

fn hub() -> Hub {
    Hub::new(
        HubConfig::default(),
        DocTokens::new([1; 32], 60_000.0),
        Vec::new(),
    )
}

fn hello(hub: &mut Hub, id: u64, name: &str) -> PeerId {
    let peer = PeerId(id);
    hub.connect(peer);
    let out = hub.handle(
        peer,
        0.0,
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            name: name.into(),
            role: Role::Browser,
            resume: None,
            device: None,
        },
    );
    assert!(
        matches!(&out[..], [Action::Send { msg: ServerMessage::Welcome { peer_id, .. }, .. }] if *peer_id == peer)
    );
    peer
}

fn join(hub: &mut Hub, peer: PeerId, room: &str) -> Vec<Action> {
    hub.join(peer, 1.0, room.into(), &Credential::None)
}

/// Messages sent to `peer` by a batch of actions.
fn to(out: &[Action], peer: PeerId) -> Vec<&ServerMessage> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { to, msg } if to.contains(&peer) => Some(msg),
            _ => None,
        })
        .collect()
}

fn error_code(out: &[Action], peer: PeerId) -> Option<ErrorCode> {
    to(out, peer).into_iter().find_map(|m| match m {
        ServerMessage::Error { code, .. } => Some(*code),
        _ => None,
    })
}

fn offer() -> SignalData {
    SignalData::Sdp(SessionDescription {
        kind: SdpType::Offer,
        sdp: "v=0\r\n".into(),
    })
}

#[test]
fn joining_lists_peers_and_announces_the_newcomer() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "Ada");
    let b = hello(&mut hub, 2, "Bo");
    let out = join(&mut hub, a, "room");
    assert!(matches!(to(&out, a)[..], [ServerMessage::Joined { peers, .. }] if peers.is_empty()));
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Store(StoreOp::CreateRoom {
            password_hash: None,
            ..
        })
    )));

    let out = join(&mut hub, b, "room");
    match to(&out, b)[..] {
        [
            ServerMessage::Joined {
                peers, doc_token, ..
            },
        ] => {
            assert_eq!(peers.len(), 1);
            assert_eq!(peers[0].id, a);
            assert_eq!(peers[0].name, "Ada");
            assert!(!doc_token.is_empty());
        }
        ref other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(to(&out, a)[..], [ServerMessage::PeerJoined { peer }] if peer.id == b));
    assert_eq!(hub.room_members("room"), &[a, b]);
}

#[test]
fn signals_reach_only_the_addressed_peer_in_the_same_room() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    let b = hello(&mut hub, 2, "b");
    let c = hello(&mut hub, 3, "c");
    let d = hello(&mut hub, 4, "d");
    for p in [a, b, c] {
        join(&mut hub, p, "one");
    }
    join(&mut hub, d, "two");

    let out = hub.handle(
        a,
        2.0,
        ClientMessage::Signal {
            to: b,
            data: offer(),
        },
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        to(&out, b),
        vec![&ServerMessage::Signal {
            from: a,
            data: offer()
        }]
    );
    assert!(to(&out, c).is_empty());

    // Across rooms, to oneself and to nobody: unknownPeer, nothing delivered.
    for target in [d, a, PeerId(99)] {
        let out = hub.handle(
            a,
            2.0,
            ClientMessage::Signal {
                to: target,
                data: offer(),
            },
        );
        assert_eq!(error_code(&out, a), Some(ErrorCode::UnknownPeer));
        assert!(to(&out, target).is_empty() || target == a);
    }
    let out = hub.handle(
        d,
        2.0,
        ClientMessage::Signal {
            to: a,
            data: offer(),
        },
    );
    assert_eq!(error_code(&out, d), Some(ErrorCode::UnknownPeer));
}

#[test]
fn candidates_are_relayed_verbatim() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    let b = hello(&mut hub, 2, "b");
    join(&mut hub, a, "r");
    join(&mut hub, b, "r");
    let data = SignalData::Candidate(IceCandidate {
        candidate: "candidate:1 1 udp 2122260223 1f4e.local 54321 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: Some("abcd".into()),
    });
    let out = hub.handle(
        b,
        3.0,
        ClientMessage::Signal {
            to: a,
            data: data.clone(),
        },
    );
    assert_eq!(to(&out, a), vec![&ServerMessage::Signal { from: b, data }]);
}

#[test]
fn leave_and_disconnect_both_announce_peer_left() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    let b = hello(&mut hub, 2, "b");
    let c = hello(&mut hub, 3, "c");
    for p in [a, b, c] {
        join(&mut hub, p, "r");
    }
    let out = hub.handle(a, 5.0, ClientMessage::Leave);
    assert_eq!(to(&out, a), vec![&ServerMessage::Left { room: "r".into() }]);
    assert_eq!(to(&out, b), vec![&ServerMessage::PeerLeft { peer_id: a }]);
    assert_eq!(to(&out, c), vec![&ServerMessage::PeerLeft { peer_id: a }]);
    // A second leave is an error, and the connection is still there.
    let out = hub.handle(a, 5.0, ClientMessage::Leave);
    assert_eq!(error_code(&out, a), Some(ErrorCode::NotInRoom));

    let out = hub.disconnect(b, 6.0, true);
    assert_eq!(to(&out, c), vec![&ServerMessage::PeerLeft { peer_id: b }]);
    assert_eq!(hub.room_members("r"), &[c]);
    assert_eq!(hub.peer_count(), 2);
}

#[test]
fn the_ninth_peer_gets_room_full() {
    let mut hub = hub();
    for i in 1..=8 {
        let p = hello(&mut hub, i, "p");
        assert!(error_code(&join(&mut hub, p, "r"), p).is_none());
    }
    let ninth = hello(&mut hub, 9, "p");
    assert_eq!(
        error_code(&join(&mut hub, ninth, "r"), ninth),
        Some(ErrorCode::RoomFull)
    );
    // Still usable: another room works.
    assert!(error_code(&join(&mut hub, ninth, "other"), ninth).is_none());
}

#[test]
fn passwords_are_checked_against_the_room_hash() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    let b = hello(&mut hub, 2, "b");
    assert_eq!(hub.room_access("secret"), Ok(RoomAccess::New));
    let out = hub.join(a, 1.0, "secret".into(), &Credential::NewHash("H1".into()));
    assert!(error_code(&out, a).is_none());
    assert!(out.iter().any(|x| matches!(x, Action::Store(StoreOp::CreateRoom { password_hash: Some(h), .. }) if h == "H1")));
    assert_eq!(
        hub.room_access("secret"),
        Ok(RoomAccess::Protected("H1".into()))
    );

    for cred in [
        Credential::None,
        Credential::Rejected,
        Credential::Verified("H2".into()),
        Credential::NewHash("H1".into()),
    ] {
        let out = hub.join(b, 1.0, "secret".into(), &cred);
        assert_eq!(
            error_code(&out, b),
            Some(ErrorCode::WrongPassword),
            "{cred:?}"
        );
    }
    let out = hub.join(b, 1.0, "secret".into(), &Credential::Verified("H1".into()));
    assert!(error_code(&out, b).is_none());
}

#[test]
fn a_password_for_an_open_room_is_refused_and_joined_says_protected() {
    let mut hub = hub();
    let squatter = hello(&mut hub, 1, "squatter");
    let kiosk = hello(&mut hub, 2, "Room 4.01");
    let out = join(&mut hub, squatter, "4-01");
    assert!(matches!(
        to(&out, squatter)[..],
        [ServerMessage::Joined {
            protected: false,
            ..
        }]
    ));
    // Whatever the check outside concluded, a password does not enter an open room.
    for cred in [
        Credential::Unchecked,
        Credential::NewHash("H".into()),
        Credential::Verified("H".into()),
        Credential::Rejected,
    ] {
        let out = hub.join(kiosk, 2.0, "4-01".into(), &cred);
        assert_eq!(
            error_code(&out, kiosk),
            Some(ErrorCode::PasswordMismatch),
            "{cred:?}"
        );
        assert!(to(&out, squatter).is_empty(), "{cred:?}");
    }
    assert_eq!(hub.room_access("4-01"), Ok(RoomAccess::Open));
    assert_eq!(hub.room_members("4-01"), &[squatter]);
    // The connection goes on: without a password it may join, and is told it is open.
    let out = join(&mut hub, kiosk, "4-01");
    assert!(matches!(
        to(&out, kiosk)[..],
        [ServerMessage::Joined {
            protected: false,
            ..
        }]
    ));

    // A protected room says so, to its creator and to those who join it.
    let owner = hello(&mut hub, 3, "owner");
    let guest = hello(&mut hub, 4, "guest");
    let out = hub.join(owner, 3.0, "vault".into(), &Credential::NewHash("H".into()));
    assert!(matches!(
        to(&out, owner)[..],
        [ServerMessage::Joined {
            protected: true,
            ..
        }]
    ));
    let out = hub.join(
        guest,
        3.0,
        "vault".into(),
        &Credential::Verified("H".into()),
    );
    assert!(matches!(
        to(&out, guest)[..],
        [ServerMessage::Joined {
            protected: true,
            ..
        }]
    ));
    // A room that vanished while its password was checked is not entered either.
    let late = hello(&mut hub, 5, "late");
    assert_eq!(
        error_code(
            &hub.join(late, 4.0, "gone".into(), &Credential::Unchecked),
            late
        ),
        Some(ErrorCode::WrongPassword)
    );
    assert_eq!(hub.room_access("gone"), Ok(RoomAccess::New));
}

#[test]
fn an_open_room_goes_a_while_after_it_empties_and_a_protected_one_stays() {
    let config = HubConfig {
        max_rooms: 2,
        open_linger_ms: 60_000.0,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, DocTokens::new([1; 32], 1.0), Vec::new());
    let a = hello(&mut hub, 1, "a");
    // Join and leave as often as you like: each room goes a while after it empties, so
    // the room cap is not filled.
    let mut now = 2.0;
    for i in 0..10 {
        let room = format!("cycle-{i}");
        assert!(error_code(&join(&mut hub, a, &room), a).is_none());
        let out = hub.handle(a, now, ClientMessage::Leave);
        assert!(!out.contains(&Action::Store(StoreOp::DeleteRoom { room: room.clone() })));
        assert_eq!(hub.known_rooms(), 1, "kept for people who step out");
        assert!(hub.expire_away(now + 59_999.0).is_empty());
        now += 60_000.0;
        let out = hub.expire_away(now);
        assert!(out.contains(&Action::Store(StoreOp::DeleteRoom { room })));
        assert_eq!(hub.known_rooms(), 0);
    }
    // Someone back in time keeps it.
    join(&mut hub, a, "back");
    hub.handle(a, now, ClientMessage::Leave);
    join(&mut hub, a, "back");
    assert!(hub.expire_away(now + 120_000.0).is_empty());
    hub.handle(a, now + 120_000.0, ClientMessage::Leave);
    now += 200_000.0;
    assert_eq!(hub.expire_away(now).len(), 1);

    // A protected room keeps its password while empty (and counts).
    let c = hello(&mut hub, 3, "c");
    hub.join(c, now, "vault".into(), &Credential::NewHash("H".into()));
    let out = hub.handle(c, now, ClientMessage::Leave);
    assert!(
        !out.iter()
            .any(|x| matches!(x, Action::Store(StoreOp::DeleteRoom { .. })))
    );
    assert_eq!(
        hub.room_access("vault"),
        Ok(RoomAccess::Protected("H".into()))
    );
    assert!(hub.expire_away(1e12).is_empty());
    assert_eq!(hub.known_rooms(), 1);
}

#[test]
fn open_rooms_from_the_store_wait_for_their_peers() {
    let stored = |name: &str, hash: Option<&str>| StoredRoom {
        name: name.into(),
        password_hash: hash.map(Into::into),
        last_active: 0.0,
        watch: None,
    };
    let config = HubConfig {
        open_linger_ms: 20_000.0,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(
        config,
        DocTokens::new([1; 32], 1.0),
        vec![
            stored("back", None),
            stored("nobody", None),
            stored("kept", Some("H")),
            stored("retaken", None),
        ],
    );
    assert!(hub.expire_away(1000.0).is_empty());
    let a = hello(&mut hub, 1, "a");
    join(&mut hub, a, "back");
    // Entered and left: it goes after the same wait.
    let b = hello(&mut hub, 2, "b");
    join(&mut hub, b, "retaken");
    hub.handle(b, 2.0, ClientMessage::Leave);
    assert!(hub.expire_away(15_000.0).is_empty());
    let out = hub.expire_away(21_000.0);
    assert_eq!(
        out,
        vec![
            Action::Store(StoreOp::DeleteRoom {
                room: "nobody".into()
            }),
            Action::Store(StoreOp::DeleteRoom {
                room: "retaken".into()
            }),
        ]
    );
    // Made again, protected, and left empty: it stays.
    hub.join(
        b,
        22_000.0,
        "retaken".into(),
        &Credential::NewHash("H2".into()),
    );
    hub.handle(b, 23_000.0, ClientMessage::Leave);
    assert!(hub.expire_away(1e9).is_empty());
    assert_eq!(hub.room_access("back"), Ok(RoomAccess::Open));
    assert_eq!(
        hub.room_access("kept"),
        Ok(RoomAccess::Protected("H".into()))
    );
    assert_eq!(hub.room_access("nobody"), Ok(RoomAccess::New));
    assert_eq!(
        hub.room_access("retaken"),
        Ok(RoomAccess::Protected("H2".into()))
    );
}

#[test]
fn stored_rooms_keep_their_password_and_watch_state() {
    let snapshot = WatchSnapshot {
        state: WatchState {
            source: Some(VideoSource::Youtube {
                video_id: "dQw4w9WgXcQ".into(),
            }),
            playing: true,
            position: 12.5,
            rate: 1.0,
        },
        server_time: 100.0,
    };
    let mut hub = Hub::new(
        HubConfig::default(),
        DocTokens::new([1; 32], 1.0),
        vec![StoredRoom {
            name: "kept".into(),
            password_hash: Some("H".into()),
            last_active: 0.0,
            watch: Some(snapshot.clone()),
        }],
    );
    let a = hello(&mut hub, 1, "a");
    assert_eq!(
        error_code(&join(&mut hub, a, "kept"), a),
        Some(ErrorCode::WrongPassword)
    );
    let out = hub.join(a, 1.0, "kept".into(), &Credential::Verified("H".into()));
    assert!(
        matches!(to(&out, a)[..], [ServerMessage::Joined { watch: Some(w), .. }] if *w == snapshot)
    );
}

#[test]
fn hello_rules() {
    let mut hub = hub();
    let p = PeerId(1);
    hub.connect(p);
    let out = hub.handle(
        p,
        0.0,
        ClientMessage::Join {
            room: "r".into(),
            password: None,
        },
    );
    assert_eq!(error_code(&out, p), Some(ErrorCode::HelloRequired));
    let out = hub.join(p, 0.0, "r".into(), &Credential::None);
    assert_eq!(error_code(&out, p), Some(ErrorCode::HelloRequired));

    let bad_name = ClientMessage::Hello {
        protocol: 1,
        name: "  ".into(),
        role: Role::Kiosk,
        resume: None,
        device: None,
    };
    assert_eq!(
        error_code(&hub.handle(p, 0.0, bad_name), p),
        Some(ErrorCode::InvalidName)
    );

    let wrong = ClientMessage::Hello {
        protocol: 2,
        name: "k".into(),
        role: Role::Kiosk,
        resume: None,
        device: None,
    };
    let out = hub.handle(p, 0.0, wrong);
    assert_eq!(error_code(&out, p), Some(ErrorCode::UnsupportedProtocol));
    assert!(out.contains(&Action::Close {
        peer: p,
        code: ErrorCode::UnsupportedProtocol
    }));

    let q = hello(&mut hub, 2, "q");
    let again = ClientMessage::Hello {
        protocol: 1,
        name: "q".into(),
        role: Role::Browser,
        resume: None,
        device: None,
    };
    assert_eq!(
        error_code(&hub.handle(q, 0.0, again), q),
        Some(ErrorCode::AlreadyHello)
    );
}

#[test]
fn invalid_room_names_and_double_join() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    for bad in ["", "../etc", "a b", "-x", &"x".repeat(65), "ünï"] {
        assert_eq!(
            error_code(&join(&mut hub, a, bad), a),
            Some(ErrorCode::InvalidRoomName),
            "{bad:?}"
        );
        assert_eq!(hub.room_access(bad), Err(ErrorCode::InvalidRoomName));
    }
    join(&mut hub, a, "ok.room_1-A");
    assert_eq!(
        error_code(&join(&mut hub, a, "other"), a),
        Some(ErrorCode::AlreadyInRoom)
    );
}

#[test]
fn watch_state_is_validated_broadcast_and_given_to_late_joiners() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    let b = hello(&mut hub, 2, "b");
    let state = WatchState {
        source: Some(VideoSource::Url {
            url: "http://127.0.0.1:9/v.mp4".into(),
        }),
        playing: true,
        position: 3.0,
        rate: 1.25,
    };
    let out = hub.handle(
        a,
        0.0,
        ClientMessage::Watch {
            state: state.clone(),
        },
    );
    assert_eq!(error_code(&out, a), Some(ErrorCode::NotInRoom));
    join(&mut hub, a, "r");
    let out = hub.handle(
        a,
        500.0,
        ClientMessage::Watch {
            state: state.clone(),
        },
    );
    assert!(
        matches!(to(&out, a)[..], [ServerMessage::Watch { server_time, by: Some(by), .. }] if *server_time == 500.0 && *by == a)
    );
    assert!(
        out.iter()
            .any(|x| matches!(x, Action::Store(StoreOp::SaveWatch { .. })))
    );

    let out = join(&mut hub, b, "r");
    assert!(
        matches!(to(&out, b)[..], [ServerMessage::Joined { watch: Some(WatchSnapshot { server_time, .. }), .. }] if *server_time == 500.0)
    );

    for bad in [
        WatchState {
            rate: 10.0,
            ..state.clone()
        },
        WatchState {
            position: f64::NAN,
            ..state.clone()
        },
        WatchState {
            position: -1.0,
            ..state.clone()
        },
        WatchState {
            source: Some(VideoSource::Url {
                url: "javascript:alert(1)".into(),
            }),
            ..state.clone()
        },
        WatchState {
            source: Some(VideoSource::Youtube {
                video_id: "short".into(),
            }),
            ..state.clone()
        },
    ] {
        let out = hub.handle(a, 600.0, ClientMessage::Watch { state: bad });
        assert_eq!(error_code(&out, a), Some(ErrorCode::BadRequest));
    }
}

#[test]
fn ping_is_answered_with_server_time() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    let out = hub.handle(
        a,
        1234.0,
        ClientMessage::Ping {
            id: 9,
            client_time: 1000.0,
        },
    );
    assert_eq!(
        to(&out, a),
        vec![&ServerMessage::Pong {
            id: 9,
            client_time: 1000.0,
            server_time: 1234.0
        }]
    );
}

#[test]
fn idle_rooms_expire_but_occupied_ones_stay() {
    let config = HubConfig {
        room_ttl_ms: 1000.0,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, DocTokens::new([1; 32], 1.0), Vec::new());
    let a = hello(&mut hub, 1, "a");
    join(&mut hub, a, "busy");
    let b = hello(&mut hub, 2, "b");
    // A protected room is kept while empty, for the TTL.
    hub.join(b, 1.0, "idle".into(), &Credential::NewHash("H".into()));
    hub.disconnect(b, 10.0, true);
    assert!(hub.expire(900.0).is_empty());
    let out = hub.expire(5000.0);
    assert_eq!(
        out,
        vec![Action::Store(StoreOp::DeleteRoom {
            room: "idle".into()
        })]
    );
    assert_eq!(hub.known_rooms(), 1);
}

#[test]
fn room_cap_gives_too_many_rooms() {
    let config = HubConfig {
        max_rooms: 2,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, DocTokens::new([1; 32], 1.0), Vec::new());
    for (i, room) in ["r1", "r2", "r3"].iter().enumerate() {
        let p = hello(&mut hub, i as u64 + 1, "p");
        let out = join(&mut hub, p, room);
        if i < 2 {
            assert!(error_code(&out, p).is_none());
        } else {
            assert_eq!(error_code(&out, p), Some(ErrorCode::TooManyRooms));
        }
    }
}

#[test]
fn a_dropped_peer_stays_for_the_grace_and_resumes_its_id() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    let b = hello(&mut hub, 2, "b");
    join(&mut hub, a, "r");
    join(&mut hub, b, "r");
    // b's welcome carried a resume token.
    let token = hub.tokens.issue_resume(b, 0.0);

    // The socket drops without a close frame: nobody is told.
    assert!(hub.disconnect(b, 10.0, false).is_empty());
    assert!(hub.is_away(b));
    assert_eq!(hub.room_members("r"), &[a, b]);
    // Signals to an away peer are accepted (and lost) without an error.
    let out = hub.handle(
        a,
        11.0,
        ClientMessage::Signal {
            to: b,
            data: offer(),
        },
    );
    assert!(error_code(&out, a).is_none());

    // A new connection resumes b: same id, back in the room, the others see nothing.
    let conn = PeerId(3);
    hub.connect(conn);
    let out = hub.handle(
        conn,
        12.0,
        ClientMessage::Hello {
            protocol: 1,
            name: "b".into(),
            role: Role::Browser,
            resume: Some(token.clone()),
            device: None,
        },
    );
    assert!(out.contains(&Action::Rekey { from: conn, to: b }));
    assert!(
        matches!(to(&out, b)[..], [ServerMessage::Welcome { peer_id, resumed: true, .. }] if *peer_id == b)
    );
    let out = hub.join(b, 13.0, "r".into(), &Credential::None);
    assert!(
        matches!(to(&out, b)[..], [ServerMessage::Joined { peers, .. }] if peers.len() == 1 && peers[0].id == a)
    );
    assert!(to(&out, a).is_empty());
    assert!(!hub.is_away(b));

    // A token for a peer that is connected gives a fresh id.
    let conn = PeerId(4);
    hub.connect(conn);
    let out = hub.handle(
        conn,
        14.0,
        ClientMessage::Hello {
            protocol: 1,
            name: "x".into(),
            role: Role::Browser,
            resume: Some(token),
            device: None,
        },
    );
    assert!(
        matches!(to(&out, conn)[..], [ServerMessage::Welcome { peer_id, resumed: false, .. }] if *peer_id == conn)
    );
}

#[test]
fn the_grace_runs_out_with_peer_left_and_a_clean_close_leaves_at_once() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    let b = hello(&mut hub, 2, "b");
    let c = hello(&mut hub, 3, "c");
    for p in [a, b, c] {
        join(&mut hub, p, "r");
    }
    hub.disconnect(b, 0.0, false);
    assert!(hub.expire_away(19_999.0).is_empty());
    let out = hub.expire_away(20_000.0);
    assert_eq!(to(&out, a), vec![&ServerMessage::PeerLeft { peer_id: b }]);
    assert_eq!(hub.peer_count(), 2);

    let out = hub.disconnect(c, 1.0, true);
    assert_eq!(to(&out, a), vec![&ServerMessage::PeerLeft { peer_id: c }]);

    // After a restart the server knows nobody; a valid token still gives the id back.
    let mut fresh = Hub::new(
        HubConfig::default(),
        DocTokens::new([1; 32], 60_000.0),
        Vec::new(),
    );
    let conn = PeerId(1_000_001);
    fresh.connect(conn);
    let token = hub.tokens.issue_resume(a, 0.0);
    let out = fresh.handle(
        conn,
        1.0,
        ClientMessage::Hello {
            protocol: 1,
            name: "a".into(),
            role: Role::Browser,
            resume: Some(token),
            device: None,
        },
    );
    assert!(out.contains(&Action::Rekey { from: conn, to: a }));
    // Forged or foreign tokens are ignored.
    let conn = PeerId(1_000_002);
    fresh.connect(conn);
    let out = fresh.handle(
        conn,
        1.0,
        ClientMessage::Hello {
            protocol: 1,
            name: "z".into(),
            role: Role::Browser,
            resume: Some("v1.5.99999999.AAAA".into()),
            device: None,
        },
    );
    assert!(matches!(
        to(&out, conn)[..],
        [ServerMessage::Welcome { resumed: false, .. }]
    ));
}

/// The `rooms` answer sent to `peer`, as (room, peers) pairs.
fn occupancy(out: &[Action], peer: PeerId) -> Vec<(&str, u32)> {
    match to(out, peer)[..] {
        [ServerMessage::Rooms { rooms }] => {
            rooms.iter().map(|r| (r.room.as_str(), r.peers)).collect()
        }
        ref other => panic!("expected rooms, got {other:?}"),
    }
}

fn ask(hub: &mut Hub, peer: PeerId, rooms: &[&str]) -> Vec<Action> {
    let rooms = rooms.iter().map(|r| (*r).to_owned()).collect();
    hub.handle(peer, 2.0, ClientMessage::Rooms { rooms })
}

#[test]
fn rooms_counts_members_in_the_order_asked() {
    let mut hub = hub();
    let a1 = hello(&mut hub, 1, "a1");
    let a2 = hello(&mut hub, 2, "a2");
    let b1 = hello(&mut hub, 3, "b1");
    let asker = hello(&mut hub, 4, "kiosk");
    join(&mut hub, a1, "a");
    join(&mut hub, a2, "a");
    join(&mut hub, b1, "b");
    // A room that was used and emptied reads 0 like one that never existed.
    let gone = hello(&mut hub, 5, "gone");
    join(&mut hub, gone, "emptied");
    hub.handle(gone, 2.0, ClientMessage::Leave);
    let known = hub.known_rooms();

    let out = ask(&mut hub, asker, &["a", "b", "c", "emptied", "a"]);
    assert_eq!(
        occupancy(&out, asker),
        vec![("a", 2), ("b", 1), ("c", 0), ("emptied", 0), ("a", 2)]
    );
    // Only the asker hears the answer; nothing is created or stored.
    assert_eq!(out.len(), 1);
    assert_eq!(hub.known_rooms(), known);
    assert_eq!(hub.room_of(asker), None);

    // From inside a room too, and an empty query gets an empty answer.
    let out = ask(&mut hub, b1, &["b", "a"]);
    assert_eq!(occupancy(&out, b1), vec![("b", 1), ("a", 2)]);
    assert!(occupancy(&ask(&mut hub, asker, &[]), asker).is_empty());
}

#[test]
fn rooms_leaves_out_peers_inside_their_resume_grace() {
    let mut hub = hub();
    let a = hello(&mut hub, 1, "a");
    let b = hello(&mut hub, 2, "b");
    let asker = hello(&mut hub, 3, "kiosk");
    join(&mut hub, a, "r");
    join(&mut hub, b, "r");
    let token = hub.tokens.issue_resume(b, 0.0);

    hub.disconnect(b, 10.0, false);
    assert!(hub.is_away(b));
    assert_eq!(
        occupancy(&ask(&mut hub, asker, &["r"]), asker),
        vec![("r", 1)]
    );

    // Back under its id: counted again.
    let conn = PeerId(9);
    hub.connect(conn);
    let out = hub.handle(
        conn,
        11.0,
        ClientMessage::Hello {
            protocol: 1,
            name: "b".into(),
            role: Role::Browser,
            resume: Some(token),
            device: None,
        },
    );
    assert!(out.contains(&Action::Rekey { from: conn, to: b }));
    assert_eq!(
        occupancy(&ask(&mut hub, asker, &["r"]), asker),
        vec![("r", 2)]
    );

    // Gone for good after the grace.
    hub.disconnect(a, 12.0, false);
    hub.expire_away(1e9);
    assert_eq!(
        occupancy(&ask(&mut hub, asker, &["r"]), asker),
        vec![("r", 1)]
    );
}

#[test]
fn rooms_shows_a_protected_room_only_to_its_members() {
    let mut hub = hub();
    let owner = hello(&mut hub, 1, "owner");
    let guest = hello(&mut hub, 2, "guest");
    let stranger = hello(&mut hub, 3, "stranger");
    hub.join(owner, 1.0, "vault".into(), &Credential::NewHash("H".into()));
    hub.join(
        guest,
        1.0,
        "vault".into(),
        &Credential::Verified("H".into()),
    );
    join(&mut hub, stranger, "open");

    // Outside, a protected room reads like an empty or unknown one.
    let out = ask(&mut hub, stranger, &["vault", "open", "nowhere"]);
    assert_eq!(
        occupancy(&out, stranger),
        vec![("vault", 0), ("open", 1), ("nowhere", 0)]
    );
    // Its members see the count (they know the member list anyway).
    let out = ask(&mut hub, guest, &["vault", "open"]);
    assert_eq!(occupancy(&out, guest), vec![("vault", 2), ("open", 1)]);
    // Once out of the room, so is the count.
    hub.handle(guest, 3.0, ClientMessage::Leave);
    assert_eq!(
        occupancy(&ask(&mut hub, guest, &["vault"]), guest),
        vec![("vault", 0)]
    );
}

#[test]
fn rooms_refuses_bad_queries_and_the_connection_goes_on() {
    let mut hub = hub();
    let early = PeerId(1);
    hub.connect(early);
    assert_eq!(
        error_code(&ask(&mut hub, early, &["a"]), early),
        Some(ErrorCode::HelloRequired)
    );

    let p = hello(&mut hub, 2, "kiosk");
    join(&mut hub, p, "a");
    let names: Vec<String> = (0..=MAX_ROOMS_QUERY).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = ask(&mut hub, p, &refs);
    assert_eq!(out.len(), 1);
    assert_eq!(error_code(&out, p), Some(ErrorCode::BadRequest));
    // Exactly the limit is fine.
    assert_eq!(
        occupancy(&ask(&mut hub, p, &refs[..MAX_ROOMS_QUERY]), p).len(),
        MAX_ROOMS_QUERY
    );

    for bad in ["", "../etc", "a b", "-x", &"x".repeat(65)] {
        let out = ask(&mut hub, p, &["a", bad]);
        assert_eq!(out.len(), 1, "{bad:?}");
        assert_eq!(
            error_code(&out, p),
            Some(ErrorCode::InvalidRoomName),
            "{bad:?}"
        );
    }
    assert_eq!(occupancy(&ask(&mut hub, p, &["a"]), p), vec![("a", 1)]);
    assert_eq!(hub.room_of(p), Some("a"));
}

mod fuzz {
    //! Arbitrary sequences of connections, messages and disconnections: the hub never
    //! panics, keeps its invariants, and its output stays bounded by the room size.
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Connect,
        Hello(usize, String, u32),
        Join(usize, String, u8),
        Leave(usize),
        Signal(usize, u64),
        Watch(usize, f64, f64),
        Ping(usize),
        Rooms(usize, Vec<String>),
        Disconnect(usize),
        Expire(f64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let room = prop_oneof![Just("a".to_owned()), Just("b".to_owned()), "[a-z./ -]{0,6}"];
        prop_oneof![
            3 => Just(Op::Connect),
            3 => (0..24usize, "[a-zA-Z \u{0}\u{7}é]{0,8}", prop_oneof![Just(1u32), any::<u32>()]).prop_map(|(p, n, v)| Op::Hello(p, n, v)),
            4 => (0..24usize, room, 0..5u8).prop_map(|(p, r, c)| Op::Join(p, r, c)),
            1 => (0..24usize).prop_map(Op::Leave),
            4 => (0..24usize, 0..30u64).prop_map(|(p, to)| Op::Signal(p, to)),
            1 => (0..24usize, any::<f64>(), any::<f64>()).prop_map(|(p, pos, rate)| Op::Watch(p, pos, rate)),
            1 => (0..24usize).prop_map(Op::Ping),
            2 => (0..24usize, proptest::collection::vec(prop_oneof![Just("a".to_owned()), Just("b".to_owned()), "[a-z./ -]{0,6}"], 0..40)).prop_map(|(p, r)| Op::Rooms(p, r)),
            2 => (0..24usize).prop_map(Op::Disconnect),
            1 => (0.0..1e12f64).prop_map(Op::Expire),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn hub_keeps_its_invariants(ops in proptest::collection::vec(op(), 1..200)) {
            let config = HubConfig { max_peers_per_room: 3, max_rooms: 4, room_ttl_ms: 1e6, ..HubConfig::default() };
            let max_peers = config.max_peers_per_room;
            let mut hub = Hub::new(config, DocTokens::new([0; 32], 1e6), Vec::new());
            let mut connected: Vec<PeerId> = Vec::new();
            let mut next = 1u64;
            let pick = |connected: &[PeerId], i: usize| connected.get(i % connected.len().max(1)).copied();
            for (step, op) in ops.into_iter().enumerate() {
                let now = step as f64;
                let out = match op {
                    Op::Connect => {
                        let p = PeerId(next);
                        next += 1;
                        hub.connect(p);
                        connected.push(p);
                        Vec::new()
                    }
                    Op::Hello(i, name, v) => match pick(&connected, i) {
                        Some(p) => hub.handle(p, now, ClientMessage::Hello { protocol: v, name, role: Role::Browser, resume: None, device: None }),
                        None => Vec::new(),
                    },
                    Op::Join(i, room, c) => match pick(&connected, i) {
                        Some(p) => {
                            let cred = match c {
                                0 => Credential::None,
                                1 => Credential::NewHash("h".into()),
                                2 => Credential::Verified("h".into()),
                                3 => Credential::Unchecked,
                                _ => Credential::Rejected,
                            };
                            hub.join(p, now, room, &cred)
                        }
                        None => Vec::new(),
                    },
                    Op::Leave(i) => pick(&connected, i).map_or_else(Vec::new, |p| hub.handle(p, now, ClientMessage::Leave)),
                    Op::Signal(i, to) => pick(&connected, i).map_or_else(Vec::new, |p| {
                        hub.handle(p, now, ClientMessage::Signal { to: PeerId(to), data: offer() })
                    }),
                    Op::Watch(i, position, rate) => pick(&connected, i).map_or_else(Vec::new, |p| {
                        hub.handle(p, now, ClientMessage::Watch { state: WatchState { source: None, playing: true, position, rate } })
                    }),
                    Op::Ping(i) => pick(&connected, i).map_or_else(Vec::new, |p| {
                        hub.handle(p, now, ClientMessage::Ping { id: 1, client_time: now })
                    }),
                    Op::Rooms(i, rooms) => pick(&connected, i).map_or_else(Vec::new, |p| {
                        hub.handle(p, now, ClientMessage::Rooms { rooms })
                    }),
                    Op::Disconnect(i) => match pick(&connected, i) {
                        Some(p) => {
                            connected.retain(|q| *q != p);
                            hub.disconnect(p, now, step % 2 == 0)
                        }
                        None => Vec::new(),
                    },
                    Op::Expire(t) => {
                        let mut out = hub.expire_away(t);
                        out.extend(hub.expire(t));
                        out
                    }
                };
                // Output is bounded: a handful of actions, each to at most a room's worth.
                let expiring = matches!(out.first(), Some(Action::Store(StoreOp::DeleteRoom { .. })));
                prop_assert!(out.len() <= 6 || expiring, "{} actions", out.len());
                for action in &out {
                    if let Action::Send { to, msg } = action {
                        prop_assert!(to.len() <= max_peers);
                        // Relayed signals go only to peers in the sender's room.
                        if let ServerMessage::Signal { from, .. } = msg {
                            prop_assert_eq!(hub.room_of(*from), hub.room_of(to[0]));
                        }
                        // Occupancy answers go to the asker alone, within the limits.
                        if let ServerMessage::Rooms { rooms } = msg {
                            prop_assert_eq!(to.len(), 1);
                            prop_assert!(rooms.len() <= MAX_ROOMS_QUERY);
                            for r in rooms {
                                prop_assert!(r.peers as usize <= hub.room_members(&r.room).len());
                            }
                        }
                    }
                }
                // Membership is consistent both ways and within limits.
                prop_assert!(hub.known_rooms() <= 4);
                let mut seen = 0;
                for room in ["a", "b"] {
                    let members = hub.room_members(room);
                    prop_assert!(members.len() <= max_peers);
                    for m in members {
                        prop_assert_eq!(hub.room_of(*m), Some(room));
                    }
                    seen += members.len();
                }
                prop_assert!(hub.peer_count() >= connected.len());
                prop_assert!(seen <= hub.peer_count());
            }
        }
    }
}

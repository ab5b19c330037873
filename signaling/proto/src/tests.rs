use proptest::prelude::*;
use std::fmt::Write as _;

use ts_rs::TS;

use super::*;

mod fuzz;

fn round_trip_client(json: &str, msg: &ClientMessage) {
    assert_eq!(&ClientMessage::parse(json).unwrap(), msg);
    let back: serde_json::Value = serde_json::from_str(&msg.to_json()).unwrap();
    let want: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(back, want);
}

fn round_trip_server(json: &str, msg: &ServerMessage) {
    assert_eq!(&ServerMessage::parse(json).unwrap(), msg);
    let back: serde_json::Value = serde_json::from_str(&msg.to_json()).unwrap();
    let want: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(back, want);
}

#[test]
fn client_messages_on_the_wire() {
    round_trip_client(
        r#"{"type":"hello","protocol":1,"name":"Room 4.01","role":"kiosk"}"#,
        &ClientMessage::Hello {
            protocol: 1,
            name: "Room 4.01".into(),
            role: Role::Kiosk,
            resume: None,
            device: None,
        },
    );
    round_trip_client(
        r#"{"type":"hello","protocol":1,"name":"Room 4.01","role":"kiosk","device":{"token":"t0k","control":true}}"#,
        &ClientMessage::Hello {
            protocol: 1,
            name: "Room 4.01".into(),
            role: Role::Kiosk,
            resume: None,
            device: Some(pairing::DeviceHello {
                token: "t0k".into(),
                control: true,
            }),
        },
    );
    round_trip_client(
        r#"{"type":"pair","code":"K7P2XM"}"#,
        &ClientMessage::Pair {
            code: "K7P2XM".into(),
        },
    );
    round_trip_client(
        r#"{"type":"unpair"}"#,
        &ClientMessage::Unpair { peer: None },
    );
    round_trip_client(
        r#"{"type":"command","id":3,"command":{"kind":"joinRoom","room":"standup"}}"#,
        &ClientMessage::Command {
            id: 3,
            command: pairing::RemoteCommand::JoinRoom {
                room: "standup".into(),
                password: None,
            },
        },
    );
    round_trip_client(
        r#"{"type":"commandResult","to":9,"id":3,"error":{"code":"notInCall","message":"no call"}}"#,
        &ClientMessage::CommandResult {
            to: PeerId(9),
            id: 3,
            room: None,
            error: Some(pairing::CommandError {
                code: pairing::CommandErrorCode::NotInCall,
                message: "no call".into(),
            }),
        },
    );
    round_trip_client(
        r#"{"type":"join","room":"standup","password":"pw"}"#,
        &ClientMessage::Join {
            room: "standup".into(),
            password: Some("pw".into()),
        },
    );
    round_trip_client(
        r#"{"type":"join","room":"standup"}"#,
        &ClientMessage::Join {
            room: "standup".into(),
            password: None,
        },
    );
    round_trip_client(r#"{"type":"leave"}"#, &ClientMessage::Leave);
    round_trip_client(
        r#"{"type":"signal","to":7,"data":{"sdp":{"type":"offer","sdp":"v=0\r\n"}}}"#,
        &ClientMessage::Signal {
            to: PeerId(7),
            data: SignalData::Sdp(SessionDescription {
                kind: SdpType::Offer,
                sdp: "v=0\r\n".into(),
            }),
        },
    );
    round_trip_client(
        r#"{"type":"signal","to":7,"data":{"candidate":{"candidate":"candidate:1 1 udp 1 x.local 9 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"u"}}}"#,
        &ClientMessage::Signal {
            to: PeerId(7),
            data: SignalData::Candidate(IceCandidate {
                candidate: "candidate:1 1 udp 1 x.local 9 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: Some("u".into()),
            }),
        },
    );
    round_trip_client(
        r#"{"type":"watch","state":{"source":{"kind":"youtube","videoId":"dQw4w9WgXcQ"},"playing":true,"position":1.5,"rate":1.0}}"#,
        &ClientMessage::Watch {
            state: WatchState {
                source: Some(VideoSource::Youtube {
                    video_id: "dQw4w9WgXcQ".into(),
                }),
                playing: true,
                position: 1.5,
                rate: 1.0,
            },
        },
    );
    round_trip_client(
        r#"{"type":"ping","id":3,"clientTime":1700000000000.5}"#,
        &ClientMessage::Ping {
            id: 3,
            client_time: 1_700_000_000_000.5,
        },
    );
    round_trip_client(
        r#"{"type":"rooms","rooms":["4-01","lobby"]}"#,
        &ClientMessage::Rooms {
            rooms: vec!["4-01".into(), "lobby".into()],
        },
    );
    round_trip_client(
        r#"{"type":"rooms","rooms":[]}"#,
        &ClientMessage::Rooms { rooms: Vec::new() },
    );
}

#[test]
fn server_messages_on_the_wire() {
    round_trip_server(
        r#"{"type":"welcome","protocol":1,"peerId":4,"serverTime":5.0,"iceServers":[{"urls":["stun:s:3478"]},{"urls":["turn:t"],"username":"9:4","credential":"c"}],"resumeToken":"r","resumed":false}"#,
        &ServerMessage::Welcome {
            protocol: 1,
            peer_id: PeerId(4),
            server_time: 5.0,
            ice_servers: vec![
                IceServer {
                    urls: vec!["stun:s:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec!["turn:t".into()],
                    username: Some("9:4".into()),
                    credential: Some("c".into()),
                },
            ],
            resume_token: "r".into(),
            resumed: false,
        },
    );
    round_trip_server(
        r#"{"type":"joined","room":"r","peerId":2,"peers":[{"id":1,"name":"a","role":"browser"}],"watch":{"state":{"source":{"kind":"url","url":"https://x/v.mp4"},"playing":false,"position":3.0,"rate":1.0},"serverTime":10.0},"docToken":"t","protected":true}"#,
        &ServerMessage::Joined {
            room: "r".into(),
            peer_id: PeerId(2),
            peers: vec![PeerInfo {
                id: PeerId(1),
                name: "a".into(),
                role: Role::Browser,
            }],
            watch: Some(WatchSnapshot {
                state: WatchState {
                    source: Some(VideoSource::Url {
                        url: "https://x/v.mp4".into(),
                    }),
                    playing: false,
                    position: 3.0,
                    rate: 1.0,
                },
                server_time: 10.0,
            }),
            doc_token: "t".into(),
            protected: true,
        },
    );
    round_trip_server(
        r#"{"type":"joined","room":"r","peerId":2,"peers":[],"docToken":"t","protected":false}"#,
        &ServerMessage::Joined {
            room: "r".into(),
            peer_id: PeerId(2),
            peers: vec![],
            watch: None,
            doc_token: "t".into(),
            protected: false,
        },
    );
    round_trip_server(
        r#"{"type":"error","code":"passwordMismatch","message":"open room"}"#,
        &ServerMessage::error(ErrorCode::PasswordMismatch, "open room"),
    );
    round_trip_server(
        r#"{"type":"peerLeft","peerId":3}"#,
        &ServerMessage::PeerLeft { peer_id: PeerId(3) },
    );
    round_trip_server(
        r#"{"type":"error","code":"roomFull","message":"full"}"#,
        &ServerMessage::error(ErrorCode::RoomFull, "full"),
    );
    round_trip_server(
        r#"{"type":"pong","id":1,"clientTime":2.0,"serverTime":3.0}"#,
        &ServerMessage::Pong {
            id: 1,
            client_time: 2.0,
            server_time: 3.0,
        },
    );
    round_trip_server(
        r#"{"type":"rooms","rooms":[{"room":"4-01","peers":2},{"room":"lobby","peers":0}]}"#,
        &ServerMessage::Rooms {
            rooms: vec![
                RoomOccupancy {
                    room: "4-01".into(),
                    peers: 2,
                },
                RoomOccupancy {
                    room: "lobby".into(),
                    peers: 0,
                },
            ],
        },
    );
}

#[test]
fn joined_from_an_older_server_reads_as_unprotected() {
    let old = r#"{"type":"joined","room":"r","peerId":2,"peers":[],"docToken":"t"}"#;
    assert!(matches!(
        ServerMessage::parse(old).unwrap(),
        ServerMessage::Joined {
            protected: false,
            ..
        }
    ));
}

#[test]
fn error_code_names_match_serde() {
    for code in ErrorCode::ALL {
        assert_eq!(
            serde_json::to_string(&code).unwrap(),
            format!("\"{}\"", code.as_str())
        );
    }
}

#[test]
fn unknown_and_malformed_messages_are_errors_not_panics() {
    for bad in [
        "",
        "null",
        "[]",
        "{}",
        r#"{"type":"teleport"}"#,
        r#"{"type":"hello"}"#,
        r#"{"type":"hello","protocol":"one","name":"x","role":"browser"}"#,
        r#"{"type":"signal","to":-1,"data":{}}"#,
        r#"{"type":"signal","to":1,"data":{"sdp":{"type":"bogus","sdp":""}}}"#,
        r#"{"type":"rooms"}"#,
        r#"{"type":"rooms","rooms":"lobby"}"#,
        r#"{"type":"rooms","rooms":[1]}"#,
        "\u{0}",
    ] {
        let err = ClientMessage::parse(bad).unwrap_err();
        assert!(err.to_string().starts_with("malformed message"), "{bad}");
    }
}

#[test]
fn validation() {
    assert!(validate_room_name("standup-4.01_a").is_ok());
    assert!(validate_room_name(&"a".repeat(64)).is_ok());
    for bad in ["", ".hidden", "a/b", "a b", "ä", &"a".repeat(65)] {
        assert!(validate_room_name(bad).is_err(), "{bad}");
    }
    assert!(validate_display_name(" Ada ").is_ok());
    assert!(validate_display_name("\u{7}bell").is_err());
    assert!(validate_display_name(&"é".repeat(64)).is_ok());
    assert!(validate_display_name(&"é".repeat(65)).is_err());
    assert!(validate_password("").is_err());
    assert!(validate_password(&"p".repeat(257)).is_err());
    let s = WatchState {
        source: None,
        playing: true,
        position: 10.0,
        rate: 2.0,
    };
    assert!((s.position_after(500.0) - 11.0).abs() < 1e-9);
    assert!(
        (WatchState {
            playing: false,
            ..s.clone()
        }
        .position_after(500.0)
            - 10.0)
            .abs()
            < 1e-9
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = ClientMessage::parse(&text);
    }

    #[test]
    fn parser_never_panics_on_json_shaped_input(
        ty in prop_oneof![Just("hello".to_owned()), Just("join".to_owned()), Just("signal".to_owned()), Just("watch".to_owned()), Just("ping".to_owned()), Just("rooms".to_owned()), "[a-z]{0,8}"],
        key in "[a-zA-Z]{0,10}",
        value in prop_oneof![
            Just("null".to_owned()), Just("1e999".to_owned()), Just("-0".to_owned()),
            Just("{}".to_owned()), Just("[]".to_owned()), "\"[^\"\\\\]{0,20}\"", any::<i64>().prop_map(|n| n.to_string()),
        ],
    ) {
        let text = format!(r#"{{"type":"{ty}","{key}":{value},"to":1,"room":"r","rooms":["r"]}}"#);
        let _ = ClientMessage::parse(&text);
    }

    #[test]
    fn watch_validation_never_panics(position in any::<f64>(), rate in any::<f64>(), url in ".{0,64}") {
        let state = WatchState { source: Some(VideoSource::Url { url }), playing: true, position, rate };
        if state.validate().is_ok() {
            prop_assert!(state.position.is_finite() && state.rate.is_finite());
        }
    }
}

/// The code point ranges (inclusive) of the characters where `pred` holds.
fn ranges_where(pred: fn(char) -> bool) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        if !pred(c) {
            continue;
        }
        let c = u32::from(c);
        match out.last_mut() {
            Some((_, hi)) if *hi + 1 == c => *hi = c,
            _ => out.push((c, c)),
        }
    }
    out
}

/// The TypeScript types the browser client imports, generated from the types above.
fn typescript() -> String {
    let cfg = ts_rs::Config::new().with_large_int("number");
    let decls = [
        PeerId::decl(&cfg),
        Role::decl(&cfg),
        ClientMessage::decl(&cfg),
        ServerMessage::decl(&cfg),
        ErrorCode::decl(&cfg),
        PeerInfo::decl(&cfg),
        RoomOccupancy::decl(&cfg),
        IceServer::decl(&cfg),
        SignalData::decl(&cfg),
        SessionDescription::decl(&cfg),
        SdpType::decl(&cfg),
        IceCandidate::decl(&cfg),
        WatchState::decl(&cfg),
        WatchSnapshot::decl(&cfg),
        VideoSource::decl(&cfg),
        channel::ChatChannelMessage::decl(&cfg),
        channel::FileMessage::decl(&cfg),
        channel::TransferSide::decl(&cfg),
        channel::DeclineReason::decl(&cfg),
        pairing::DeviceHello::decl(&cfg),
        pairing::RemoteCommand::decl(&cfg),
        pairing::CommandErrorCode::decl(&cfg),
        pairing::CommandError::decl(&cfg),
        pairing::KioskState::decl(&cfg),
        pairing::UnpairReason::decl(&cfg),
    ];
    let mut out = String::from(
        "// Generated from signaling/proto (portal-proto) by its tests. Do not edit.\n\
         // Regenerate with `cargo xtask gen` after changing the Rust types.\n\n",
    );
    out.push_str("export const PROTOCOL_VERSION = ");
    out.push_str(&PROTOCOL_VERSION.to_string());
    out.push_str(";\n");
    writeln!(out, "export const MAX_ROOMS_QUERY = {MAX_ROOMS_QUERY};").unwrap();
    writeln!(
        out,
        "export const PAIRING_CODE_ALPHABET = \"{}\";",
        pairing::CODE_ALPHABET
    )
    .unwrap();
    writeln!(
        out,
        "export const PAIRING_CODE_LEN = {};",
        pairing::CODE_LEN
    )
    .unwrap();
    out.push('\n');
    for (name, value) in [
        ("FILE_FRAME_MAX", channel::FILE_FRAME_MAX),
        ("FILE_CHUNK_HEADER", channel::FILE_CHUNK_HEADER),
        ("FILE_CHUNK_PAYLOAD", channel::FILE_CHUNK_PAYLOAD),
        ("MAX_CHAT_TEXT", channel::MAX_CHAT_TEXT),
        ("MAX_FILE_NAME", channel::MAX_FILE_NAME),
    ] {
        writeln!(out, "export const {name} = {value};").unwrap();
    }
    out.push('\n');
    for (name, value) in [
        ("MAX_NAME_CHARS", names::MAX_NAME_CHARS),
        ("MAX_NAME_BYTES", names::MAX_NAME_BYTES),
        ("MAX_COMBINING_RUN", names::MAX_COMBINING_RUN),
        ("MAX_RAW_NAME_BYTES", names::MAX_RAW_NAME_BYTES),
    ] {
        writeln!(out, "export const {name} = {value};").unwrap();
    }
    // Rust's own `char::is_whitespace` and `char::is_control`, so the browser's rule
    // is the same character for character.
    let space = ranges_where(char::is_whitespace);
    let control = ranges_where(char::is_control);
    for (name, ranges) in [
        ("NAME_INVISIBLE_RANGES", names::INVISIBLE_RANGES),
        ("NAME_COMBINING_RANGES", names::COMBINING_RANGES),
        ("NAME_SPACE_RANGES", space.as_slice()),
        ("NAME_CONTROL_RANGES", control.as_slice()),
    ] {
        let list: Vec<String> = ranges
            .iter()
            .map(|(lo, hi)| format!("[0x{lo:04X}, 0x{hi:04X}]"))
            .collect();
        writeln!(
            out,
            "export const {name}: ReadonlyArray<readonly [number, number]> = [{}];",
            list.join(", ")
        )
        .unwrap();
    }
    out.push('\n');
    for decl in decls {
        out.push_str("export ");
        out.push_str(decl.trim());
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[test]
fn generated_typescript_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src/gen/protocol.ts");
    let want = typescript();
    if std::env::var_os("PORTAL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: run `cargo xtask gen` and commit the result",
        path.display()
    );
}

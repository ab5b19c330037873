//! The real `portal-server` over real WebSockets: routing, isolation, errors, limits,
//! persistence across restarts, metrics, static files and TLS.

// Times pass through unchanged, so exact float comparison is the point.
#![allow(clippy::float_cmp)]

mod common;

use std::time::Duration;

use common::{Client, connect, expect_error, http_get, metric, next_text, recv, send, send_raw};
use futures_util::StreamExt;
use portal_proto::{
    ClientMessage, ErrorCode, IceCandidate, MAX_ROOMS_QUERY, PeerId, Role, RoomOccupancy, SdpType,
    ServerMessage, SessionDescription, SignalData, VideoSource, WatchState,
};
use portal_testkit::{ServerProc, TempDir};
use tokio_tungstenite::tungstenite::Message;

fn sdp(kind: SdpType, body: &str) -> SignalData {
    SignalData::Sdp(SessionDescription {
        kind,
        sdp: body.into(),
    })
}

#[tokio::test]
async fn offer_answer_and_candidates_reach_only_the_addressed_peer() {
    let server = ServerProc::start(&[]);
    let mut a = Client::hello(&server, "Ada").await;
    let mut b = Client::hello_as(&server, "Room 4.01", Role::Kiosk).await;
    let mut c = Client::hello(&server, "Cy").await;
    let mut other = Client::hello(&server, "Elsewhere").await;

    assert!(
        matches!(a.join("standup", None).await, ServerMessage::Joined { ref peers, .. } if peers.is_empty())
    );
    match b.join("standup", None).await {
        ServerMessage::Joined {
            peers,
            peer_id,
            doc_token,
            ..
        } => {
            assert_eq!(peer_id, b.id);
            assert_eq!(peers.len(), 1);
            assert_eq!((peers[0].id, peers[0].name.as_str()), (a.id, "Ada"));
            assert!(!doc_token.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match a.recv().await {
        ServerMessage::PeerJoined { peer } => {
            assert_eq!((peer.id, peer.role), (b.id, Role::Kiosk));
        }
        other => panic!("{other:?}"),
    }
    c.join("standup", None).await;
    assert!(matches!(a.recv().await, ServerMessage::PeerJoined { .. }));
    assert!(matches!(b.recv().await, ServerMessage::PeerJoined { .. }));
    other.join("retro", None).await;

    // Offer, answer and candidates pass verbatim, to the addressed peer only.
    let offer = sdp(SdpType::Offer, "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n");
    a.send(&ClientMessage::Signal {
        to: b.id,
        data: offer.clone(),
    })
    .await;
    assert_eq!(
        b.recv().await,
        ServerMessage::Signal {
            from: a.id,
            data: offer
        }
    );
    let answer = sdp(SdpType::Answer, "v=0\r\ns=answer\r\n");
    b.send(&ClientMessage::Signal {
        to: a.id,
        data: answer.clone(),
    })
    .await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Signal {
            from: b.id,
            data: answer
        }
    );
    for i in 0..5u16 {
        let cand = SignalData::Candidate(IceCandidate {
            candidate: format!("candidate:{i} 1 udp 2122260223 4a1e-{i}.local 5{i}000 typ host"),
            sdp_mid: Some(i.to_string()),
            sdp_m_line_index: Some(i),
            username_fragment: Some("ufrag".into()),
        });
        a.send(&ClientMessage::Signal {
            to: b.id,
            data: cand.clone(),
        })
        .await;
        assert_eq!(
            b.recv().await,
            ServerMessage::Signal {
                from: a.id,
                data: cand
            }
        );
    }
    // The raw JSON shape is what the browser sends: unknown-to-us fields are not needed,
    // known fields come back exactly.
    send_raw(
        &mut a.ws,
        &format!(r#"{{"type":"signal","to":{},"data":{{"candidate":{{"candidate":"","sdpMid":"0","sdpMLineIndex":0}}}}}}"#, b.id),
    )
    .await;
    let text = next_text(&mut b.ws).await.unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"type":"signal","from":{},"data":{{"candidate":{{"candidate":"","sdpMid":"0","sdpMLineIndex":0}}}}}}"#,
            a.id
        )
    );

    c.expect_silence(300).await;
    // Another room cannot reach them.
    other
        .send(&ClientMessage::Signal {
            to: a.id,
            data: sdp(SdpType::Offer, "x"),
        })
        .await;
    expect_error(&other.recv().await, ErrorCode::UnknownPeer);
    a.expect_silence(200).await;
}

#[tokio::test]
async fn leave_and_disconnect_both_produce_peer_left() {
    let server = ServerProc::start(&[]);
    let mut a = Client::hello(&server, "a").await;
    let mut b = Client::hello(&server, "b").await;
    let c = Client::hello(&server, "c").await;
    a.join("r", None).await;
    b.join("r", None).await;
    a.recv().await; // peerJoined b
    let mut c = c;
    c.join("r", None).await;
    a.recv().await;
    b.recv().await;

    b.send(&ClientMessage::Leave).await;
    assert_eq!(b.recv().await, ServerMessage::Left { room: "r".into() });
    assert_eq!(a.recv().await, ServerMessage::PeerLeft { peer_id: b.id });
    assert_eq!(c.recv().await, ServerMessage::PeerLeft { peer_id: b.id });

    let c_id = c.id;
    // A clean close (close frame) leaves at once.
    futures_util::SinkExt::close(&mut c.ws).await.unwrap();
    assert_eq!(a.recv().await, ServerMessage::PeerLeft { peer_id: c_id });

    // b can join again after leaving.
    assert!(matches!(
        b.join("r", None).await,
        ServerMessage::Joined { .. }
    ));
    assert!(matches!(a.recv().await, ServerMessage::PeerJoined { peer } if peer.id == b.id));
}

#[tokio::test]
async fn the_ninth_peer_gets_room_full() {
    let server = ServerProc::start(&[]);
    let mut clients = Vec::new();
    for i in 0..8 {
        let mut c = Client::hello(&server, &format!("p{i}")).await;
        assert!(matches!(
            c.join("full", None).await,
            ServerMessage::Joined { .. }
        ));
        clients.push(c);
    }
    let mut ninth = Client::hello(&server, "p8").await;
    expect_error(&ninth.join("full", None).await, ErrorCode::RoomFull);
    // Still usable.
    assert!(matches!(
        ninth.join("roomy", None).await,
        ServerMessage::Joined { .. }
    ));
}

#[tokio::test]
async fn errors_are_typed_and_the_connection_keeps_working() {
    let server = ServerProc::start(&[]);
    let mut ws = connect(&server).await;
    // Before hello.
    send(
        &mut ws,
        &ClientMessage::Join {
            room: "r".into(),
            password: None,
        },
    )
    .await;
    expect_error(&recv(&mut ws).await, ErrorCode::HelloRequired);
    send_raw(&mut ws, "{not json").await;
    expect_error(&recv(&mut ws).await, ErrorCode::BadRequest);
    send_raw(&mut ws, r#"{"type":"teleport","to":"mars"}"#).await;
    expect_error(&recv(&mut ws).await, ErrorCode::BadRequest);
    send_raw(
        &mut ws,
        r#"{"type":"hello","protocol":1,"name":"","role":"browser"}"#,
    )
    .await;
    expect_error(&recv(&mut ws).await, ErrorCode::InvalidName);
    send_raw(
        &mut ws,
        r#"{"type":"hello","protocol":1,"name":"x","role":"toaster"}"#,
    )
    .await;
    expect_error(&recv(&mut ws).await, ErrorCode::BadRequest);
    ws.send_binary().await;
    expect_error(&recv(&mut ws).await, ErrorCode::BadRequest);

    let mut c = Client::hello(&server, "ok").await;
    c.send(&ClientMessage::Hello {
        protocol: 1,
        name: "again".into(),
        role: Role::Browser,
        resume: None,
        device: None,
    })
    .await;
    expect_error(&c.recv().await, ErrorCode::AlreadyHello);
    c.send(&ClientMessage::Leave).await;
    expect_error(&c.recv().await, ErrorCode::NotInRoom);
    c.send(&ClientMessage::Signal {
        to: PeerId(1),
        data: sdp(SdpType::Offer, "x"),
    })
    .await;
    expect_error(&c.recv().await, ErrorCode::NotInRoom);
    expect_error(
        &c.join("../etc/passwd", None).await,
        ErrorCode::InvalidRoomName,
    );
    c.join("r1", None).await;
    expect_error(&c.join("r2", None).await, ErrorCode::AlreadyInRoom);
    c.send(&ClientMessage::Signal {
        to: PeerId(999_999),
        data: sdp(SdpType::Offer, "x"),
    })
    .await;
    expect_error(&c.recv().await, ErrorCode::UnknownPeer);
    let bad_watch = WatchState {
        source: None,
        playing: true,
        position: -5.0,
        rate: 1.0,
    };
    c.send(&ClientMessage::Watch { state: bad_watch }).await;
    expect_error(&c.recv().await, ErrorCode::BadRequest);

    // A frame over 64 KiB: tooLarge, and the connection goes on.
    let big = format!(
        r#"{{"type":"ping","id":1,"clientTime":0,"pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    send_raw(&mut c.ws, &big).await;
    expect_error(&c.recv().await, ErrorCode::TooLarge);
    c.send(&ClientMessage::Ping {
        id: 7,
        client_time: 1.5,
    })
    .await;
    assert!(
        matches!(c.recv().await, ServerMessage::Pong { id: 7, client_time, .. } if client_time == 1.5)
    );

    // A frame far over the limit is not even buffered: tooLarge, then close.
    let huge = "x".repeat(4 * 1024 * 1024);
    let _ = futures_util::SinkExt::send(&mut c.ws, Message::Text(huge.into())).await;
    expect_error(&c.recv().await, ErrorCode::TooLarge);
    assert!(next_text(&mut c.ws).await.is_none());

    // A different protocol version: unsupportedProtocol, then close.
    let mut old = connect(&server).await;
    send_raw(
        &mut old,
        r#"{"type":"hello","protocol":2,"name":"future","role":"kiosk"}"#,
    )
    .await;
    expect_error(&recv(&mut old).await, ErrorCode::UnsupportedProtocol);
    assert!(next_text(&mut old).await.is_none());

    assert!(metric(&server, "portal_errors_total{code=\"badRequest\"}").await >= 4);
    assert_eq!(
        metric(&server, "portal_errors_total{code=\"unsupportedProtocol\"}").await,
        1
    );
    assert_eq!(
        metric(&server, "portal_errors_total{code=\"tooLarge\"}").await,
        2
    );
}

trait SendBinary {
    async fn send_binary(&mut self);
}

impl SendBinary for common::Ws {
    async fn send_binary(&mut self) {
        futures_util::SinkExt::send(self, Message::Binary(vec![1, 2, 3].into()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn rate_limit_gives_rate_limited_then_recovers() {
    let server = ServerProc::start(&["--msg-rate", "5", "--msg-burst", "5"]);
    let mut c = Client::hello(&server, "fast").await; // hello took one token
    for i in 0..10 {
        c.send(&ClientMessage::Ping {
            id: i,
            client_time: 0.0,
        })
        .await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..5 {
        match c.recv().await {
            ServerMessage::Pong { .. } => pongs += 1,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((pongs, limited), (4, 1));
    c.expect_silence(300).await; // one error, not one per dropped message
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.send(&ClientMessage::Ping {
        id: 99,
        client_time: 0.0,
    })
    .await;
    assert!(matches!(c.recv().await, ServerMessage::Pong { id: 99, .. }));
}

#[tokio::test]
async fn silent_and_speechless_connections_are_closed() {
    let server = ServerProc::start(&["--idle-timeout", "2", "--hello-timeout", "1"]);
    // Never says hello.
    let mut mute = connect(&server).await;
    expect_error(&recv(&mut mute).await, ErrorCode::HelloRequired);
    assert!(next_text(&mut mute).await.is_none());

    // Says hello, then stops reading and writing (so it does not even answer pings).
    let mut idle = Client::hello(&server, "sleepy").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut saw_idle = false;
    while let Some(text) = next_text(&mut idle.ws).await {
        if let Ok(ServerMessage::Error {
            code: ErrorCode::IdleTimeout,
            ..
        }) = ServerMessage::parse(&text)
        {
            saw_idle = true;
        }
    }
    assert!(saw_idle);

    // A client that keeps reading (and so answers pings) stays.
    let mut alive = Client::hello(&server, "awake").await;
    alive.expect_silence(3000).await;
    alive
        .send(&ClientMessage::Ping {
            id: 1,
            client_time: 0.0,
        })
        .await;
    assert!(matches!(alive.recv().await, ServerMessage::Pong { .. }));
}

#[tokio::test]
async fn connection_and_room_caps() {
    let server = ServerProc::start(&["--max-connections", "2", "--max-rooms", "1"]);
    let mut a = Client::hello(&server, "a").await;
    let mut b = Client::hello(&server, "b").await;
    let (status, _, body) = http_get(
        server.addr,
        "/ws",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    .await;
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("serverFull"));
    assert!(matches!(
        a.join("only", None).await,
        ServerMessage::Joined { .. }
    ));
    expect_error(&b.join("second", None).await, ErrorCode::TooManyRooms);
    assert!(matches!(
        b.join("only", None).await,
        ServerMessage::Joined { .. }
    ));
    assert_eq!(
        metric(&server, "portal_connections_rejected_total").await,
        1
    );
}

#[tokio::test]
async fn passwords_and_watch_state_survive_a_restart() {
    let mut server = ServerProc::start(&[]);
    let mut owner = Client::hello(&server, "owner").await;
    assert!(matches!(
        owner.join("secret", Some("hunter2")).await,
        ServerMessage::Joined { .. }
    ));
    let state = WatchState {
        source: Some(VideoSource::Youtube {
            video_id: "aqz-KE-bpKQ".into(),
        }),
        playing: true,
        position: 42.0,
        rate: 1.0,
    };
    owner
        .send(&ClientMessage::Watch {
            state: state.clone(),
        })
        .await;
    assert!(
        matches!(owner.recv().await, ServerMessage::Watch { by: Some(by), .. } if by == owner.id)
    );

    let mut guest = Client::hello(&server, "guest").await;
    expect_error(&guest.join("secret", None).await, ErrorCode::WrongPassword);
    expect_error(
        &guest.join("secret", Some("hunter3")).await,
        ErrorCode::WrongPassword,
    );
    match guest.join("secret", Some("hunter2")).await {
        ServerMessage::Joined { watch: Some(w), .. } => assert_eq!(w.state, state),
        other => panic!("{other:?}"),
    }

    // SIGTERM: connected peers get a typed error and a close frame, then it restarts.
    let (mut o, mut g) = (owner.ws, guest.ws);
    server.terminate();
    for ws in [&mut o, &mut g] {
        let mut saw = false;
        while let Some(text) = next_text(ws).await {
            if let Ok(ServerMessage::Error {
                code: ErrorCode::ShuttingDown,
                ..
            }) = ServerMessage::parse(&text)
            {
                saw = true;
            }
        }
        assert!(saw, "no shuttingDown before close");
    }
    server.restart();

    let mut late = Client::hello(&server, "late").await;
    expect_error(
        &late.join("secret", Some("wrong")).await,
        ErrorCode::WrongPassword,
    );
    match late.join("secret", Some("hunter2")).await {
        ServerMessage::Joined { watch: Some(w), .. } => {
            assert_eq!(w.state, state);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let server = ServerProc::start(&[]);
    let mut a = Client::hello(&server, "a").await;
    let mut b = Client::hello(&server, "b").await;
    a.join("m", None).await;
    b.join("m", None).await;
    a.recv().await;
    for _ in 0..10 {
        a.send(&ClientMessage::Signal {
            to: b.id,
            data: sdp(SdpType::Offer, "x"),
        })
        .await;
        b.recv().await;
    }
    b.send(&ClientMessage::Leave).await;
    b.recv().await;
    expect_error(&b.join("", None).await, ErrorCode::InvalidRoomName);
    assert_eq!(metric(&server, "portal_connections ").await, 2);
    assert_eq!(metric(&server, "portal_connections_total").await, 2);
    assert_eq!(metric(&server, "portal_rooms ").await, 1);
    assert_eq!(
        metric(&server, "portal_messages_in_total").await,
        2 + 2 + 10 + 1 + 1
    );
    // welcome x2, joined x2, peerJoined, 10 signals, left, peerLeft, error
    assert_eq!(
        metric(&server, "portal_messages_out_total").await,
        2 + 2 + 1 + 10 + 1 + 1 + 1
    );
    assert_eq!(
        metric(&server, "portal_errors_total{code=\"invalidRoomName\"}").await,
        1
    );
    let (status, _, body) = http_get(server.addr, "/healthz", &[]).await;
    assert_eq!((status, body.as_slice()), (200, b"ok\n".as_slice()));
}

#[tokio::test]
async fn serves_the_client_and_ranges_from_a_web_dir() {
    let web = TempDir::new("web");
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>Portal</title>",
    )
    .unwrap();
    std::fs::create_dir_all(web.join("media")).unwrap();
    let video: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    std::fs::write(web.join("media/clip.mp4"), &video).unwrap();
    let dir = web.path().to_string_lossy().into_owned();
    let server = ServerProc::start(&["--web-dir", &dir]);

    for path in ["/", "/r/standup"] {
        let (status, head, body) = http_get(server.addr, path, &[]).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/html")
        );
        assert!(String::from_utf8_lossy(&body).contains("<title>Portal</title>"));
    }
    let (status, head, body) = http_get(
        server.addr,
        "/media/clip.mp4",
        &[("Range", "bytes=100-199")],
    )
    .await;
    assert_eq!(status, 206);
    assert!(head.contains("bytes 100-199/10000"), "{head}");
    assert_eq!(body, &video[100..200]);
    let (status, _, _) =
        http_get(server.addr, "/media/clip.mp4", &[("Range", "bytes=20000-")]).await;
    assert_eq!(status, 416);
    let (status, _, _) = http_get(server.addr, "/../../etc/passwd", &[]).await;
    assert_eq!(status, 404);
    let (status, _, _) = http_get(server.addr, "/media/%2e%2e/%2e%2e/etc/passwd", &[]).await;
    assert_eq!(status, 404);

    // The built-in copy answers too.
    let builtin = ServerProc::start(&[]);
    let (status, _, body) = http_get(builtin.addr, "/", &[]).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Portal"));
}

#[tokio::test]
async fn tls_serves_wss_and_a_bad_certificate_stops_the_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let cert_path = dir.join("cert.pem").to_string_lossy().into_owned();
    let key_path = dir.join("key.pem").to_string_lossy().into_owned();
    let server = ServerProc::start(&["--tls-cert", &cert_path, "--tls-key", &key_path]);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
            config,
        ))),
    )
    .await
    .expect("wss connect");
    send(
        &mut ws,
        &ClientMessage::Hello {
            protocol: 1,
            name: "secure".into(),
            role: Role::Browser,
            resume: None,
            device: None,
        },
    )
    .await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::Welcome { .. }));
    // Plain ws to a TLS port does not work: no plaintext fallback.
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
            .await
            .is_err()
    );

    // A certificate file that is not a certificate: a clear message and a non-zero exit.
    std::fs::write(dir.join("bad.pem"), "not a certificate").unwrap();
    let bad = dir.join("bad.pem").to_string_lossy().into_owned();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portal-server"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            &bad,
            "--tls-key",
            &key_path,
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TLS certificate") && stderr.contains("bad.pem"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "it must not start listening");

    // A key that does not belong to the certificate.
    let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
    std::fs::write(dir.join("other-key.pem"), other.signing_key.serialize_pem()).unwrap();
    let other_key = dir.join("other-key.pem").to_string_lossy().into_owned();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portal-server"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            &cert_path,
            "--tls-key",
            &other_key,
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"));
}

#[tokio::test]
async fn turn_credentials_come_with_a_join_not_with_welcome() {
    let server = ServerProc::start(&[
        "--stun-url",
        "stun:stun.example.org:3478",
        "--turn-url",
        "turn:turn.example.org:3478",
        "--turn-secret",
        "s3cret",
        "--turn-ttl",
        "600",
    ]);
    let mut ws = connect(&server).await;
    send(
        &mut ws,
        &ClientMessage::Hello {
            protocol: 1,
            name: "t".into(),
            role: Role::Kiosk,
            resume: None,
            device: None,
        },
    )
    .await;
    let peer_id = match recv(&mut ws).await {
        ServerMessage::Welcome {
            ice_servers,
            peer_id,
            ..
        } => {
            // Before a join: STUN only, no relay credentials.
            assert_eq!(ice_servers.len(), 1);
            assert!(ice_servers[0].credential.is_none() && ice_servers[0].username.is_none());
            peer_id
        }
        other => panic!("{other:?}"),
    };
    send(
        &mut ws,
        &ClientMessage::Join {
            room: "turn-room".into(),
            password: None,
        },
    )
    .await;
    match recv(&mut ws).await {
        ServerMessage::IceServers { ice_servers } => {
            assert_eq!(ice_servers.len(), 2);
            let turn = &ice_servers[1];
            let user = turn.username.as_deref().unwrap();
            let (expiry, id) = user.split_once(':').unwrap();
            assert_eq!(id, peer_id.to_string());
            let expiry: f64 = expiry.parse().unwrap();
            let now_s = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            assert!((expiry - (now_s + 600.0)).abs() < 5.0);
            assert!(turn.credential.as_deref().is_some_and(|c| c.len() == 28));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(recv(&mut ws).await, ServerMessage::Joined { .. }));
    let _ = ws.next().await;
}

/// Connects with `hello.resume` and returns the client and the `welcome`.
async fn hello_resume(server: &ServerProc, name: &str, token: &str) -> (common::Ws, ServerMessage) {
    let mut ws = connect(server).await;
    send(
        &mut ws,
        &ClientMessage::Hello {
            protocol: 1,
            name: name.into(),
            role: Role::Browser,
            resume: Some(token.into()),
            device: None,
        },
    )
    .await;
    let welcome = recv(&mut ws).await;
    (ws, welcome)
}

async fn hello_token(server: &ServerProc, name: &str) -> (Client, String) {
    let mut ws = connect(server).await;
    send(
        &mut ws,
        &ClientMessage::Hello {
            protocol: 1,
            name: name.into(),
            role: Role::Browser,
            resume: None,
            device: None,
        },
    )
    .await;
    match recv(&mut ws).await {
        ServerMessage::Welcome {
            peer_id,
            resume_token,
            resumed: false,
            ..
        } => (Client { ws, id: peer_id }, resume_token),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_connection_resumes_without_anyone_noticing() {
    let server = ServerProc::start(&["--resume-grace", "3"]);
    let (mut a, _) = hello_token(&server, "a").await;
    let (mut b, b_token) = hello_token(&server, "b").await;
    a.join("r", None).await;
    b.join("r", None).await;
    a.recv().await; // peerJoined b
    let b_id = b.id;
    drop(b); // the socket dies without a close frame
    a.expect_silence(1000).await;

    let (ws, welcome) = hello_resume(&server, "b", &b_token).await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { peer_id, resumed: true, .. } if peer_id == b_id)
    );
    let mut b = Client { ws, id: b_id };
    match b.join("r", None).await {
        ServerMessage::Joined { peers, .. } => {
            assert_eq!(peers.iter().map(|p| p.id).collect::<Vec<_>>(), vec![a.id]);
        }
        other => panic!("{other:?}"),
    }
    a.expect_silence(300).await;
    // Signals flow both ways again.
    a.send(&ClientMessage::Signal {
        to: b_id,
        data: sdp(SdpType::Offer, "again"),
    })
    .await;
    assert!(matches!(b.recv().await, ServerMessage::Signal { from, .. } if from == a.id));

    // Without a resume the grace runs out and the others are told.
    drop(b);
    let started = std::time::Instant::now();
    assert_eq!(a.recv().await, ServerMessage::PeerLeft { peer_id: b_id });
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn peers_keep_their_ids_across_a_server_restart() {
    let mut server = ServerProc::start(&[]);
    let (mut a, a_token) = hello_token(&server, "a").await;
    let (mut b, b_token) = hello_token(&server, "b").await;
    a.join("r", None).await;
    b.join("r", None).await;
    let (a_id, b_id) = (a.id, b.id);
    server.terminate();
    server.restart();

    // A newcomer after the restart never gets an id from before it.
    let (fresh, _) = hello_token(&server, "new").await;
    assert!(fresh.id != a_id && fresh.id != b_id && fresh.id > b_id);

    let (ws, welcome) = hello_resume(&server, "a", &a_token).await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { peer_id, resumed: true, .. } if peer_id == a_id)
    );
    a = Client { ws, id: a_id };
    a.join("r", None).await;
    let (ws, _) = hello_resume(&server, "b", &b_token).await;
    b = Client { ws, id: b_id };
    match b.join("r", None).await {
        ServerMessage::Joined { peers, .. } => assert_eq!(peers[0].id, a_id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(a.recv().await, ServerMessage::PeerJoined { peer } if peer.id == b_id));
}

fn rooms_query(rooms: &[&str]) -> ClientMessage {
    ClientMessage::Rooms {
        rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// The `rooms` answer as (room, peers) pairs.
fn occupancy(msg: ServerMessage) -> Vec<(String, u32)> {
    match msg {
        ServerMessage::Rooms { rooms } => rooms
            .into_iter()
            .map(|RoomOccupancy { room, peers }| (room, peers))
            .collect(),
        other => panic!("expected rooms, got {other:?}"),
    }
}

fn pairs(want: &[(&str, u32)]) -> Vec<(String, u32)> {
    want.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect()
}

#[tokio::test]
async fn rooms_reports_how_many_peers_each_room_holds() {
    let server = ServerProc::start(&[]);
    let mut a1 = Client::hello(&server, "a1").await;
    let mut a2 = Client::hello(&server, "a2").await;
    let mut b1 = Client::hello_as(&server, "b1", Role::Kiosk).await;
    a1.join("a", None).await;
    a2.join("a", None).await;
    a1.recv().await; // peerJoined a2
    b1.join("b", None).await;

    // A kiosk on its home screen, in no room.
    let mut kiosk = Client::hello_as(&server, "Room 4.01", Role::Kiosk).await;
    send_raw(&mut kiosk.ws, r#"{"type":"rooms","rooms":["a","b","c"]}"#).await;
    assert_eq!(
        next_text(&mut kiosk.ws).await.unwrap(),
        r#"{"type":"rooms","rooms":[{"room":"a","peers":2},{"room":"b","peers":1},{"room":"c","peers":0}]}"#
    );
    // Nobody else hears of it, and asking created nothing.
    a1.expect_silence(200).await;
    b1.expect_silence(50).await;
    assert_eq!(metric(&server, "portal_rooms_known ").await, 2);

    // From inside a room too; counts follow leaves.
    a2.send(&ClientMessage::Leave).await;
    assert!(matches!(a2.recv().await, ServerMessage::Left { .. }));
    b1.send(&rooms_query(&["c", "a", "b"])).await;
    assert_eq!(
        occupancy(b1.recv().await),
        pairs(&[("c", 0), ("a", 1), ("b", 1)])
    );

    // A protected room reads 0 to those outside it, its count to those inside.
    let mut owner = Client::hello(&server, "owner").await;
    assert!(matches!(
        owner.join("vault", Some("hunter2")).await,
        ServerMessage::Joined { .. }
    ));
    kiosk.send(&rooms_query(&["vault", "a"])).await;
    assert_eq!(
        occupancy(kiosk.recv().await),
        pairs(&[("vault", 0), ("a", 1)])
    );
    owner.send(&rooms_query(&["vault"])).await;
    assert_eq!(occupancy(owner.recv().await), pairs(&[("vault", 1)]));
}

#[tokio::test]
async fn rooms_refuses_bad_queries_with_typed_errors_and_goes_on() {
    let server = ServerProc::start(&[]);
    let mut a = Client::hello(&server, "a").await;
    a.join("a", None).await;

    // Before hello.
    let mut early = connect(&server).await;
    send(&mut early, &rooms_query(&["a"])).await;
    expect_error(&recv(&mut early).await, ErrorCode::HelloRequired);

    let mut kiosk = Client::hello_as(&server, "kiosk", Role::Kiosk).await;
    let names: Vec<String> = (0..=MAX_ROOMS_QUERY).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    kiosk.send(&rooms_query(&refs)).await;
    expect_error(&kiosk.recv().await, ErrorCode::BadRequest);
    kiosk.send(&rooms_query(&["a", "../etc/passwd"])).await;
    expect_error(&kiosk.recv().await, ErrorCode::InvalidRoomName);
    send_raw(&mut kiosk.ws, r#"{"type":"rooms","rooms":"a"}"#).await;
    expect_error(&kiosk.recv().await, ErrorCode::BadRequest);

    // The connection goes on: exactly the limit is answered, in order.
    kiosk.send(&rooms_query(&refs[..MAX_ROOMS_QUERY])).await;
    let answer = occupancy(kiosk.recv().await);
    assert_eq!(answer.len(), MAX_ROOMS_QUERY);
    assert!(
        answer
            .iter()
            .zip(&names)
            .all(|((r, n), want)| r == want && *n == 0)
    );
    kiosk.send(&rooms_query(&["a"])).await;
    assert_eq!(occupancy(kiosk.recv().await), pairs(&[("a", 1)]));
    kiosk.expect_silence(200).await;
}

#[tokio::test]
async fn rooms_counts_against_the_message_rate_limit() {
    let server = ServerProc::start(&["--msg-rate", "5", "--msg-burst", "5"]);
    let mut kiosk = Client::hello_as(&server, "kiosk", Role::Kiosk).await; // one token
    for _ in 0..10 {
        kiosk.send(&rooms_query(&["a", "b"])).await;
    }
    let mut answers = 0;
    let mut limited = 0;
    for _ in 0..5 {
        match kiosk.recv().await {
            ServerMessage::Rooms { .. } => answers += 1,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((answers, limited), (4, 1));
    kiosk.expect_silence(300).await;
}

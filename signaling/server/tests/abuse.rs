//! Abuse, against the real `portal-server` over real WebSockets: taking over a room by
//! creating it first, guessing passwords (on `/ws` and on `/yjs`), flooding room
//! creation, fishing for TURN credentials, holding connections. Each attacker speaks
//! from an address of its own (127.0.0.0/8 is all loopback), so the limits per address
//! can be seen sparing everyone else.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::{Client, Ws, client_from, expect_error, loopback, metric, next_text, tcp_from};
use portal_proto::{ClientMessage, ErrorCode, Role, ServerMessage};
use portal_testkit::ServerProc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::MaybeTlsStream;

const ME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Sends `join` and returns the raw text of the answer (to see which fields it has).
async fn join_raw(c: &mut Client, room: &str, password: Option<&str>) -> String {
    c.send(&ClientMessage::Join {
        room: room.into(),
        password: password.map(Into::into),
    })
    .await;
    tokio::time::timeout(Duration::from_secs(30), next_text(&mut c.ws))
        .await
        .expect("an answer to join within 30 s")
        .expect("connection open")
}

fn error_code(msg: &ServerMessage) -> Option<ErrorCode> {
    match msg {
        ServerMessage::Error { code, .. } => Some(*code),
        _ => None,
    }
}

fn joined_protected(msg: &ServerMessage) -> bool {
    match msg {
        ServerMessage::Joined { protected, .. } => *protected,
        other => panic!("expected joined, got {other:?}"),
    }
}

/// Leaves the room, passing over news of the others that came before `left`.
async fn leave(c: &mut Client) {
    c.send(&ClientMessage::Leave).await;
    loop {
        match c.recv().await {
            ServerMessage::Left { .. } => return,
            ServerMessage::PeerJoined { .. } | ServerMessage::PeerLeft { .. } => {}
            other => panic!("expected left, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_password_cannot_take_over_an_open_room() {
    let server = ServerProc::start(&[]);
    // Someone creates the kiosk's room first, open.
    let mut squatter = client_from(&server, loopback(2), "squatter", Role::Browser).await;
    let text = join_raw(&mut squatter, "4-01", None).await;
    assert!(text.contains(r#""protected":false"#), "{text}");

    // The kiosk comes with its configured password: refused, not let in unprotected.
    let mut kiosk = Client::hello_as(&server, "Room 4.01", Role::Kiosk).await;
    let answer =
        ServerMessage::parse(&join_raw(&mut kiosk, "4-01", Some("kiosk-secret")).await).unwrap();
    expect_error(&answer, ErrorCode::PasswordMismatch);
    squatter.expect_silence(300).await;
    let rooms = ClientMessage::Rooms {
        rooms: vec!["4-01".into()],
    };
    kiosk.send(&rooms).await;
    assert!(
        matches!(kiosk.recv().await, ServerMessage::Rooms { rooms } if rooms[0].peers == 1),
        "the kiosk must not be in the squatter's room"
    );

    // The connection goes on: a protected room of its own says it is protected, to its
    // creator and to a guest with the password; a guest without one is refused.
    let text = join_raw(&mut kiosk, "4-02", Some("kiosk-secret")).await;
    assert!(text.contains(r#""protected":true"#), "{text}");
    assert!(joined_protected(&ServerMessage::parse(&text).unwrap()));
    let mut guest = Client::hello(&server, "guest").await;
    expect_error(&guest.join("4-02", None).await, ErrorCode::WrongPassword);
    assert!(joined_protected(
        &guest.join("4-02", Some("kiosk-secret")).await
    ));
    // And an open room reads as open to whoever joins it without a password.
    let mut other = Client::hello(&server, "other").await;
    assert!(!joined_protected(&other.join("4-01", None).await));

    // A protected room cannot be reopened by a later joiner either (it keeps its
    // password while empty).
    leave(&mut guest).await;
    leave(&mut kiosk).await;
    let mut late = client_from(&server, loopback(2), "late", Role::Browser).await;
    expect_error(&late.join("4-02", None).await, ErrorCode::WrongPassword);
    expect_error(
        &late.join("4-02", Some("another")).await,
        ErrorCode::WrongPassword,
    );
}

/// Median and 99th percentile of round trips, in milliseconds.
fn summary(samples: &mut [f64]) -> (f64, f64) {
    assert!(!samples.is_empty(), "no ping samples");
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Pings on `c` one after another, `gap` apart, until `stop` says so (or `count` were
/// answered); the round trips in milliseconds.
async fn ping_rtts(
    c: &mut Client,
    gap: Duration,
    count: Option<usize>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<f64> {
    let mut rtts = Vec::new();
    let mut id = 0u64;
    while count.is_none_or(|n| rtts.len() < n) && !*stop.borrow() {
        id += 1;
        let sent = Instant::now();
        c.send(&ClientMessage::Ping {
            id,
            client_time: 0.0,
        })
        .await;
        match c.recv().await {
            ServerMessage::Pong { id: got, .. } if got == id => {
                rtts.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            other => panic!("expected pong {id}, got {other:?}"),
        }
        tokio::time::sleep(gap).await;
    }
    rtts
}

// Two runtime threads, so the pinger is not held up behind this process's own handling of
// the attack's answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_wrong_passwords_from_one_address_are_cut_off_and_others_go_on() {
    const ROOMS: usize = 10;
    const CONNECTIONS: usize = 10;
    const PER_CONNECTION: usize = 100;
    let server = ServerProc::start(&[]);

    // Ten protected rooms (ten creations: within one address's allowance).
    let mut owner = Client::hello(&server, "owner").await;
    for i in 0..ROOMS {
        let joined = owner
            .join(&format!("vault-{i}"), Some("correct horse"))
            .await;
        assert!(matches!(joined, ServerMessage::Joined { .. }), "{joined:?}");
        leave(&mut owner).await;
    }

    // Another connection's ping round trip, before the attack.
    let mut pinger = Client::hello(&server, "pinger").await;
    let (_keep, idle) = tokio::sync::watch::channel(false);
    let mut before = ping_rtts(&mut pinger, Duration::from_millis(20), Some(100), &idle).await;

    // The attack: one address, ten connections, a hundred wrong passwords each, spread
    // over the ten rooms, all sent at once.
    let attacker = loopback(9);
    let mut attackers = Vec::new();
    for i in 0..CONNECTIONS {
        attackers
            .push(client_from(&server, attacker, &format!("guesser {i}"), Role::Browser).await);
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let during = tokio::spawn(async move {
        let rtts = ping_rtts(&mut pinger, Duration::from_millis(20), None, &stop).await;
        (pinger, rtts)
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut c) in attackers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for k in 0..PER_CONNECTION {
                c.send(&ClientMessage::Join {
                    room: format!("vault-{}", (i + k) % ROOMS),
                    password: Some(format!("guess-{i}-{k}")),
                })
                .await;
            }
            let mut codes = Vec::new();
            for _ in 0..PER_CONNECTION {
                let text = tokio::time::timeout(Duration::from_secs(120), next_text(&mut c.ws))
                    .await
                    .expect("an answer within 120 s")
                    .expect("connection open");
                codes.push(error_code(&ServerMessage::parse(&text).unwrap()));
            }
            codes
        }));
    }
    let mut wrong = 0;
    let mut limited = 0;
    for t in tasks {
        for code in t.await.unwrap() {
            match code {
                Some(ErrorCode::WrongPassword) => wrong += 1,
                Some(ErrorCode::RateLimited) => limited += 1,
                other => panic!("a wrong password got {other:?}"),
            }
        }
    }
    let attack = started.elapsed();
    stop_tx.send(true).unwrap();
    let (mut pinger, mut during) = during.await.unwrap();
    let (b50, b99) = summary(&mut before);
    let (d50, d99) = summary(&mut during);
    eprintln!(
        "abuse: {} wrong passwords from one address in {:.2} s: {wrong} checked \
         (wrongPassword), {limited} refused (rateLimited)",
        CONNECTIONS * PER_CONNECTION,
        attack.as_secs_f64()
    );
    eprintln!(
        "abuse: ping round trip on another connection: before median {b50:.2} ms, p99 \
         {b99:.2} ms ({} pings); during the attack median {d50:.2} ms, p99 {d99:.2} ms ({} \
         pings)",
        before.len(),
        during.len()
    );
    assert_eq!(wrong + limited, CONNECTIONS * PER_CONNECTION);
    // The address ran out of guesses almost at once: argon2 ran a handful of times.
    assert!(
        wrong <= 20,
        "{wrong} guesses were checked; the address should have been stopped after 5"
    );

    // The server still answers, and the attacker's address is what is locked out, not
    // the rooms: the owner, elsewhere, gets in with the password.
    pinger
        .send(&ClientMessage::Ping {
            id: 1_000_000,
            client_time: 0.0,
        })
        .await;
    assert!(matches!(pinger.recv().await, ServerMessage::Pong { .. }));
    assert!(matches!(
        owner.join("vault-3", Some("correct horse")).await,
        ServerMessage::Joined { .. }
    ));
    // Even the right password does not get the attacker's address in now.
    let mut again = client_from(&server, attacker, "guesser again", Role::Browser).await;
    expect_error(
        &again.join("vault-3", Some("correct horse")).await,
        ErrorCode::RateLimited,
    );
}

/// An HTTP/1.1 WebSocket upgrade of `path` from `from`; the status and the head.
async fn upgrade_from(server: &ServerProc, from: IpAddr, path: &str) -> (u16, String) {
    let mut tcp = tcp_from(from, server.addr).await;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(30), async {
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    })
    .await
    .expect("an answer within 30 s");
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head)
}

#[tokio::test]
async fn document_password_guesses_count_in_the_same_limiter() {
    let server = ServerProc::start(&[]);
    let mut owner = Client::hello(&server, "owner").await;
    assert!(matches!(
        owner.join("vault", Some("s3cret")).await,
        ServerMessage::Joined { .. }
    ));

    let guesser = loopback(4);
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(
            upgrade_from(&server, guesser, &format!("/yjs/vault?password=guess{i}"))
                .await
                .0,
        );
    }
    assert_eq!(statuses, vec![403; 5]);
    // Locked out: no more checks, the right password included, and a Retry-After.
    let (status, head) = upgrade_from(&server, guesser, "/yjs/vault?password=s3cret").await;
    assert_eq!(status, 429, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    let (status, _) = upgrade_from(
        &server,
        guesser,
        "/yjs/vault?token=v1.1.99999999999999.AAAA",
    )
    .await;
    assert_eq!(status, 429);
    // One limiter: the same address is refused on /ws too.
    let mut c = client_from(&server, guesser, "guesser", Role::Browser).await;
    expect_error(
        &c.join("vault", Some("s3cret")).await,
        ErrorCode::RateLimited,
    );
    // Everyone else goes on.
    let (status, _) = upgrade_from(&server, ME, "/yjs/vault?password=s3cret").await;
    assert_eq!(status, 101);
}

#[tokio::test]
async fn room_creation_is_limited_per_address_and_join_leave_cannot_fill_the_server() {
    // Emptied open rooms go at once here (by default they linger an hour, still bounded
    // by the creation limit).
    let server = ServerProc::start(&["--max-rooms", "5", "--open-room-linger", "0"]);
    let flooder = loopback(3);
    let mut c = client_from(&server, flooder, "flooder", Role::Browser).await;
    let mut created = 0;
    let mut limited = 0;
    for i in 0..40 {
        let answer = c.join(&format!("flood-{i}"), None).await;
        match answer {
            ServerMessage::Joined { .. } => {
                created += 1;
                leave(&mut c).await;
            }
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("room {i}: {other:?}"),
        }
    }
    eprintln!(
        "abuse: 40 room creations from one address: {created} created, {limited} rateLimited"
    );
    // More were created than the server holds rooms: emptied open rooms are gone.
    assert!(created > 5, "{created} created");
    assert!(limited >= 20, "{limited} refused");
    assert_eq!(metric(&server, "portal_rooms_known ").await, 0);
    // Joining a room that exists is not creating one.
    let mut host = Client::hello(&server, "host").await;
    host.join("standup", None).await;
    assert!(matches!(
        c.join("standup", None).await,
        ServerMessage::Joined { .. }
    ));
    // The connection goes on, and other addresses still create rooms.
    c.send(&ClientMessage::Ping {
        id: 1,
        client_time: 0.0,
    })
    .await;
    assert!(matches!(c.recv().await, ServerMessage::Pong { .. }));
    let mut other = Client::hello(&server, "other").await;
    assert!(matches!(
        other.join("fresh", None).await,
        ServerMessage::Joined { .. }
    ));
    // A protected room is kept while empty, and counts.
    let mut keeper = Client::hello(&server, "keeper").await;
    keeper.join("kept", Some("pw")).await;
    leave(&mut keeper).await;
    assert_eq!(metric(&server, "portal_rooms_known ").await, 3);
}

#[tokio::test]
async fn turn_credentials_go_only_to_a_connection_that_joined() {
    let server = ServerProc::start(&[
        "--stun-url",
        "stun:stun.example.org:3478",
        "--turn-url",
        "turn:turn.example.org:3478",
        "--turn-secret",
        "s3cret",
    ]);
    let mut host = Client::hello(&server, "host").await;
    host.send(&ClientMessage::Join {
        room: "locked".into(),
        password: Some("pw".into()),
    })
    .await;
    assert!(matches!(
        host.recv().await,
        ServerMessage::IceServers { .. }
    ));
    assert!(joined_protected(&host.recv().await));

    // Everything short of a successful join, read as raw text: no credential anywhere.
    let tcp = tcp_from(loopback(40), server.addr).await;
    let (mut ws, _): (Ws, _) =
        tokio_tungstenite::client_async(server.ws_url(), MaybeTlsStream::Plain(tcp))
            .await
            .expect("websocket handshake");
    let hello = ClientMessage::Hello {
        protocol: portal_proto::PROTOCOL_VERSION,
        name: "relay-seeker".into(),
        role: Role::Kiosk,
        resume: None,
        device: None,
    };
    let attempts = [
        hello.to_json(),
        ClientMessage::Rooms {
            rooms: vec!["locked".into()],
        }
        .to_json(),
        r#"{"type":"join","room":"../bad"}"#.to_owned(),
        r#"{"type":"join","room":"locked"}"#.to_owned(),
        r#"{"type":"join","room":"locked","password":"guess"}"#.to_owned(),
        r#"{"type":"ping","id":1,"clientTime":0}"#.to_owned(),
    ];
    for attempt in &attempts {
        common::send_raw(&mut ws, attempt).await;
        let answer = tokio::time::timeout(Duration::from_secs(30), next_text(&mut ws))
            .await
            .expect("an answer within 30 s")
            .expect("connection open");
        assert!(
            !answer.contains("credential") && !answer.contains("turn:"),
            "{attempt} was answered with relay credentials: {answer}"
        );
        assert!(!answer.contains(r#""type":"iceServers""#), "{answer}");
    }
    // The welcome gave STUN alone; the join that succeeds brings TURN, made for this peer.
    common::send_raw(&mut ws, r#"{"type":"join","room":"open-room"}"#).await;
    let Some(ServerMessage::IceServers { ice_servers }) = next_text(&mut ws)
        .await
        .and_then(|t| ServerMessage::parse(&t).ok())
    else {
        panic!("a successful join brings the ICE servers first");
    };
    assert!(ice_servers.iter().any(|s| s.credential.is_some()));
    assert!(matches!(
        common::recv(&mut ws).await,
        ServerMessage::Joined { .. }
    ));
}

/// One plain HTTP request from `from`, answered or refused: the status line.
async fn status_line_from(server: &ServerProc, from: IpAddr) -> String {
    let mut tcp = tcp_from(from, server.addr).await;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    reply.lines().next().unwrap_or("").to_owned()
}

#[tokio::test]
async fn one_address_holds_at_most_64_connections_and_others_are_unaffected() {
    // The default limit (--max-conns-per-addr 64).
    let server = ServerProc::start(&[]);
    let from = loopback(50);
    let mut clients = Vec::new();
    for i in 0..60 {
        clients.push(client_from(&server, from, &format!("c{i}"), Role::Browser).await);
    }
    // Kept-alive plain HTTP connections count too.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut tcp = tcp_from(from, server.addr).await;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        idle.push(tcp);
    }
    // The 65th: a WebSocket and a plain request are both refused with 429.
    let tcp = tcp_from(from, server.addr).await;
    match tokio_tungstenite::client_async(server.ws_url(), MaybeTlsStream::Plain(tcp)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
        }
        other => panic!(
            "the 65th connection was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    assert!(
        status_line_from(&server, from)
            .await
            .starts_with("HTTP/1.1 429")
    );
    // Another address is not affected, nor are the connections already in.
    assert!(
        status_line_from(&server, ME)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let _other = Client::hello(&server, "other").await;
    let last = clients.last_mut().unwrap();
    last.send(&ClientMessage::Ping {
        id: 7,
        client_time: 0.0,
    })
    .await;
    assert!(matches!(last.recv().await, ServerMessage::Pong { .. }));
    assert!(metric(&server, "portal_connections_refused_per_addr_total ").await >= 2);
    // Closed connections give their slots back.
    drop(idle);
    clients.truncate(50);
    let started = Instant::now();
    loop {
        if status_line_from(&server, from)
            .await
            .starts_with("HTTP/1.1 200")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "slots never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _again = client_from(&server, from, "again", Role::Browser).await;
}

#[tokio::test]
async fn a_silent_or_slow_request_does_not_hold_its_slot() {
    let server = ServerProc::start(&["--max-conns-per-addr", "2"]);
    let from = loopback(60);
    // Headers that never end, and a connection that never says anything.
    let mut slow = tcp_from(from, server.addr).await;
    slow.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").await.unwrap();
    let mut silent = tcp_from(from, server.addr).await;
    assert!(
        status_line_from(&server, from)
            .await
            .starts_with("HTTP/1.1 429")
    );
    // Both are closed by the header read timeout (10 s), and the address gets in again.
    let mut buf = [0u8; 64];
    for tcp in [&mut slow, &mut silent] {
        let closed = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf)).await;
        assert!(
            closed.is_ok(),
            "a slow connection was kept past the header timeout"
        );
    }
    let started = Instant::now();
    while !status_line_from(&server, from)
        .await
        .starts_with("HTTP/1.1 200")
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "slots never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

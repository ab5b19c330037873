//! Pairing against the real `portal-server`: enrolment from its command line, kiosks
//! and laptops over real WebSockets, the limits on guessing, restarts.

mod common;

use std::time::Duration;

use common::{Client, client_from, enrol, expect_error, loopback, metric, next_text, server_cli};
use portal_proto::pairing::{CommandErrorCode, KioskState, RemoteCommand, UnpairReason};
use portal_proto::{ClientMessage, ErrorCode, Role, ServerMessage};
use portal_testkit::{ServerProc, TempDir};

async fn pair(laptop: &mut Client, code: &str) -> ServerMessage {
    laptop
        .send(&ClientMessage::Pair { code: code.into() })
        .await;
    laptop.recv().await
}

/// The next message within `secs` seconds, or `None` when the connection closed.
async fn within(client: &mut Client, secs: u64) -> Option<ServerMessage> {
    tokio::time::timeout(Duration::from_secs(secs), next_text(&mut client.ws))
        .await
        .expect("a message in time")
        .map(|t| ServerMessage::parse(&t).unwrap())
}

#[test]
fn kiosks_are_enrolled_listed_and_removed_from_the_command_line() {
    let dir = TempDir::new("pairing-cli");
    let token = enrol(dir.path(), "Room 4.01");
    assert_eq!(token.len(), 43, "{token}");
    assert_ne!(enrol(dir.path(), "Room 4.02"), token);
    let again = server_cli(dir.path(), &["kiosk", "add", "room 4.01"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already enrolled"));
    let list = server_cli(dir.path(), &["kiosk", "list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("NAME") && lines[0].contains("LAST SEEN"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("Room 4.01") && lines[1].contains("never"),
        "{text}"
    );
    assert!(!text.contains(&token), "the token is shown once only");
    let removed = server_cli(dir.path(), &["kiosk", "remove", "ROOM 4.01"]);
    assert!(removed.status.success());
    let text =
        String::from_utf8_lossy(&server_cli(dir.path(), &["kiosk", "list"]).stdout).into_owned();
    assert!(
        !text.contains("Room 4.01") && text.contains("Room 4.02"),
        "{text}"
    );
    let unknown = server_cli(dir.path(), &["kiosk", "remove", "Room 4.01"]);
    assert!(!unknown.status.success());
}

#[tokio::test]
async fn a_laptop_pairs_with_the_code_and_commands_the_kiosk() {
    let server = ServerProc::start(&[]);
    let token = enrol(server.data_dir(), "Room 4.01");
    let mut kiosk = Client::kiosk(&server, &token, true).await;
    let (code, url) = kiosk.next_code().await;
    assert_eq!(url, format!("http://{}/p/{code}", server.addr));
    // A browser never paired cannot reach the kiosk.
    let mut stranger = Client::hello(&server, "Mallory").await;
    stranger
        .send(&ClientMessage::Command {
            id: 1,
            command: RemoteCommand::Leave,
        })
        .await;
    match stranger.recv().await {
        ServerMessage::CommandResult {
            id: 1,
            error: Some(e),
            ..
        } => {
            assert_eq!(e.code, CommandErrorCode::NotPaired);
        }
        other => panic!("{other:?}"),
    }
    // The code as typed pairs once.
    let mut laptop = Client::hello(&server, "Ada's laptop").await;
    let typed = format!("{} {}", &code[..3], code[3..].to_lowercase());
    match pair(&mut laptop, &typed).await {
        ServerMessage::PairAccepted {
            kiosk: k,
            kiosk_name,
            ..
        } => assert_eq!((k, kiosk_name.as_str()), (kiosk.id, "Room 4.01")),
        other => panic!("{other:?}"),
    }
    let (fresh, _) = kiosk.next_code().await;
    assert_ne!(fresh, code);
    assert_eq!(
        kiosk.recv().await,
        ServerMessage::Paired {
            peer: laptop.id,
            name: "Ada's laptop".into()
        }
    );
    expect_error(&pair(&mut stranger, &code).await, ErrorCode::CodeExpired);
    expect_error(&pair(&mut laptop, &fresh).await, ErrorCode::AlreadyPaired);
    // State and commands both ways.
    let state = KioskState {
        in_call: false,
        volume: 0.8,
        ..KioskState::default()
    };
    kiosk
        .send(&ClientMessage::KioskState {
            state: state.clone(),
        })
        .await;
    assert_eq!(laptop.recv().await, ServerMessage::KioskState { state });
    let join = RemoteCommand::JoinRoom {
        room: "standup".into(),
        password: None,
    };
    laptop
        .send(&ClientMessage::Command {
            id: 7,
            command: join.clone(),
        })
        .await;
    assert_eq!(
        kiosk.recv().await,
        ServerMessage::Command {
            from: laptop.id,
            id: 7,
            command: join
        }
    );
    kiosk
        .send(&ClientMessage::CommandResult {
            to: laptop.id,
            id: 7,
            room: Some("standup".into()),
            error: None,
        })
        .await;
    assert_eq!(
        laptop.recv().await,
        ServerMessage::CommandResult {
            id: 7,
            room: Some("standup".into()),
            error: None
        }
    );
    laptop
        .send(&ClientMessage::Command {
            id: 8,
            command: RemoteCommand::SetVolume { volume: 7.0 },
        })
        .await;
    match laptop.recv().await {
        ServerMessage::CommandResult {
            id: 8,
            error: Some(e),
            ..
        } => {
            assert_eq!(e.code, CommandErrorCode::BadRequest);
        }
        other => panic!("{other:?}"),
    }
    // The kiosk cannot answer a laptop that is not its own.
    kiosk
        .send(&ClientMessage::CommandResult {
            to: stranger.id,
            id: 1,
            room: None,
            error: None,
        })
        .await;
    expect_error(&kiosk.recv().await, ErrorCode::NotPaired);
    stranger.expect_silence(200).await;
    // The kiosk ends it from its screen.
    kiosk
        .send(&ClientMessage::Unpair {
            peer: Some(laptop.id),
        })
        .await;
    assert_eq!(
        laptop.recv().await,
        ServerMessage::Unpaired {
            peer: kiosk.id,
            reason: UnpairReason::KioskEnded
        }
    );
    assert!(matches!(
        kiosk.recv().await,
        ServerMessage::Unpaired {
            reason: UnpairReason::KioskEnded,
            ..
        }
    ));
    // The laptop pairs again and ends it itself.
    assert!(matches!(
        pair(&mut laptop, &fresh).await,
        ServerMessage::PairAccepted { .. }
    ));
    let (third, _) = kiosk.next_code().await;
    assert!(matches!(kiosk.recv().await, ServerMessage::Paired { .. }));
    assert!(
        matches!(laptop.recv().await, ServerMessage::KioskState { .. }),
        "the state it kept"
    );
    laptop.send(&ClientMessage::Unpair { peer: None }).await;
    assert_eq!(
        kiosk.recv().await,
        ServerMessage::Unpaired {
            peer: laptop.id,
            reason: UnpairReason::LaptopLeft
        }
    );
    assert!(matches!(
        laptop.recv().await,
        ServerMessage::Unpaired {
            reason: UnpairReason::LaptopLeft,
            ..
        }
    ));
    // Paired again, the laptop's connection ends: the kiosk hears it.
    assert!(matches!(
        pair(&mut stranger, &third).await,
        ServerMessage::PairAccepted { .. }
    ));
    kiosk.next_code().await;
    assert!(matches!(kiosk.recv().await, ServerMessage::Paired { .. }));
    let gone = stranger.id;
    stranger.ws.close(None).await.unwrap();
    drop(stranger);
    assert_eq!(
        kiosk.recv().await,
        ServerMessage::Unpaired {
            peer: gone,
            reason: UnpairReason::LaptopLeft
        }
    );
    assert_eq!(
        metric(
            &server,
            "portal_pairing_attempts_total{outcome=\"accepted\"}"
        )
        .await,
        3
    );
    assert_eq!(
        metric(
            &server,
            "portal_pairing_attempts_total{outcome=\"codeExpired\"}"
        )
        .await,
        1
    );
    assert_eq!(metric(&server, "portal_kiosks_online").await, 1);
    assert_eq!(metric(&server, "portal_pairings").await, 0);
    let list = server_cli(server.data_dir(), &["kiosk", "list"]);
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains("never"),
        "last seen is kept"
    );
}

#[tokio::test]
async fn kiosk_names_are_reserved_and_unknown_tokens_refused() {
    // Enrolled before the start (a running server learns of new kiosks within 2 s).
    let data = TempDir::new("pairing-names");
    enrol(data.path(), "Room 4.01");
    let server = ServerProc::start_in(data.path(), &[]);
    let mut ws = common::connect(&server).await;
    let hello = |name: &str| ClientMessage::Hello {
        protocol: portal_proto::PROTOCOL_VERSION,
        name: name.into(),
        role: Role::Browser,
        resume: None,
        device: None,
    };
    common::send(&mut ws, &hello(" room 4.01")).await;
    expect_error(&common::recv(&mut ws).await, ErrorCode::NameReserved);
    // Nothing is lost: another name is welcome on the same connection.
    common::send(&mut ws, &hello("Ada")).await;
    assert!(matches!(
        common::recv(&mut ws).await,
        ServerMessage::Welcome { .. }
    ));
    // A token nobody enrolled is refused for good.
    let mut ws = common::connect(&server).await;
    common::send(&mut ws, &common::kiosk_hello("bm90LWEtdG9rZW4", true)).await;
    expect_error(&common::recv(&mut ws).await, ErrorCode::InvalidDeviceToken);
    assert!(next_text(&mut ws).await.is_none(), "closed");
}

#[tokio::test]
async fn a_removed_kiosk_is_cut_off_within_seconds() {
    let server = ServerProc::start(&[]);
    let token = enrol(server.data_dir(), "Room 4.01");
    let mut kiosk = Client::kiosk(&server, &token, true).await;
    let mut call = Client::kiosk(&server, &token, false).await;
    let (code, _) = kiosk.next_code().await;
    let mut laptop = Client::hello(&server, "Ada").await;
    assert!(matches!(
        pair(&mut laptop, &code).await,
        ServerMessage::PairAccepted { .. }
    ));
    let removed = server_cli(server.data_dir(), &["kiosk", "remove", "Room 4.01"]);
    assert!(removed.status.success());
    assert_eq!(
        within(&mut laptop, 8).await,
        Some(ServerMessage::Unpaired {
            peer: kiosk.id,
            reason: UnpairReason::Removed
        })
    );
    for conn in [&mut kiosk, &mut call] {
        loop {
            match within(conn, 8).await {
                Some(ServerMessage::Error { code, .. }) => {
                    assert_eq!(code, ErrorCode::InvalidDeviceToken);
                    break;
                }
                Some(_) => {}
                None => panic!("closed without a word"),
            }
        }
        assert_eq!(within(conn, 5).await, None, "closed");
    }
    let mut ws = common::connect(&server).await;
    common::send(&mut ws, &common::kiosk_hello(&token, true)).await;
    expect_error(&common::recv(&mut ws).await, ErrorCode::InvalidDeviceToken);
    // Its name is free again.
    let _ = Client::hello(&server, "Room 4.01").await;
}

#[tokio::test]
async fn codes_rotate_on_time_and_a_restart_keeps_enrolment_and_dead_codes_dead() {
    let data = TempDir::new("pairing-restart");
    let token = enrol(data.path(), "Room 4.01");
    let mut server = ServerProc::builder()
        .data_dir(data.path())
        .args([
            "--pairing-code-ttl",
            "2",
            "--public-url",
            "https://portal.example/",
        ])
        .start_async()
        .await;
    let mut kiosk = Client::kiosk(&server, &token, true).await;
    let (first, url) = kiosk.next_code().await;
    assert_eq!(url, format!("https://portal.example/p/{first}"));
    let (second, _) = kiosk.next_code().await;
    assert_ne!(first, second, "rotated after its two seconds");
    let mut laptop = Client::hello(&server, "Ada").await;
    expect_error(&pair(&mut laptop, &first).await, ErrorCode::CodeExpired);
    // `second` may have rotated too by now; pair with whatever is shown.
    let (shown, _) = kiosk.next_code().await;
    assert!(matches!(
        pair(&mut laptop, &shown).await,
        ServerMessage::PairAccepted { .. }
    ));
    drop((kiosk, laptop));
    server.restart_async().await;
    let mut kiosk = Client::kiosk(&server, &token, true).await;
    let (fresh, _) = kiosk.next_code().await;
    assert!(fresh != shown && fresh != second);
    let mut laptop = Client::hello(&server, "Ada").await;
    expect_error(&pair(&mut laptop, &shown).await, ErrorCode::CodeExpired);
    let (now_shown, _) = kiosk.next_code().await;
    assert!(matches!(
        pair(&mut laptop, &now_shown).await,
        ServerMessage::PairAccepted { .. }
    ));
}

#[tokio::test]
async fn wrong_guesses_lock_out_their_address_and_rotate_the_codes_while_others_pair() {
    let server = ServerProc::start(&[]);
    let token = enrol(server.data_dir(), "Room 4.01");
    let mut kiosk = Client::kiosk(&server, &token, true).await;
    let (code, _) = kiosk.next_code().await;
    let mut guesser = client_from(&server, loopback(2), "Guesser", Role::Browser).await;
    for wrong in ["ZZZZZZ", "short", "ZZZZZY", "ZZZZZX", "ZZZZZW"] {
        expect_error(&pair(&mut guesser, wrong).await, ErrorCode::InvalidCode);
    }
    // Locked out: not even the right code is looked at.
    expect_error(&pair(&mut guesser, &code).await, ErrorCode::RateLimited);
    // Another address pairs.
    let mut laptop = Client::hello(&server, "Ada").await;
    assert!(matches!(
        pair(&mut laptop, &code).await,
        ServerMessage::PairAccepted { .. }
    ));
    let (next, _) = kiosk.next_code().await;
    assert!(matches!(kiosk.recv().await, ServerMessage::Paired { .. }));
    // Twenty wrong guesses server-wide change every live code.
    for last in 3..6 {
        let mut g = client_from(&server, loopback(last), "Guesser", Role::Browser).await;
        for _ in 0..5 {
            expect_error(&pair(&mut g, "ZZZZZZ").await, ErrorCode::InvalidCode);
        }
    }
    let (rotated, _) = kiosk.next_code().await;
    assert_ne!(rotated, next);
    let mut late = client_from(&server, loopback(6), "Late", Role::Browser).await;
    expect_error(&pair(&mut late, &next).await, ErrorCode::CodeExpired);
    assert!(matches!(
        pair(&mut late, &rotated).await,
        ServerMessage::PairAccepted { .. }
    ));
    assert_eq!(
        metric(
            &server,
            "portal_pairing_attempts_total{outcome=\"rateLimited\"}"
        )
        .await,
        1
    );
    assert_eq!(
        metric(
            &server,
            "portal_pairing_attempts_total{outcome=\"invalidCode\"}"
        )
        .await,
        20
    );
}

#[tokio::test]
async fn a_paired_laptop_joins_its_kiosks_room_without_the_password() {
    let server = ServerProc::start(&[]);
    let token = enrol(server.data_dir(), "Room 4.01");
    let mut owner = Client::hello(&server, "Owner").await;
    assert!(matches!(
        owner.join("board", Some("s3cret")).await,
        ServerMessage::Joined { .. }
    ));
    let mut call = Client::kiosk(&server, &token, false).await;
    assert!(matches!(
        call.join("board", Some("s3cret")).await,
        ServerMessage::Joined { .. }
    ));
    // Whatever its hello said, the kiosk is known by its enrolled name.
    match owner.recv().await {
        ServerMessage::PeerJoined { peer } => {
            assert_eq!((peer.id, peer.name.as_str()), (call.id, "Room 4.01"));
        }
        other => panic!("{other:?}"),
    }
    let mut kiosk = Client::kiosk(&server, &token, true).await;
    let (code, _) = kiosk.next_code().await;
    let mut other = Client::hello(&server, "Not paired").await;
    expect_error(&other.join("board", None).await, ErrorCode::WrongPassword);
    let mut laptop = Client::hello(&server, "Ada").await;
    expect_error(&laptop.join("board", None).await, ErrorCode::WrongPassword);
    assert!(matches!(
        pair(&mut laptop, &code).await,
        ServerMessage::PairAccepted { .. }
    ));
    match laptop.join("board", None).await {
        ServerMessage::Joined {
            protected, peers, ..
        } => {
            assert!(protected);
            assert_eq!(peers.len(), 2);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_newer_control_connection_replaces_the_older() {
    let server = ServerProc::start(&[]);
    let token = enrol(server.data_dir(), "Room 4.01");
    let mut old = Client::kiosk(&server, &token, true).await;
    let (code, _) = old.next_code().await;
    let mut laptop = Client::hello(&server, "Ada").await;
    assert!(matches!(
        pair(&mut laptop, &code).await,
        ServerMessage::PairAccepted { .. }
    ));
    let mut new = Client::kiosk(&server, &token, true).await;
    let (fresh, _) = new.next_code().await;
    loop {
        match within(&mut old, 5).await {
            Some(ServerMessage::Error { code, .. }) => {
                assert_eq!(code, ErrorCode::Replaced);
                break;
            }
            Some(_) => {}
            None => panic!("closed without a word"),
        }
    }
    assert_eq!(within(&mut old, 5).await, None, "closed");
    assert_eq!(
        laptop.recv().await,
        ServerMessage::Unpaired {
            peer: old.id,
            reason: UnpairReason::KioskGone
        }
    );
    expect_error(&pair(&mut laptop, &code).await, ErrorCode::CodeExpired);
    match pair(&mut laptop, &fresh).await {
        ServerMessage::PairAccepted { kiosk, .. } => assert_eq!(kiosk, new.id),
        other => panic!("{other:?}"),
    }
}

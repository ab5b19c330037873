//! The signaling client against the real `portal-server`: typed errors, and a server
//! restart survived with the same peer id.

mod common;

use common::{LONG, Server, TempDir, init_tracing, wait_for};
use portal_net::signaling::{self, SignalingConfig, SignalingError, SignalingEvent};
use portal_proto::{PeerId, Role};
use tokio::sync::mpsc;

/// The next event that `pick` accepts, skipping the others.
async fn next_matching<T>(
    events: &mut mpsc::Receiver<SignalingEvent>,
    what: &str,
    mut pick: impl FnMut(&SignalingEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(LONG, async {
        loop {
            let event = events
                .recv()
                .await
                .expect("the client reports until it stops");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn config(server: &Server, name: &str, room: &str, password: Option<&str>) -> SignalingConfig {
    let mut config = SignalingConfig::new(server.ws_url(), name, room);
    config.password = password.map(str::to_owned);
    config
}

#[tokio::test]
async fn wrong_password_and_full_room_stop_with_typed_errors() {
    init_tracing();
    let data = TempDir::new("sig-errors");
    let server = Server::start("127.0.0.1:0", &data.0, &["--max-peers", "1"]).await;

    let (first, mut first_events) =
        signaling::connect(config(&server, "First", "locked", Some("secret"))).expect("config");
    let joined = next_matching(&mut first_events, "joined", |e| match e {
        SignalingEvent::Joined { peers, .. } => Some(peers.len()),
        _ => None,
    })
    .await;
    assert_eq!(joined, 0);

    let (_wrong, mut wrong_events) =
        signaling::connect(config(&server, "Wrong", "locked", Some("guess"))).expect("config");
    let stopped = next_matching(&mut wrong_events, "stopped", |e| match e {
        SignalingEvent::Stopped(e) => Some(e.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(stopped.as_deref(), Some(SignalingError::WrongPassword(_))),
        "{stopped:?}"
    );

    let (late, mut late_events) =
        signaling::connect(config(&server, "Late", "locked", Some("secret"))).expect("config");
    let stopped = next_matching(&mut late_events, "stopped", |e| match e {
        SignalingEvent::Stopped(e) => Some(e.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(stopped.as_deref(), Some(SignalingError::RoomFull(_))),
        "{stopped:?}"
    );
    assert_eq!(
        late.signal(PeerId(1), portal_proto::SignalData::Candidate(candidate()))
            .await,
        Err(SignalingError::Closed)
    );

    // A bad configuration never reaches the server.
    assert!(matches!(
        signaling::connect(SignalingConfig::new("http://x/ws", "A", "b")),
        Err(SignalingError::InvalidUrl { .. })
    ));
    first.leave().await;
    server.stop().await;
}

fn candidate() -> portal_proto::IceCandidate {
    portal_proto::IceCandidate {
        candidate: String::new(),
        sdp_mid: None,
        sdp_m_line_index: None,
        username_fragment: None,
    }
}

#[tokio::test]
async fn a_server_restart_is_survived_with_the_same_peer_id() {
    init_tracing();
    let data = TempDir::new("sig-restart");
    let server = Server::start("127.0.0.1:0", &data.0, &[]).await;
    let port = server.port();

    let (kiosk, mut kiosk_events) =
        signaling::connect(config(&server, "Kiosk", "sturdy", None)).expect("config");
    let kiosk_id = next_matching(&mut kiosk_events, "kiosk joined", |e| match e {
        SignalingEvent::Joined { peer_id, .. } => Some(*peer_id),
        _ => None,
    })
    .await;
    let (other, mut other_events) =
        signaling::connect(config(&server, "Other", "sturdy", None)).expect("config");
    let listed = next_matching(&mut other_events, "other joined", |e| match e {
        SignalingEvent::Joined { peers, .. } => Some(peers.clone()),
        _ => None,
    })
    .await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].role), (kiosk_id, Role::Kiosk));
    let other_id = other.peer_id().expect("other has an id");
    let seen = next_matching(&mut kiosk_events, "peerJoined", |e| match e {
        SignalingEvent::PeerJoined(info) => Some(info.id),
        _ => None,
    })
    .await;
    assert_eq!(seen, other_id);
    // Ping/pong gave a clock offset (same machine: small).
    wait_for("clock samples", || kiosk.clock_samples() >= 3).await;
    assert!(kiosk.clock_offset_ms().abs() < 5_000.0);

    // Relay works both ways.
    kiosk
        .signal(other_id, portal_proto::SignalData::Candidate(candidate()))
        .await
        .expect("signal sent");
    let from = next_matching(&mut other_events, "relayed signal", |e| match e {
        SignalingEvent::Signal { from, .. } => Some(*from),
        _ => None,
    })
    .await;
    assert_eq!(from, kiosk_id);

    // The server goes away and comes back on the same port and data dir.
    server.stop().await;
    next_matching(&mut kiosk_events, "disconnect", |e| {
        matches!(e, SignalingEvent::Disconnected { .. }).then_some(())
    })
    .await;
    assert!(!kiosk.is_joined());
    assert_eq!(
        kiosk
            .signal(other_id, portal_proto::SignalData::Candidate(candidate()))
            .await,
        Err(SignalingError::NotConnected)
    );
    let server = Server::start(&format!("127.0.0.1:{port}"), &data.0, &[]).await;
    let (peer_id, resumed) = next_matching(&mut kiosk_events, "welcome again", |e| match e {
        SignalingEvent::Welcome {
            peer_id, resumed, ..
        } => Some((*peer_id, *resumed)),
        _ => None,
    })
    .await;
    assert_eq!(peer_id, kiosk_id, "the same id after the restart");
    assert!(resumed);
    next_matching(&mut kiosk_events, "joined again", |e| {
        matches!(e, SignalingEvent::Joined { .. }).then_some(())
    })
    .await;
    wait_for("the other peer back", || other.is_joined()).await;
    assert_eq!(other.peer_id(), Some(other_id));

    // Leaving is immediate for the others.
    kiosk.leave().await;
    let left = next_matching(&mut other_events, "peerLeft", |e| match e {
        SignalingEvent::PeerLeft(id) => Some(*id),
        _ => None,
    })
    .await;
    assert_eq!(left, kiosk_id);
    assert!(
        matches!(
            kiosk
                .signal(other_id, portal_proto::SignalData::Candidate(candidate()))
                .await,
            Err(SignalingError::Closed)
        ),
        "a stopped client refuses to send"
    );
    other.leave().await;
    server.stop().await;
}

//! The signaling transport against the real `portal-server`, with the real engine deciding
//! (as the kiosk runs them): typed refusals, a server restart survived with the same
//! peer id, the clock, and the transport's own promises (nothing is sent before it is
//! open, a close it was told to make is not reported as a drop).

mod common;
mod room;

use common::{LONG, init_tracing};
use portal_net::signaling::{self, TransportConfig, TransportError, TransportEvent};
use portal_proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, Role, ServerMessage};
use portal_testkit::{ServerProc, wait_until_async};
use room::RoomEvent;
use tokio::sync::mpsc;

/// The next event that `pick` accepts, skipping the others.
async fn next_matching<E: std::fmt::Debug, T>(
    events: &mut mpsc::Receiver<E>,
    what: &str,
    mut pick: impl FnMut(&E) -> Option<T>,
) -> T {
    tokio::time::timeout(LONG, async {
        loop {
            let event = events.recv().await.expect("events until stopped");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn candidate() -> portal_proto::SignalData {
    portal_proto::SignalData::Candidate(portal_proto::IceCandidate {
        candidate: String::new(),
        sdp_mid: None,
        sdp_m_line_index: None,
        username_fragment: None,
    })
}

#[tokio::test]
async fn the_transport_carries_messages_and_reports_only_real_drops() {
    init_tracing();
    let mut server = ServerProc::builder().start_async().await;
    assert!(matches!(
        signaling::start(TransportConfig::new("http://x/ws")),
        Err(TransportError::InvalidUrl { .. })
    ));
    let (transport, mut events) =
        signaling::start(TransportConfig::new(server.ws_url())).expect("a ws:// URL");
    assert_eq!(
        transport.send(ClientMessage::Leave),
        Err(TransportError::NotConnected),
        "nothing is sent before a connection is asked for"
    );
    transport.connect();
    next_matching(&mut events, "opened", |e| {
        matches!(e, TransportEvent::Opened).then_some(())
    })
    .await;
    transport
        .send(ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            name: "Transport".into(),
            role: Role::Kiosk,
            resume: None,
            device: None,
        })
        .expect("open");
    next_matching(&mut events, "welcome", |e| {
        matches!(e, TransportEvent::Message(ServerMessage::Welcome { .. })).then_some(())
    })
    .await;
    // After welcome the transport probes the clock; pongs stay with it.
    wait_until_async(LONG, "clock samples", || transport.clock_samples() >= 3).await;
    assert!(transport.clock_offset_ms().abs() < 5_000.0);
    // A close we asked for is no drop; a new connection opens afresh.
    transport.disconnect();
    transport.connect();
    let next = next_matching(&mut events, "opened again", |e| match e {
        TransportEvent::Closed { .. } | TransportEvent::Opened => Some(e.clone()),
        TransportEvent::Message(ServerMessage::Pong { .. }) => panic!("pongs are not passed on"),
        _ => None,
    })
    .await;
    assert_eq!(next, TransportEvent::Opened);
    transport.shutdown().await;
    assert_eq!(
        transport.send(ClientMessage::Leave),
        Err(TransportError::Closed)
    );
    server.terminate_async().await;
}

#[tokio::test]
async fn wrong_password_and_full_room_stop_with_their_codes() {
    init_tracing();
    let mut server = ServerProc::builder()
        .args(["--max-peers", "1"])
        .start_async()
        .await;
    let (first, mut first_events) = room::join(server.ws_url(), "First", "locked", Some("secret"));
    next_matching(&mut first_events, "welcome", |e| {
        matches!(e, RoomEvent::Welcome { .. }).then_some(())
    })
    .await;
    let (_wrong, mut wrong_events) = room::join(server.ws_url(), "Wrong", "locked", Some("guess"));
    let stopped = next_matching(&mut wrong_events, "stopped", |e| match e {
        RoomEvent::Stopped(code) => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(stopped, Some(ErrorCode::WrongPassword));
    let (late, mut late_events) = room::join(server.ws_url(), "Late", "locked", Some("secret"));
    let stopped = next_matching(&mut late_events, "stopped", |e| match e {
        RoomEvent::Stopped(code) => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(stopped, Some(ErrorCode::RoomFull));
    assert!(late.signal(PeerId(1), candidate()).await.is_err());
    first.leave().await;
    server.terminate_async().await;
}

#[tokio::test]
async fn a_server_restart_is_survived_with_the_same_peer_id() {
    init_tracing();
    let mut server = ServerProc::builder().start_async().await;
    let (kiosk, mut kiosk_events) = room::join(server.ws_url(), "Kiosk", "sturdy", None);
    let kiosk_id = next_matching(&mut kiosk_events, "kiosk in", |e| match e {
        RoomEvent::Welcome { peer_id, .. } => Some(*peer_id),
        _ => None,
    })
    .await;
    let (other, mut other_events) = room::join(server.ws_url(), "Other", "sturdy", None);
    let (listed, offer) = next_matching(&mut other_events, "the kiosk listed", |e| match e {
        RoomEvent::PeerJoined(info, offer) => Some((info.clone(), *offer)),
        _ => None,
    })
    .await;
    assert_eq!((listed.id, listed.role), (kiosk_id, Role::Kiosk));
    assert!(!offer, "the newcomer with the higher id answers");
    let other_id = other.peer_id().expect("other has an id");
    let (seen, offer) = next_matching(&mut kiosk_events, "peerJoined", |e| match e {
        RoomEvent::PeerJoined(info, offer) => Some((info.id, *offer)),
        _ => None,
    })
    .await;
    assert_eq!(seen, other_id);
    assert!(offer, "between kiosks the lower id offers");
    wait_until_async(LONG, "clock samples", || kiosk.clock_samples() >= 3).await;

    // Relay works: the offerer's candidate reaches the other.
    kiosk
        .signal(other_id, candidate())
        .await
        .expect("signal sent");
    let from = next_matching(&mut other_events, "relayed signal", |e| match e {
        RoomEvent::Signal { from, .. } => Some(*from),
        _ => None,
    })
    .await;
    assert_eq!(from, kiosk_id);

    // The server goes away and comes back on the same port and data dir.
    server.terminate_async().await;
    next_matching(&mut kiosk_events, "disconnect", |e| {
        matches!(e, RoomEvent::Disconnected).then_some(())
    })
    .await;
    assert!(!kiosk.is_joined());
    assert!(kiosk.signal(other_id, candidate()).await.is_err());
    server.restart_async().await;
    let peer_id = next_matching(&mut kiosk_events, "in again", |e| match e {
        RoomEvent::Welcome { peer_id, .. } => Some(*peer_id),
        _ => None,
    })
    .await;
    assert_eq!(peer_id, kiosk_id, "the same id after the restart");
    wait_until_async(LONG, "the other peer back", || other.is_joined()).await;
    assert_eq!(other.peer_id(), Some(other_id));

    // Leaving is immediate for the others.
    kiosk.leave().await;
    let left = next_matching(&mut other_events, "peerLeft", |e| match e {
        RoomEvent::PeerLeft(id) => Some(*id),
        _ => None,
    })
    .await;
    assert_eq!(left, kiosk_id);
    assert!(kiosk.signal(other_id, candidate()).await.is_err());
    other.leave().await;
    server.terminate_async().await;
}

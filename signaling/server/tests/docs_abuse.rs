//! Shared documents against someone trying to get in or to get in the way, with the real
//! binary: documents of rooms that do not exist, connections that outlive their room's
//! rules, documents that outlive their room, awareness spoofing, presenter claims from
//! read-only viewers, sync floods and clients that do not read.

mod docs_client;

use std::time::Duration;

use docs_client::{DocClient, Ended, Signaling, metric};
use futures_util::{SinkExt, StreamExt};
use portal_testkit::ServerProc;
use tokio_tungstenite::tungstenite::Message;
use yrs::StateVector;
use yrs::sync::{Message as YMessage, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

/// The close code of a connection that ended (a refused upgrade counts as its status).
async fn ended_with(c: &mut DocClient) -> u16 {
    match c.until_closed().await {
        Ended::Closed(Some(frame)) => u16::from(frame.code),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// An awareness message setting `entries` (client id, clock, JSON).
fn awareness(entries: &[(u64, u32, &str)]) -> YMessage {
    YMessage::Awareness(portal_signaling::docs::awareness_update(entries))
}

/// Connects to a room that exists and syncs, without joining it first.
async fn open_doc(addr: std::net::SocketAddr, room: &str, query: &str) -> DocClient {
    let mut c = DocClient::connect_raw(addr, room, query)
        .await
        .unwrap_or_else(|e| panic!("{room}?{query}: {e:?}"));
    c.sync().await;
    c
}

fn state(c: &DocClient, id: u64) -> Option<serde_json::Value> {
    c.awareness
        .get(&id)
        .cloned()
        .flatten()
        .map(|json| serde_json::from_str(&json).expect("JSON state"))
}

#[tokio::test]
async fn the_document_of_a_room_that_does_not_exist_is_refused() {
    let server = ServerProc::start(&[]);
    let addr = server.addr;
    match DocClient::connect_raw(addr, "nobody-here", "").await {
        Err(Ended::Refused(status)) => assert_eq!(status, 404),
        Err(other) => panic!("{other:?}"),
        Ok(mut c) => {
            assert_eq!(c.close_code().await, (4404, "no such room".into()));
            assert!(!c.synced);
        }
    }
    // Read-only viewers too, and nothing was created or kept.
    if let Ok(mut c) = DocClient::connect_raw(addr, "nobody-here", "readonly=1").await {
        assert_eq!(ended_with(&mut c).await, 4404);
    }
    docs_client::wait_loaded(addr, 0).await;
    // The same name works once the room exists.
    let c = DocClient::join(addr, "nobody-here").await;
    assert_eq!(c.text(), "");
}

#[tokio::test]
async fn a_connection_kept_open_while_its_room_becomes_protected_is_closed() {
    // An open room that empties goes at once here (by default it lingers an hour).
    let server = ServerProc::start(&["--open-room-linger", "0"]);
    let addr = server.addr;

    // Opened before the room existed, then the room is created with a password.
    let early = DocClient::connect_raw(addr, "locked", "").await;
    let mut owner = Signaling::hello(addr, "owner").await;
    let joined = owner.join("locked", Some("pw-1234")).await;
    let token = Signaling::doc_token(&joined);
    if let Ok(mut early) = early {
        assert!((4400..4500).contains(&ended_with(&mut early).await));
        assert!(!early.text().contains("secret"));
    }

    // Opened while the room was open; the room goes and its name is taken with a
    // password: the old connection must not read what is written behind it.
    let mut keeper = Signaling::hello(addr, "keeper").await;
    assert_eq!(keeper.join("flip", None).await["type"], "joined");
    let mut before = open_doc(addr, "flip", "").await;
    keeper.leave().await;
    let mut taker = Signaling::hello(addr, "taker").await;
    let joined = taker.join("flip", Some("pw-5678")).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let flip_token = Signaling::doc_token(&joined);
    let code = ended_with(&mut before).await;
    assert!((4400..4500).contains(&code), "closed with {code}");

    let mut writer = open_doc(addr, "flip", &format!("token={flip_token}")).await;
    writer.type_text("secret").await;
    let mut reader = open_doc(addr, "flip", &format!("token={flip_token}")).await;
    reader
        .pump_until(|c| c.text() == "secret", "the writer's text")
        .await;
    assert!(!before.text().contains("secret"));
    // The password-protected room's document is still closed to a connection without.
    assert!(matches!(
        DocClient::connect_raw(addr, "locked", "").await,
        Err(Ended::Refused(400..=499))
    ));
    let c = open_doc(addr, "locked", &format!("token={token}")).await;
    assert_eq!(c.text(), "");
    assert!(
        metric(
            addr,
            "portal_doc_rejected_total{reason=\"access_revoked\"} "
        )
        .await
            + metric(addr, "portal_doc_rejected_total{reason=\"no_room\"} ").await
            >= 1
    );
}

#[tokio::test]
async fn a_rooms_document_goes_with_the_room() {
    // An open room that empties goes at once here (by default it lingers an hour).
    let server = ServerProc::start(&["--open-room-linger", "0"]);
    let addr = server.addr;
    let mut keeper = Signaling::hello(addr, "keeper").await;
    assert_eq!(keeper.join("fleeting", None).await["type"], "joined");
    let mut d = open_doc(addr, "fleeting", "").await;
    d.type_text("old words").await;
    let mut seen = open_doc(addr, "fleeting", "").await;
    seen.pump_until(|c| c.text() == "old words", "the text")
        .await;
    // The last one leaves the open room: it goes, its document with it.
    keeper.leave().await;
    assert_eq!(
        d.close_code().await,
        (4404, "the room no longer exists".into())
    );
    assert_eq!(ended_with(&mut seen).await, 4404);
    // Whoever creates the name again starts from an empty document.
    let mut again = Signaling::hello(addr, "newcomer").await;
    assert_eq!(again.join("fleeting", None).await["type"], "joined");
    let fresh = open_doc(addr, "fleeting", "").await;
    assert_eq!(fresh.text(), "");
}

#[tokio::test]
async fn awareness_of_another_connections_client_id_cannot_be_spoofed() {
    let server = ServerProc::start(&[]);
    let addr = server.addr;
    let mut ada = DocClient::join(addr, "cursors").await;
    let mut observer = DocClient::join(addr, "cursors").await;
    let ada_id = ada.doc.client_id().get();
    ada.set_awareness(1, r#"{"user":{"name":"Ada"},"presenter":false}"#)
        .await;
    observer
        .pump_until(|c| state(c, ada_id).is_some(), "Ada's presence")
        .await;

    // A writer and a read-along viewer each try to take Ada's id over with a higher clock
    // (and to remove it), next to a state of their own.
    for query in ["", "readonly=1"] {
        let mut mallory = DocClient::join_with(addr, "cursors", query).await;
        let own = mallory.doc.client_id().get();
        let fake = r#"{"user":{"name":"Mallory"},"presenter":true,"presenterSince":1e308}"#;
        mallory
            .send(awareness(&[
                (ada_id, 1000, fake),
                (own, 1, r#"{"user":{"name":"M"}}"#),
            ]))
            .await;
        mallory.send(awareness(&[(ada_id, 2000, "null")])).await;
        observer
            .pump_until(|c| state(c, own).is_some(), "the attacker's own state")
            .await;
        observer.pump_for(300).await;
        assert_eq!(state(&observer, ada_id).unwrap()["user"]["name"], "Ada");
        // A newcomer is told Ada's real state too.
        let mut late = DocClient::join(addr, "cursors").await;
        late.pump_until(|c| state(c, ada_id).is_some(), "Ada's presence")
            .await;
        assert_eq!(state(&late, ada_id).unwrap()["user"]["name"], "Ada");
        assert_eq!(state(&late, ada_id).unwrap()["presenter"], false);
    }
    assert!(
        metric(
            addr,
            "portal_doc_rejected_total{reason=\"awareness_not_owned\"} "
        )
        .await
            >= 4
    );
    // Ada herself still renews it.
    ada.set_awareness(2, r#"{"user":{"name":"Ada L."},"presenter":false}"#)
        .await;
    observer
        .pump_until(
            |c| state(c, ada_id).is_some_and(|s| s["user"]["name"] == "Ada L."),
            "Ada's renewal",
        )
        .await;
}

#[tokio::test]
async fn a_read_only_connection_cannot_claim_to_present() {
    let server = ServerProc::start(&[]);
    let addr = server.addr;
    let mut observer = DocClient::join(addr, "lecture").await;
    let mut viewer = DocClient::join_with(addr, "lecture", "readonly=1").await;
    let viewer_id = viewer.doc.client_id().get();
    viewer
        .set_awareness(
            1,
            r#"{"user":{"name":"viewer"},"presenter":true,"presenterSince":1e308}"#,
        )
        .await;
    observer
        .pump_until(|c| state(c, viewer_id).is_some(), "the viewer's presence")
        .await;
    let seen = state(&observer, viewer_id).unwrap();
    assert_eq!(seen["user"]["name"], "viewer");
    assert_eq!(seen["presenter"], false);
    assert!(seen.get("presenterSince").is_none(), "{seen}");
    // A writer may present.
    let mut presenter = DocClient::join(addr, "lecture").await;
    let presenter_id = presenter.doc.client_id().get();
    presenter
        .set_awareness(
            1,
            r#"{"user":{"name":"host"},"presenter":true,"presenterSince":1700000000000}"#,
        )
        .await;
    observer
        .pump_until(|c| state(c, presenter_id).is_some(), "the presenter")
        .await;
    assert_eq!(state(&observer, presenter_id).unwrap()["presenter"], true);
    assert_eq!(
        metric(
            addr,
            "portal_doc_rejected_total{reason=\"presenter_stripped\"} "
        )
        .await,
        1
    );
}

#[tokio::test]
async fn too_many_awareness_states_are_refused_before_anyone_sees_them() {
    let server = ServerProc::start(&[]);
    let addr = server.addr;
    let mut observer = DocClient::join(addr, "crowd").await;
    let mut flood = DocClient::join(addr, "crowd").await;
    let entries: Vec<(u64, u32, &str)> = (0..17).map(|i| (9_000 + i, 1, "{}")).collect();
    flood.send(awareness(&entries)).await;
    assert_eq!(
        flood.close_code().await,
        (1008, "too many awareness states".into())
    );
    // Oversized: refused whole.
    let mut big = DocClient::join(addr, "crowd").await;
    let pad = format!(r#"{{"pad":"{}"}}"#, "x".repeat(70_000));
    big.send(awareness(&[(big.doc.client_id().get(), 1, &pad)]))
        .await;
    assert_eq!(
        big.close_code().await,
        (1009, "awareness update too large".into())
    );
    observer.pump_for(300).await;
    assert!(
        observer
            .awareness
            .keys()
            .all(|id| !(9_000..9_017).contains(id)),
        "{:?}",
        observer.awareness.keys()
    );
}

#[tokio::test]
async fn a_sync_step1_flood_is_rate_limited_while_another_connection_syncs() {
    let server = ServerProc::start(&[]);
    let addr = server.addr;
    let mut writer = DocClient::join(addr, "busy").await;
    let mut want = String::new();
    for i in 0..10 {
        let line = format!("{i:04} {}\n", "x".repeat(10_000));
        want.push_str(&line);
        writer.type_text(&line).await;
    }
    let mut check = DocClient::join(addr, "busy").await;
    check
        .pump_until(|c| c.text() == want, "the whole text")
        .await;

    // 200 requests for the whole document at once (about 100 KB each).
    let mut flood = DocClient::join(addr, "busy").await;
    let step1 = YMessage::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1();
    for _ in 0..200 {
        flood
            .ws
            .feed(Message::Binary(step1.clone().into()))
            .await
            .unwrap();
    }
    flood.ws.flush().await.unwrap();

    // Meanwhile another client syncs the whole document promptly.
    let started = std::time::Instant::now();
    let other = DocClient::join(addr, "busy").await;
    assert!(
        other.text() == want,
        "the other client did not get the whole text"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // The flood got a handful of answers, not 200.
    let mut answers = 0;
    let _ = tokio::time::timeout(Duration::from_millis(1500), async {
        while let Some(Ok(frame)) = flood.ws.next().await {
            if let Message::Binary(b) = frame
                && let Ok(YMessage::Sync(SyncMessage::SyncStep2(_))) = YMessage::decode_v1(&b)
            {
                answers += 1;
            }
        }
    })
    .await;
    assert!(answers <= 10, "{answers} answers to the flood within 1.5 s");
    assert!(answers >= 1);
    assert!(metric(addr, "portal_doc_rejected_total{reason=\"rate_limited\"} ").await >= 1);
}

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_by_the_bytes_waiting_for_it() {
    // Outboxes hold 1 MiB + 4 x 64 KiB.
    let server = ServerProc::start(&["--doc-max-size", "1048576", "--doc-max-update", "65536"]);
    let addr = server.addr;
    let mut writer = DocClient::join(addr, "heavy").await;
    for _ in 0..14 {
        writer.type_text(&"y".repeat(60_000)).await;
    }
    let mut reader = DocClient::join(addr, "heavy").await;
    reader
        .pump_until(|c| c.text().len() == 14 * 60_000, "the whole text")
        .await;

    // Asks for the whole document (840 KB) four times and reads nothing: a few frames,
    // but megabytes.
    let mut idle = DocClient::connect_raw(addr, "heavy", "").await.unwrap();
    let step1 = YMessage::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1();
    for _ in 0..4 {
        idle.ws
            .send(Message::Binary(step1.clone().into()))
            .await
            .unwrap();
    }
    docs_client::wait_metric(
        addr,
        "portal_doc_rejected_total{reason=\"slow_client\"} ",
        1,
    )
    .await;
    // Once it reads, the last thing it gets is why.
    assert_eq!(
        idle.close_code().await,
        (1008, "too slow to keep up".into())
    );
    // The others were not held up.
    writer.type_text("!").await;
    reader
        .pump_until(|c| c.text().ends_with('!'), "the next edit")
        .await;
}

//! Shared documents at their limits, against the real binary: oversize updates, documents
//! over their size cap, too many documents, malformed frames, read-only clients, metrics
//! and graceful shutdown. Each refusal closes only the offending connection, with a code
//! and reason, and changes nothing.

mod docs_client;

use docs_client::{DocClient, Ended, metric, metrics, wait_loaded};
use futures_util::SinkExt;
use portal_testkit::ServerProc;
use tokio_tungstenite::tungstenite::Message;
use yrs::sync::{Message as YMessage, SyncMessage};

#[tokio::test]
async fn two_clients_converge_and_a_late_one_gets_everything() {
    let server = ServerProc::start(&[]);
    let mut a = DocClient::join(server.addr, "basics").await;
    let mut b = DocClient::join(server.addr, "basics").await;
    a.type_text("hello ").await;
    b.pump_until(|c| c.text() == "hello ", "a's edit").await;
    b.type_text("world").await;
    a.pump_until(|c| c.text() == "hello world", "b's edit")
        .await;
    let c = DocClient::join(server.addr, "basics").await;
    assert_eq!(c.text(), "hello world");
    // Another room is another document.
    let other = DocClient::join(server.addr, "elsewhere").await;
    assert_eq!(other.text(), "");
    assert_eq!(metric(server.addr, "portal_docs_loaded ").await, 2);
    assert_eq!(metric(server.addr, "portal_doc_connections ").await, 4);
    assert_eq!(metric(server.addr, "portal_doc_updates_total ").await, 2);
}

#[tokio::test]
async fn an_oversize_update_closes_only_its_connection_and_changes_nothing() {
    let server = ServerProc::start(&["--doc-max-update", "2048"]);
    let addr = server.addr;
    let mut a = DocClient::join(addr, "big").await;
    let mut b = DocClient::join(addr, "big").await;
    a.type_text("before ").await;
    b.pump_until(|c| c.text() == "before ", "the first edit")
        .await;

    // Over the update limit but under the frame cap: the server reads and refuses it.
    a.type_text(&"x".repeat(3000)).await;
    assert_eq!(a.close_code().await, (1009, "update too large".into()));
    // Over the frame cap (limit + 64 KiB): refused while reading, same answer.
    let mut a2 = DocClient::join(addr, "big").await;
    a2.type_text(&"y".repeat(80_000)).await;
    assert_eq!(a2.close_code().await, (1009, "update too large".into()));

    // b stayed connected and still works; neither big update reached anyone.
    let mut a3 = DocClient::join(addr, "big").await;
    assert_eq!(a3.text(), "before ");
    a3.type_text("after").await;
    b.pump_until(|c| c.text() == "before after", "an edit after the refusals")
        .await;
    assert!(b.received.iter().all(|u| u.len() < 100));
    assert_eq!(
        metric(
            addr,
            "portal_doc_rejected_total{reason=\"update_too_large\"} "
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_malformed_frame_closes_only_its_connection() {
    let server = ServerProc::start(&[]);
    let addr = server.addr;
    let mut b = DocClient::join(addr, "garbage").await;
    let cases: Vec<(Message, u16)> = vec![
        // An update whose length runs past the frame.
        (Message::Binary(vec![0, 2, 200, 1, 2].into()), 1007),
        // A sync message of an unknown kind.
        (Message::Binary(vec![0, 7, 0].into()), 1007),
        // An update that is not one.
        (
            Message::Binary(vec![0, 2, 4, 0xff, 0xff, 0xff, 0xff].into()),
            1007,
        ),
        // A broken awareness update.
        (Message::Binary(vec![1, 3, 1, 5].into()), 1007),
        // Text is not the protocol.
        (Message::Text("{\"hello\":1}".into()), 1003),
    ];
    for (frame, code) in cases {
        let mut bad = DocClient::join(addr, "garbage").await;
        bad.ws.send(frame.clone()).await.unwrap();
        let (got, reason) = bad.close_code().await;
        assert_eq!(got, code, "{frame:?}: {reason}");
        assert!(!reason.is_empty());
    }
    // Values nested deep enough to overflow a stack are refused before yrs decodes them.
    let mut deep = vec![1, 1, 1, 0, 8, 1, 4];
    deep.extend(b"code");
    deep.push(1);
    for _ in 0..200_000 {
        deep.extend([117, 1]);
    }
    deep.extend([126, 0]);
    let mut bad = DocClient::join(addr, "garbage").await;
    bad.send(YMessage::Sync(SyncMessage::Update(deep))).await;
    assert_eq!(bad.close_code().await.0, 1007);

    let mut a = DocClient::join(addr, "garbage").await;
    a.type_text("still fine").await;
    b.pump_until(|c| c.text() == "still fine", "an edit after the garbage")
        .await;
    assert_eq!(
        metric(addr, "portal_doc_rejected_total{reason=\"malformed\"} ").await,
        6
    );
}

#[tokio::test]
async fn a_document_over_its_size_cap_refuses_the_update_whole() {
    let server = ServerProc::start(&["--doc-max-size", "4096"]);
    let addr = server.addr;
    let mut a = DocClient::join(addr, "full").await;
    let mut b = DocClient::join(addr, "full").await;
    a.type_text(&"a".repeat(3000)).await;
    b.pump_until(|c| c.text().len() == 3000, "the first 3000 bytes")
        .await;
    a.type_text(&"b".repeat(2000)).await;
    assert_eq!(a.close_code().await, (4413, "document too large".into()));
    b.pump_for(200).await;
    assert_eq!(b.text(), "a".repeat(3000));
    // Nothing was stored either: a fresh load after everyone left has the same text.
    b.close().await;
    wait_loaded(addr, 0).await;
    let fresh = DocClient::join(addr, "full").await;
    assert_eq!(fresh.text(), "a".repeat(3000));
    assert_eq!(
        metric(addr, "portal_doc_rejected_total{reason=\"doc_too_large\"} ").await,
        1
    );
}

#[tokio::test]
async fn too_many_loaded_documents_refuse_a_new_one_with_a_reason() {
    let server = ServerProc::start(&["--doc-max-loaded", "1"]);
    let addr = server.addr;
    let a = DocClient::join(addr, "first").await;
    let mut b = DocClient::try_connect(addr, "second", "").await.unwrap();
    assert_eq!(
        b.close_code().await,
        (1013, "too many documents loaded".into())
    );
    // The loaded room still takes more clients.
    let a2 = DocClient::join(addr, "first").await;
    a.close().await;
    a2.close().await;
    wait_loaded(addr, 0).await;
    let b2 = DocClient::join(addr, "second").await;
    assert_eq!(b2.text(), "");
    assert_eq!(
        metric(
            addr,
            "portal_doc_rejected_total{reason=\"too_many_documents\"} "
        )
        .await,
        1
    );
}

#[tokio::test]
async fn read_only_clients_read_and_show_presence_but_write_nothing() {
    let server = ServerProc::start(&[]);
    let addr = server.addr;
    let mut w = DocClient::join(addr, "lecture").await;
    let mut r = DocClient::join_with(addr, "lecture", "readonly=1").await;
    w.type_text("shared").await;
    r.pump_until(|c| c.text() == "shared", "the writer's edit")
        .await;
    r.type_text(" sneaky").await;
    let r_id = r.doc.client_id().get();
    r.set_awareness(1, r#"{"user":{"name":"viewer"}}"#).await;
    w.pump_until(
        |c| c.awareness.get(&r_id).is_some_and(Option::is_some),
        "the viewer's presence",
    )
    .await;
    w.pump_for(200).await;
    assert_eq!(w.text(), "shared");
    r.close().await;
    w.close().await;
    wait_loaded(addr, 0).await;
    let fresh = DocClient::join(addr, "lecture").await;
    assert_eq!(fresh.text(), "shared");
    assert_eq!(
        metric(addr, "portal_doc_rejected_total{reason=\"read_only\"} ").await,
        1
    );
}

#[tokio::test]
async fn a_leaving_client_takes_its_awareness_along() {
    let server = ServerProc::start(&[]);
    let addr = server.addr;
    let mut a = DocClient::join(addr, "cursors").await;
    let mut b = DocClient::join(addr, "cursors").await;
    let a_id = a.doc.client_id().get();
    a.set_awareness(1, r#"{"cursor":{"anchor":1}}"#).await;
    // The sender gets its own state back too (y-websocket takes that as a sign of life).
    a.pump_until(
        |c| c.awareness.get(&a_id).is_some_and(Option::is_some),
        "own echo",
    )
    .await;
    b.pump_until(
        |c| c.awareness.get(&a_id).is_some_and(Option::is_some),
        "a's cursor",
    )
    .await;
    // A newcomer is told about states already there.
    let mut c = DocClient::join(addr, "cursors").await;
    c.pump_until(|c| c.awareness.contains_key(&a_id), "the existing cursor")
        .await;
    // a vanishes without saying goodbye.
    drop(a);
    b.pump_until(
        |c| c.awareness.get(&a_id).is_some_and(Option::is_none),
        "a's cursor to go",
    )
    .await;
    c.pump_until(
        |c| c.awareness.get(&a_id).is_some_and(Option::is_none),
        "a's cursor to go",
    )
    .await;
}

#[tokio::test]
async fn metrics_have_help_and_type_lines() {
    let server = ServerProc::start(&[]);
    let body = metrics(server.addr).await;
    for (name, kind) in [
        ("portal_docs_loaded", "gauge"),
        ("portal_doc_connections", "gauge"),
        ("portal_doc_updates_total", "counter"),
        ("portal_doc_bytes_persisted_total", "counter"),
        ("portal_doc_compactions_total", "counter"),
        ("portal_doc_rejected_total", "counter"),
    ] {
        assert!(body.contains(&format!("# HELP {name} ")), "{name}\n{body}");
        assert!(
            body.contains(&format!("# TYPE {name} {kind}\n")),
            "{name}\n{body}"
        );
    }
}

#[tokio::test]
async fn shutdown_says_goodbye_and_keeps_the_document() {
    let mut server = ServerProc::start(&[]);
    let mut a = DocClient::join(server.addr, "kept").await;
    let mut b = DocClient::join(server.addr, "kept").await;
    a.type_text("survives a restart").await;
    b.pump_until(|c| c.text() == "survives a restart", "the edit")
        .await;
    let stopping = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (server, status)
    });
    assert_eq!(a.close_code().await, (1001, "server shutting down".into()));
    assert!(matches!(b.until_closed().await, Ended::Closed(Some(f)) if u16::from(f.code) == 1001));
    let (mut server, status) = stopping.await.unwrap();
    assert!(status.success(), "{status:?}");
    server.restart();
    let fresh = DocClient::join(server.addr, "kept").await;
    assert_eq!(fresh.text(), "survives a restart");
}

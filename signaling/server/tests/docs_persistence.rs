//! Documents survive the server: SIGKILL in the middle of a stream of edits loses
//! nothing any client had been sent, and a restart serves the same document.

mod docs_client;

use std::time::Duration;

use docs_client::{DocClient, covers, metric, wait_loaded, wait_metric};
use portal_testkit::{ServerProc, TempDir};

#[tokio::test]
async fn sigkill_mid_stream_loses_nothing_that_was_broadcast() {
    let data = TempDir::new("docs-crash");
    // Compact often, so the kill also lands around compactions.
    let mut server = ServerProc::start_in(&data, &["--doc-compact-every", "40"]);
    let addr = server.addr;
    let mut recorder = DocClient::join(addr, "crash").await;
    let mut writer = DocClient::join(addr, "crash").await;

    // The writer streams edits from its own task until the server dies under it.
    let streaming = tokio::spawn(async move {
        let mut sent = 0u32;
        loop {
            let update = writer.local_edit(&format!("{sent};"));
            let msg = yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update));
            let frame = yrs::updates::encoder::Encode::encode_v1(&msg);
            let ok = futures_util::SinkExt::send(
                &mut writer.ws,
                tokio_tungstenite::tungstenite::Message::Binary(frame.into()),
            )
            .await
            .is_ok();
            if !ok {
                return sent;
            }
            sent += 1;
            if sent.is_multiple_of(8) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });

    recorder
        .pump_until(|c| c.received.len() >= 300, "300 updates")
        .await;
    server.kill();
    // Whatever was still in flight to the recorder counts too.
    while recorder.step().await {}
    let sent = tokio::time::timeout(Duration::from_secs(10), streaming)
        .await
        .expect("the writer notices the dead server")
        .unwrap();
    let seen = recorder.text();
    assert!(recorder.received.len() >= 300);
    assert!(sent as usize >= recorder.received.len());

    let restarted = ServerProc::start_in(&data, &[]);
    let fresh = DocClient::join(restarted.addr, "crash").await;
    assert!(
        covers(&fresh.state_vector(), &recorder.state_vector()),
        "the restarted server lacks updates the recorder had received"
    );
    // One writer appending: what the recorder saw is a prefix of what was kept.
    assert!(
        fresh.text().starts_with(&seen),
        "recorder saw {} bytes, the store kept {}",
        seen.len(),
        fresh.text().len()
    );
    drop(server);
}

#[tokio::test]
async fn the_log_is_compacted_and_the_document_reloads_from_the_snapshot() {
    let data = TempDir::new("docs-compact");
    let mut server = ServerProc::start_in(&data, &["--doc-compact-every", "10"]);
    let addr = server.addr;
    let mut a = DocClient::join(addr, "notes").await;
    let mut b = DocClient::join(addr, "notes").await;
    let mut want = String::new();
    for i in 0..35 {
        let s = format!("line {i}\n");
        want.push_str(&s);
        a.type_text(&s).await;
    }
    b.pump_until(|c| c.text() == want, "all lines").await;
    wait_metric(addr, "portal_doc_compactions_total ", 1).await;
    a.close().await;
    b.close().await;
    // The last client leaving folds the rest of the log and unloads the document.
    wait_loaded(addr, 0).await;
    let persisted = metric(addr, "portal_doc_bytes_persisted_total ").await;
    assert!(persisted > want.len() as u64);

    let c = DocClient::join(addr, "notes").await;
    assert_eq!(c.text(), want);
    c.close().await;
    wait_loaded(addr, 0).await;
    server.restart();
    let d = DocClient::join(server.addr, "notes").await;
    assert_eq!(d.text(), want);
}

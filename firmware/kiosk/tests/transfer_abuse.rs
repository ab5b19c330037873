//! A peer in the call against the kiosk's file channel: the real `portal-server`, the
//! real `portal-kiosk`, and Chromium running the real browser client, with the page
//! playing a hostile peer past the UI (`floodFiles` in `browser.mjs`): thousands of offers
//! with fresh ids, an overlong name and mime type, chunks for no transfer.
//!
//! The kiosk stays in the call (media still decoded, chat still answered), declines the
//! excess as `busy` and the unusable offers as `invalid` (answering at most 64 declines a
//! second, counting the rest as unanswered), and its transfer table stays within the
//! engine's caps (4 in flight per peer, 32 ended kept), as `/status` shows; a proper
//! 12 MiB file then still arrives once the pending offers are declined.
//!
//! Needs what `e2e.rs` needs: `portal-server` built, the browser client built,
//! `/usr/bin/chromium`, node and GStreamer.

mod common;

use common::{Browser, Kiosk, Server, peer, u};
use portal_testkit::TempDir;
use serde_json::{Value, json};

/// The engine's defaults (`FileConfig`): offers in flight per peer, ended transfers kept.
const IN_FLIGHT_PER_PEER: u64 = 4;
const KEEP_ENDED: u64 = 32;

fn files_listed(status: &Value) -> u64 {
    status["files"].as_array().map_or(0, |f| f.len() as u64)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_flood_is_declined_and_the_kiosk_stays_in_the_call() {
    let data = TempDir::new("server-transfer-abuse");
    let work = TempDir::new("work-transfer-abuse");
    let files = work.path().join("files");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = format!("flood-{}", rand::random::<u32>());
    let kiosk = Kiosk::start(&server, &room, &files, &["--file-policy", "ask"]).await;
    let mut browser = Browser::start(&server, &room, "");
    browser
        .call(json!({"cmd": "open", "name": "Mallory"}))
        .await;
    browser
        .call(json!({"cmd": "waitConnected", "tab": 0}))
        .await;
    kiosk
        .wait("Mallory's camera decoded", |s| {
            peer(s, "Mallory").is_some_and(|p| u(&p["video"]["framesDecoded"]) >= 10)
        })
        .await;
    let rss_before = rss_kib(kiosk.pid());

    // Two rounds of 2000 offers with fresh ids, 200 chunks for no transfer each.
    let mut first_id = 1_000_000;
    let mut answered = 0;
    for round in 0..2 {
        let flood = browser
            .call(json!({"cmd": "floodFiles", "offers": 2000, "firstId": first_id, "strays": 200}))
            .await;
        let replies = &flood["replies"];
        eprintln!("round {round}: the kiosk answered {replies}");
        // Declined, and answered only up to 64 a second: far fewer than were sent.
        let busy = u(&replies["decline:busy"]);
        assert!((1..1000).contains(&busy), "{flood}");
        let only_declines = replies
            .as_object()
            .is_some_and(|r| r.keys().all(|k| k.starts_with("decline:")));
        assert!(only_declines, "policy ask: nothing accepted: {flood}");
        answered += busy + u(&replies["decline:invalid"]);
        first_id += 10_000;
    }

    let status = kiosk
        .wait("the flood counted", |s| {
            u(&s["fileStats"]["declinedBusy"]) >= 2 * 2000 - IN_FLIGHT_PER_PEER
                && u(&s["fileStats"]["ignoredFrames"]) >= 400
        })
        .await;
    // Every declined offer was either answered or counted as unanswered.
    let stats = &status["fileStats"];
    assert_eq!(
        u(&stats["declinedBusy"]) + u(&stats["declinedInvalid"]),
        answered + u(&stats["unanswered"]),
        "{stats}"
    );
    eprintln!(
        "after the flood: {} transfers listed, stats {}, RSS {} KiB (before: {rss_before} KiB)",
        files_listed(&status),
        status["fileStats"],
        rss_kib(kiosk.pid()),
    );
    assert!(
        files_listed(&status) <= IN_FLIGHT_PER_PEER + KEEP_ENDED,
        "{status:#}"
    );
    assert_eq!(status["fileStats"]["declinedInvalid"], json!(4));
    let offered: Vec<String> = status["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["state"] == json!("offered"))
        .map(|f| f["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(offered.len() as u64, IN_FLIGHT_PER_PEER, "{status:#}");

    // Still in the call: media decoded, chat both ways.
    assert_eq!(status["state"], json!("joined"));
    let before = peer(&status, "Mallory").map_or(0, |p| u(&p["video"]["framesDecoded"]));
    kiosk
        .wait("Mallory's camera still decoded", |s| {
            peer(s, "Mallory").is_some_and(|p| {
                p["state"] == json!("connected") && u(&p["video"]["framesDecoded"]) > before + 10
            })
        })
        .await;
    let (code, body) = kiosk.post("/chat", r#"{"text": "still here"}"#).await;
    assert_eq!(code, 200, "{body}");
    browser
        .call(json!({"cmd": "waitChat", "text": "still here"}))
        .await;

    // Once the pending offers are declined, a proper file goes through.
    for id in &offered {
        let (code, body) = kiosk.post(&format!("/files/{id}/decline"), "").await;
        assert_eq!(code, 200, "decline {id}: {body}");
    }
    // 12 MiB: more than a peer's disk queue, so the writes go through the worker's
    // back-pressure, not around it.
    let after: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let after_path = work.path().join("after.txt");
    std::fs::write(&after_path, &after).expect("after.txt");
    browser
        .call(json!({"cmd": "sendFile", "path": after_path}))
        .await;
    let status = kiosk
        .wait("the proper offer waiting", |s| {
            s["files"].as_array().is_some_and(|f| {
                f.iter().any(|f| {
                    f["offeredName"] == json!("after.txt") && f["state"] == json!("offered")
                })
            })
        })
        .await;
    let id = status["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["offeredName"] == json!("after.txt")))
        .and_then(|f| f["id"].as_str())
        .expect("after.txt listed")
        .to_owned();
    let (code, body) = kiosk.post(&format!("/files/{id}/accept"), "").await;
    assert_eq!(code, 200, "{body}");
    browser
        .call(json!({"cmd": "waitTransfer", "name": "after.txt", "states": ["complete"]}))
        .await;
    kiosk
        .wait("after.txt stored", |s| {
            s["files"].as_array().is_some_and(|f| {
                f.iter().any(|f| {
                    f["offeredName"] == json!("after.txt") && f["state"] == json!("complete")
                })
            })
        })
        .await;
    assert!(
        std::fs::read(files.join("after.txt")).expect("stored") == after,
        "after.txt arrived intact"
    );
    let status = kiosk.status().await;
    assert!(
        files_listed(&status) <= IN_FLIGHT_PER_PEER + KEEP_ENDED,
        "{status:#}"
    );

    browser.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "{exit:?}");
    server.stop().await;
}

//! Pairing a laptop with the real kiosk: the real `portal-server` with the kiosk enrolled
//! (`portal-server kiosk add`), a headless `portal-kiosk` with that device token, and
//! Portal's real Pair page in Debian's Chromium (driven by `pairing.mjs`).
//!
//! The code the kiosk shows on `/status` pairs the laptop, then is used up (a second try
//! is refused as expired, and the kiosk shows a new code); a wrong code is refused. The
//! remote mutes the room's microphone; Present puts the laptop's screen on the kiosk's
//! stage (`stage.kind` `screen`, its frames decoded) with the laptop's own microphone
//! and speaker off; a client that never paired cannot command the kiosk; Leave and Join
//! room move the kiosk between rooms.
//!
//! Needs what `e2e.rs` needs: `portal-server`, the built browser client,
//! `/usr/bin/chromium`, node and GStreamer.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Kiosk, LONG, Server, peer, u};
use portal_testkit::{NodeDriver, TempDir, enrol_kiosk};
use serde_json::{Value, json};

fn driver(server: &Server) -> NodeDriver {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pairing.mjs");
    let base = server.base();
    NodeDriver::start(script, [base.as_str()], &[]).reply_timeout(LONG + Duration::from_secs(30))
}

fn code(status: &Value) -> Option<String> {
    status["pairing"]["code"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laptop_pairs_presents_and_drives_the_kiosk() {
    let data = TempDir::new("server-pairing");
    let work = TempDir::new("work-pairing");
    std::fs::create_dir_all(work.path()).expect("work dir");
    let token = enrol_kiosk(data.path(), "Room 4.01");
    let token_file = work.path().join("device-token");
    std::fs::write(&token_file, &token).expect("token file");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = format!("pairing-{}", std::process::id());
    let kiosk = Kiosk::start(
        &server,
        &room,
        &work.path().join("files"),
        &[
            "--device-token-file",
            token_file.to_str().expect("utf-8 path"),
        ],
    )
    .await;
    let status = kiosk
        .wait("a pairing code on the kiosk", |s| {
            code(s).is_some() && s["connected"] == json!(true)
        })
        .await;
    let first = code(&status).expect("a code");
    let url = status["pairing"]["url"].as_str().expect("a url");
    assert!(
        url.ends_with(&format!("/p/{first}")),
        "the link carries the code: {url}"
    );
    assert!(u(&status["pairing"]["expiresIn"]) > 500, "{status:#}");

    let mut laptop = driver(&server);
    // A wrong code is refused, and pairs nothing.
    let wrong: String = first
        .chars()
        .map(|c| if c == '2' { '3' } else { '2' })
        .collect();
    laptop
        .call(json!({"cmd": "tryPair", "code": wrong, "expect": "That code is not on any display"}))
        .await;
    // The right one pairs.
    laptop
        .call(json!({"cmd": "pair", "code": first, "name": "Ada"}))
        .await;
    let status = kiosk
        .wait("the laptop paired, a new code shown", |s| {
            s["paired"].as_array().is_some_and(|p| p.len() == 1)
                && code(s).is_some_and(|c| c != first)
        })
        .await;
    assert_eq!(status["paired"][0]["name"], "Ada");
    let laptop_id = u(&status["paired"][0]["peer"]);
    // The used code is refused as expired.
    laptop
        .call(json!({"cmd": "tryPair", "code": first, "expect": "That code has expired"}))
        .await;

    // The remote mutes the room's microphone.
    laptop
        .call(json!({"cmd": "press", "button": "Mute room microphone", "expect": "Room microphone muted"}))
        .await;
    kiosk
        .wait("the kiosk muted", |s| s["micMuted"] == json!(true))
        .await;

    // Present: the laptop joins the kiosk's room with its own audio off, and its screen
    // takes the kiosk's stage.
    let call = laptop
        .call(json!({"cmd": "present", "expect": "Presenting on Room 4.01"}))
        .await;
    assert_eq!(call["micMuted"], true, "{call}");
    assert_eq!(call["speakerMuted"], true, "{call}");
    let status = kiosk
        .wait("the laptop's screen on the kiosk's stage", |s| {
            s["stage"]["kind"] == "screen"
                && u(&s["stage"]["peer"]) == laptop_id
                && peer(s, "Ada").is_some_and(|p| u(&p["screen"]["framesDecoded"]) > 5)
        })
        .await;
    assert_eq!(
        status["stage"]["reason"], "presenting",
        "{:#}",
        status["stage"]
    );
    assert_eq!(status["paired"][0]["presenting"], true);
    let ada = peer(&status, "Ada").expect("the laptop in the call");
    assert_eq!(
        ada["media"]["audio"], false,
        "the laptop beside the kiosk sends no sound"
    );

    // Someone who never paired cannot command the kiosk.
    let reply = laptop
        .call(json!({"cmd": "stranger", "command": {"kind": "setMicMuted", "muted": false}}))
        .await;
    assert_eq!(
        reply["reply"]["error"]["code"], "notPaired",
        "{:#}",
        reply["reply"]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(kiosk.status().await["micMuted"], true, "nothing changed");

    // Leave, then Join room from the remote.
    laptop
        .call(json!({"cmd": "press", "button": "Leave", "expect": "Room 4.01 left the call"}))
        .await;
    kiosk
        .wait("the kiosk out of the call", |s| s["state"] == "idle")
        .await;
    let other = format!("{room}-b");
    laptop
        .call(json!({"cmd": "joinRoom", "room": other, "expect": "Room 4.01 is joining"}))
        .await;
    kiosk
        .wait("the kiosk in the other room", |s| {
            s["room"] == json!(other) && s["connected"] == json!(true)
        })
        .await;

    laptop.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "the kiosk exits cleanly: {exit}");
    server.stop().await;
}

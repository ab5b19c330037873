//! The kiosk's local endpoint against a web page in a browser on the kiosk's machine: the
//! real `portal-server`, a headless `portal-kiosk` in a room, a peer in that room with
//! Portal's browser client, and an ordinary page in Debian's Chromium (driven by
//! `local-page.mjs`) that tries the endpoint with `fetch` (CORS and `no-cors`), form posts,
//! `sendBeacon` and a script tag: from another local origin, and from the endpoint's own
//! origin as after DNS rebinding (`rebind.test` resolved to 127.0.0.1, so the `Host` is
//! wrong). Both in Chromium as it is and in a Chromium without its Local Network Access
//! checks, where only the kiosk's guards are left.
//!
//! Nothing the page sends may have an effect (no chat line, no file offered, no snapshot)
//! and nothing it gets may be readable beyond an error; the same three requests with the
//! token show that each of those checks would have seen an effect. Every attempt's outcome
//! is printed (`cargo test -p portal-kiosk --test local_page -- --nocapture`).
//!
//! Needs what `e2e.rs` needs: `portal-server`, the built browser client,
//! `/usr/bin/chromium`, node and GStreamer.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Kiosk, LONG, Server, http, peer, u};
use portal_testkit::{NodeDriver, TempDir};
use serde_json::{Value, json};

/// How the driver names its Chromium without Local Network Access checks (`attempt["browser"]`).
const BARE: &str = "chromium without local network checks";

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        },
    )
}

/// The HTTP statuses Chromium saw come back for an attempt (failures are strings).
fn statuses(attempt: &Value) -> Vec<u64> {
    attempt["kiosk"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect()
}

/// Panics unless the page got nothing out of `attempt` but, at most, an error.
fn assert_refused(attempt: &Value, secrets: &[&str]) {
    let what = format!(
        "{} / {} / {} {}",
        attempt["browser"], attempt["page"], attempt["via"], attempt["target"]
    );
    for code in statuses(attempt) {
        assert!(
            matches!(code, 401 | 403 | 415 | 421),
            "the kiosk answered {code}: {what}: {attempt:#}"
        );
    }
    if attempt["type"] == json!("opaque") {
        assert_eq!(attempt["status"], json!(0), "{what}");
        assert_eq!(attempt["body"], json!(""), "{what}");
    } else if let Some(status) = attempt["status"].as_u64() {
        assert!(
            matches!(status, 401 | 403 | 421),
            "the page got {status}: {what}: {attempt:#}"
        );
    }
    let body = attempt["body"].as_str().unwrap_or_default();
    if !body.is_empty() {
        let parsed: Value = serde_json::from_str(body)
            .unwrap_or_else(|_| panic!("the page read something not an error: {what}: {body}"));
        let keys: Vec<&String> = parsed
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["error"],
            "the page read more than an error: {what}: {body}"
        );
    }
    let everything = attempt.to_string();
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "the page got {secret:?}: {what}: {attempt:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_web_page_gets_nothing_from_the_kiosk_endpoint() {
    let data = TempDir::new("server-local-page");
    let work = TempDir::new("work-local-page");
    let files = work.join("files");
    let snapshots = files.with_extension("snapshots");
    // A file the kiosk may offer (it is in the shared folder), its name shaped so that a
    // text/plain form can spell its path in JSON (`name=value`, the `=` inside the path).
    let shared = work.join("shared");
    std::fs::create_dir_all(&shared).expect("shared dir");
    let bait = shared.join("bait=.txt");
    std::fs::write(&bait, "offered only to the bearer of the token").expect("bait file");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = format!("local-page-{}", rand::random::<u32>());
    let kiosk = Kiosk::start(
        &server,
        &room,
        &files,
        &["--shared-dir", shared.to_str().expect("utf-8 path")],
    )
    .await;
    kiosk
        .wait("the kiosk in the room", |s| s["connected"] == json!(true))
        .await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/local-page.mjs");
    let base = server.base();
    let mut driver = NodeDriver::start(script, [base.as_str(), &room, &kiosk.status], &[])
        .reply_timeout(LONG + Duration::from_secs(30));
    driver.call(json!({"cmd": "join", "name": "Ada"})).await;
    driver.call(json!({"cmd": "waitConnected"})).await;
    // Ada's picture on stage: a snapshot would succeed.
    let status = kiosk
        .wait("the kiosk decoding Ada's camera", |s| {
            !s["stage"].is_null()
                && peer(s, "Ada").is_some_and(|p| {
                    p["state"] == json!("connected") && u(&p["video"]["framesDecoded"]) >= 10
                })
        })
        .await;
    let ada = peer(&status, "Ada").expect("Ada")["id"].clone();

    // The page's attempts.
    let mark = format!("forged-{}", rand::random::<u32>());
    let answer = driver
        .call(json!({"cmd": "attack", "mark": mark, "peer": ada, "bait": bait}))
        .await;
    let attempts = answer["attempts"].as_array().expect("attempts");
    println!("the page: {}", answer["pageUrl"]);
    for a in attempts {
        println!(
            "{} | {} | {} {} | page: {} | Chromium saw: {}",
            a["browser"].as_str().unwrap_or("?"),
            a["page"].as_str().unwrap_or("?"),
            a["via"].as_str().unwrap_or("?"),
            a["target"].as_str().unwrap_or("?"),
            a["seen"].as_str().unwrap_or("?"),
            a["kiosk"]
        );
    }
    assert!(attempts.len() >= 40, "{answer:#}");
    let secrets = [kiosk.token.as_str(), room.as_str(), "Room 4.01", "Ada"];
    for a in attempts {
        assert_refused(a, &secrets);
    }
    // Without the browser's own checks the requests do reach the kiosk (or this test
    // would test Chromium alone): the other origin's stop at the token, the rebinding
    // page's at the Host check, before the token is even looked at.
    let bare = |page: &str| {
        attempts
            .iter()
            .filter(move |a| {
                a["browser"] == json!(BARE)
                    && a["page"].as_str().is_some_and(|p| p.starts_with(page))
            })
            .collect::<Vec<_>>()
    };
    let cross = bare("cross-origin page");
    assert!(
        cross.iter().any(|a| statuses(a).contains(&401)),
        "no request of the other origin's reached the kiosk: {answer:#}"
    );
    let rebound = bare("rebinding page");
    assert!(!rebound.is_empty(), "{answer:#}");
    for a in &rebound {
        assert!(
            statuses(a).iter().all(|&code| code == 403),
            "the Host check: {a:#}"
        );
        if a["via"].as_str().is_some_and(|v| v.starts_with("fetch")) {
            assert_eq!(statuses(a), [403], "the Host check: {a:#}");
        }
    }
    let read = rebound
        .iter()
        .find(|a| a["via"] == json!("fetch cors") && a["target"] == json!("GET /status"))
        .expect("the rebinding page's GET /status");
    assert_eq!(read["status"], json!(403), "{read:#}");

    // No effect: no chat line, no file offered, no snapshot, and everyone still there.
    let status = kiosk.status().await;
    let forged_chat = |s: &Value| {
        s["chat"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["text"].as_str().is_some_and(|t| t.contains(&mark)))
    };
    assert!(!forged_chat(&status), "a page's chat line: {status:#}");
    assert_eq!(
        status["files"],
        json!([]),
        "a page's file offer: {status:#}"
    );
    assert_eq!(
        files_in(&snapshots),
        Vec::<String>::new(),
        "a page's snapshot"
    );
    assert_eq!(status["connected"], json!(true), "{status:#}");
    assert_eq!(
        peer(&status, "Ada").map(|p| p["state"].clone()),
        Some(json!("connected")),
        "{status:#}"
    );
    let seen = driver.call(json!({"cmd": "peer", "mark": mark})).await;
    assert_eq!(
        seen["chats"],
        json!([]),
        "Ada got a page's chat line: {seen}"
    );
    assert_eq!(
        seen["transfers"],
        json!([]),
        "Ada was offered a file: {seen}"
    );
    assert_eq!(seen["connection"], json!("connected"), "{seen}");
    let (code, body) = http(&kiosk.status, "GET", "/healthz", None).await;
    assert_eq!((code, body), (200, json!({"ok": true})));

    // The same with the token: each has the effect the checks above look for.
    let line = format!("{mark} with the token");
    let (code, body) = kiosk
        .post("/chat", &json!({ "text": line }).to_string())
        .await;
    assert_eq!(code, 200, "{body}");
    driver.call(json!({"cmd": "waitChat", "text": line})).await;
    assert!(
        forged_chat(&kiosk.status().await),
        "the kiosk lists its own line"
    );
    let (code, body) = kiosk.post("/snapshot", "").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(files_in(&snapshots).len(), 1, "{body}");
    let (code, body) = kiosk
        .post(
            "/files/send",
            &json!({"peer": ada, "path": bait}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let seen = driver.call(json!({"cmd": "peer", "mark": mark})).await;
        if seen["transfers"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == json!("bait=.txt")))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Ada never saw the kiosk's offer: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    driver.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "the kiosk exits cleanly on SIGTERM: {exit}");
    server.stop().await;
}

//! The kiosk end to end: the real `portal-server`, the real browser client in Debian's
//! Chromium (driven by `browser.mjs`) and the real `portal-kiosk` binary, watched through
//! its status endpoint.
//!
//! Needs `portal-server` built beside the kiosk (`cargo build -p portal-signaling --bin
//! portal-server`, or `PORTAL_SERVER_BIN`), the browser client built (`npm run build` in
//! signaling/web), `/usr/bin/chromium`, node and GStreamer with x264, vp8 and opus.
//! The tests run one at a time (one Chromium on a small machine is plenty), every wait is
//! a condition with a generous limit, and nothing asserts a duration.

mod common;

use std::time::Duration;

use common::{Browser, Kiosk, Server, peer, u};
use portal_testkit::TempDir;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn room(tag: &str) -> String {
    format!("{tag}-{}", rand::random::<u32>())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

fn file_entry<'a>(status: &'a Value, offered: &str) -> Option<&'a Value> {
    status["files"]
        .as_array()?
        .iter()
        .find(|f| f["offeredName"] == json!(offered))
}

/// Waits until the kiosk decodes the browser `name`'s camera (in `codec`) and audio, and
/// the browser plays the kiosk's video.
async fn media_flows(kiosk: &Kiosk, browser: &mut Browser, tab: u64, name: &str, codec: &str) {
    let connected = browser
        .call(json!({"cmd": "waitConnected", "tab": tab}))
        .await;
    assert_eq!(connected["offerer"], json!(true), "the browser offers");
    let video = browser.call(json!({"cmd": "waitVideo", "tab": tab})).await;
    assert!(u(&video["videoWidth"]) > 0 && u(&video["videoHeight"]) > 0);
    let first = kiosk
        .wait(&format!("the kiosk decoding {name}'s camera"), |s| {
            peer(s, name).is_some_and(|p| {
                p["state"] == json!("connected")
                    && u(&p["video"]["framesDecoded"]) >= 10
                    && u(&p["audio"]["packetsDecoded"]) >= 10
            })
        })
        .await;
    let p = peer(&first, name).expect("the peer");
    assert_eq!(p["video"]["codec"], json!(codec), "{p:#}");
    assert_eq!(p["sendingVideo"], json!(codec.trim_start_matches("video/")));
    assert!(u(&p["video"]["width"]) > 0 && u(&p["video"]["height"]) > 0);
    assert_eq!(p["role"], json!("browser"));
    // Still rising: decoding goes on.
    let before = u(&p["video"]["framesDecoded"]);
    kiosk
        .wait("framesDecoded rising", |s| {
            peer(s, name).is_some_and(|p| u(&p["video"]["framesDecoded"]) > before)
        })
        .await;
}

/// H.264 by default; chat both ways; a 20 MiB file and a hostile name; a snapshot; bad
/// requests; a file from the kiosk to the browser; a browser leaving and rejoining; the
/// rooms server restarting mid-call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_calls_chromium_with_chat_and_files() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = TempDir::new("server");
    let work = TempDir::new("work");
    let files = work.path().join("files");
    let mut server = Server::start("127.0.0.1:0", data.path()).await;
    let room = room("call");
    let shared = work.path().join("shared");
    let shared_arg = shared.to_str().expect("utf-8 path");
    let kiosk = Kiosk::start(
        &server,
        &room,
        &files,
        &["--file-policy", "accept", "--shared-dir", shared_arg],
    )
    .await;
    kiosk
        .wait("the kiosk in the room", |s| s["connected"] == json!(true))
        .await;
    let mut browser = Browser::start(&server, &room, "");
    browser.call(json!({"cmd": "open", "name": "Ada"})).await;

    // 1. Media both ways, H.264.
    media_flows(&kiosk, &mut browser, 0, "Ada", "video/H264").await;
    let status = kiosk.status().await;
    assert_eq!(status["sending"]["videoCodec"], json!("video/H264"));
    assert_eq!(status["sending"]["encoders"], json!(1));
    assert!(u(&status["sending"]["framesEncoded"]) > 0);
    // Congestion control: Chromium's transport-wide feedback moves the GCC estimate off
    // its start, and the encoder follows it within the configured bounds.
    let moved = kiosk
        .wait("a send estimate from Chromium's feedback", |s| {
            peer(s, "Ada")
                .is_some_and(|p| p["sendEstimateKbps"].as_u64().is_some_and(|k| k != 1000))
                && u(&s["sending"]["bitrate"]) != 1000
        })
        .await;
    let kbps = u(&moved["sending"]["bitrate"]);
    assert!((300..=2500).contains(&kbps), "{moved:#}");
    let stats = browser.call(json!({"cmd": "stats"})).await;
    let inbound_audio = stats["rtp"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["type"] == "inbound-rtp" && s["kind"] == "audio" && u(&s["packets"]) > 0);
    assert!(
        inbound_audio,
        "Chromium receives the kiosk's audio: {stats}"
    );

    // 2. Chat both ways.
    browser
        .call(json!({"cmd": "sendChat", "text": "hello from Chromium"}))
        .await;
    kiosk
        .wait("the browser's chat line", |s| {
            s["chat"]
                .as_array()
                .into_iter()
                .flatten()
                // The line claims to be from "Browser"; the kiosk shows the name the
                // server admitted the peer with.
                .any(|c| c["text"] == json!("hello from Chromium") && c["from"] == json!("Ada"))
        })
        .await;
    let (code, body) = kiosk
        .post("/chat", r#"{"text": "hello from the kiosk"}"#)
        .await;
    assert_eq!(code, 200, "{body}");
    let got = browser
        .call(json!({"cmd": "waitChat", "text": "hello from the kiosk"}))
        .await;
    assert_eq!(got["message"]["from"], json!("Room 4.01"));

    // 3. Bad requests: 400/404 with a JSON error, and the kiosk goes on.
    for (method, path, body, want) in [
        ("POST", "/chat", "not json", 400),
        ("POST", "/chat", r#"{"text": ""}"#, 400),
        ("POST", "/chat", r#"{"txt": "x"}"#, 400),
        ("POST", "/snapshot", r#"{"peer": 999999}"#, 400),
        ("POST", "/files/abc/accept", "", 400),
        ("GET", "/nothing", "", 404),
        ("GET", "/chat", "", 405),
    ] {
        let (code, answer) =
            common::http_as(&kiosk.status, Some(&kiosk.token), method, path, Some(body)).await;
        assert_eq!(code, want, "{method} {path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{method} {path}: {answer}");
    }

    // 4. A snapshot of the browser's camera.
    let (code, snap) = kiosk.post("/snapshot", "").await;
    assert_eq!(code, 200, "{snap}");
    let png = std::fs::read(snap["path"].as_str().expect("a path")).expect("PNG written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG file");

    // 5. A 20 MiB file from the browser lands with the same SHA-256.
    let big: Vec<u8> = (0..20 * 1024 * 1024)
        .map(|_| rand::random::<u8>())
        .collect();
    let big_sha = sha256_hex(&big);
    let big_path = work.path().join("big.bin");
    std::fs::write(&big_path, &big).expect("big file");
    browser
        .call(json!({"cmd": "sendFile", "path": big_path}))
        .await;
    browser
        .call(json!({"cmd": "waitTransfer", "name": "big.bin", "states": ["complete", "failed", "cancelled", "declined"]}))
        .await;
    let status = kiosk
        .wait("big.bin complete", |s| {
            file_entry(s, "big.bin").is_some_and(|f| f["state"] == json!("complete"))
        })
        .await;
    let entry = file_entry(&status, "big.bin").expect("big.bin listed");
    assert_eq!(entry["sha256"], json!(big_sha));
    assert_eq!(entry["size"], json!(big.len()));
    let on_disk = std::fs::read(files.join("big.bin")).expect("big.bin on disk");
    assert_eq!(sha256_hex(&on_disk), big_sha, "the bytes on disk");
    drop(on_disk);

    // 6. A hostile name lands inside the files directory, and nothing is overwritten.
    browser
        .call(json!({"cmd": "sendFile", "name": "../../etc/passwd", "text": "not a password file"}))
        .await;
    browser
        .call(json!({"cmd": "sendFile", "name": "big.bin", "text": "a second big.bin"}))
        .await;
    let status = kiosk
        .wait("both small files stored", |s| {
            s["files"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| f["state"] == json!("complete"))
                .count()
                >= 3
        })
        .await;
    let hostile = file_entry(&status, "../../etc/passwd").expect("listed");
    let stored = hostile["path"].as_str().expect("a stored path");
    let stored = std::path::Path::new(stored);
    assert_eq!(
        stored.parent().map(std::fs::canonicalize).transpose().ok(),
        Some(Some(std::fs::canonicalize(&files).expect("files dir"))),
        "{stored:?} is inside {files:?}"
    );
    assert_eq!(
        std::fs::read_to_string(stored).expect("stored"),
        "not a password file"
    );
    assert_eq!(
        sha256_hex(&std::fs::read(files.join("big.bin")).expect("big.bin")),
        big_sha,
        "the first big.bin was not overwritten"
    );
    let names: Vec<String> = std::fs::read_dir(&files)
        .expect("files dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "three files and no temp file left: {names:?}"
    );

    // 7. A file from the kiosk to the browser (only files in its shared folder, or ones it
    // received, may be offered).
    let ada = peer(&status, "Ada").expect("Ada")["id"].clone();
    let out_path = work.path().join("shared/from-kiosk.txt");
    std::fs::create_dir_all(work.path().join("shared")).expect("shared dir");
    std::fs::write(&out_path, "sent by the kiosk").expect("outgoing file");
    let (code, body) = kiosk
        .post(
            "/files/send",
            &json!({"peer": ada, "path": out_path}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let saved = work.path().join("saved.txt");
    browser
        .call(json!({"cmd": "acceptAndSave", "name": "from-kiosk.txt", "to": saved}))
        .await;
    assert_eq!(
        std::fs::read_to_string(&saved).expect("saved"),
        "sent by the kiosk"
    );

    // 8. The browser leaves and joins again (under a new id): the kiosk tears down the
    //    old connection and calls the new one.
    browser.call(json!({"cmd": "rejoin"})).await;
    media_flows(&kiosk, &mut browser, 0, "Ada", "video/H264").await;
    let status = kiosk.status().await;
    assert_eq!(
        status["peers"].as_array().map(Vec::len),
        Some(1),
        "the old peer is gone: {status:#}"
    );

    // 9. The rooms server restarts mid-call: the kiosk rejoins and the call goes on.
    let port = server.port();
    server.stop().await;
    kiosk
        .wait("the kiosk noticing the drop", |s| {
            s["connected"] == json!(false)
        })
        .await;
    server = Server::start(&format!("127.0.0.1:{port}"), data.path()).await;
    kiosk
        .wait("the kiosk back in the room", |s| {
            s["connected"] == json!(true)
        })
        .await;
    // A line sent while either side is still settling can be lost (chat is not
    // retried), so the browser sends until one gets through.
    let deadline = tokio::time::Instant::now() + common::LONG;
    for attempt in 1.. {
        browser.call(json!({"cmd": "waitConnected"})).await;
        let text = format!("still here {attempt}");
        browser.call(json!({"cmd": "sendChat", "text": text})).await;
        let got = kiosk
            .poll(Duration::from_secs(10), |s| {
                s["chat"].as_array().into_iter().flatten().any(|c| {
                    c["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("still here"))
                })
            })
            .await;
        if got.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no chat line got through after the restart: {:#}",
            kiosk.status().await
        );
    }
    browser.call(json!({"cmd": "waitVideo"})).await;
    media_flows(&kiosk, &mut browser, 0, "Ada", "video/H264").await;

    browser.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "the kiosk exits cleanly on SIGTERM: {exit}");
    server.stop().await;
}

/// VP8 when the browser leaves H.264 out; with policy `deny` an offered file is declined
/// and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_falls_back_to_vp8_and_denies_files() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = TempDir::new("server-vp8");
    let work = TempDir::new("work-vp8");
    let files = work.path().join("files");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = room("vp8");
    let kiosk = Kiosk::start(&server, &room, &files, &["--file-policy", "deny"]).await;
    kiosk
        .wait("the kiosk in the room", |s| s["connected"] == json!(true))
        .await;
    // `?codec=vp8` makes the browser client drop H.264 from its codec preferences.
    let mut browser = Browser::start(&server, &room, "&codec=vp8");
    browser.call(json!({"cmd": "open", "name": "Bo"})).await;
    media_flows(&kiosk, &mut browser, 0, "Bo", "video/VP8").await;
    let status = kiosk.status().await;
    assert_eq!(status["sending"]["videoCodec"], json!("video/VP8"));
    assert_eq!(status["sending"]["encoders"], json!(1));

    let path = work.path().join("unwanted.bin");
    std::fs::write(&path, vec![7u8; 300_000]).expect("file");
    browser.call(json!({"cmd": "sendFile", "path": path})).await;
    browser
        .call(json!({"cmd": "waitTransfer", "name": "unwanted.bin", "states": ["declined"]}))
        .await;
    kiosk
        .wait("the offer declined", |s| {
            file_entry(s, "unwanted.bin").is_some_and(|f| f["state"] == json!("declined"))
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let names: Vec<_> = std::fs::read_dir(&files)
        .expect("files dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(names.is_empty(), "nothing written: {names:?}");

    browser.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
}

/// Three browsers in one room with the kiosk: each gets the kiosk's video from one
/// encoder; with policy `ask` an offer waits for `POST /files/{id}/accept`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_browsers_share_one_encoder() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = TempDir::new("server-three");
    let work = TempDir::new("work-three");
    let files = work.path().join("files");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = room("three");
    let kiosk = Kiosk::start(&server, &room, &files, &["--file-policy", "ask"]).await;
    kiosk
        .wait("the kiosk in the room", |s| s["connected"] == json!(true))
        .await;
    let mut browser = Browser::start(&server, &room, "");
    let names = ["One", "Two", "Three"];
    for name in names {
        browser.call(json!({"cmd": "open", "name": name})).await;
    }
    for (tab, name) in names.iter().enumerate() {
        browser
            .call(json!({"cmd": "waitConnected", "tab": tab}))
            .await;
        browser.call(json!({"cmd": "waitVideo", "tab": tab})).await;
        kiosk
            .wait(&format!("{name}'s camera decoded"), |s| {
                peer(s, name).is_some_and(|p| u(&p["video"]["framesDecoded"]) > 0)
            })
            .await;
    }
    let status = kiosk.status().await;
    assert_eq!(status["peers"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        status["sending"]["encoders"],
        json!(1),
        "one video encoder for three peers: {:#}",
        status["sending"]
    );

    // Policy `ask`: nothing flows until the offer is accepted through the endpoint.
    browser
        .call(json!({"cmd": "sendFile", "tab": 1, "name": "asked.txt", "text": "asked first"}))
        .await;
    let status = kiosk
        .wait("the offer waiting", |s| {
            file_entry(s, "asked.txt").is_some_and(|f| f["state"] == json!("offered"))
        })
        .await;
    let id = file_entry(&status, "asked.txt").expect("offer")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert!(!files.join("asked.txt").exists());
    let (code, body) = kiosk.post(&format!("/files/{id}/accept"), "").await;
    assert_eq!(code, 200, "{body}");
    kiosk
        .wait("the accepted file stored", |s| {
            file_entry(s, "asked.txt").is_some_and(|f| f["state"] == json!("complete"))
        })
        .await;
    assert_eq!(
        std::fs::read_to_string(files.join("asked.txt")).expect("stored"),
        "asked first"
    );
    let (code, body) = kiosk.post(&format!("/files/{id}/accept"), "").await;
    assert_eq!(code, 400, "a second accept is refused: {body}");

    browser.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
}

/// What a browser sends the moment its channels open reaches a kiosk that joins after it.
/// Answering, the kiosk is the DTLS (and so SCTP) server, and the browser's first message
/// — its media state, here "camera off", sent once — can arrive in the packet that
/// completes the association, before the kiosk has opened its side of the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browsers_first_message_reaches_a_kiosk_that_joins_later() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = TempDir::new("server-first");
    let work = TempDir::new("work-first");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = room("first");
    let mut browser = Browser::start(&server, &room, "");
    browser.call(json!({"cmd": "open", "name": "Ada"})).await;
    let off = browser.call(json!({"cmd": "cameraOff", "tab": 0})).await;
    assert_eq!(off["pressed"], json!("true"), "{off}");
    // The race is won or lost per join; a few joins make a lost message likely to show.
    for round in 0..3 {
        let files = work.path().join(format!("files-{round}"));
        let kiosk = Kiosk::start(&server, &room, &files, &[]).await;
        kiosk
            .wait("Ada's first message: her camera is off", |s| {
                peer(s, "Ada").is_some_and(|p| {
                    p["state"] == json!("connected") && p["media"]["video"] == json!(false)
                })
            })
            .await;
        let exit = kiosk.stop().await;
        assert!(exit.success(), "clean exit: {exit}");
    }
    browser.quit().await;
    server.stop().await;
}

/// Two kiosks in one room: the lower peer id offers, and each decodes the other's camera
/// and microphone; chat goes between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_kiosks_call_each_other() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = TempDir::new("server-kiosks");
    let work = TempDir::new("work-kiosks");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = room("kiosks");
    let first = Kiosk::start(&server, &room, &work.path().join("a"), &[]).await;
    first
        .wait("the first kiosk in the room", |s| {
            s["connected"] == json!(true)
        })
        .await;
    let second = Kiosk::start(
        &server,
        &room,
        &work.path().join("b"),
        &["--name", "Room 4.02"],
    )
    .await;
    for (kiosk, other, offer) in [
        (&first, "Room 4.02", "offerer"),
        (&second, "Room 4.01", "answerer"),
    ] {
        let status = kiosk
            .wait(&format!("{other} decoded"), |s| {
                peer(s, other).is_some_and(|p| {
                    p["state"] == json!("connected")
                        && u(&p["video"]["framesDecoded"]) >= 10
                        && u(&p["audio"]["packetsDecoded"]) >= 10
                })
            })
            .await;
        let p = peer(&status, other).expect("the other kiosk");
        assert_eq!(p["role"], json!("kiosk"));
        assert_eq!(p["offer"], json!(offer), "the lower id offers: {p:#}");
        assert_eq!(p["video"]["codec"], json!("video/H264"));
    }
    let (code, body) = first.post("/chat", r#"{"text": "kiosk to kiosk"}"#).await;
    assert_eq!(code, 200, "{body}");
    second
        .wait("the other kiosk's chat line", |s| {
            s["chat"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["text"] == json!("kiosk to kiosk") && c["from"] == json!("Room 4.01"))
        })
        .await;
    for kiosk in [first, second] {
        let exit = kiosk.stop().await;
        assert!(exit.success(), "clean exit: {exit}");
    }
    server.stop().await;
}

/// Kiosk to kiosk, the path fails (the answerer freezes longer than the ICE timers allow):
/// the offerer's engine restarts ICE, waits for the answer instead of piling up offers,
/// and the call comes back with media both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosks_restart_ice_after_the_path_fails() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = TempDir::new("server-ice");
    let work = TempDir::new("work-ice");
    let config = work.path().join("kiosk.toml");
    std::fs::create_dir_all(work.path()).expect("work dir");
    std::fs::write(
        &config,
        "[net]\nice_disconnected_secs = 1\nice_failed_secs = 2\n",
    )
    .expect("config");
    let config = config.to_str().expect("utf-8 path");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = room("ice");
    let first = Kiosk::start(
        &server,
        &room,
        &work.path().join("a"),
        &["--config", config],
    )
    .await;
    first
        .wait("the first kiosk in the room", |s| {
            s["connected"] == json!(true)
        })
        .await;
    let second = Kiosk::start(
        &server,
        &room,
        &work.path().join("b"),
        &["--name", "Room 4.02", "--config", config],
    )
    .await;
    let decoding = |other: &'static str, above: u64| {
        move |s: &Value| {
            peer(s, other).is_some_and(|p| {
                p["state"] == json!("connected") && u(&p["video"]["framesDecoded"]) > above
            })
        }
    };
    first.wait("4.02 decoded", decoding("Room 4.02", 10)).await;
    second.wait("4.01 decoded", decoding("Room 4.01", 10)).await;

    second.freeze(true);
    let failed = first
        .wait(
            "an ICE restart once the path to the frozen kiosk fails",
            |s| {
                peer(s, "Room 4.02")
                    .is_some_and(|p| p["state"] != json!("connected") && u(&p["iceRestarts"]) >= 1)
            },
        )
        .await;
    // Several seconds pass with the restart offer unanswered: no pile of offers.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let waiting = first.status().await;
    let restarts = u(&peer(&waiting, "Room 4.02").expect("peer")["iceRestarts"]);
    assert_eq!(
        restarts, 1,
        "one restart while its answer is outstanding: {failed:#}"
    );
    second.freeze(false);

    let before_a = u(&peer(&waiting, "Room 4.02").expect("peer")["video"]["framesDecoded"]);
    first
        .wait(
            "4.01 decodes 4.02 again",
            decoding("Room 4.02", before_a + 30),
        )
        .await;
    let thawed = second.status().await;
    let before_b = u(&peer(&thawed, "Room 4.01").expect("peer")["video"]["framesDecoded"]);
    second
        .wait(
            "4.02 decodes 4.01 again",
            decoding("Room 4.01", before_b + 30),
        )
        .await;
    for kiosk in [first, second] {
        let exit = kiosk.stop().await;
        assert!(exit.success(), "clean exit: {exit}");
    }
    server.stop().await;
}

/// The kiosk may only use one media port and it is taken when a browser joins: building
/// the peer connection fails, the engine builds it again with backoff, replays the
/// browser's offer to the new connection, and the call connects once the port is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_connection_that_cannot_be_built_is_retried() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = TempDir::new("server-port");
    let work = TempDir::new("work-port");
    std::fs::create_dir_all(work.path()).expect("work dir");
    let blocker = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP port");
    let port = blocker.local_addr().expect("addr").port();
    let config = work.path().join("kiosk.toml");
    std::fs::write(&config, format!("[net]\nudp_ports = [{port}, {port}]\n")).expect("config");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = room("port");
    let kiosk = Kiosk::start(
        &server,
        &room,
        &work.path().join("files"),
        &["--config", config.to_str().expect("utf-8 path")],
    )
    .await;
    kiosk
        .wait("the kiosk in the room", |s| s["connected"] == json!(true))
        .await;
    let mut browser = Browser::start(&server, &room, "");
    browser.call(json!({"cmd": "open", "name": "Ada"})).await;
    kiosk
        .wait("the browser listed", |s| peer(s, "Ada").is_some())
        .await;
    // Let at least one build fail on the taken port.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = kiosk.status().await;
    assert_ne!(
        peer(&status, "Ada").expect("peer")["state"],
        json!("connected"),
        "the port is taken: {status:#}"
    );
    drop(blocker);
    media_flows(&kiosk, &mut browser, 0, "Ada", "video/H264").await;
    browser.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
}

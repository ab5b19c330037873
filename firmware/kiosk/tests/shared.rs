//! The room's shared experiences on the real kiosk: the real `portal-server`, a headless
//! `portal-kiosk` in the room, and Portal's real room page in Debian's Chromium (driven
//! by `shared.mjs`, which makes the clip with GStreamer and serves it with byte ranges).
//!
//! - The read-along editor: what a browser types in Monaco, and its language, appear in
//!   the kiosk's `/editor`; a presenter's cursor moves `followLine`; a 5 000-line paste
//!   arrives whole and the kiosk keeps answering.
//! - The stage: the presenter's editor fills it; a screen share takes it and gives it back.
//! - Watch-together with a direct URL: play, pause, seek and speed set in the browser; the
//!   kiosk's own player position (`/status` `watch.position`) follows the browser's, and
//!   a kiosk that joins late starts at the right place.
//! - Watch-together with a YouTube link through the offline stand-in of the IFrame API:
//!   the kiosk's web player plays it and is read back.
//!
//! Positions are compared at one instant: the page reports its `currentTime` with the
//! wall-clock time of the reading, and is carried forward at its rate to the middle of
//! the kiosk's `/status` request. Each condition is polled until it holds a few times in
//! a row, with a generous limit; the tight figures are `cargo xtask bench shared`'s.
//!
//! Needs what `e2e.rs` needs: `portal-server`, the built browser client,
//! `/usr/bin/chromium`, node and GStreamer (gst-launch-1.0, x264, libav).

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Kiosk, LONG, Server, peer, u};
use portal_testkit::{NodeDriver, TempDir};
use serde_json::{Value, json};

/// The tests start Chromium, a kiosk and video players each: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How far the kiosk's player may be from the browser's once a change has settled.
const VIDEO_TOLERANCE: f64 = 0.3;
/// A YouTube player takes only a few fixed rates, so it is held more loosely.
const YOUTUBE_TOLERANCE: f64 = 1.0;
/// How many samples in a row must agree before a change counts as settled.
const STREAK: usize = 3;

const YOUTUBE_ID: &str = "dQw4w9WgXcQ";

fn driver(server: &Server, room: &str) -> NodeDriver {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shared.mjs");
    let base = server.base();
    NodeDriver::start(script, [base.as_str(), room], &[])
        .reply_timeout(LONG + Duration::from_secs(30))
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs_f64()
        * 1000.0
}

/// Polls `/editor` until `cond` holds; panics with the last answer after [`LONG`].
async fn wait_editor(kiosk: &Kiosk, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let (code, body) = kiosk.get("/editor").await;
        if code == 200 && cond(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last /editor ({code}): {}",
            shorten(&body)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `/editor` for a message, without thousands of lines of text.
fn shorten(editor: &Value) -> String {
    let mut v = editor.clone();
    if let Some(text) = v["text"].as_str() {
        let n = text.chars().count();
        if n > 300 {
            let head: String = text.chars().take(300).collect();
            v["text"] = json!(format!("{head}... ({n} chars)"));
        }
    }
    format!("{v:#}")
}

/// One comparison of the kiosk's player with a browser's.
#[derive(Debug)]
struct Gap {
    /// The browser's position, carried to the moment the kiosk was read.
    browser: f64,
    kiosk: f64,
    browser_playing: bool,
    watch: Value,
}

impl Gap {
    fn diff(&self) -> f64 {
        (self.kiosk - self.browser).abs()
    }

    /// Both play (or both stand still) within `tolerance` of each other.
    fn together(&self, tolerance: f64) -> bool {
        self.watch["playing"].as_bool() == Some(self.browser_playing) && self.diff() < tolerance
    }
}

/// Reads tab `tab`'s player, then the kiosk's; `None` while either has no player.
async fn gap(kiosk: &Kiosk, browser: &mut NodeDriver, tab: u64) -> Option<Gap> {
    let answer = browser.call(json!({"cmd": "player", "tab": tab})).await;
    let p = &answer["player"];
    if p.is_null() {
        return None;
    }
    let before = now_ms();
    let status = kiosk.status().await;
    let after = now_ms();
    let watch = status["watch"].clone();
    let kiosk_position = watch["position"].as_f64()?;
    let paused = p["paused"].as_bool().unwrap_or(true);
    let seeking = p["seeking"].as_bool().unwrap_or(false);
    let time = p["time"].as_f64()?;
    let at = p["at"].as_f64()?;
    let rate = p["rate"].as_f64().unwrap_or(1.0);
    let moving = !paused && !seeking;
    let browser_position = if moving {
        time + (f64::midpoint(before, after) - at) / 1000.0 * rate
    } else {
        time
    };
    Some(Gap {
        browser: browser_position,
        kiosk: kiosk_position,
        browser_playing: !paused,
        watch,
    })
}

/// Polls until `ok` holds for [`STREAK`] comparisons in a row; panics after [`LONG`]
/// with the last one.
async fn settle(
    kiosk: &Kiosk,
    browser: &mut NodeDriver,
    tab: u64,
    what: &str,
    ok: impl Fn(&Gap) -> bool,
) -> Gap {
    let deadline = tokio::time::Instant::now() + LONG;
    let mut streak = 0;
    loop {
        let last = gap(kiosk, browser, tab).await;
        streak = if last.as_ref().is_some_and(&ok) {
            streak + 1
        } else {
            0
        };
        if streak >= STREAK {
            let last = last.expect("a comparison");
            eprintln!(
                "{what}: kiosk {:.3} s, browser {:.3} s, gap {:.0} ms",
                last.kiosk,
                last.browser,
                last.diff() * 1000.0
            );
            return last;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last comparison: {last:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn source_url(status: &Value) -> Option<&str> {
    status["watch"]["source"]["url"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kiosk_reads_along_and_the_stage_follows_the_editor_and_a_share() {
    let _one = SERIAL.lock().await;
    let data = TempDir::new("server-shared-editor");
    let work = TempDir::new("work-shared-editor");
    std::fs::create_dir_all(work.path()).expect("work dir");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = format!("shared-editor-{}", std::process::id());
    let kiosk = Kiosk::start(&server, &room, &work.path().join("files"), &[]).await;
    kiosk
        .wait("the kiosk in its room", |s| s["connected"] == json!(true))
        .await;

    let mut browser = driver(&server, &room);
    browser.call(json!({"cmd": "open", "name": "Ada"})).await;
    browser.call(json!({"cmd": "editor"})).await;

    // Typing in Monaco shows in /editor, text and language.
    let typed = browser
        .call(json!({"cmd": "type", "text": "hello from Ada"}))
        .await;
    let text = typed["text"].as_str().expect("the page's text").to_owned();
    assert!(text.contains("hello from Ada"), "{text:?}");
    let seen = wait_editor(&kiosk, "the typed text on the kiosk", |e| {
        e["text"] == json!(text)
    })
    .await;
    assert_eq!(seen["connected"], true, "{}", shorten(&seen));
    assert!(
        seen["peers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "Ada")),
        "Ada among the editor's peers: {}",
        shorten(&seen)
    );
    for language in ["python", "rust"] {
        browser
            .call(json!({"cmd": "language", "language": language}))
            .await;
        wait_editor(&kiosk, &format!("the language {language}"), |e| {
            e["language"] == language
        })
        .await;
    }

    // Presenting: the kiosk follows Ada's cursor.
    browser
        .call(json!({"cmd": "pasteLines", "lines": 60}))
        .await;
    browser.call(json!({"cmd": "present", "on": true})).await;
    wait_editor(&kiosk, "Ada presenting", |e| e["presenter"] == "Ada").await;
    for line in [40, 3] {
        browser.call(json!({"cmd": "caret", "line": line})).await;
        let e = wait_editor(&kiosk, &format!("followLine {line}"), |e| {
            e["followLine"] == json!(line)
        })
        .await;
        assert_eq!(e["presenter"], "Ada");
    }

    // The stage: the presenter's editor; a screen share takes it and gives it back.
    kiosk
        .wait("the editor on the stage", |s| {
            s["stage"]["kind"] == "editor"
        })
        .await;
    let bo = u(&browser.call(json!({"cmd": "open", "name": "Bo"})).await["tab"]);
    let bo_id = u(&kiosk
        .wait("Bo in the kiosk's call", |s| peer(s, "Bo").is_some())
        .await["peers"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "Bo"))
        .expect("Bo")["id"]);
    browser
        .call(json!({"cmd": "share", "tab": bo, "on": true}))
        .await;
    let status = kiosk
        .wait("Bo's screen on the stage", |s| {
            s["stage"]["kind"] == "screen"
        })
        .await;
    assert_eq!(u(&status["stage"]["peer"]), bo_id, "{:#}", status["stage"]);
    browser
        .call(json!({"cmd": "share", "tab": bo, "on": false}))
        .await;
    kiosk
        .wait("the editor back on the stage", |s| {
            s["stage"]["kind"] == "editor"
        })
        .await;

    // A 5 000-line paste arrives whole, and the kiosk keeps working.
    let pasted = browser
        .call(json!({"cmd": "pasteLines", "lines": 5000, "replace": true}))
        .await;
    let length = pasted["length"].as_u64().expect("the pasted length");
    let e = wait_editor(&kiosk, "the 5 000-line paste on the kiosk", |e| {
        e["text"]
            .as_str()
            .is_some_and(|t| t.chars().count() as u64 == length)
    })
    .await;
    let text = e["text"].as_str().expect("text");
    assert_eq!(text.lines().count(), 5000, "every line arrived");
    assert!(text.ends_with("// line 5000\n"), "the last line arrived");
    let page = browser.call(json!({"cmd": "text"})).await;
    assert_eq!(page["text"], e["text"], "the kiosk's text is the browser's");
    let status = kiosk.status().await;
    assert_eq!(status["connected"], true, "the kiosk still in the call");
    browser
        .call(json!({"cmd": "type", "text": "// after"}))
        .await;
    wait_editor(&kiosk, "an edit after the paste", |e| {
        e["text"].as_str().is_some_and(|t| t.ends_with("// after"))
    })
    .await;

    browser.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "the kiosk exits cleanly: {exit}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kiosk_plays_a_direct_url_with_the_browser_and_a_late_kiosk_joins_in_place() {
    let _one = SERIAL.lock().await;
    let data = TempDir::new("server-shared-watch");
    let work = TempDir::new("work-shared-watch");
    std::fs::create_dir_all(work.path()).expect("work dir");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = format!("shared-watch-{}", std::process::id());
    let mut browser = driver(&server, &room);
    let media = browser.call(json!({"cmd": "media", "seconds": 90})).await;
    let url = media["url"].as_str().expect("the clip's URL").to_owned();
    let kiosk = Kiosk::start(&server, &room, &work.path().join("files"), &[]).await;
    kiosk
        .wait("the kiosk in its room", |s| s["connected"] == json!(true))
        .await;
    browser.call(json!({"cmd": "open", "name": "Ada"})).await;

    browser.call(json!({"cmd": "load", "url": url})).await;
    let status = kiosk
        .wait("the video loaded on the kiosk, paused at 0", |s| {
            source_url(s) == Some(url.as_str())
                && s["watch"]["position"]
                    .as_f64()
                    .is_some_and(|p| p.abs() < 0.05)
                && s["watch"]["playing"] == false
                && s["watch"]["duration"].is_number()
        })
        .await;
    assert!(
        status["watch"]["duration"]
            .as_f64()
            .is_some_and(|d| (d - 90.0).abs() < 1.0),
        "{:#}",
        status["watch"]
    );

    let together = |g: &Gap| g.together(VIDEO_TOLERANCE);
    browser.call(json!({"cmd": "play"})).await;
    let g = settle(&kiosk, &mut browser, 0, "play", |g| {
        together(g) && g.browser_playing
    })
    .await;
    // Really advancing, not both stuck.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = settle(&kiosk, &mut browser, 0, "still playing", together).await;
    assert!(later.kiosk > g.kiosk + 0.5, "{g:#?} then {later:#?}");

    browser.call(json!({"cmd": "pause"})).await;
    settle(&kiosk, &mut browser, 0, "pause", |g| {
        together(g) && !g.browser_playing
    })
    .await;
    browser.call(json!({"cmd": "seek", "seconds": 40})).await;
    settle(&kiosk, &mut browser, 0, "seek to 40 s, paused", |g| {
        together(g) && !g.browser_playing && (g.kiosk - 40.0).abs() < VIDEO_TOLERANCE
    })
    .await;
    browser.call(json!({"cmd": "play"})).await;
    settle(&kiosk, &mut browser, 0, "play from 40 s", |g| {
        together(g) && g.browser_playing && g.kiosk >= 40.0
    })
    .await;

    for rate in [1.25, 1.0] {
        browser.call(json!({"cmd": "speed", "rate": rate})).await;
        let g = settle(&kiosk, &mut browser, 0, &format!("speed {rate}"), |g| {
            together(g)
                && g.watch["rate"]
                    .as_f64()
                    .is_some_and(|r| (r - rate).abs() < 0.1)
        })
        .await;
        assert!(g.browser_playing, "{g:#?}");
    }

    browser.call(json!({"cmd": "seek", "seconds": 10})).await;
    settle(&kiosk, &mut browser, 0, "seek to 10 s, playing", |g| {
        together(g) && g.browser_playing && g.kiosk < 30.0
    })
    .await;

    // A kiosk that joins late starts where the room is (the first one leaves, so the
    // machine runs one kiosk player at a time).
    let exit = kiosk.stop().await;
    assert!(exit.success(), "the kiosk exits cleanly: {exit}");
    let late = Kiosk::start(
        &server,
        &room,
        &work.path().join("files-late"),
        &["--name", "Room 4.02"],
    )
    .await;
    late.wait("the late kiosk with the room's video", |s| {
        source_url(s) == Some(url.as_str())
    })
    .await;
    let g = settle(&late, &mut browser, 0, "the late kiosk in place", |g| {
        together(g) && g.browser_playing
    })
    .await;
    assert!(g.kiosk > 10.0, "{g:#?}");

    browser.quit().await;
    let exit = late.stop().await;
    assert!(exit.success(), "the late kiosk exits cleanly: {exit}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kiosk_plays_a_youtube_link_through_the_iframe_api_stand_in() {
    let _one = SERIAL.lock().await;
    let data = TempDir::new("server-shared-youtube");
    let work = TempDir::new("work-shared-youtube");
    std::fs::create_dir_all(work.path()).expect("work dir");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = format!("shared-youtube-{}", std::process::id());
    let mut browser = driver(&server, &room);
    let media = browser.call(json!({"cmd": "media", "seconds": 90})).await;
    let iframe_api = media["iframeApi"]
        .as_str()
        .unwrap_or_else(|| panic!("the IFrame API stand-in is served: {media}"));
    // The kiosk's web player: headless Chromium, the IFrame API from the stand-in.
    let config = work.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nweb_engine = \"chromium\"\nbrowser = \"/usr/bin/chromium\"\nheadless = true\niframe_api = \"{iframe_api}\"\n"
        ),
    )
    .expect("config file");
    let kiosk = Kiosk::start(
        &server,
        &room,
        &work.path().join("files"),
        &["--config", config.to_str().expect("utf-8 path")],
    )
    .await;
    kiosk
        .wait("the kiosk in its room", |s| s["connected"] == json!(true))
        .await;
    browser
        .call(json!({"cmd": "open", "name": "Ada", "youtube": true}))
        .await;

    browser
        .call(
            json!({"cmd": "load", "url": format!("https://www.youtube.com/watch?v={YOUTUBE_ID}")}),
        )
        .await;
    kiosk
        .wait("the YouTube video open on the kiosk", |s| {
            s["watch"]["source"]["youtube"] == YOUTUBE_ID && s["watch"]["position"].is_number()
        })
        .await;

    let together = |g: &Gap| g.together(YOUTUBE_TOLERANCE);
    browser.call(json!({"cmd": "play"})).await;
    let g = settle(&kiosk, &mut browser, 0, "YouTube play", |g| {
        together(g) && g.browser_playing
    })
    .await;
    assert_eq!(g.watch["source"], json!({"youtube": YOUTUBE_ID}));
    browser.call(json!({"cmd": "seek", "seconds": 30})).await;
    settle(&kiosk, &mut browser, 0, "YouTube seek to 30 s", |g| {
        together(g) && g.browser_playing && g.kiosk >= 29.0
    })
    .await;
    browser.call(json!({"cmd": "pause"})).await;
    settle(&kiosk, &mut browser, 0, "YouTube pause", |g| {
        together(g) && !g.browser_playing
    })
    .await;

    browser.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "the kiosk exits cleanly: {exit}");
    server.stop().await;
}

//! The YouTube player against a real headless Chromium, with the IFrame API answered by
//! the web e2e tests' stand-in (`signaling/web/tests/e2e/support/youtube-standin.js`,
//! which plays a local clip in a `<video>`); the engines' command lines; the pure parts.
// Rates and positions the player reports are exact values (YouTube's fixed rates, a seek
// target), compared as such.
#![allow(clippy::float_cmp)]

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use portal_testkit::{RangeServer, TempDir, make_clip};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::channel::Report;
use super::engine::{ChromiumApp, Cog, ProfileDir};
use super::{WebPlayer, WebPlayerError, carried, check_video_id, nearest_rate};
use crate::config::{Area, WatchConfig, WebEngineKind};
use crate::player::WatchPlayer;

const CHROMIUM: &str = "/usr/bin/chromium";
const LIMIT: Duration = Duration::from_mins(1);

#[test]
fn the_engines_command_lines() {
    let area = Area {
        x: 10,
        y: 20,
        width: 640,
        height: 360,
    };
    let chromium = ChromiumApp::new("/usr/bin/chromium", false).expect("profile");
    let args: Vec<String> = chromium
        .args("http://127.0.0.1:1/player?key=k", Some(area), false)
        .into_iter()
        .map(|a| a.into_string().expect("utf-8"))
        .collect();
    for want in [
        "--app=http://127.0.0.1:1/player?key=k",
        "--autoplay-policy=no-user-gesture-required",
        "--window-position=10,20",
        "--window-size=640,360",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ] {
        assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
    }
    assert!(args.iter().any(|a| a.starts_with("--user-data-dir=")));
    assert!(
        !args
            .iter()
            .any(|a| a == "--kiosk" || a.starts_with("--headless") || a == "--no-sandbox")
    );
    let full: Vec<String> = chromium
        .args("http://x/", None, true)
        .into_iter()
        .map(|a| a.into_string().expect("utf-8"))
        .collect();
    assert!(full.iter().any(|a| a == "--kiosk") && full.iter().any(|a| a == "--no-sandbox"));
    let headless = ChromiumApp::new("/usr/bin/chromium", true).expect("profile");
    assert!(
        headless
            .args("http://x/", None, false)
            .iter()
            .any(|a| a == "--headless=new")
    );

    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).into())
    };
    let wl = Cog::args("http://x/", &env(&[("WAYLAND_DISPLAY", "wayland-0")]));
    assert_eq!(
        wl.first().map(OsString::as_os_str),
        Some("--platform=wl".as_ref())
    );
    assert_eq!(
        wl.last().map(OsString::as_os_str),
        Some("http://x/".as_ref())
    );
    assert!(wl.iter().any(|a| a == "--enable-mediasource=true"));
    assert!(
        wl.iter()
            .any(|a| a == "--media-playback-requires-user-gesture=false")
    );
    assert!(wl.iter().any(|a| a == "--webprocess-failure=exit"));
    let drm = Cog::args("http://x/", &env(&[]));
    assert_eq!(
        drm.first().map(OsString::as_os_str),
        Some("--platform=drm".as_ref())
    );
    let chosen = Cog::args(
        "http://x/",
        &env(&[("COG_PLATFORM_NAME", "gtk4"), ("DISPLAY", ":0")]),
    );
    assert!(
        !chosen
            .iter()
            .any(|a| a.to_string_lossy().starts_with("--platform"))
    );
}

#[test]
fn a_profile_is_private_and_goes_with_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = ProfileDir::new("test").expect("made");
    let path = dir.path().to_owned();
    std::fs::write(path.join("Cookies"), b"x").expect("writable");
    let mode = std::fs::metadata(&path)
        .expect("exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    drop(dir);
    assert!(!path.exists());
}

#[test]
fn rates_and_ids() {
    let youtube = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0];
    assert_eq!(nearest_rate(1.1, &youtube), 1.0);
    assert_eq!(nearest_rate(1.2, &youtube), 1.25);
    assert_eq!(nearest_rate(0.97, &youtube), 1.0);
    assert_eq!(nearest_rate(9.0, &youtube), 2.0);
    assert_eq!(nearest_rate(1.5, &[]), 1.0);
    assert!(check_video_id("dQw4w9WgXcQ").is_ok());
    for bad in ["", "a b", "x\"y", "<script>", &"a".repeat(65)] {
        assert!(
            matches!(check_video_id(bad), Err(WebPlayerError::InvalidVideoId(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn a_playing_report_is_carried_forward_at_its_rate() {
    let playing = Report {
        time: 5.0,
        state: 1,
        rate: 1.25,
        ..Report::default()
    };
    assert_eq!(carried(&playing, Duration::ZERO), 5.0);
    assert_eq!(carried(&playing, Duration::from_millis(400)), 5.5);
    // A page gone quiet is not followed for ever.
    assert_eq!(carried(&playing, Duration::from_secs(30)), 6.25);
    for state in [-1, 0, 2, 3, 5] {
        let still = Report {
            state,
            ..playing.clone()
        };
        assert_eq!(
            carried(&still, Duration::from_millis(400)),
            5.0,
            "state {state}"
        );
    }
}

#[tokio::test]
async fn a_missing_engine_is_said_so() {
    let config = WatchConfig {
        web_engine: WebEngineKind::Chromium,
        browser: Some("/nonexistent/chromium".into()),
        iframe_api: "http://127.0.0.1:9/".into(),
        headless: true,
        window: None,
    };
    let err = WebPlayer::start(&config, "dQw4w9WgXcQ")
        .await
        .expect_err("no binary");
    assert!(matches!(err, WebPlayerError::EngineMissing(_)), "{err}");
    let none = WatchConfig {
        web_engine: WebEngineKind::None,
        ..config
    };
    let err = WebPlayer::start(&none, "dQw4w9WgXcQ")
        .await
        .expect_err("no engine");
    assert!(matches!(err, WebPlayerError::NoEngine), "{err}");
}

#[tokio::test]
async fn an_engine_that_never_shows_the_page_or_exits_is_said_so() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("webplayer-engines");
    let script = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("mode");
        path
    };
    let config = |browser| WatchConfig {
        web_engine: WebEngineKind::Chromium,
        browser: Some(browser),
        iframe_api: "http://127.0.0.1:9/".into(),
        headless: true,
        window: None,
    };
    let silent = config(script("silent", "exec sleep 600"));
    let mut player = WebPlayer::start(&silent, "dQw4w9WgXcQ")
        .await
        .expect("started");
    let err = player
        .ready(Duration::from_millis(300))
        .await
        .expect_err("no page");
    assert!(matches!(err, WebPlayerError::NeverConnected(_)), "{err}");
    let s = player.sample(0.0);
    assert!(!s.ready && s.paused, "{s:?}");
    let pid = player.pid();
    drop(player);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the engine is killed"
    );

    let failing = config(script("failing", "exit 3"));
    let mut player = WebPlayer::start(&failing, "dQw4w9WgXcQ")
        .await
        .expect("started");
    let err = player.ready(LIMIT).await.expect_err("the engine exits");
    assert!(matches!(err, WebPlayerError::EngineExited), "{err}");
}

// ---- the player in a real Chromium ----

/// Serves `body` as JavaScript at any path of `127.0.0.1:PORT` (the IFrame API's stand-in).
async fn serve_script(body: String) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    (format!("{base}/iframe_api"), task)
}

/// The stand-in with its clip, as the web e2e test serves it.
fn standin(clip_url: &str) -> String {
    let path =
        portal_testkit::workspace_root().join("signaling/web/tests/e2e/support/youtube-standin.js");
    let script = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    format!(
        "window.fakeYouTubeClip = {};\n{script}",
        serde_json::to_string(clip_url).expect("json")
    )
}

/// Waits until the player's sample satisfies `cond`, polling every 50 ms.
async fn until(
    player: &mut WebPlayer,
    what: &str,
    cond: impl Fn(&portal_engine::watch::PlayerSample) -> bool,
) -> portal_engine::watch::PlayerSample {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let s = player.sample(0.0);
        if cond(&s) {
            return s;
        }
        if let Some(e) = player.error() {
            panic!("{what}: the player failed: {e}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: last sample {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for(cond: impl FnMut() -> bool, what: &str) {
    portal_testkit::wait_until_async(LIMIT, what, cond).await;
}

/// Whether any live (not zombie) process is left in process group `group`.
fn group_alive(group: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid pgrp ...
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().take(3).collect())
            .unwrap_or_default();
        fields.len() == 3 && fields[0] != "Z" && fields[2] == group.to_string()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn youtube_plays_in_a_real_chromium_driven_by_the_kiosk() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("SKIPPED: {CHROMIUM} is not installed (apt-get install chromium)");
        return;
    }
    let dir = TempDir::new("webplayer");
    let clip = make_clip(dir.path(), 30);
    let media = RangeServer::serve(clip);
    let (api, _api_server) = serve_script(standin(&media.url)).await;
    let config = WatchConfig {
        web_engine: WebEngineKind::Chromium,
        browser: Some(CHROMIUM.into()),
        iframe_api: api,
        headless: true,
        window: None,
    };
    let mut player = WebPlayer::start(&config, "dQw4w9WgXcQ")
        .await
        .expect("started");
    let pid = player.pid();
    player.ready(LIMIT).await.expect("the player gets ready");
    let s = player.sample(1.0);
    assert!(s.ready && s.paused && !s.seeking, "{s:?}");
    assert!(
        (s.duration - 30.0).abs() < 1.0,
        "the clip's duration: {s:?}"
    );
    assert_eq!(s.now, 1.0);

    // Volume first: a silent start is what a kiosk does before the room says play.
    player.set_volume(0.4);
    wait_for(|| player.reported_volume() == Some(0.4), "volume 0.4").await;
    player.set_volume(0.0);
    wait_for(|| player.reported_volume() == Some(0.0), "muted").await;
    player.set_volume(1.0);
    wait_for(|| player.reported_volume() == Some(1.0), "full volume").await;
    player.play();
    let started = until(&mut player, "play", |s| !s.paused && s.time > 0.5).await;
    let later = until(&mut player, "time advancing", |s| {
        s.time > started.time + 1.0
    })
    .await;
    assert!(!later.paused && later.rate == 1.0, "{later:?}");

    player.pause();
    let paused = until(&mut player, "pause", |s| s.paused && !s.buffering).await;
    // Paused, the position holds: no carrying forward.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = player.sample(2.0);
    assert!(
        held.paused && (held.time - paused.time).abs() < 0.05,
        "{paused:?} then {held:?}"
    );

    player.seek(10.0);
    let during = player.sample(3.0);
    assert!(
        during.seeking && during.time == 10.0,
        "a seek shows at once: {during:?}"
    );
    let landed = until(&mut player, "seek", |s| !s.seeking).await;
    assert!((landed.time - 10.0).abs() < 0.3, "landed at {landed:?}");

    assert!([1.0, 1.25].contains(&player.set_rate(1.1)), "a fixed rate");
    assert_eq!(player.set_rate(1.5), 1.5);
    player.play();
    until(&mut player, "rate 1.5", |s| {
        !s.paused && s.rate == 1.5 && s.time > 10.1
    })
    .await;
    assert!(player.error().is_none());

    // Another video in the same window; one YouTube refuses surfaces as its error.
    player.load("M7lc1UVf-VE", 4.0).expect("a valid id");
    let cued = until(&mut player, "the next video", |s| s.ready && s.paused).await;
    assert!((cued.time - 4.0).abs() < 0.3, "cued at its start: {cued:?}");
    player.load("bad", 0.0).expect("YouTube's alphabet");
    let err = player.ready(LIMIT).await.expect_err("YouTube says no");
    assert_eq!(err.player_code(), Some(2), "{err}");
    assert!(matches!(player.error(), Some(WebPlayerError::Player(2))));
    assert!(err.to_string().contains("not valid"), "{err}");

    assert!(group_alive(pid), "Chromium runs before the drop");
    drop(player);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "Chromium is gone"
    );
    // Its helpers got SIGKILL with it; they are gone once the kernel has torn them down.
    wait_for(|| !group_alive(pid), "Chromium's helper processes gone").await;
}

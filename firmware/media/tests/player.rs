//! The watch-together player against a real GStreamer-made clip served over loopback HTTP
//! with byte ranges: preroll, play, pause, accurate seeks, rate changes, the end, frames,
//! and typed errors for links that cannot play. Timings are printed, never asserted;
//! the rate checks compare the position's pace with the wall clock's, which the pipeline
//! clock follows however busy the machine is.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::wait_for;
use portal_board::Board;
use portal_board::sim::SimBoard;
use portal_media::{
    FrameSink, MediaError, PlaybackErrorKind, PlaybackStatus, Player, PlayerConfig,
};
use portal_testkit::{RangeServer, make_clip};

/// The clip's length in seconds.
const CLIP_SECS: u32 = 20;

/// The clip, made once per test binary run (in Cargo's scratch directory for
/// integration tests, replaced by the next run, so nothing piles up in /tmp).
fn clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("player-clip");
        std::fs::create_dir_all(&dir).unwrap();
        let started = Instant::now();
        let clip = make_clip(&dir, CLIP_SECS);
        eprintln!("made {} in {:?}", clip.display(), started.elapsed());
        clip
    })
}

/// The sim board's ALSA `null` speaker (the real ALSA path, without real time).
fn config(uri: &str) -> PlayerConfig {
    let board = SimBoard::default();
    let speaker = board.speaker(Some("sim:alsa-null")).unwrap();
    let mut config = PlayerConfig::new(uri, speaker, board.facts());
    config.max_height = 240;
    config
}

fn wait_ready(player: &Player) -> PlaybackStatus {
    wait_for("the player to preroll", || {
        let s = player.status();
        assert_eq!(s.error, None, "{}", player.uri());
        s.ready && !s.seeking
    });
    player.status()
}

/// Polls every millisecond (the shared `wait_for` polls every 20 ms, too coarse to print a
/// seek's latency); panics after a minute.
fn wait_settled_fine(player: &Player) -> PlaybackStatus {
    let start = Instant::now();
    loop {
        let status = player.status();
        if !status.seeking {
            return status;
        }
        assert!(start.elapsed() < common::PATIENCE, "seek never completed");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn wait_settled(player: &Player) -> PlaybackStatus {
    wait_for("the seek to complete", || !player.status().seeking);
    player.status()
}

/// Position advance over wall time while playing, over about `secs` seconds.
fn pace(player: &Player, secs: f64) -> f64 {
    let (t0, p0) = (Instant::now(), player.status().position);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (t1, p1) = (Instant::now(), player.status().position);
    (p1 - p0) / (t1 - t0).as_secs_f64()
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn prerolls_plays_pauses_seeks_and_shows_frames() {
    let server = RangeServer::serve(clip());
    let frames = Arc::new(AtomicU64::new(0));
    let largest = Arc::new(Mutex::new((0u32, 0u32)));
    let sink: FrameSink = {
        let (frames, largest) = (Arc::clone(&frames), Arc::clone(&largest));
        Box::new(move |frame| {
            assert!(frame.data.len() >= (frame.stride * frame.height) as usize);
            frames.fetch_add(1, Ordering::Relaxed);
            let mut l = largest.lock().unwrap();
            *l = (l.0.max(frame.width), l.1.max(frame.height));
        })
    };
    let opened = Instant::now();
    let player = Player::open(config(&server.url), Some(sink)).unwrap();
    let status = wait_ready(&player);
    eprintln!("preroll took {:?}", opened.elapsed());
    let duration = status.duration.expect("a duration");
    assert!((duration - f64::from(CLIP_SECS)).abs() < 0.5, "{status:?}");
    assert!(
        status.paused && !status.ended && status.position < 0.1,
        "{status:?}"
    );

    player.play();
    wait_for("the position to pass 1 s", || {
        player.status().position > 1.0
    });
    let status = player.status();
    assert!(!status.paused && status.error.is_none(), "{status:?}");
    wait_for("frames at the sink", || frames.load(Ordering::Relaxed) > 10);
    let (w, h) = *largest.lock().unwrap();
    assert!(h <= 240 && h > 0 && w > h, "frames of {w}x{h}");
    assert_eq!(player.status().video_size, Some((w, h)));
    let png = player.snapshot_png().unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    player.pause();
    wait_for("the pipeline to pause", || {
        let a = player.status().position;
        std::thread::sleep(Duration::from_millis(200));
        same(player.status().position, a)
    });
    let paused_at = player.status().position;
    std::thread::sleep(Duration::from_millis(500));
    let status = player.status();
    assert!(
        status.paused && (status.position - paused_at).abs() < 1e-3,
        "{status:?}"
    );

    // (A paused seek may complete before `seek` returns, so `seeking` is not checked
    // here; `a_seek_and_rate_asked_before_the_preroll_apply_after_it` sees it set.)
    player.seek(12.0);
    let status = wait_settled(&player);
    assert!((status.position - 12.0).abs() < 0.1, "{status:?}");
    assert!(status.paused, "a seek keeps the player paused");

    // Seek latency, paused and playing (printed, not asserted).
    let mut paused_ms = Vec::new();
    for i in 0..10 {
        let target = 2.0 + f64::from(i) * 1.37;
        let t = Instant::now();
        player.seek(target);
        let status = wait_settled_fine(&player);
        paused_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(
            (status.position - target).abs() < 0.1,
            "{target}: {status:?}"
        );
    }
    player.play();
    let mut playing_ms = Vec::new();
    for i in 0..10 {
        let target = 3.0 + f64::from(i) * 1.21;
        let t = Instant::now();
        player.seek(target);
        let status = wait_settled_fine(&player);
        playing_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(
            status.position >= target - 0.1 && status.position < target + 1.0,
            "{target}: {status:?}"
        );
    }
    eprintln!(
        "seek latency median: paused {:.1} ms, playing {:.1} ms",
        median(paused_ms),
        median(playing_ms)
    );
    assert!(
        server.partial() > 0,
        "the player fetched with Range requests"
    );
    eprintln!(
        "range server: {} requests, {} partial, {} full",
        server.requests(),
        server.partial(),
        server.full()
    );
}

#[test]
fn rate_changes_keep_playing_and_the_end_is_reported() {
    let server = RangeServer::serve(clip());
    // No frame sink: a headless kiosk's player.
    let player = Player::open(config(&server.url), None).unwrap();
    wait_ready(&player);
    player.play();
    wait_for("playback", || player.status().position > 0.5);
    let normal = pace(&player, 1.5);

    let t = Instant::now();
    assert!(same(player.set_rate(1.05), 1.05));
    let status = wait_settled_fine(&player);
    eprintln!("rate change to 1.05 settled in {:?}", t.elapsed());
    assert!(same(status.rate, 1.05) && !status.paused, "{status:?}");
    // A request within the same 1 % step changes nothing (no seek, no stall).
    assert!(same(player.set_rate(1.053), 1.05));
    assert!(!player.status().seeking);
    let nudged = pace(&player, 2.0);
    eprintln!("pace at 1.0: {normal:.3}, at 1.05: {nudged:.3}");
    assert!(nudged > 1.0 && nudged < 1.1, "pace at 1.05 was {nudged}");

    assert!(same(player.set_rate(2.0), 2.0));
    let status = wait_settled(&player);
    assert!(same(status.rate, 2.0), "{status:?}");
    let fast = pace(&player, 1.5);
    eprintln!("pace at 2.0: {fast:.3}");
    assert!(fast > 1.8 && fast < 2.2, "pace at 2.0 was {fast}");

    assert!(same(player.set_rate(1.0), 1.0));
    player.seek(f64::from(CLIP_SECS) - 1.5);
    wait_for("the end", || player.status().ended);
    let status = player.status();
    assert!(status.position > f64::from(CLIP_SECS) - 0.5, "{status:?}");
    assert!(status.frames > 0 && status.error.is_none(), "{status:?}");
    assert!(player.snapshot_png().is_ok());

    player.seek(5.0);
    let status = wait_settled(&player);
    assert!(
        !status.ended && (status.position - 5.0).abs() < 0.1,
        "{status:?}"
    );
}

#[test]
fn a_seek_and_rate_asked_before_the_preroll_apply_after_it() {
    // What a kiosk joining a room late does: open, seek to the room's position, set its
    // rate and play, all before the player is ready.
    let server = RangeServer::serve(clip());
    let player = Player::open(config(&server.url), None).unwrap();
    player.seek(8.0);
    assert!(same(player.set_rate(1.5), 1.5));
    player.play();
    assert!(
        player.status().seeking,
        "seeking while the target is pending"
    );
    wait_ready(&player);
    let status = player.status();
    assert!(
        status.position >= 7.9 && status.position < 12.0,
        "{status:?}"
    );
    assert!(same(status.rate, 1.5) && !status.paused, "{status:?}");
    let pace = pace(&player, 1.0);
    eprintln!("pace at 1.5 set before preroll: {pace:.3}");
    assert!(pace > 1.3 && pace < 1.7, "pace at 1.5 was {pace}");
}

/// Opens `uri` and waits for the failure it must report: from `open` itself when the
/// pipeline cannot even start (a missing local file), else in the status.
fn failure(uri: &str) -> PlaybackErrorKind {
    let player = match Player::open(config(uri), None) {
        Ok(player) => player,
        Err(MediaError::Playback { uri: u, error }) => {
            assert_eq!(u, uri);
            eprintln!("{uri}: refused at open: {error}");
            return error.kind;
        }
        Err(e) => panic!("{uri}: {e}"),
    };
    wait_for("an error", || player.status().error.is_some());
    let status = player.status();
    assert!(!status.ready && !status.seeking, "{status:?}");
    // Controls on a failed player do nothing, and do not panic.
    player.play();
    player.seek(3.0);
    assert!(same(player.set_rate(2.0), 1.0));
    match player.error() {
        Some(MediaError::Playback { uri: u, error }) => {
            assert_eq!(u, uri);
            assert_eq!(Some(&error), status.error.as_ref());
            eprintln!("{uri}: {error}");
            error.kind
        }
        other => panic!("{uri}: {other:?}"),
    }
}

#[test]
fn links_that_cannot_play_are_typed_errors() {
    let server = RangeServer::serve(clip());
    assert_eq!(
        failure(&format!("{}/missing.mp4", server.base)),
        PlaybackErrorKind::NotFound
    );

    let dir = portal_testkit::TempDir::new("player-bad");
    let junk = dir.join("junk.mp4");
    std::fs::write(&junk, portal_testkit::noise(256 * 1024, 7)).unwrap();
    let junk_server = RangeServer::serve(&junk);
    assert_eq!(failure(&junk_server.url), PlaybackErrorKind::NotMedia);
    for (name, text) in [
        (
            "page.html",
            "<!doctype html><html><body><p>a page, not a video</p></body></html>\n",
        ),
        ("notes.txt", "plain text\nwith lines\n"),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
        let server = RangeServer::serve(dir.join(name));
        assert_eq!(failure(&server.url), PlaybackErrorKind::NotMedia, "{name}");
    }

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    assert_eq!(
        failure(&format!("http://{closed}/clip.mp4")),
        PlaybackErrorKind::Unreachable
    );

    let missing_file = format!("file://{}", dir.join("nothing.mp4").display());
    assert_eq!(failure(&missing_file), PlaybackErrorKind::NotFound);

    for bad in [
        "ftp://example.com/a.mp4",
        "javascript:alert(1)",
        "not a url",
    ] {
        match Player::open(config(bad), None) {
            Err(MediaError::Playback { error, .. }) => {
                assert_eq!(error.kind, PlaybackErrorKind::UnsupportedUri, "{bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

//! The kiosk's window end to end: the real `portal-kiosk` (not headless) on an Xvfb
//! display, in a call with the browser client in Chromium. Screenshots of the X screen
//! (GStreamer's `ximagesrc`) show the browser's video on the stage: before the browser
//! joins the stage holds no green at all; once it is in the call, the same area is mostly
//! the green of Chromium's fake camera, and it moves (the fake camera's clock and its
//! turning wedge).
//!
//! Needs `Xvfb` (package xvfb), what the kiosk e2e tests need, and Mesa's software GL
//! for the window's renderer.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Browser, Kiosk, Server, Xvfb, peer, u};
use portal_testkit::TempDir;
use serde_json::json;
use tokio::process::Command;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;

/// The whole X screen as RGB rows.
struct Shot {
    width: usize,
    rgb: Vec<u8>,
}

impl Shot {
    async fn take(display: &str, path: &Path) -> Shot {
        let status = Command::new("gst-launch-1.0")
            .args([
                "-q",
                "ximagesrc",
                &format!("display-name={display}"),
                "use-damage=false",
                "num-buffers=1",
            ])
            .args([
                "!",
                "videoconvert",
                "!",
                "video/x-raw,format=RGB",
                "!",
                "pngenc",
                "!",
                "filesink",
            ])
            .arg(format!("location={}", path.display()))
            .status()
            .await
            .expect("gst-launch-1.0 runs");
        assert!(status.success(), "screenshot of {display}");
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("screenshot file"),
        ));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        Shot {
            width: info.width as usize,
            rgb: buf,
        }
    }

    /// Pixels of the stage at 1280x720 (inside its edges, clear of the name and
    /// quality badges), every 2nd in each direction.
    fn stage(&self) -> Vec<[u8; 3]> {
        let (x0, x1, y0, y1) = (190, 1000, 126, 566);
        let mut out = Vec::new();
        for y in (y0..y1).step_by(2) {
            for x in (x0..x1).step_by(2) {
                let i = (y * self.width + x) * 3;
                out.push([self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]);
            }
        }
        out
    }
}

/// The share of clearly green pixels (Chromium's fake camera draws on green; nothing in
/// the kiosk's own dark theme is).
fn green(pixels: &[[u8; 3]]) -> f64 {
    let n = pixels
        .iter()
        .filter(|[r, g, b]| {
            i32::from(*g) > i32::from(*r) + 60 && i32::from(*g) > i32::from(*b) + 60
        })
        .count();
    n as f64 / pixels.len() as f64
}

/// The share of pixels that differ by more than a little between two pictures.
fn changed(a: &[[u8; 3]], b: &[[u8; 3]]) -> f64 {
    let n = a
        .iter()
        .zip(b)
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 24))
        .count();
    n as f64 / a.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_shows_the_browser_on_stage() {
    let data = TempDir::new("server-window");
    let work = TempDir::new("work-window");
    std::fs::create_dir_all(work.path()).expect("work dir");
    let x = Xvfb::start(WIDTH, HEIGHT).await;
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = format!("window-{}", std::process::id());
    let kiosk = Kiosk::start_windowed(&server, &room, &work.path().join("files"), &x.display).await;
    kiosk
        .wait("the windowed kiosk in the room", |s| {
            s["connected"] == json!(true)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Kept after the test, for a person to look at.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiosk-window");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let empty = Shot::take(&x.display, &shots.join("empty.png")).await;
    let before = green(&empty.stage());
    assert!(
        before < 0.01,
        "no video on an empty stage: {before:.3} green (see {})",
        shots.display()
    );

    let mut browser = Browser::start(&server, &room, "");
    browser.call(json!({"cmd": "open", "name": "Guest"})).await;
    browser
        .call(json!({"cmd": "waitConnected", "tab": 0}))
        .await;
    kiosk
        .wait("the kiosk decoding the guest's camera", |s| {
            peer(s, "Guest").is_some_and(|p| u(&p["video"]["framesDecoded"]) >= 30)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = Shot::take(&x.display, &shots.join("call-1.png")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = Shot::take(&x.display, &shots.join("call-2.png")).await;
    let (a, b) = (first.stage(), second.stage());
    let video = green(&a);
    assert!(
        video > 0.5,
        "the browser's camera fills the stage: {video:.3} green (see {})",
        shots.display()
    );
    let moved = changed(&a, &b);
    assert!(
        moved > 0.001,
        "the picture on stage moves: {moved:.4} of it changed"
    );

    browser.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
    drop(x.child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_with_no_settings_opens_its_first_run_screen_and_stays() {
    let work = TempDir::new("work-first-run");
    std::fs::create_dir_all(work.path()).expect("work dir");
    let x = Xvfb::start(WIDTH, HEIGHT).await;
    // No flags but a free status port; the config file it would read does not exist.
    let mut kiosk = Kiosk::start_unconfigured(&x.display, &work.path().join("kiosk.toml")).await;
    let status = kiosk.status().await;
    assert_eq!(status["state"], json!("idle"), "{status:#}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiosk-window");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let _ = Shot::take(&x.display, &shots.join("first-run.png")).await;
    assert!(
        kiosk.exited(Duration::ZERO).await.is_none(),
        "the kiosk keeps running without settings"
    );
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    drop(x.child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_shows_how_many_people_are_in_a_listed_room() {
    let data = TempDir::new("server-home");
    let work = TempDir::new("work-home");
    std::fs::create_dir_all(work.path()).expect("work dir");
    let x = Xvfb::start(WIDTH, HEIGHT).await;
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = format!("busy-{}", std::process::id());
    let config = work.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "server = \"{}\"\nrooms = [\"{room}\", \"quiet\"]\nname = \"Room 4.01\"\n",
            server.ws_url()
        ),
    )
    .expect("config written");
    let kiosk = Kiosk::start_unconfigured(&x.display, &config).await;
    kiosk
        .wait("home knows the rooms are empty", |s| {
            s["rooms"][0]["peers"] == json!(0) && s["rooms"][1]["peers"] == json!(0)
        })
        .await;
    let mut browser = Browser::start(&server, &room, "");
    for name in ["Guest A", "Guest B"] {
        browser.call(json!({"cmd": "open", "name": name})).await;
    }
    let status = kiosk
        .wait("home counts the two browsers", |s| {
            s["rooms"][0]["peers"] == json!(2)
        })
        .await;
    assert_eq!(status["rooms"][1]["peers"], json!(0), "{status:#}");
    assert_eq!(status["state"], json!("idle"));
    browser.quit().await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
    drop(x.child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_shows_the_pairing_code_and_a_qr_code_that_reads_back_as_its_link() {
    let data = TempDir::new("server-pair-window");
    let work = TempDir::new("work-pair-window");
    std::fs::create_dir_all(work.path()).expect("work dir");
    let token = portal_testkit::enrol_kiosk(data.path(), "Room 4.01");
    let x = Xvfb::start(WIDTH, HEIGHT).await;
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let config = work.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "server = \"{}\"\nrooms = [\"standup\"]\nname = \"Room 4.01\"\ndevice_token = \"{token}\"\n",
            server.ws_url()
        ),
    )
    .expect("config written");
    let kiosk = Kiosk::start_unconfigured(&x.display, &config).await;
    let status = kiosk
        .wait("a pairing code on home", |s| {
            s["pairing"]["code"].is_string()
        })
        .await;
    let url = status["pairing"]["url"]
        .as_str()
        .expect("a link")
        .to_owned();
    let code = status["pairing"]["code"].as_str().expect("a code");
    assert!(url.ends_with(&format!("/p/{code}")), "{url}");
    // The window draws what the UI was told a moment ago.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiosk-window");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let shot = shots.join("home-pairing.png");
    let _ = Shot::take(&x.display, &shot).await;
    let read = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&shot)
        .output()
        .await
        .expect("zbarimg runs (apt-get install zbar-tools)");
    let text = String::from_utf8_lossy(&read.stdout);
    assert_eq!(
        text.trim(),
        url,
        "the QR code on screen reads back as the pairing link (see {})",
        shot.display()
    );
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
    drop(x.child);
}

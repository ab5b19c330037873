//! The kiosk's status panel and button end to end, on the sim board: a headless kiosk
//! with `[panel] png_dir` and `[button] sim = true` in a call with a second kiosk. The
//! button is pressed through `POST /button`; a short press mutes (and the other kiosk
//! sees it), a long press leaves, the next press joins again. The panel's PNG is compared
//! with what [`render`] draws for the state the call is in, pixel for pixel.
//!
//! Needs `portal-server` built beside the kiosk, as the e2e tests do.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Kiosk, Server, peer};
use portal_board::panel::{PanelCall, PanelState, render};
use portal_testkit::TempDir;
use serde_json::{Value, json};

/// Waits until the panel's PNG in `dir` shows `want`.
async fn panel_shows(dir: &Path, want: &PanelState) {
    let frame = render(want);
    let path = dir.join("panel.png");
    let deadline = tokio::time::Instant::now() + common::LONG;
    loop {
        let shown = std::fs::read(&path)
            .ok()
            .and_then(|png| portal_board::sim::from_png(&png).ok());
        if shown.as_ref() == Some(&frame) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the panel at {} never showed {want:?} (it shows {shown:?})",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn press(kiosk: &Kiosk, hold_ms: u64) {
    let (code, body) = kiosk
        .post("/button", &json!({ "holdMs": hold_ms }).to_string())
        .await;
    assert_eq!(code, 200, "POST /button: {body}");
}

fn in_call(room: &str, people: u32, mic_muted: bool) -> PanelState {
    PanelState {
        name: "Room 4.01".into(),
        call: PanelCall::InCall {
            room: room.into(),
            people,
            mic_muted,
        },
        address: Some("127.0.0.1".into()),
        ..PanelState::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_button_mutes_and_leaves_and_the_panel_follows_the_call() {
    let work = TempDir::new("kiosk-board");
    let server = Server::start("127.0.0.1:0", &work.path().join("server")).await;
    let room = format!("board-{}", rand::random::<u32>());
    let panel_dir = work.path().join("panel");
    let config = work.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "[panel]\npng_dir = {:?}\n[button]\nsim = true\n",
            panel_dir.display().to_string()
        ),
    )
    .expect("write the config");
    let config = config.display().to_string();
    let kiosk = Kiosk::start(
        &server,
        &room,
        &work.path().join("a"),
        &["--config", &config],
    )
    .await;
    let other = Kiosk::start(
        &server,
        &room,
        &work.path().join("b"),
        &["--name", "Room 4.02"],
    )
    .await;
    kiosk
        .wait("the other kiosk in the call", |s| {
            s["connected"] == json!(true) && peer(s, "Room 4.02").is_some()
        })
        .await;
    panel_shows(&panel_dir, &in_call(&room, 2, false)).await;

    // Short press: muted, on the kiosk, on the panel and for the other kiosk.
    press(&kiosk, 200).await;
    kiosk
        .wait("muted by the button", |s| s["micMuted"] == json!(true))
        .await;
    panel_shows(&panel_dir, &in_call(&room, 2, true)).await;
    other
        .wait("the other kiosk sees the microphone off", |s| {
            peer(s, "Room 4.01").is_some_and(|p| p["media"]["audio"] == json!(false))
        })
        .await;
    // And again: unmuted.
    press(&kiosk, 200).await;
    kiosk
        .wait("unmuted by the button", |s| s["micMuted"] == json!(false))
        .await;

    // Long press: out of the call; the other kiosk sees it leave.
    press(&kiosk, 2000).await;
    kiosk
        .wait("left with the button", |s| s["state"] == json!("idle"))
        .await;
    other
        .wait("the kiosk gone from the call", |s: &Value| {
            peer(s, "Room 4.01").is_none()
        })
        .await;
    panel_shows(
        &panel_dir,
        &PanelState {
            name: "Room 4.01".into(),
            address: Some("127.0.0.1".into()),
            ..PanelState::default()
        },
    )
    .await;

    // The next press joins again.
    press(&kiosk, 200).await;
    kiosk
        .wait("back in the call", |s| {
            s["connected"] == json!(true) && peer(s, "Room 4.02").is_some()
        })
        .await;

    for k in [kiosk, other] {
        let exit = k.stop().await;
        assert!(exit.success(), "clean exit: {exit}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_devices_are_warnings_and_only_a_sim_button_has_an_endpoint() {
    let work = TempDir::new("kiosk-no-button");
    let server = Server::start("127.0.0.1:0", &work.path().join("server")).await;
    // Devices that are not there: the kiosk starts and joins all the same.
    let config = work.path().join("kiosk.toml");
    std::fs::write(
        &config,
        "[panel]\ni2c = \"/dev/i2c-99\"\naddress = 0x3c\n[button]\nchip = \"/dev/gpiochip99\"\nline = 17\n",
    )
    .expect("write the config");
    let config = config.display().to_string();
    let kiosk = Kiosk::start(
        &server,
        "no-button",
        &work.path().join("a"),
        &["--config", &config],
    )
    .await;
    kiosk
        .wait("in the room without its devices", |s| {
            s["connected"] == json!(true)
        })
        .await;
    let (code, _) = kiosk.post("/button", r#"{"holdMs": 200}"#).await;
    assert_eq!(code, 404);
    let (code, _) =
        common::http(&kiosk.status, "POST", "/button", Some(r#"{"holdMs": 200}"#)).await;
    assert_eq!(code, 401, "the token is needed before anything else");
    kiosk.stop().await;
    server.stop().await;
}

/// With the touch screen, the button does what the call's buttons do: a short press
/// mutes, a long press leaves and the window goes home. Needs Xvfb, as `window.rs` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_button_of_a_windowed_kiosk_mutes_and_leaves() {
    let work = TempDir::new("kiosk-board-window");
    let server = Server::start("127.0.0.1:0", &work.path().join("server")).await;
    let x = common::Xvfb::start(800, 480).await;
    let config = work.path().join("kiosk.toml");
    std::fs::write(&config, "[button]\nsim = true\n").expect("write the config");
    let config = config.display().to_string();
    let kiosk = Kiosk::start_with_env(
        &server,
        "board-window",
        &work.path().join("a"),
        &["--config", &config],
        Some(&x.display),
        &[],
    )
    .await;
    kiosk
        .wait("in the call", |s| s["connected"] == json!(true))
        .await;
    press(&kiosk, 100).await;
    kiosk
        .wait("muted by the button", |s| s["micMuted"] == json!(true))
        .await;
    press(&kiosk, 1600).await;
    kiosk
        .wait("home after a long press", |s| s["state"] == json!("idle"))
        .await;
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
    drop(x);
}

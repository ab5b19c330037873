//! The update agent inside the kiosk, end to end: a headless kiosk with `[update]`
//! pointing at a real `portal-server --updates-dir` feed and real RAUC 1.8 on a private
//! bus (file-backed A/B slots, from `portal_testkit::rauc`). It shows the offered version
//! under `"update"` in `/status`; "install now" (`POST /update/install`) waits while a
//! second kiosk is in the call with it, and installs into slot B once that one left.
//!
//! The maintenance window is put twelve hours away, so nothing installs before "install
//! now" (the agent downloads before the other kiosk joins, and would otherwise install
//! at once).
//!
//! Needs `portal-server` built beside the kiosk (as the e2e tests do), `rauc`,
//! `dbus-daemon`, `mksquashfs` and `openssl`, and root (RAUC mounts the bundle).

mod common;

use std::time::Duration;

use chrono::Timelike as _;
use common::{Kiosk, Server, http};
use portal_testkit::TempDir;
use portal_testkit::rauc::{BundleSpec, RaucSystem, build_bundle, make_keys, write_feed_manifest};
use serde_json::Value;

const COMPATIBLE: &str = "portal-kiosk-test";

fn update(status: &Value) -> &Value {
    &status["update"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_waits_for_the_call_to_end_then_installs_into_b() {
    let work = TempDir::new("kiosk-update");
    let keys = make_keys(work.path(), "good").expect("test keys");
    let sys = work.join("sys");
    std::fs::create_dir_all(&sys).unwrap();
    let rauc = RaucSystem::start(&sys, COMPATIBLE, &keys.ca_cert, 8 << 20).expect("rauc");

    // The feed offers 1.1.0 (the kiosk runs 0.1.0).
    let feed = work.join("feed");
    let content = work.join("content");
    std::fs::create_dir_all(feed.join(COMPATIBLE)).unwrap();
    std::fs::create_dir_all(&content).unwrap();
    let image: Vec<u8> = (0..1 << 20).map(|_| rand::random::<u8>()).collect();
    std::fs::write(content.join("rootfs.img"), &image).unwrap();
    let built = build_bundle(&BundleSpec {
        content: &content,
        cert: &keys.cert,
        key: &keys.key,
        compatible: COMPATIBLE,
        version: "1.1.0",
        out: &feed.join(COMPATIBLE).join("portal-1.1.0.raucb"),
        post_install_hook: None,
    })
    .expect("rauc bundle");
    write_feed_manifest(&built, COMPATIBLE, "1.1.0", "kiosk test").unwrap();
    let server = Server::start_with(
        "127.0.0.1:0",
        &work.join("server"),
        &["--updates-dir", feed.to_str().unwrap()],
    )
    .await;

    let later = (chrono::Local::now().hour() + 12) % 24;
    let rebooted = work.join("rebooted");
    let config = work.join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "[update]\nwindow = \"{later:02}:00-{later:02}:30\"\ndata_dir = {:?}\n\
             dbus_address = {:?}\nreboot_cmd = \"touch {}\"\n",
            work.join("ota").display().to_string(),
            rauc.address(),
            rebooted.display(),
        ),
    )
    .unwrap();
    let room = "ota";
    let kiosk = Kiosk::start(
        &server,
        room,
        &work.join("files"),
        &["--config", config.to_str().unwrap()],
    )
    .await;

    // Alone in its room: offered, downloaded, waiting for the window.
    let s = kiosk
        .wait("1.1.0 downloaded and ready", |s| {
            update(s)["state"] == "ready" && update(s)["available"] == "1.1.0"
        })
        .await;
    assert_eq!(update(&s)["current"], "0.1.0", "{s:#}");
    assert!(update(&s)["error"].is_null(), "{s:#}");

    // The routes are guarded like every other one, and only POST.
    let (code, _) = http(&kiosk.status, "POST", "/update/install", Some("{}")).await;
    assert_eq!(code, 401);
    let (code, _) = kiosk.get("/update/install").await;
    assert_eq!(code, 405);
    let (code, _) = kiosk.post("/update/install", "{\"now\": true}").await;
    assert_eq!(code, 400);

    // Another kiosk joins: the call defers "install now".
    let other = Kiosk::start(
        &server,
        room,
        &work.join("files-other"),
        &["--name", "Other"],
    )
    .await;
    let (code, body) = other.post("/update/check", "{}").await;
    assert_eq!(code, 404, "no agent without [update]: {body}");
    assert!(update(&other.status().await).is_null());
    kiosk
        .wait("the agent told of the call", |s| {
            update(s)["deferredByCall"] == true
        })
        .await;
    let (code, body) = kiosk.post("/update/install", "").await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = kiosk.post("/update/check", "{}").await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = kiosk.status().await;
    assert_eq!(update(&s)["state"], "ready", "{s:#}");
    assert_eq!(rauc.boot_var("PRIMARY"), "A");
    assert!(!rebooted.exists(), "no restart during the call");
    assert!(
        std::fs::read(rauc.slot_image("B"))
            .unwrap()
            .iter()
            .all(|b| *b == 0),
        "slot B untouched during the call"
    );

    // The call ends: installed into B, and the restart asked for.
    other.stop().await;
    kiosk
        .wait("installed and restarting", |s| {
            update(s)["state"] == "rebooting"
        })
        .await;
    assert!(
        std::fs::read(rauc.slot_image("B"))
            .unwrap()
            .starts_with(&image),
        "slot B holds the new image"
    );
    assert_eq!(rauc.boot_var("PRIMARY"), "B");
    portal_testkit::wait_until(Duration::from_secs(10), "the restart command", || {
        rebooted.exists()
    });
    kiosk.stop().await;
    server.stop().await;
}

//! Joins the server refuses, end to end with the real `portal-server` and headless
//! `portal-kiosk`s: a wrong password is final (reported on `/status`, then the process
//! exits with status 2); a full room is waited for until a seat frees.

mod common;

use std::time::{Duration, Instant};

use common::{Kiosk, LONG, Server};
use portal_testkit::TempDir;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_reported_and_a_headless_kiosk_exits() {
    let data = TempDir::new("server-password");
    let work = TempDir::new("work-password");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let room = "locked";
    let owner = Kiosk::start(
        &server,
        room,
        &work.path().join("a"),
        &["--password", "right horse battery", "--name", "Owner"],
    )
    .await;
    owner
        .wait("the first kiosk made the room", |s| {
            s["state"] == json!("joined")
        })
        .await;

    let started = Instant::now();
    let mut wrong = Kiosk::start(
        &server,
        room,
        &work.path().join("b"),
        &["--password", "wrong guess", "--name", "Guesser"],
    )
    .await;
    let status = wrong
        .wait("the refusal on /status", |s| s["state"] == json!("failed"))
        .await;
    eprintln!(
        "refusal on /status {} ms after the kiosk started",
        started.elapsed().as_millis()
    );
    assert_eq!(
        status["error"]["code"],
        json!("wrongPassword"),
        "{status:#}"
    );
    assert_eq!(status["connected"], json!(false));
    let exit = wrong
        .exited(LONG)
        .await
        .expect("a kiosk whose one room can never be joined exits");
    assert_eq!(exit.code(), Some(2), "{exit}");

    let exit = owner.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_is_waited_for_until_a_seat_frees() {
    let data = TempDir::new("server-full");
    let work = TempDir::new("work-full");
    let server = Server::start_with("127.0.0.1:0", data.path(), &["--max-peers", "1"]).await;
    let room = "small";
    let first = Kiosk::start(&server, room, &work.path().join("a"), &["--name", "First"]).await;
    first
        .wait("the first kiosk in", |s| s["state"] == json!("joined"))
        .await;
    let mut second =
        Kiosk::start(&server, room, &work.path().join("b"), &["--name", "Second"]).await;
    let status = second
        .wait("the second kiosk waiting for a seat", |s| {
            s["state"] == json!("reconnecting")
        })
        .await;
    assert!(status["attempt"].as_u64().unwrap_or(0) >= 1, "{status:#}");
    assert!(
        second.exited(Duration::from_secs(2)).await.is_none(),
        "a full room is not final for a headless kiosk"
    );
    let exit = first.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    second
        .wait("the second kiosk in once the seat is free", |s| {
            s["state"] == json!("joined")
        })
        .await;
    let exit = second.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
}

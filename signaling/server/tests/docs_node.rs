//! The stock npm clients (yjs + y-websocket) against the real server: the Node suite in
//! `signaling/web/tests/docs/`, and a yrs client converging with a y-websocket client.

mod docs_client;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use docs_client::DocClient;
use portal_testkit::ServerProc;

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// `node` and the web client's packages, or a clear failure.
fn node_ready() -> PathBuf {
    let web = web_dir();
    assert!(
        web.join("node_modules/y-websocket").is_dir() && web.join("node_modules/ws").is_dir(),
        "{} has no node_modules with y-websocket and ws: run `cargo xtask setup` first",
        web.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "`node` is not on PATH: run `cargo xtask setup` first"
    );
    web
}

#[test]
fn stock_y_websocket_clients_pass_the_node_suite() {
    let web = node_ready();
    let server = ServerProc::start(&[]);
    let mut node = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg("tests/docs/docs.test.mjs")
        .current_dir(&web)
        .env("PORTAL_URL", format!("ws://{}", server.addr))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    // A suite that hangs is killed: its output still says where.
    let deadline = Instant::now() + Duration::from_secs(120);
    while node.try_wait().expect("node status").is_none() {
        if Instant::now() > deadline {
            let _ = node.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = node.wait_with_output().expect("node output");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "node --test failed:\n{log}");
    assert!(log.contains("pass 4"), "expected 4 passing tests:\n{log}");
}

#[tokio::test]
async fn a_yrs_client_and_a_y_websocket_client_converge() {
    let web = node_ready();
    let server = ServerProc::start(&[]);
    let mut rust = DocClient::join(server.addr, "interop").await;
    // The script gives up by itself after 15 s, so it never outlives the test for long.
    let node = Command::new("node")
        .arg("tests/docs/interop-peer.mjs")
        .current_dir(&web)
        .env("PORTAL_URL", format!("ws://{}", server.addr))
        .env("ROOM", "interop")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let node = tokio::task::spawn_blocking(move || node.wait_with_output());

    rust.pump_until(
        |c| c.text().contains("from-node;"),
        "the Node client's edit",
    )
    .await;
    rust.type_text("from-rust;").await;
    let out = tokio::time::timeout(Duration::from_secs(20), node)
        .await
        .expect("node finishes")
        .unwrap()
        .expect("node output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Node client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node_text: String = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|json| {
            serde_json::from_str::<serde_json::Value>(json).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .expect("a RESULT line");
    assert_eq!(node_text, "from-node;from-rust;");
    assert_eq!(rust.text(), node_text);
}

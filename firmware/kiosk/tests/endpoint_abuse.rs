//! The kiosk's local endpoint against someone who should not use it: a program or page
//! without the token, a DNS-rebinding page (its own host name), a cross-site form post
//! (`text/plain`), and a request to offer an arbitrary file of the kiosk's to a peer.

mod common;

use common::{Kiosk, Server, http, http_as};
use portal_testkit::TempDir;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_answers_only_the_bearer_of_its_token() {
    let data = TempDir::new("server-endpoint");
    let work = TempDir::new("work-endpoint");
    let server = Server::start("127.0.0.1:0", data.path()).await;
    let kiosk = Kiosk::start(&server, "guarded", &work.path().join("files"), &[]).await;
    let addr = kiosk.status.clone();

    // The health check needs nothing.
    let (code, body) = http(&addr, "GET", "/healthz", None).await;
    assert_eq!((code, body), (200, json!({"ok": true})));

    // Everything else needs the token.
    for (method, path, body) in [
        ("GET", "/status", ""),
        ("POST", "/chat", r#"{"text": "hi"}"#),
        ("POST", "/snapshot", ""),
        (
            "POST",
            "/files/send",
            r#"{"peer": 1, "path": "/etc/passwd"}"#,
        ),
        ("POST", "/files/1/accept", ""),
    ] {
        let (code, answer) = http(&addr, method, path, Some(body)).await;
        assert_eq!(code, 401, "{method} {path} without a token: {answer}");
        let (code, answer) = http_as(&addr, Some("not-the-token"), method, path, Some(body)).await;
        assert_eq!(code, 401, "{method} {path} with a wrong token: {answer}");
    }

    // A rebinding page sends its own host name, even with a token it could not have.
    let bearer = format!("Bearer {}", kiosk.token);
    let answer = raw(
        &addr,
        &format!(
            "GET /status HTTP/1.1\r\nHost: attacker.example:8090\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

    // A cross-site form post is text/plain: refused before it is read.
    let reply = portal_testkit::http(
        &addr,
        "POST",
        "/chat",
        &[("Content-Type", "text/plain"), ("Authorization", &bearer)],
        Some(br#"{"text": "from a page"}"#),
    )
    .await;
    assert_eq!(reply.status, 415, "{}", reply.text());

    // With the token, the kiosk answers, and still offers no file from outside the
    // received-files folder (or the shared one, not configured here).
    let status = kiosk.status().await;
    assert_eq!(status["room"], json!("guarded"));
    let outside = work.path().join("secret.txt");
    std::fs::write(&outside, "not for peers").expect("a file outside");
    for path in ["/etc/passwd", outside.to_str().expect("utf-8")] {
        let body = json!({"peer": 1, "path": path}).to_string();
        let (code, answer) = kiosk.post("/files/send", &body).await;
        assert_eq!(code, 400, "{path}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("only received files")),
            "{path}: {answer}"
        );
    }
    let exit = kiosk.stop().await;
    assert!(exit.success(), "clean exit: {exit}");
    server.stop().await;
}

/// One request written as it is; the whole answer.
async fn raw(addr: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer
}

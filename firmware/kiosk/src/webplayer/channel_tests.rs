//! The player page's channel against abuse: it is reachable by any web page or process on
//! the kiosk's machine (wrong key, foreign origin, a second page, big or malformed
//! messages), and it carries commands and reports.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use portal_testkit::http;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::channel::{Channel, Command, MAX_MESSAGE};

const LIMIT: Duration = Duration::from_mins(1);

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the channel's WebSocket with `key` and `origin`.
async fn open(
    channel: &Channel,
    key: &str,
    origin: &str,
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let url = format!("ws://{}/channel?key={key}", channel.addr());
    let mut req = url.into_client_request().expect("a request");
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(origin).expect("header"));
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

fn own_origin(channel: &Channel) -> String {
    format!("http://{}", channel.addr())
}

fn refused_with(result: Result<Client, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("refused without an HTTP answer: {e}"),
        Ok(_) => panic!("the connection was accepted"),
    }
}

/// The next text message, skipping nothing else; `None` when the connection ends.
async fn next_text(ws: &mut Client) -> Option<String> {
    loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Text(t))) => return Some(t.as_str().to_owned()),
            Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn the_page_needs_the_key() {
    let channel = Channel::start("http://127.0.0.1:9/api.js", "dQw4w9WgXcQ")
        .await
        .expect("channel");
    let addr = channel.addr();
    let key = channel.key().to_owned();
    let page = http(addr, "GET", &format!("/player?key={key}"), &[], None).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("\"api\":\"http://127.0.0.1:9/api.js\""),
        "{html}"
    );
    assert!(html.contains("dQw4w9WgXcQ") && html.contains(&key));
    assert!(
        !html.contains("PORTAL_CONFIG"),
        "the settings are filled in"
    );
    let mut wrong = key.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).expect("hex");
    for path in [
        format!("/player?key={wrong}"),
        "/player".to_owned(),
        format!("/player?key={}", &key[..16]),
        format!("/channel?key={wrong}"),
    ] {
        let reply = http(addr, "GET", &path, &[], None).await;
        assert_eq!(reply.status, 403, "{path}");
        assert!(!reply.text().contains(&key));
    }
    assert_eq!(http(addr, "GET", "/", &[], None).await.status, 404);
    assert_eq!(
        refused_with(open(&channel, &wrong, &own_origin(&channel)).await),
        403
    );
    assert!(channel.stats().refused.load(Relaxed) >= 5);
}

#[tokio::test]
async fn the_channel_refuses_other_origins_a_second_page_and_big_messages() {
    let channel = Channel::start("http://127.0.0.1:9/api.js", "dQw4w9WgXcQ")
        .await
        .expect("channel");
    let key = channel.key().to_owned();
    let own = own_origin(&channel);
    for origin in ["http://evil.example", "http://localhost:1", "null"] {
        assert_eq!(
            refused_with(open(&channel, &key, origin).await),
            403,
            "{origin}"
        );
    }
    // A plain request with the key is not a WebSocket.
    let plain = http(
        channel.addr(),
        "GET",
        &format!("/channel?key={key}"),
        &[("Origin", &own)],
        None,
    )
    .await;
    assert_eq!(plain.status, 426);

    let mut first = open(&channel, &key, &own).await.expect("the page connects");
    assert_eq!(refused_with(open(&channel, &key, &own).await), 409);

    // Commands reach the page; what it says back reaches the kiosk.
    channel.send(Command::Play).expect("queued");
    channel
        .send(Command::Seek { time: 10.0, seq: 1 })
        .expect("queued");
    assert_eq!(
        next_text(&mut first).await.as_deref(),
        Some(r#"{"cmd":"play"}"#)
    );
    assert_eq!(
        next_text(&mut first).await.as_deref(),
        Some(r#"{"cmd":"seek","time":10.0,"seq":1}"#)
    );
    // Nonsense is counted and ignored; the connection stays.
    for junk in [
        "not json",
        r#"{"type":"bogus"}"#,
        r#"{"type":"sample","time":"x"}"#,
    ] {
        first.send(Message::text(junk)).await.expect("sent");
    }
    first
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("sent");
    let sample = r#"{"type":"sample","time":3.5,"state":2,"duration":30,"rate":1,"rates":[1,2],"ready":true,"paused":true,"video":"dQw4w9WgXcQ"}"#;
    first.send(Message::text(sample)).await.expect("sent");
    let mut state = channel.subscribe();
    let report = tokio::time::timeout(LIMIT, state.wait_for(|s| s.report.is_some()))
        .await
        .expect("in time")
        .expect("open")
        .report
        .clone()
        .expect("a report");
    assert_eq!((report.time, report.state, report.rates.len()), (3.5, 2, 2));
    assert_eq!(channel.stats().ignored.load(Relaxed), 4);

    // Too big: the connection is closed, and the next page may connect.
    let big = "x".repeat(MAX_MESSAGE + 1);
    let _ = first.send(Message::text(big)).await;
    assert_eq!(
        next_text(&mut first).await,
        None,
        "closed after a big message"
    );
    tokio::time::timeout(LIMIT, state.wait_for(|s| !s.connected))
        .await
        .expect("in time")
        .expect("open");
    let _second = open(&channel, &key, &own)
        .await
        .expect("a new page may connect");
}

//! What every answer of the real `portal-server` carries (Content-Security-Policy, no
//! framing, no sniffing, origin-only referrers) and the names it admits.

mod common;

use common::{Client, http_get};
use portal_proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, Role, ServerMessage};
use portal_testkit::ServerProc;

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn every_answer_has_the_security_headers() {
    let server = ServerProc::start(&[]);
    for path in [
        "/",
        "/r/standup",
        "/index.html",
        "/nope.js",
        "/healthz",
        "/metrics",
    ] {
        let (status, head, _) = http_get(server.addr, path, &[]).await;
        assert!(status == 200 || status == 404, "{path}: {status}");
        let csp = header(&head, "content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP in\n{head}"));
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "frame-src https://www.youtube.com",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("'unsafe-eval'"), "{csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert_eq!(header(&head, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&head, "referrer-policy"), Some("strict-origin"));
    }
}

#[tokio::test]
async fn names_lose_invisible_characters_and_empty_ones_are_refused() {
    let server = ServerProc::start(&[]);
    let mut host = Client::hello(&server, "host").await;
    host.join("names", None).await;
    // Bidi overrides, zero-width characters and wide spaces are gone from what others see.
    let mut guest = Client::hello(&server, "\u{202E}Room\u{200B} \u{3000} 4.01\u{2069}").await;
    guest.join("names", None).await;
    match host.recv().await {
        ServerMessage::PeerJoined { peer } => assert_eq!(peer.name, "Room 4.01"),
        other => panic!("{other:?}"),
    }
    for bad in [
        "\u{200B}\u{FEFF}",
        " \u{202E} ",
        "bell\u{7}",
        &"x".repeat(65),
    ] {
        let mut ws = common::connect(&server).await;
        let hello = ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            name: bad.into(),
            role: Role::Browser,
            resume: None,
            device: None,
        };
        common::send(&mut ws, &hello).await;
        match common::recv(&mut ws).await {
            ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::InvalidName),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

//! Speaks to the real `portal-server` (started with `portal_testkit::ServerProc`) over
//! real WebSockets and plain HTTP.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portal_proto::pairing::DeviceHello;
use portal_proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, Role, ServerMessage};
use portal_testkit::ServerProc;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A signaling client speaking JSON over a real WebSocket.
pub struct Client {
    pub ws: Ws,
    pub id: PeerId,
}

pub async fn connect(server: &ServerProc) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("websocket connect");
    ws
}

impl Client {
    /// Connects and says hello.
    pub async fn hello(server: &ServerProc, name: &str) -> Client {
        Self::hello_as(server, name, Role::Browser).await
    }

    pub async fn hello_as(server: &ServerProc, name: &str, role: Role) -> Client {
        Self::hello_over(connect(server).await, name, role).await
    }

    /// Says hello over a WebSocket already open (from a chosen address, say).
    pub async fn hello_over(mut ws: Ws, name: &str, role: Role) -> Client {
        send(
            &mut ws,
            &ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                name: name.into(),
                role,
                resume: None,
                device: None,
            },
        )
        .await;
        match recv(&mut ws).await {
            ServerMessage::Welcome { peer_id, .. } => Client { ws, id: peer_id },
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Connects from `from` and says hello as an enrolled kiosk (`token`), its control
    /// connection or a call. The name is the server's to choose.
    pub async fn kiosk_from(
        server: &ServerProc,
        from: IpAddr,
        token: &str,
        control: bool,
    ) -> Client {
        let tcp = tcp_from(from, server.addr).await;
        let (mut ws, _): (Ws, _) =
            tokio_tungstenite::client_async(server.ws_url(), MaybeTlsStream::Plain(tcp))
                .await
                .expect("websocket handshake");
        send(&mut ws, &kiosk_hello(token, control)).await;
        match recv(&mut ws).await {
            ServerMessage::Welcome { peer_id, .. } => Client { ws, id: peer_id },
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// [`Client::kiosk_from`] 127.0.0.1.
    pub async fn kiosk(server: &ServerProc, token: &str, control: bool) -> Client {
        Self::kiosk_from(server, loopback(1), token, control).await
    }

    /// Reads until a `pairingCode` arrives; its code and link.
    pub async fn next_code(&mut self) -> (String, String) {
        loop {
            if let ServerMessage::PairingCode { code, url, .. } = self.recv().await {
                return (code, url);
            }
        }
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        send(&mut self.ws, msg).await;
    }

    pub async fn recv(&mut self) -> ServerMessage {
        recv(&mut self.ws).await
    }

    /// Joins `room` (with an optional password) and returns the `joined` message.
    pub async fn join(&mut self, room: &str, password: Option<&str>) -> ServerMessage {
        self.send(&ClientMessage::Join {
            room: room.into(),
            password: password.map(Into::into),
        })
        .await;
        self.recv().await
    }

    /// Asserts nothing arrives within `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        match tokio::time::timeout(Duration::from_millis(ms), next_text(&mut self.ws)).await {
            Err(_) => {}
            Ok(Some(text)) => panic!("expected silence, got {text}"),
            Ok(None) => panic!("expected silence, the connection closed"),
        }
    }
}

/// A kiosk's `hello` with its device token.
pub fn kiosk_hello(token: &str, control: bool) -> ClientMessage {
    ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        name: "whatever the kiosk says".into(),
        role: Role::Kiosk,
        resume: None,
        device: Some(DeviceHello {
            token: token.into(),
            control,
        }),
    }
}

/// Runs `portal-server --data-dir DIR ARGS...` (a command, not the server) to its end.
pub fn server_cli(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_portal-server"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run portal-server")
}

/// Enrols a kiosk named `name` with `portal-server kiosk add`; its device token.
pub fn enrol(data_dir: &std::path::Path, name: &str) -> String {
    let out = server_cli(data_dir, &["kiosk", "add", name]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kiosk add failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("device_token = \""))
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no token in {stdout}"))
        .to_owned()
}

pub async fn send(ws: &mut Ws, msg: &ClientMessage) {
    ws.send(Message::Text(msg.to_json().into()))
        .await
        .expect("send");
}

pub async fn send_raw(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_owned().into()))
        .await
        .expect("send");
}

/// The next text frame, or `None` when the connection closed.
pub async fn next_text(ws: &mut Ws) -> Option<String> {
    while let Some(frame) = ws.next().await {
        match frame {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

/// The next server message within 5 s.
pub async fn recv(ws: &mut Ws) -> ServerMessage {
    let text = tokio::time::timeout(Duration::from_secs(5), next_text(ws))
        .await
        .expect("a message within 5 s")
        .expect("connection open");
    ServerMessage::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A plain HTTP GET over a raw TCP socket (status, headers, body).
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let reply = portal_testkit::http(addr, "GET", path, headers, None).await;
    (reply.status, reply.head, reply.body)
}

/// A loopback address other than 127.0.0.1, for one attacker.
pub fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

pub async fn tcp_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    socket.connect(to).await.expect("connect")
}

/// A signaling client connected from `from`, after `hello`.
pub async fn client_from(server: &ServerProc, from: IpAddr, name: &str, role: Role) -> Client {
    let tcp = tcp_from(from, server.addr).await;
    let (ws, _): (Ws, _) =
        tokio_tungstenite::client_async(server.ws_url(), MaybeTlsStream::Plain(tcp))
            .await
            .expect("websocket handshake");
    Client::hello_over(ws, name, role).await
}

/// The value of the `/metrics` line that starts with `line_start`.
pub async fn metric(server: &ServerProc, line_start: &str) -> u64 {
    let (status, _, body) = http_get(server.addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    body.lines()
        .find_map(|l| {
            l.strip_prefix(line_start)
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no metric {line_start} in\n{body}"))
}

/// Asserts that `msg` is the typed error `code` with a message.
pub fn expect_error(msg: &ServerMessage, code: ErrorCode) {
    match msg {
        ServerMessage::Error { code: got, message } => {
            assert_eq!(*got, code, "message: {message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected error {code}, got {other:?}"),
    }
}

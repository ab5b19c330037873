//! The local endpoint: a small HTTP/1 server for tests, health checks and later the OTA
//! agent. Every request becomes a [`Request`] to whoever runs the kiosk now (the call's
//! session, or the home controller); this file only parses HTTP and formats answers. The
//! JSON of `/status` is built in [`crate::status`].
//!
//! - `GET /status`: the room, the connection, each peer's media counters, what the
//!   kiosk sends, what fills the stage, the chat log and the file transfers (JSON); with
//!   a device token also the pairing code (`pairing`) and the paired laptops (`paired`).
//!   `"watch"`: the room's watch-together video as the kiosk plays it (`source`,
//!   `playing`, `rate`, and `position`, the player's own, read when asked), or `null`.
//! - `GET /editor`: the room's code editor as the kiosk reads it along: `language`,
//!   `text`, `presenter` (a name or `null`), `followLine` (the 1-based line the view keeps
//!   in sight), `connected`, `peers` (name, colour, presenter, cursor line); 409 when not
//!   in a room.
//! - `POST /chat` `{"text": "..."}`: sends a chat line to everyone.
//! - `POST /snapshot` `{"peer": ID}` (or no body: the peer on stage): writes a PNG of that
//!   peer's latest frame and returns `{"path": ...}`.
//! - `POST /files/{id}/accept` and `/decline`: decides an offered file (policy `ask`);
//!   `id` is `PEER-ID` as listed in `/status`, or the bare transfer id when only one
//!   waiting offer has it (the engine decides which).
//! - `POST /files/send` `{"peer": ID, "path": "/abs/file"}`: offers a file to a peer.
//!
//! - `POST /button` `{"holdMs": N}`: presses the *simulated* button for N ms (a long
//!   press from 1500). Only with `[button] sim = true`; otherwise 404.
//!
//! - `POST /update/check` and `POST /update/install` (no body, or `{}`): "check now" and
//!   "install now" (still never during a call) to the update agent; 404 without
//!   `[update]`. `/status` says where it stands under `"update"`.
//!
//! - `GET /healthz`: `{"ok": true}`, the one request that needs no token.
//!
//! Every other request needs `Authorization: Bearer TOKEN`, a `Host` that is an address
//! or `localhost`, and (with a body) `Content-Type: application/json`; see
//! [`crate::access`]. A connection that sends no complete header within
//! [`HEADER_TIMEOUT`] is closed.
//!
//! A bad request gets a 400 (401, 403, 404, 405, 413, 415) with `{"error": "..."}`;
//! nothing here panics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use portal_engine::FileRef;
use portal_proto::PeerId;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use portal_board::sim::SimButtonHandle;

use crate::access::{Token, local_host};
use crate::remote::RemoteHandle;
use crate::request::Request;
use crate::update::Updater;

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// How long a client may take to send its request's header.
pub(crate) const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

type Reply = hyper::Response<Full<Bytes>>;

/// Binds `addr`; the returned future serves until dropped.
pub(crate) async fn bind(
    addr: SocketAddr,
    token: Token,
    requests: mpsc::Sender<Request>,
    extras: Extras,
) -> anyhow::Result<(SocketAddr, impl Future<Output = ()>)> {
    let extras = std::sync::Arc::new(extras);
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let serve = async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "status endpoint accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let requests = requests.clone();
            let token = token.clone();
            let extras = std::sync::Arc::clone(&extras);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let requests = requests.clone();
                    let token = token.clone();
                    let extras = std::sync::Arc::clone(&extras);
                    async move { Ok::<_, Infallible>(handle(req, &token, requests, &extras).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "status connection ended with an error");
                }
            });
        }
    };
    Ok((local, serve))
}

fn reply(status: StatusCode, body: &Value) -> Reply {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Reply {
    reply(status, &json!({ "error": message.to_string() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatBody {
    text: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SnapshotBody {
    peer: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ButtonBody {
    hold_ms: u64,
}

/// A body that must be empty or `{}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoBody {}

/// The longest simulated press accepted.
const MAX_HOLD_MS: u64 = 60_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendFileBody {
    peer: u64,
    path: PathBuf,
}

async fn body_json<T: serde::de::DeserializeOwned>(
    req: hyper::Request<Incoming>,
    empty_ok: Option<T>,
) -> Result<T, Reply> {
    let bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {MAX_BODY} bytes or broken"),
            ));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace)
        && let Some(default) = empty_ok
    {
        return Ok(default);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))
}

/// Sends `make(reply)` to the session and waits for its answer.
async fn ask<T>(
    requests: &mpsc::Sender<Request>,
    make: impl FnOnce(oneshot::Sender<T>) -> Request,
) -> Result<T, Reply> {
    let (tx, rx) = oneshot::channel();
    if requests.send(make(tx)).await.is_err() {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the kiosk is stopping",
        ));
    }
    rx.await
        .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "the kiosk is stopping"))
}

/// What answers besides the kiosk's controller: the simulated button, the update agent
/// and the remote control, when there are.
#[derive(Clone, Debug, Default)]
pub(crate) struct Extras {
    pub presser: Option<SimButtonHandle>,
    pub updater: Option<Updater>,
    pub remote: Option<RemoteHandle>,
}

async fn handle(
    req: hyper::Request<Incoming>,
    token: &Token,
    requests: mpsc::Sender<Request>,
    extras: &Extras,
) -> Reply {
    if let Err(refused) = admit(&req, token) {
        return *refused;
    }
    match route(req, &requests, extras).await {
        Ok(reply) | Err(reply) => reply,
    }
}

/// The checks every request passes before it is read (see [`crate::access`]).
fn admit(req: &hyper::Request<Incoming>, token: &Token) -> Result<(), Box<Reply>> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    if !local_host(header(hyper::header::HOST)) {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "the Host header must be an address or localhost",
        )));
    }
    if req.method() == Method::GET && req.uri().path() == "/healthz" {
        return Ok(());
    }
    if !token.admits(header(hyper::header::AUTHORIZATION)) {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "Authorization: Bearer TOKEN required (the token is in the kiosk's status-token file)",
        )));
    }
    let json = header(hyper::header::CONTENT_TYPE)
        .and_then(|t| t.split(';').next())
        .is_some_and(|media| media.trim() == "application/json");
    if req.method() == Method::POST && !json {
        return Err(Box::new(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: application/json required",
        )));
    }
    Ok(())
}

async fn route(
    req: hyper::Request<Incoming>,
    requests: &mpsc::Sender<Request>,
    extras: &Extras,
) -> Result<Reply, Reply> {
    let (presser, updater) = (extras.presser.as_ref(), extras.updater.as_ref());
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let method = req.method().clone();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["healthz"]) => Ok(reply(StatusCode::OK, &json!({ "ok": true }))),
        (Method::GET, ["status"]) => {
            let mut status = ask(requests, Request::Status).await?;
            crate::status::add_update(&mut status, updater);
            if let Some(remote) = &extras.remote {
                remote.add_to_status(&mut status);
            }
            Ok(reply(StatusCode::OK, &status))
        }
        (Method::GET, ["editor"]) => {
            let editor = ask(requests, Request::Editor)
                .await?
                .map_err(|e| error(StatusCode::CONFLICT, e))?;
            Ok(reply(StatusCode::OK, &editor))
        }
        (Method::POST, ["chat"]) => {
            let body: ChatBody = body_json(req, None).await?;
            ask(requests, |reply| Request::Chat {
                text: body.text,
                reply,
            })
            .await?
            .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
            Ok(reply(StatusCode::OK, &json!({ "sent": true })))
        }
        (Method::POST, ["snapshot"]) => {
            let body: SnapshotBody = body_json(req, Some(SnapshotBody::default())).await?;
            let path = ask(requests, |reply| Request::Snapshot {
                peer: body.peer.map(PeerId),
                reply,
            })
            .await?
            .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
            Ok(reply(
                StatusCode::OK,
                &json!({ "path": path.display().to_string() }),
            ))
        }
        (Method::POST, ["files", "send"]) => {
            let body: SendFileBody = body_json(req, None).await?;
            let id = ask(requests, |reply| Request::SendFile {
                peer: PeerId(body.peer),
                path: body.path,
                reply,
            })
            .await?
            .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
            Ok(reply(
                StatusCode::OK,
                &json!({ "id": format!("{}-{id}", body.peer) }),
            ))
        }
        (Method::POST, ["files", id, action @ ("accept" | "decline")]) => {
            let file: FileRef = id.parse().map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
            let accept = *action == "accept";
            ask(requests, |reply| Request::Decide {
                file,
                accept,
                reply,
            })
            .await?
            .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
            Ok(reply(StatusCode::OK, &json!({ "ok": true })))
        }
        (Method::POST, ["button"]) if presser.is_some() => {
            let body: ButtonBody = body_json(req, None).await?;
            if body.hold_ms > MAX_HOLD_MS {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    format!("holdMs is at most {MAX_HOLD_MS}"),
                ));
            }
            let held = std::time::Duration::from_millis(body.hold_ms);
            if !presser.is_some_and(|p| p.hold(held)) {
                return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the button is gone"));
            }
            Ok(reply(StatusCode::OK, &json!({ "pressed": true })))
        }
        (Method::POST, ["update", action @ ("check" | "install")]) if updater.is_some() => {
            let NoBody {} = body_json(req, Some(NoBody {})).await?;
            let updater = updater.expect("checked");
            let sent = if *action == "check" {
                updater.check_now().await
            } else {
                updater.install_now().await
            };
            if !sent {
                return Err(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the update agent stopped",
                ));
            }
            Ok(reply(StatusCode::OK, &json!({ "sent": true })))
        }
        (_, ["update", "check" | "install"]) if updater.is_some() => {
            Err(error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"))
        }
        (_, ["status" | "editor" | "chat" | "snapshot"] | ["files", ..]) => {
            Err(error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"))
        }
        _ => Err(error(
            StatusCode::NOT_FOUND,
            format!("no such endpoint {path}"),
        )),
    }
}

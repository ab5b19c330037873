//! HTTP: routing, static files, document access checks and the WebSocket upgrade.

#![allow(clippy::wildcard_imports)]
use super::*;

/// Serves one accepted connection. `slot` (its place in its address's count) is held
/// until the connection closes, or the WebSocket it became does (see [`upgrade`]).
pub(super) async fn serve_http<S>(stream: S, addr: SocketAddr, shared: Arc<Shared>, slot: Arc<Slot>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let shared = shared.clone();
        req.extensions_mut().insert(slot.clone());
        async move { Ok::<_, Infallible>(with_security_headers(route(req, addr, shared).await)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%addr, error = %e, "http connection ended with an error");
    }
}

/// Boxed, so a bundle from the update feed can stream from its file.
type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// A body already in memory.
fn full(bytes: impl Into<Bytes>) -> Body {
    use http_body_util::BodyExt as _;
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Headers on every answer but a WebSocket upgrade: the client's Content-Security-Policy
/// (see [`CONTENT_SECURITY_POLICY`]), no framing, no content sniffing, and a referrer
/// that is the origin alone (room names are in paths; YouTube's player refuses to play
/// with no referrer at all, so `no-referrer` would break watch-together).
fn with_security_headers(mut resp: Response<Body>) -> Response<Body> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        return resp;
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin"),
    );
    resp
}

async fn route(req: Request<Incoming>, addr: SocketAddr, shared: Arc<Shared>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/ws") => match may_upgrade(&req, &shared) {
            Ok(accept) => {
                let host = req
                    .headers()
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok());
                let base = super::conn::pairing::base_url(&shared, host);
                upgrade(req, addr, shared, Endpoint::Signaling(base), &accept)
            }
            Err(resp) => *resp,
        },
        (&Method::GET, p) if p.starts_with("/yjs/") => {
            // Everything cheap first (a WebSocket request, room for one more connection),
            // then the password, through the limiter.
            let accept = match may_upgrade(&req, &shared) {
                Ok(accept) => accept,
                Err(resp) => return *resp,
            };
            match doc_access(&req, &p[5..], addr, &shared).await {
                Ok(endpoint) => upgrade(req, addr, shared, endpoint, &accept),
                Err(resp) => *resp,
            }
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metrics") => {
            let mut pairing = String::new();
            let gauges = {
                let routing = shared.lock();
                routing.pairing.render_metrics(&mut pairing);
                HubGauges {
                    peers: routing.hub.peer_count(),
                    active_rooms: routing.hub.active_rooms(),
                    known_rooms: routing.hub.known_rooms(),
                }
            };
            let mut body = String::new();
            shared.metrics.render(gauges, &mut body);
            body.push_str(&pairing);
            shared.docs.render_metrics(&mut body);
            let mut resp = text(StatusCode::OK, body);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        (&Method::GET, p) if p.starts_with("/updates/") => {
            crate::updates::serve(shared.updates.as_ref(), &req, &shared.metrics).await
        }
        (&Method::GET | &Method::HEAD, _) => static_file(&req, &path, &shared),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn static_file(req: &Request<Incoming>, path: &str, shared: &Shared) -> Response<Body> {
    let Some(asset) = shared.web.get(path) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let len = asset.body.len();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let mut resp = match parse_range(range, len) {
        Ok(None) => Response::new(full(asset.body)),
        Ok(Some((start, end))) => {
            let mut resp = Response::new(full(Bytes::from(asset.body).slice(start..=end)));
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("ascii"),
            );
            resp
        }
        Err(()) => {
            let mut resp = text(StatusCode::RANGE_NOT_SATISFIABLE, "");
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return resp;
        }
    };
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    resp
}

/// What a WebSocket connection is for.
#[derive(Debug)]
enum Endpoint {
    /// With the base of its pairing links, should it be a kiosk's.
    Signaling(String),
    Document {
        room: String,
        read_only: bool,
    },
}

/// Checks access to `/yjs/{room}`: the room's rules apply. A protected room needs the
/// `token` a `joined` message carried, or its `password`; `readonly=1` asks for a
/// connection whose updates are dropped. Both checks go through the limiter: an address
/// or room locked out gets 429 with `Retry-After` and no argon2 runs; argon2 runs on the
/// hashing threads, never on this task's worker.
async fn doc_access(
    req: &Request<Incoming>,
    room: &str,
    addr: SocketAddr,
    shared: &Shared,
) -> Result<Endpoint, Box<Response<Body>>> {
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                .map(|(k, v)| (k.to_owned(), percent_decode(v)))
                .collect()
        })
        .unwrap_or_default();
    let read_only = query
        .get("readonly")
        .is_some_and(|v| v == "1" || v == "true");
    let access = shared.lock().hub.room_access(room);
    let hash = match access {
        Err(code) => {
            return Err(Box::new(text(
                StatusCode::BAD_REQUEST,
                format!("{code}: invalid room name\n"),
            )));
        }
        Ok(RoomAccess::New | RoomAccess::Open) => {
            return Ok(Endpoint::Document {
                room: room.to_owned(),
                read_only,
            });
        }
        Ok(RoomAccess::Protected(hash)) => hash,
    };
    let ip = addr.ip();
    let mut granted = false;
    if let Some(token) = query.get("token") {
        let verdict = match shared.tokens.verify_doc(token, room, Some(&hash), now_ms()) {
            Ok(_) => TokenVerdict::Valid,
            Err(TokenError::Expired) => TokenVerdict::Expired,
            Err(_) => TokenVerdict::Forged,
        };
        granted = shared
            .guard
            .check_token(ip, verdict)
            .map_err(|denied| Box::new(denied_response(shared, denied)))?;
    }
    // The password path is for clients that cannot join first.
    if !granted && let Some(password) = query.get("password") {
        granted = validate_password(password).is_ok()
            && shared
                .guard
                .verify_password(ip, room, password.clone(), hash)
                .await
                .map_err(|denied| Box::new(denied_response(shared, denied)))?;
    }
    if granted {
        Ok(Endpoint::Document {
            room: room.to_owned(),
            read_only,
        })
    } else {
        shared.metrics.error(ErrorCode::WrongPassword);
        Err(Box::new(text(
            StatusCode::FORBIDDEN,
            "wrongPassword: this room's document needs a token from joining, or the password\n",
        )))
    }
}

/// 429 (or 500) for a check the limiter refused.
fn denied_response(shared: &Shared, denied: Denied) -> Response<Body> {
    let code = denied.code();
    shared.metrics.error(code);
    let status = if code == ErrorCode::Internal {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    let mut resp = text(status, format!("{code}: {denied}\n"));
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(denied.retry_secs()));
    resp
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(()) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `req` is a WebSocket upgrade the server can take now (not shutting down,
/// under the connection limit); its `Sec-WebSocket-Accept` value when so.
fn may_upgrade(req: &Request<Incoming>, shared: &Shared) -> Result<String, Box<Response<Body>>> {
    let headers = req.headers();
    let is_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| is_upgrade && version_ok)
    else {
        return Err(Box::new(text(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket (version 13)\n",
        )));
    };
    if *shared.shutdown.borrow() {
        return Err(Box::new(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n",
        )));
    }
    let open = shared.metrics.connections.load(Relaxed);
    if usize::try_from(open).unwrap_or(0) >= shared.limits.max_connections {
        shared.metrics.connections_rejected.fetch_add(1, Relaxed);
        shared.metrics.error(ErrorCode::ServerFull);
        return Err(Box::new(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "serverFull: too many connections, try again later\n",
        )));
    }
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// Answers a WebSocket upgrade that [`may_upgrade`] allowed and starts the connection's
/// task.
fn upgrade(
    req: Request<Incoming>,
    addr: SocketAddr,
    shared: Arc<Shared>,
    endpoint: Endpoint,
    accept: &str,
) -> Response<Body> {
    let guard = shared.tasks.enter();
    // The address's slot goes with the WebSocket, which outlives the HTTP connection.
    let slot = req.extensions().get::<Arc<Slot>>().cloned();
    shared.metrics.connections.fetch_add(1, Relaxed);
    shared.metrics.connections_total.fetch_add(1, Relaxed);
    tokio::spawn(async move {
        let _guard = guard;
        let _slot = slot;
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let cap = match endpoint {
                    Endpoint::Signaling(_) => hard_frame_cap(shared.limits.max_frame),
                    // Documents enforce their own update limit with a clear close reason.
                    Endpoint::Document { .. } => shared.limits.max_doc_frame,
                };
                let config = WebSocketConfig::default()
                    .read_buffer_size(4096)
                    .write_buffer_size(0)
                    .max_frame_size(Some(cap))
                    .max_message_size(Some(cap));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    WsRole::Server,
                    Some(config),
                )
                .await;
                match endpoint {
                    Endpoint::Signaling(base) => Connection::run(ws, addr, &shared, base).await,
                    Endpoint::Document { room, read_only } => {
                        let docs = shared.docs.clone();
                        docs.serve(ws, room, read_only, shared.shutdown.clone())
                            .await;
                    }
                }
            }
            Err(e) => tracing::debug!(%addr, error = %e, "upgrade failed"),
        }
        shared.metrics.connections.fetch_sub(1, Relaxed);
    });
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(accept).expect("base64 is a valid header"),
    );
    resp
}

/// Frames above `max_frame` get `tooLarge` and the connection stays; frames above this
/// cap are not even buffered: `tooLarge` and close.
pub(super) fn hard_frame_cap(max_frame: usize) -> usize {
    (max_frame * 4).max(256 * 1024)
}

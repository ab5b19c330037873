//! A connection's side of pairing: `hello` with a device token or a reserved name, the
//! pairing messages, and the registry's periodic work (codes, expiry, enrolment).

#![allow(clippy::wildcard_imports)]
use super::*;

use portal_proto::PROTOCOL_VERSION;
use portal_proto::names::clean_display_name;
use portal_proto::pairing::valid_token_shape;

use crate::guard::addr_key;
use crate::pairing::{EnrolledKiosk, Out, PairOp, store as pairing_store};

/// How often a running server re-reads the enrolment (a removed kiosk is cut off
/// within this).
const ENROLMENT_CHECK: Duration = Duration::from_secs(2);

impl<S> Connection<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// `hello`: a device token must be enrolled (else `invalidDeviceToken`, final) and
    /// gives the connection its kiosk's name; without one, a kiosk's name is refused
    /// (`nameReserved`). Then the hub decides as for anyone.
    pub(super) async fn hello(&mut self, msg: ClientMessage) -> Option<End> {
        let ClientMessage::Hello {
            protocol,
            name,
            role,
            resume,
            device,
        } = msg
        else {
            return None;
        };
        let mut kiosk: Option<(EnrolledKiosk, bool)> = None;
        if let Some(device) = device.filter(|_| !self.hello) {
            let token = device.token;
            let found = if valid_token_shape(&token) {
                self.shared
                    .store
                    .call(move |c| pairing_store::find_by_token(c, &token))
                    .await
            } else {
                Ok(None)
            };
            match found {
                Ok(Some(k)) => kiosk = Some((k, device.control)),
                Ok(None) => {
                    return Some(End::Close(
                        Some((
                            ErrorCode::InvalidDeviceToken,
                            "this device token is not enrolled on this server".into(),
                        )),
                        CloseCode::Policy,
                        "invalid device token",
                    ));
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot check a device token");
                    self.reply_error(
                        ErrorCode::Internal,
                        "cannot check the device token now; retry",
                    )
                    .await;
                    return None;
                }
            }
        }
        let name = kiosk.as_ref().map_or(name, |(k, _)| k.name.clone());
        if kiosk.is_none()
            && !self.hello
            && protocol == PROTOCOL_VERSION
            && let Ok(clean) = clean_display_name(&name)
            && self.shared.lock().pairing.name_reserved(&clean)
        {
            self.reply_error(
                ErrorCode::NameReserved,
                &format!("{clean:?} is the name of a kiosk on this server; choose another"),
            )
            .await;
            return None;
        }
        let msg = ClientMessage::Hello {
            protocol,
            name,
            role,
            resume,
            device: None,
        };
        let mut routing = self.shared.lock();
        let first = !self.hello;
        self.hub_handle(&mut routing, msg);
        if first
            && self.hello
            && let Some((k, control)) = kiosk
        {
            let outs =
                routing
                    .pairing
                    .kiosk_hello(self.peer, &k, control, &self.base_url, now_ms());
            self.shared.deliver_pairing(&mut routing, outs);
        }
        None
    }

    /// `pair`, `unpair`, `command`, `commandResult`, `kioskState` (after `hello`).
    pub(super) fn pairing_message(&mut self, msg: ClientMessage) {
        let mut routing = self.shared.lock();
        let routing = &mut *routing;
        let (peer, now) = (self.peer, now_ms());
        let outs = match msg {
            ClientMessage::Pair { code } => {
                let name = routing.hub.peer_name(peer).unwrap_or_default().to_owned();
                let addr = addr_key(self.addr.ip());
                routing.pairing.pair(peer, addr, &name, &code, now)
            }
            ClientMessage::Unpair { peer: target } => routing.pairing.unpair(peer, target),
            ClientMessage::Command { id, command } => routing.pairing.command(peer, id, command),
            ClientMessage::CommandResult {
                to,
                id,
                room,
                error,
            } => routing.pairing.command_result(peer, to, id, room, error),
            ClientMessage::KioskState { state } => routing.pairing.kiosk_state(peer, state),
            other => {
                self.hub_handle(routing, other);
                return;
            }
        };
        self.shared.deliver_pairing(routing, outs);
    }
}

impl Shared {
    /// Carries out what the pairing registry asked for, with the lock held.
    pub(in crate::server) fn deliver_pairing(&self, routing: &mut Routing, outs: Vec<Out>) {
        let mut actions = Vec::with_capacity(outs.len());
        for out in outs {
            match out {
                Out::Send { to, msg } => actions.push(Action::Send { to: vec![to], msg }),
                Out::Close { peer, code } => actions.push(Action::Close { peer, code }),
                Out::Store(op) => self.store.exec("pairing", move |c| apply(c, &op)),
            }
        }
        self.deliver(routing, actions);
    }

    /// The peers the registry knows that the hub has forgotten are gone for good.
    pub(in crate::server) fn pairing_forget(&self, routing: &mut Routing) {
        let gone: Vec<PeerId> = routing
            .pairing
            .peers()
            .into_iter()
            .filter(|p| !routing.hub.has_hello(*p))
            .collect();
        let mut outs = Vec::new();
        for peer in gone {
            outs.extend(routing.pairing.peer_gone(peer));
        }
        self.deliver_pairing(routing, outs);
    }
}

fn apply(conn: &rusqlite::Connection, op: &PairOp) -> rusqlite::Result<()> {
    match op {
        PairOp::SaveCode { code, row } => pairing_store::save_code(conn, code, row),
        PairOp::Touch { kiosk, now } => pairing_store::touch(conn, *kiosk, *now),
        PairOp::PruneCodes { before } => pairing_store::prune_codes(conn, *before),
    }
}

/// Every second: laptops and kiosks gone for good, codes due, pairings past their
/// time; every [`ENROLMENT_CHECK`]: the enrolment, so that a kiosk removed with
/// `portal-server kiosk remove` is cut off.
pub(in crate::server) async fn pairing_ticks(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut last_check = Instant::now();
    loop {
        every.tick().await;
        {
            let mut routing = shared.lock();
            shared.pairing_forget(&mut routing);
            let outs = routing.pairing.tick(now_ms());
            shared.deliver_pairing(&mut routing, outs);
        }
        if last_check.elapsed() + Duration::from_millis(100) >= ENROLMENT_CHECK {
            last_check = Instant::now();
            let as_of = shared.lock().pairing.hello_seq();
            match shared.store.call(pairing_store::enrolled).await {
                Ok(enrolled) => {
                    let mut routing = shared.lock();
                    let outs = routing.pairing.sync_enrolled(enrolled, as_of);
                    shared.deliver_pairing(&mut routing, outs);
                }
                Err(e) => tracing::warn!(error = %e, "cannot re-read the kiosk enrolment"),
            }
        }
    }
}

/// The base of pairing links for a kiosk that connected with `host` (its Host header):
/// `--public-url` when given, else `http(s)://host`, else the listening address.
pub(in crate::server) fn base_url(shared: &Shared, host: Option<&str>) -> String {
    if let Some(base) = &shared.public_base {
        return base.clone();
    }
    let scheme = if shared.tls { "https" } else { "http" };
    let host = host
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .map_or_else(|| shared.local_addr.to_string(), str::to_owned);
    format!("{scheme}://{host}")
}

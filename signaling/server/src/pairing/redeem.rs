//! Redeeming a code: the limiter first, then the code, then the pairing; and the
//! codes' rotation (after use, after too many wrong guesses).

use std::net::IpAddr;

use portal_proto::pairing::{PAIR_PATH, normalize_code};
use portal_proto::{ErrorCode, PeerId, ServerMessage};

use super::{KioskId, Out, Outcome, Pair, PairOp, Registry, error, send};
use crate::hub::Millis;

impl Registry {
    /// `pair{code}` from the laptop `peer` at the address key `addr`, named `name`.
    pub fn pair(
        &mut self,
        peer: PeerId,
        addr: IpAddr,
        name: &str,
        typed: &str,
        now: Millis,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let outcome = self.pair_inner(peer, addr, name, typed, now, &mut out);
        self.count(outcome);
        out
    }

    fn pair_inner(
        &mut self,
        peer: PeerId,
        addr: IpAddr,
        name: &str,
        typed: &str,
        now: Millis,
        out: &mut Vec<Out>,
    ) -> Outcome {
        let refuse = |out: &mut Vec<Out>, code: ErrorCode, message: String| {
            error(out, peer, code, message);
            Outcome::Refused(code)
        };
        if self.conns.contains_key(&peer) {
            return refuse(out, ErrorCode::BadRequest, "a kiosk does not pair".into());
        }
        if let Err(refused) = self.limiter.check(addr, now) {
            return refuse(out, ErrorCode::RateLimited, refused.message());
        }
        if self.pairs.contains_key(&peer) {
            return refuse(
                out,
                ErrorCode::AlreadyPaired,
                "this connection is already paired; unpair first".into(),
            );
        }
        let found = normalize_code(typed).and_then(|code| {
            let entry = self.codes.get(&code)?.clone();
            Some((code, entry))
        });
        let (code, entry) = match found {
            None => {
                self.wrong_guess(addr, now, out);
                return refuse(
                    out,
                    ErrorCode::InvalidCode,
                    "no kiosk shows this code".into(),
                );
            }
            Some((_, entry)) if !entry.live(now) => {
                self.wrong_guess(addr, now, out);
                return refuse(
                    out,
                    ErrorCode::CodeExpired,
                    "this code has expired or was used; type the one on the screen now".into(),
                );
            }
            Some(found) => found,
        };
        let kiosk = entry.kiosk;
        let Some(control) = self.online.get(&kiosk).and_then(|o| o.control) else {
            return refuse(
                out,
                ErrorCode::KioskOffline,
                "the kiosk showing this code is not connected".into(),
            );
        };
        if let Some(row) = self.codes.mark_used(&code) {
            out.push(Out::Store(PairOp::SaveCode { code, row }));
        }
        self.new_code(kiosk, now, out);
        let expires = now + self.config.pairing_ttl_ms;
        self.pairs.insert(
            peer,
            Pair {
                kiosk,
                control,
                expires,
            },
        );
        let kiosk_name = self.enrolled.get(&kiosk).cloned().unwrap_or_default();
        send(
            out,
            peer,
            ServerMessage::PairAccepted {
                kiosk: control,
                kiosk_name,
                expires_at: expires,
            },
        );
        if let Some(state) = self.online.get(&kiosk).and_then(|o| o.state.clone()) {
            send(out, peer, ServerMessage::KioskState { state });
        }
        send(
            out,
            control,
            ServerMessage::Paired {
                peer,
                name: name.to_owned(),
            },
        );
        Outcome::Accepted
    }

    fn wrong_guess(&mut self, addr: IpAddr, now: Millis, out: &mut Vec<Out>) {
        self.limiter.wrong(addr, now);
        self.wrong_since_rotation += 1;
        if self.wrong_since_rotation >= self.config.rotate_after_wrong.max(1) {
            self.wrong_since_rotation = 0;
            self.rotate_all(now, out);
        }
    }

    /// Replaces every live code (online kiosks get a new one at once).
    fn rotate_all(&mut self, now: Millis, out: &mut Vec<Out>) {
        for code in self.codes.live_codes(now) {
            if let Some(row) = self.codes.retire(&code, now) {
                out.push(Out::Store(PairOp::SaveCode { code, row }));
            }
        }
        let mut kiosks: Vec<KioskId> = self
            .online
            .iter()
            .filter(|(_, o)| o.control.is_some())
            .map(|(k, _)| *k)
            .collect();
        kiosks.sort_unstable();
        for kiosk in kiosks {
            self.new_code(kiosk, now, out);
        }
    }

    /// Retires the kiosk's codes and sends its control connection a new one.
    pub(super) fn new_code(&mut self, kiosk: KioskId, now: Millis, out: &mut Vec<Out>) {
        let Some(online) = self.online.get_mut(&kiosk) else {
            return;
        };
        let Some(control) = online.control else {
            return;
        };
        // Its earlier codes die, including one shown before it went offline.
        online.code = None;
        for (code, row) in self.codes.retire_kiosk(kiosk, now) {
            out.push(Out::Store(PairOp::SaveCode { code, row }));
        }
        let (code, row) = self.codes.issue(kiosk, now, self.config.code_ttl_ms);
        online.code = Some(code.clone());
        let url = format!("{}{PAIR_PATH}{code}", online.base_url);
        send(
            out,
            control,
            ServerMessage::PairingCode {
                code: code.clone(),
                url,
                expires_at: row.expires,
            },
        );
        out.push(Out::Store(PairOp::SaveCode { code, row }));
    }
}

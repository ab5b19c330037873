//! Pairing laptops with enrolled kiosks: who is a kiosk, the codes kiosks show, who is
//! paired with whom, and the commands and state relayed between them.
//!
//! [`Registry`] is sans-IO like the hub: the server feeds it `(peer, now, ...)` and
//! carries out the [`Out`]s it returns; time is an input and tests drive it with plain
//! calls. It sits beside the hub under the same lock, so routing keeps one order.
//!
//! - **Kiosks** are enrolled with `portal-server kiosk add` ([`store`]); a connection
//!   whose `hello` carried an enrolled token is that kiosk's (the server checks the
//!   token against the store before it calls [`Registry::kiosk_hello`]). One
//!   connection per kiosk is its control connection (a newer one replaces an older,
//!   which is told `replaced` and closed); the others are its calls. A running server
//!   re-reads the enrolment every couple of seconds ([`Registry::sync_enrolled`]): a
//!   removed kiosk's connections are closed and its laptops told `removed`.
//! - **Codes** ([`codes`]): each online kiosk's control connection is sent a code that
//!   lives [`PairingConfig::code_ttl_ms`] at most, changes after each use, and every
//!   live code changes after [`PairingConfig::rotate_after_wrong`] wrong guesses
//!   server-wide. Guessing is limited per address and globally ([`limiter`]), before
//!   the code is looked at.
//! - **Pairings** last until the laptop leaves for good, either side unpairs, the
//!   kiosk's control connection goes, the kiosk is removed, or
//!   [`PairingConfig::pairing_ttl_ms`] passes. Only a paired laptop's commands reach a
//!   kiosk, and a kiosk's answers reach only its paired laptops.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use portal_proto::pairing::{CODE_TTL_SECS, KioskState, PAIRING_TTL_SECS, UnpairReason};
use portal_proto::{ErrorCode, PeerId, ServerMessage};

use crate::hub::Millis;

pub mod admin;
pub mod codes;
pub mod limiter;
mod redeem;
mod relay;
pub mod store;

use codes::{Code, Codes, DEAD_CODE_KEEP_MS};
use limiter::{GuessLimiter, GuessLimits};

/// An enrolled kiosk's id (its row in the store).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KioskId(pub i64);

impl std::fmt::Display for KioskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A kiosk as enrolled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolledKiosk {
    pub id: KioskId,
    pub name: String,
}

/// Wrong guesses server-wide after which every live code is replaced, by default.
pub const ROTATE_AFTER_WRONG: u32 = 20;

#[derive(Clone, Debug)]
pub struct PairingConfig {
    pub code_ttl_ms: Millis,
    pub pairing_ttl_ms: Millis,
    pub rotate_after_wrong: u32,
    pub limits: GuessLimits,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self {
            code_ttl_ms: CODE_TTL_SECS as f64 * 1000.0,
            pairing_ttl_ms: PAIRING_TTL_SECS as f64 * 1000.0,
            rotate_after_wrong: ROTATE_AFTER_WRONG,
            limits: GuessLimits::default(),
        }
    }
}

/// What the server must do after a registry call, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    Send {
        to: PeerId,
        msg: ServerMessage,
    },
    /// Send nothing more and close the connection (after what is queued).
    Close {
        peer: PeerId,
        code: ErrorCode,
    },
    Store(PairOp),
}

/// Writes for the store.
#[derive(Clone, Debug, PartialEq)]
pub enum PairOp {
    SaveCode { code: String, row: Code },
    Touch { kiosk: KioskId, now: Millis },
    PruneCodes { before: Millis },
}

/// How a `pair` ended, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Refused(ErrorCode),
}

/// The outcomes counted on `/metrics`.
const OUTCOMES: [(&str, Outcome); 7] = [
    ("accepted", Outcome::Accepted),
    ("invalidCode", Outcome::Refused(ErrorCode::InvalidCode)),
    ("codeExpired", Outcome::Refused(ErrorCode::CodeExpired)),
    ("kioskOffline", Outcome::Refused(ErrorCode::KioskOffline)),
    ("alreadyPaired", Outcome::Refused(ErrorCode::AlreadyPaired)),
    ("rateLimited", Outcome::Refused(ErrorCode::RateLimited)),
    ("badRequest", Outcome::Refused(ErrorCode::BadRequest)),
];

/// A kiosk with at least one connection.
#[derive(Debug)]
struct Online {
    control: Option<PeerId>,
    /// The base of its pairing links (`https://host`).
    base_url: String,
    code: Option<String>,
    state: Option<KioskState>,
}

#[derive(Clone, Copy, Debug)]
struct Pair {
    kiosk: KioskId,
    /// The kiosk's control connection when the pairing began (it ends with it).
    control: PeerId,
    expires: Millis,
}

/// See the module docs.
#[derive(Debug)]
pub struct Registry {
    config: PairingConfig,
    enrolled: HashMap<KioskId, String>,
    /// Every kiosk connection: its kiosk, and whether it is the control connection.
    conns: HashMap<PeerId, (KioskId, bool)>,
    online: HashMap<KioskId, Online>,
    codes: Codes,
    /// Laptop → its pairing.
    pairs: HashMap<PeerId, Pair>,
    limiter: GuessLimiter,
    wrong_since_rotation: u32,
    outcomes: [u64; OUTCOMES.len()],
    last_prune: Millis,
    /// Counts kiosk hellos; [`Registry::hello_seq`].
    hello_seq: u64,
    /// The last hello of each kiosk with connections, by [`Registry::hello_seq`].
    seen: HashMap<KioskId, u64>,
}

fn send(out: &mut Vec<Out>, to: PeerId, msg: ServerMessage) {
    out.push(Out::Send { to, msg });
}

fn error(out: &mut Vec<Out>, to: PeerId, code: ErrorCode, message: impl Into<String>) {
    send(out, to, ServerMessage::error(code, message));
}

impl Registry {
    pub fn new(
        config: PairingConfig,
        enrolled: Vec<EnrolledKiosk>,
        codes: Vec<(String, Code)>,
        now: Millis,
    ) -> Self {
        Self {
            limiter: GuessLimiter::new(config.limits.clone(), now),
            config,
            enrolled: enrolled.into_iter().map(|k| (k.id, k.name)).collect(),
            conns: HashMap::new(),
            online: HashMap::new(),
            codes: Codes::loaded(codes),
            pairs: HashMap::new(),
            wrong_since_rotation: 0,
            outcomes: [0; OUTCOMES.len()],
            last_prune: now,
            hello_seq: 0,
            seen: HashMap::new(),
        }
    }

    /// Whether `name` (cleaned) is an enrolled kiosk's, without regard to case.
    pub fn name_reserved(&self, name: &str) -> bool {
        let folded = name.to_lowercase();
        self.enrolled.values().any(|n| n.to_lowercase() == folded)
    }

    /// Whether `peer` is a kiosk's connection.
    pub fn is_kiosk(&self, peer: PeerId) -> bool {
        self.conns.contains_key(&peer)
    }

    /// The connections of the kiosk `laptop` is paired with (none when unpaired), for
    /// joining that kiosk's room without its password.
    pub fn paired_kiosk_conns(&self, laptop: PeerId) -> Vec<PeerId> {
        let Some(pair) = self.pairs.get(&laptop) else {
            return Vec::new();
        };
        self.conns
            .iter()
            .filter(|(_, (k, _))| *k == pair.kiosk)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Every peer the registry knows: paired laptops and kiosk connections (the server
    /// reports those the hub has forgotten with [`Registry::peer_gone`]).
    pub fn peers(&self) -> Vec<PeerId> {
        self.pairs
            .keys()
            .chain(self.conns.keys())
            .copied()
            .collect()
    }

    /// How many kiosk hellos there have been: pass it to [`Registry::sync_enrolled`]
    /// with the enrolment read after it.
    pub fn hello_seq(&self) -> u64 {
        self.hello_seq
    }

    /// Enrolled kiosks with a control connection.
    pub fn kiosks_online(&self) -> usize {
        self.online.values().filter(|o| o.control.is_some()).count()
    }

    pub fn pairings(&self) -> usize {
        self.pairs.len()
    }

    /// `pair` attempts so far with this outcome.
    pub fn attempts(&self, outcome: Outcome) -> u64 {
        OUTCOMES
            .iter()
            .position(|(_, o)| *o == outcome)
            .map_or(0, |i| self.outcomes[i])
    }

    /// The pairing metrics in Prometheus' text format.
    pub fn render_metrics(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP portal_pairing_attempts_total Pairing codes redeemed, by outcome.\n# TYPE portal_pairing_attempts_total counter"
        );
        for (i, (name, _)) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "portal_pairing_attempts_total{{outcome=\"{name}\"}} {}",
                self.outcomes[i]
            );
        }
        let _ = writeln!(
            out,
            "# HELP portal_kiosks_online Enrolled kiosks with a control connection.\n# TYPE portal_kiosks_online gauge\nportal_kiosks_online {}",
            self.kiosks_online()
        );
        let _ = writeln!(
            out,
            "# HELP portal_pairings Laptops paired with a kiosk.\n# TYPE portal_pairings gauge\nportal_pairings {}",
            self.pairs.len()
        );
    }

    fn count(&mut self, outcome: Outcome) {
        if let Some(i) = OUTCOMES.iter().position(|(_, o)| *o == outcome) {
            self.outcomes[i] += 1;
        }
    }

    /// The connection `peer` said hello with the token of `kiosk` (checked against the
    /// store). `base_url` is where its laptops reach this server (`https://host`).
    pub fn kiosk_hello(
        &mut self,
        peer: PeerId,
        kiosk: &EnrolledKiosk,
        control: bool,
        base_url: &str,
        now: Millis,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        self.hello_seq += 1;
        self.seen.insert(kiosk.id, self.hello_seq);
        self.enrolled.insert(kiosk.id, kiosk.name.clone());
        self.conns.insert(peer, (kiosk.id, control));
        out.push(Out::Store(PairOp::Touch {
            kiosk: kiosk.id,
            now,
        }));
        let online = self.online.entry(kiosk.id).or_insert_with(|| Online {
            control: None,
            base_url: base_url.to_owned(),
            code: None,
            state: None,
        });
        if !control {
            return out;
        }
        base_url.clone_into(&mut online.base_url);
        if let Some(old) = online.control.replace(peer)
            && old != peer
        {
            self.conns.remove(&old);
            error(
                &mut out,
                old,
                ErrorCode::Replaced,
                "a newer control connection of this kiosk took over",
            );
            out.push(Out::Close {
                peer: old,
                code: ErrorCode::Replaced,
            });
            self.end_kiosk_pairings(kiosk.id, UnpairReason::KioskGone, false, &mut out);
        }
        self.new_code(kiosk.id, now, &mut out);
        out
    }

    /// The connection `peer` is gone for good (a laptop after its resume grace).
    pub fn peer_gone(&mut self, peer: PeerId) -> Vec<Out> {
        let mut out = Vec::new();
        if let Some((kiosk, control)) = self.conns.remove(&peer) {
            let was_control = self
                .online
                .get(&kiosk)
                .is_some_and(|o| o.control == Some(peer));
            if control && was_control {
                if let Some(o) = self.online.get_mut(&kiosk) {
                    o.control = None;
                    o.state = None;
                }
                self.end_kiosk_pairings(kiosk, UnpairReason::KioskGone, false, &mut out);
            }
            if !self.conns.values().any(|(k, _)| *k == kiosk) {
                self.online.remove(&kiosk);
                self.seen.remove(&kiosk);
            }
        }
        if let Some(pair) = self.pairs.remove(&peer) {
            send(
                &mut out,
                pair.control,
                ServerMessage::Unpaired {
                    peer,
                    reason: UnpairReason::LaptopLeft,
                },
            );
        }
        out
    }

    /// Ends the pairing of `laptop`, telling both sides `reason` (the kiosk only when
    /// `tell_kiosk`).
    fn end_pairing(
        &mut self,
        laptop: PeerId,
        reason: UnpairReason,
        tell_kiosk: bool,
        out: &mut Vec<Out>,
    ) {
        let Some(pair) = self.pairs.remove(&laptop) else {
            return;
        };
        send(
            out,
            laptop,
            ServerMessage::Unpaired {
                peer: pair.control,
                reason,
            },
        );
        if tell_kiosk {
            send(
                out,
                pair.control,
                ServerMessage::Unpaired {
                    peer: laptop,
                    reason,
                },
            );
        }
    }

    fn end_kiosk_pairings(
        &mut self,
        kiosk: KioskId,
        reason: UnpairReason,
        tell_kiosk: bool,
        out: &mut Vec<Out>,
    ) {
        for laptop in self.laptops_of(kiosk) {
            self.end_pairing(laptop, reason, tell_kiosk, out);
        }
    }

    /// The laptops paired with `kiosk`, in peer id order (so what they are sent is
    /// the same on every run).
    fn laptops_of(&self, kiosk: KioskId) -> Vec<PeerId> {
        let mut laptops: Vec<PeerId> = self
            .pairs
            .iter()
            .filter(|(_, p)| p.kiosk == kiosk)
            .map(|(l, _)| *l)
            .collect();
        laptops.sort_unstable();
        laptops
    }

    /// Codes that expired are replaced, pairings past their time end, and what is old
    /// is forgotten. Call every second or so.
    pub fn tick(&mut self, now: Millis) -> Vec<Out> {
        let mut out = Vec::new();
        let mut due: Vec<KioskId> = self
            .online
            .iter()
            .filter(|(_, o)| {
                o.control.is_some()
                    && o.code
                        .as_ref()
                        .and_then(|c| self.codes.get(c))
                        .is_none_or(|c| !c.live(now))
            })
            .map(|(k, _)| *k)
            .collect();
        due.sort_unstable();
        for kiosk in due {
            self.new_code(kiosk, now, &mut out);
        }
        let mut expired: Vec<PeerId> = self
            .pairs
            .iter()
            .filter(|(_, p)| now >= p.expires)
            .map(|(l, _)| *l)
            .collect();
        expired.sort_unstable();
        for laptop in expired {
            self.end_pairing(laptop, UnpairReason::Expired, true, &mut out);
        }
        if now - self.last_prune >= 60_000.0 {
            self.last_prune = now;
            self.codes.prune(now);
            self.limiter.prune(now);
            out.push(Out::Store(PairOp::PruneCodes {
                before: now - DEAD_CODE_KEEP_MS,
            }));
        }
        out
    }

    /// The enrolment as the store had it when [`Registry::hello_seq`] was `as_of`:
    /// kiosks no longer in it lose their connections (`invalidDeviceToken`, final) and
    /// pairings (`removed`). A kiosk that said hello since (enrolled after the read) is
    /// left alone.
    pub fn sync_enrolled(&mut self, enrolled: Vec<EnrolledKiosk>, as_of: u64) -> Vec<Out> {
        let mut out = Vec::new();
        let mut fresh: HashMap<KioskId, String> =
            enrolled.into_iter().map(|k| (k.id, k.name)).collect();
        for (kiosk, seq) in &self.seen {
            if *seq > as_of
                && let Some(name) = self.enrolled.get(kiosk)
            {
                fresh.entry(*kiosk).or_insert_with(|| name.clone());
            }
        }
        self.enrolled = fresh;
        let mut removed: Vec<KioskId> = self
            .conns
            .values()
            .map(|(k, _)| *k)
            .chain(self.pairs.values().map(|p| p.kiosk))
            .filter(|k| !self.enrolled.contains_key(k))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        removed.sort_unstable();
        for kiosk in removed {
            self.end_kiosk_pairings(kiosk, UnpairReason::Removed, false, &mut out);
            let mut gone: Vec<PeerId> = self
                .conns
                .iter()
                .filter(|(_, (k, _))| *k == kiosk)
                .map(|(p, _)| *p)
                .collect();
            gone.sort_unstable();
            for peer in gone {
                self.conns.remove(&peer);
                error(
                    &mut out,
                    peer,
                    ErrorCode::InvalidDeviceToken,
                    "this kiosk was removed from the server's enrolment",
                );
                out.push(Out::Close {
                    peer,
                    code: ErrorCode::InvalidDeviceToken,
                });
            }
            self.online.remove(&kiosk);
            self.seen.remove(&kiosk);
            self.codes.forget_kiosk(kiosk);
        }
        out
    }
}

#[cfg(test)]
mod tests;

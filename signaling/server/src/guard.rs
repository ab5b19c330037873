//! One limiter for every check of a secret, and for room creation.
//!
//! Room passwords (argon2id: 19 MiB and tens of milliseconds a check) and document
//! tokens are checked through [`Guard`], whether the check comes from a `join` on `/ws`
//! or from a `/yjs/{room}` upgrade:
//!
//! - **Failures are counted per client address and per room.** An address (an IPv6
//!   address counts by its /64, which one host usually holds whole) with
//!   [`ADDR_FAILURES`] failed checks within [`WINDOW_MS`] is locked out for 2^n seconds,
//!   n being how many times it has been locked out (2 s, 4 s, 8 s, ...), at most
//!   [`ADDR_MAX_LOCKOUT_MS`]. A room with [`ROOM_FAILURES`] failed password checks within
//!   the window, from any addresses, is locked out the same way, at most
//!   [`ROOM_MAX_LOCKOUT_MS`] (shorter: a room's lockout also keeps out those who know its
//!   password, so it only has to stop guessing spread over many addresses). A locked
//!   address or room is answered `rateLimited` at once, without running argon2. After
//!   [`FORGIVE_MS`] without a failure the doubling starts over.
//! - **A success resets nothing**: whoever knows one room's password cannot launder
//!   guesses at another room between successes.
//! - **Checks under way count as failures until they end**, so many connections from one
//!   address cannot run more checks at once than its allowance; a check beyond it waits
//!   for one of them to end (at most [`PENDING_WAIT_MS`]) and is then decided.
//! - **argon2 runs only on [`HashPool`]**: a semaphore with a permit per core, one core
//!   left to the runtime (at least one permit), in front of `spawn_blocking`; never on a
//!   runtime worker. When [`QUEUE_PER_PERMIT`] checks per permit already wait, more are
//!   answered `rateLimited` instead of queued.
//! - **Document tokens** are an HMAC check (cheap): a forged token counts as a failure of
//!   the address, and a locked-out address is answered `rateLimited` for one. A valid
//!   token is let in whatever the lockouts (it is no guess: its holder joined with the
//!   password), and an expired one is refused without counting (a tab left open).
//! - **Room creation** is a token bucket per address ([`ROOM_CREATE_PER_MINUTE`] a minute,
//!   bursts of [`ROOM_CREATE_BURST`] by default; `--room-create-rate` and
//!   `--room-create-burst` change them, a rate of 0 turns the limit off).
//!
//! The bookkeeping, [`Limiter`], takes time as an input and is tested in simulated time.
//! It tracks at most [`MAX_TRACKED`] addresses and rooms of each kind; with that many
//! active at once, new ones are refused (`rateLimited`) until old ones are forgotten.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use portal_proto::ErrorCode;
use tokio::sync::{Notify, Semaphore};

use crate::limits::TokenBucket;

/// Milliseconds on a monotonic clock.
pub type Millis = f64;

/// Failed checks an address may make within [`WINDOW_MS`] before it is locked out.
pub const ADDR_FAILURES: u32 = 5;
/// Failed password checks a room may see within [`WINDOW_MS`] before it is locked out.
pub const ROOM_FAILURES: u32 = 20;
/// The window failures are counted in.
pub const WINDOW_MS: Millis = 60_000.0;
/// The first lockout lasts twice this; each further one doubles.
pub const LOCKOUT_UNIT_MS: Millis = 1000.0;
/// Longest lockout of an address.
pub const ADDR_MAX_LOCKOUT_MS: Millis = 15.0 * 60_000.0;
/// Longest lockout of a room.
pub const ROOM_MAX_LOCKOUT_MS: Millis = 60_000.0;
/// Quiet time (no failure, no lockout) after which an address or room starts over.
pub const FORGIVE_MS: Millis = 30.0 * 60_000.0;
/// Rooms an address may create a minute (sustained), by default.
pub const ROOM_CREATE_PER_MINUTE: f64 = 10.0;
/// Rooms an address may create at once, by default.
pub const ROOM_CREATE_BURST: f64 = 10.0;
/// Addresses (and rooms) tracked at most, each kind.
pub const MAX_TRACKED: usize = 100_000;
/// Checks that may wait for a hashing thread, per thread.
pub const QUEUE_PER_PERMIT: usize = 32;
/// How long a check waits for the checks under way from its address (or of its room)
/// to end when they use up the allowance (say, a whole office reconnecting at once
/// behind one address), before it is answered `rateLimited`.
pub const PENDING_WAIT_MS: Millis = 10_000.0;

/// The limiter's settings; [`Default`] is the constants above.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardConfig {
    pub addr_failures: u32,
    pub room_failures: u32,
    pub window_ms: Millis,
    pub lockout_unit_ms: Millis,
    pub addr_max_lockout_ms: Millis,
    pub room_max_lockout_ms: Millis,
    pub forgive_ms: Millis,
    /// Rooms an address may create a minute; 0 turns the limit off.
    pub create_per_minute: f64,
    pub create_burst: f64,
    pub max_tracked: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            addr_failures: ADDR_FAILURES,
            room_failures: ROOM_FAILURES,
            window_ms: WINDOW_MS,
            lockout_unit_ms: LOCKOUT_UNIT_MS,
            addr_max_lockout_ms: ADDR_MAX_LOCKOUT_MS,
            room_max_lockout_ms: ROOM_MAX_LOCKOUT_MS,
            forgive_ms: FORGIVE_MS,
            create_per_minute: ROOM_CREATE_PER_MINUTE,
            create_burst: ROOM_CREATE_BURST,
            max_tracked: MAX_TRACKED,
        }
    }
}

/// What a document token turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenVerdict {
    Valid,
    /// Issued by this server, for this room, but expired.
    Expired,
    /// Malformed, for another room, or tampered with.
    Forged,
}

/// Why a check or a creation was not allowed. All but [`Denied::Internal`] are
/// `rateLimited` on the wire (HTTP 429 at `/yjs`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Denied {
    /// This address failed too often; it may try again in `retry_ms`.
    Address { retry_ms: Millis },
    /// This room saw too many failed checks; try again in `retry_ms`.
    Room { retry_ms: Millis },
    /// The checks under way (from this address, or of this room) already use up the
    /// allowance, and did not end within [`PENDING_WAIT_MS`].
    Pending,
    /// This address created too many rooms; the next in `retry_ms`.
    Creations { retry_ms: Millis },
    /// Too many checks are waiting for a hashing thread, or too many addresses are
    /// tracked.
    Busy,
    /// The hashing thread failed.
    Internal,
}

impl Denied {
    pub fn code(self) -> ErrorCode {
        match self {
            Denied::Internal => ErrorCode::Internal,
            _ => ErrorCode::RateLimited,
        }
    }

    /// Whole seconds to wait, at least 1 (for `Retry-After`).
    pub fn retry_secs(self) -> u64 {
        let ms = match self {
            Denied::Address { retry_ms }
            | Denied::Room { retry_ms }
            | Denied::Creations { retry_ms } => retry_ms,
            Denied::Pending | Denied::Busy | Denied::Internal => 1000.0,
        };
        ((ms / 1000.0).ceil() as u64).max(1)
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.retry_secs();
        match self {
            Denied::Address { .. } => write!(
                f,
                "too many failed password attempts from your address; retry in {secs} s"
            ),
            Denied::Room { .. } => write!(
                f,
                "too many failed password attempts on this room; retry in {secs} s"
            ),
            Denied::Pending => {
                f.write_str("too many password checks under way from your address or for this room; retry in a moment")
            }
            Denied::Creations { .. } => write!(
                f,
                "too many rooms created from your address; retry in {secs} s"
            ),
            Denied::Busy => f.write_str("the server is busy checking passwords; retry in a moment"),
            Denied::Internal => f.write_str("the password check failed"),
        }
    }
}

/// The key an address is counted under: IPv4 as it is (IPv4-mapped IPv6 too), IPv6 by
/// its /64.
pub fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// Failed checks of one address or room.
#[derive(Clone, Debug, Default)]
struct Strikes {
    /// Failures in the window that began at `window_start`.
    failures: u32,
    window_start: Millis,
    /// Lockouts so far: the next lasts 2^(lockouts + 1) units.
    lockouts: u32,
    locked_until: Millis,
    last_failure: Millis,
    /// Checks begun and not ended.
    in_flight: u32,
}

/// How one kind of key (addresses or rooms) is limited.
#[derive(Clone, Copy, Debug)]
struct Rule {
    failures: u32,
    window_ms: Millis,
    unit_ms: Millis,
    max_lockout_ms: Millis,
    forgive_ms: Millis,
}

impl Strikes {
    fn refresh(&mut self, now: Millis, rule: Rule) {
        if self.failures > 0 && now - self.window_start >= rule.window_ms {
            self.failures = 0;
        }
        if self.lockouts > 0
            && now >= self.locked_until
            && now - self.last_failure.max(self.locked_until) >= rule.forgive_ms
        {
            self.lockouts = 0;
        }
    }

    /// Milliseconds left of a lockout, if any.
    fn locked(&self, now: Millis) -> Option<Millis> {
        (now < self.locked_until).then_some(self.locked_until - now)
    }

    fn fail(&mut self, now: Millis, rule: Rule) {
        self.refresh(now, rule);
        if self.failures == 0 {
            self.window_start = now;
        }
        self.failures += 1;
        self.last_failure = now;
        if self.failures >= rule.failures {
            self.lockouts = self.lockouts.saturating_add(1);
            let factor = f64::from(1u32 << self.lockouts.min(30));
            self.locked_until = now + (rule.unit_ms * factor).min(rule.max_lockout_ms);
            self.failures = 0;
        }
    }

    /// Nothing worth remembering: it would behave as a fresh entry.
    fn forgettable(&mut self, now: Millis, rule: Rule) -> bool {
        self.refresh(now, rule);
        self.in_flight == 0 && self.failures == 0 && self.lockouts == 0 && now >= self.locked_until
    }
}

/// The limiter's state, with time as an input. See the module docs.
#[derive(Debug)]
pub struct Limiter {
    config: GuardConfig,
    addrs: HashMap<IpAddr, Strikes>,
    rooms: HashMap<String, Strikes>,
    creations: HashMap<IpAddr, TokenBucket>,
}

impl Limiter {
    pub fn new(config: GuardConfig) -> Self {
        Self {
            config,
            addrs: HashMap::new(),
            rooms: HashMap::new(),
            creations: HashMap::new(),
        }
    }

    fn addr_rule(&self) -> Rule {
        Rule {
            failures: self.config.addr_failures.max(1),
            window_ms: self.config.window_ms,
            unit_ms: self.config.lockout_unit_ms,
            max_lockout_ms: self.config.addr_max_lockout_ms,
            forgive_ms: self.config.forgive_ms,
        }
    }

    fn room_rule(&self) -> Rule {
        Rule {
            failures: self.config.room_failures.max(1),
            max_lockout_ms: self.config.room_max_lockout_ms,
            ..self.addr_rule()
        }
    }

    /// Before a password check of `room` from `addr` (a key from [`addr_key`]): refused
    /// while either is locked out or the checks under way use up the allowance;
    /// otherwise the check counts as under way until [`Limiter::finish`] or
    /// [`Limiter::abandon`].
    pub fn begin(&mut self, addr: IpAddr, room: &str, now: Millis) -> Result<(), Denied> {
        let (addr_rule, room_rule) = (self.addr_rule(), self.room_rule());
        self.make_room(now);
        if self.addrs.len() >= self.config.max_tracked && !self.addrs.contains_key(&addr)
            || self.rooms.len() >= self.config.max_tracked && !self.rooms.contains_key(room)
        {
            return Err(Denied::Busy);
        }
        let a = self.addrs.entry(addr).or_default();
        a.refresh(now, addr_rule);
        if let Some(retry_ms) = a.locked(now) {
            return Err(Denied::Address { retry_ms });
        }
        if a.failures + a.in_flight >= addr_rule.failures {
            return Err(Denied::Pending);
        }
        let r = self.rooms.entry(room.to_owned()).or_default();
        r.refresh(now, room_rule);
        if let Some(retry_ms) = r.locked(now) {
            return Err(Denied::Room { retry_ms });
        }
        if r.failures + r.in_flight >= room_rule.failures {
            return Err(Denied::Pending);
        }
        r.in_flight += 1;
        self.addrs.get_mut(&addr).expect("just inserted").in_flight += 1;
        Ok(())
    }

    /// The check begun with [`Limiter::begin`] ended: `ok` or a failure of both the
    /// address and the room.
    pub fn finish(&mut self, addr: IpAddr, room: &str, ok: bool, now: Millis) {
        let (addr_rule, room_rule) = (self.addr_rule(), self.room_rule());
        if let Some(a) = self.addrs.get_mut(&addr) {
            a.in_flight = a.in_flight.saturating_sub(1);
            if !ok {
                a.fail(now, addr_rule);
            }
        }
        if let Some(r) = self.rooms.get_mut(room) {
            r.in_flight = r.in_flight.saturating_sub(1);
            if !ok {
                r.fail(now, room_rule);
            }
        }
    }

    /// The check begun with [`Limiter::begin`] did not run (refused for want of a thread,
    /// or its caller went away before it started).
    pub fn abandon(&mut self, addr: IpAddr, room: &str) {
        if let Some(a) = self.addrs.get_mut(&addr) {
            a.in_flight = a.in_flight.saturating_sub(1);
        }
        if let Some(r) = self.rooms.get_mut(room) {
            r.in_flight = r.in_flight.saturating_sub(1);
        }
    }

    /// Before a token check from `addr`: refused while the address is locked out.
    pub fn token_allowed(&mut self, addr: IpAddr, now: Millis) -> Result<(), Denied> {
        let rule = self.addr_rule();
        match self.addrs.get_mut(&addr) {
            Some(a) => {
                a.refresh(now, rule);
                a.locked(now)
                    .map_or(Ok(()), |retry_ms| Err(Denied::Address { retry_ms }))
            }
            None => Ok(()),
        }
    }

    /// A token from `addr` did not check out: a failure of the address.
    pub fn token_failed(&mut self, addr: IpAddr, now: Millis) {
        let rule = self.addr_rule();
        self.make_room(now);
        if self.addrs.len() >= self.config.max_tracked && !self.addrs.contains_key(&addr) {
            return;
        }
        self.addrs.entry(addr).or_default().fail(now, rule);
    }

    /// Whether `addr` may create a room now; takes one from its allowance when so.
    pub fn create(&mut self, addr: IpAddr, now: Millis) -> Result<(), Denied> {
        let rate = self.config.create_per_minute / 60.0;
        if rate <= 0.0 {
            return Ok(());
        }
        self.make_room(now);
        if self.creations.len() >= self.config.max_tracked && !self.creations.contains_key(&addr) {
            return Err(Denied::Busy);
        }
        let burst = self.config.create_burst.max(1.0);
        let bucket = self
            .creations
            .entry(addr)
            .or_insert_with(|| TokenBucket::new(rate, burst, now));
        if bucket.take(now) {
            Ok(())
        } else {
            Err(Denied::Creations {
                retry_ms: bucket.wait_ms(now),
            })
        }
    }

    /// Forgets what no longer matters (quiet addresses and rooms, full buckets).
    pub fn prune(&mut self, now: Millis) {
        let (addr_rule, room_rule) = (self.addr_rule(), self.room_rule());
        self.addrs.retain(|_, s| !s.forgettable(now, addr_rule));
        self.rooms.retain(|_, s| !s.forgettable(now, room_rule));
        self.creations.retain(|_, b| !b.is_full(now));
    }

    /// Prunes when a table is full, before it refuses a newcomer.
    fn make_room(&mut self, now: Millis) {
        let max = self.config.max_tracked;
        if self.addrs.len() >= max || self.rooms.len() >= max || self.creations.len() >= max {
            self.prune(now);
        }
    }

    /// Addresses, rooms and creation buckets tracked (for tests and metrics).
    pub fn tracked(&self) -> (usize, usize, usize) {
        (self.addrs.len(), self.rooms.len(), self.creations.len())
    }
}

/// The threads argon2 may run on: `spawn_blocking` behind a semaphore.
#[derive(Debug)]
pub struct HashPool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Counts a caller waiting for a permit while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl HashPool {
    /// `threads` permits (at least one).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        Self {
            permits: Arc::new(Semaphore::new(threads)),
            waiting: AtomicUsize::new(0),
            max_waiting: threads * QUEUE_PER_PERMIT,
        }
    }

    /// One permit per core, one core left to the runtime: at least one.
    pub fn threads_for_this_machine() -> usize {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .saturating_sub(1)
            .max(1)
    }

    /// Runs `f` on a blocking thread once a permit is free, holding the permit until
    /// `f` returns (even if the caller stops waiting). `Busy` when too many wait.
    pub async fn run<R, F>(&self, f: F) -> Result<R, Denied>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.waiting.fetch_add(1, SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, SeqCst);
            return Err(Denied::Busy);
        }
        let waiting = Waiting(&self.waiting);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Denied::Busy)?;
        drop(waiting);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|_| Denied::Internal)
    }
}

/// The limiter and the hashing threads, shared by every connection.
#[derive(Debug)]
pub struct Guard {
    limiter: Mutex<Limiter>,
    pool: HashPool,
    /// Woken whenever a check ends, for checks waiting for a slot.
    ended: Notify,
    epoch: Instant,
}

/// A password check under way; ends it as abandoned unless it is finished.
struct Pending {
    guard: Arc<Guard>,
    addr: IpAddr,
    room: String,
    done: bool,
}

impl Pending {
    fn finish(mut self, ok: bool) {
        self.done = true;
        let now = self.guard.now();
        self.guard.limiter().finish(self.addr, &self.room, ok, now);
        self.guard.ended.notify_waiters();
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.guard.limiter().abandon(self.addr, &self.room);
            self.guard.ended.notify_waiters();
        }
    }
}

impl Guard {
    pub fn new(config: GuardConfig, threads: usize) -> Arc<Self> {
        Arc::new(Self {
            limiter: Mutex::new(Limiter::new(config)),
            pool: HashPool::new(threads),
            ended: Notify::new(),
            epoch: Instant::now(),
        })
    }

    fn now(&self) -> Millis {
        self.epoch.elapsed().as_secs_f64() * 1000.0
    }

    fn limiter(&self) -> MutexGuard<'_, Limiter> {
        self.limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks `password` against `hash`, the argon2 PHC string protecting `room`, for a
    /// client at `addr`: `Ok(true)` when it matches, `Ok(false)` when not (counted), `Err`
    /// when refused without running argon2.
    pub async fn verify_password(
        self: &Arc<Self>,
        addr: IpAddr,
        room: &str,
        password: String,
        hash: String,
    ) -> Result<bool, Denied> {
        let addr = addr_key(addr);
        let deadline = self.now() + PENDING_WAIT_MS;
        loop {
            // Registered before the check, so that an end in between is not missed.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let now = self.now();
            match self.limiter().begin(addr, room, now) {
                Ok(()) => break,
                Err(Denied::Pending) if now < deadline => {}
                Err(denied) => return Err(denied),
            }
            let wait = Duration::from_secs_f64((deadline - now) / 1000.0);
            let _ = tokio::time::timeout(wait, ended).await;
        }
        let pending = Pending {
            guard: self.clone(),
            addr,
            room: room.to_owned(),
            done: false,
        };
        self.pool
            .run(move || {
                let ok = verify_password(&password, &hash);
                pending.finish(ok);
                ok
            })
            .await
    }

    /// Hashes the password of a room being created (on the hashing threads; creation
    /// itself is limited by [`Guard::allow_create`]).
    pub async fn hash_password(&self, password: String) -> Result<String, Denied> {
        self.pool
            .run(move || hash_password(&password))
            .await?
            .map_err(|_| Denied::Internal)
    }

    /// The outcome of a document token check (an HMAC, cheap) from `addr`: `Ok(true)`
    /// lets it in. A valid token is let in even from a locked-out address: it is no
    /// guess, only `joined` hands them out. A forged one counts as a failure of the
    /// address, and from a locked-out address is answered `Err`. An expired one (genuine
    /// but old, e.g. a tab left open) is refused without counting, so that stale clients
    /// retrying do not lock their address out.
    pub fn check_token(&self, addr: IpAddr, verdict: TokenVerdict) -> Result<bool, Denied> {
        let addr = addr_key(addr);
        let now = self.now();
        let mut limiter = self.limiter();
        match verdict {
            TokenVerdict::Valid => Ok(true),
            TokenVerdict::Expired => limiter.token_allowed(addr, now).map(|()| false),
            TokenVerdict::Forged => {
                let allowed = limiter.token_allowed(addr, now);
                limiter.token_failed(addr, now);
                allowed.map(|()| false)
            }
        }
    }

    /// Whether `addr` may create a room now (takes one from its allowance).
    pub fn allow_create(&self, addr: IpAddr) -> Result<(), Denied> {
        let now = self.now();
        self.limiter().create(addr_key(addr), now)
    }

    /// Forgets quiet addresses and rooms; call now and then.
    pub fn prune(&self) {
        let now = self.now();
        self.limiter().prune(now);
    }
}

/// Argon2id with the crate's default (OWASP) parameters, as a PHC string. Slow on
/// purpose: call it through [`Guard`] (or a blocking thread), never on a runtime worker.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

/// Whether `password` matches the PHC string `hash`. Slow on purpose, as
/// [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests;

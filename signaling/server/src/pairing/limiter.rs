//! The limit on wrong pairing codes, with time as an input.
//!
//! - **Per address** (by [`addr_key`](crate::guard::addr_key): IPv6 by its /64):
//!   [`PER_ADDR`] wrong codes within [`WINDOW_MS`] lock the address out for 2^n seconds,
//!   n counting its lockouts (2 s, 4 s, 8 s, ... at most [`MAX_LOCKOUT_MS`]); after
//!   [`FORGIVE_MS`] without a wrong code the doubling starts over. Other addresses are
//!   not affected.
//! - **Globally**: at most [`GLOBAL_PER_MINUTE`] wrong codes a minute from everyone
//!   together (a token bucket holding a minute's worth). When it is empty every `pair`
//!   is answered `rateLimited` without looking at the code, so no spread of addresses
//!   gets more guesses than that; it refills within a minute.
//!
//! Only wrong codes count (unknown, malformed, expired or used); a right one costs
//! nothing.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::hub::Millis;
use crate::limits::TokenBucket;

/// Wrong codes an address may send within [`WINDOW_MS`] before it is locked out.
pub const PER_ADDR: u32 = 5;
/// The window wrong codes of an address are counted in.
pub const WINDOW_MS: Millis = 60_000.0;
/// The first lockout lasts twice this; each further one doubles.
pub const LOCKOUT_UNIT_MS: Millis = 1000.0;
/// Longest lockout.
pub const MAX_LOCKOUT_MS: Millis = 15.0 * 60_000.0;
/// Quiet time after which an address starts over.
pub const FORGIVE_MS: Millis = 30.0 * 60_000.0;
/// Wrong codes a minute from all addresses together.
pub const GLOBAL_PER_MINUTE: f64 = 60.0;
/// Addresses tracked at most; beyond, new ones are refused until old ones go.
pub const MAX_TRACKED: usize = 100_000;

/// The limiter's settings; [`Default`] is the constants above.
#[derive(Clone, Debug, PartialEq)]
pub struct GuessLimits {
    pub per_addr: u32,
    pub window_ms: Millis,
    pub lockout_unit_ms: Millis,
    pub max_lockout_ms: Millis,
    pub forgive_ms: Millis,
    pub global_per_minute: f64,
    pub max_tracked: usize,
}

impl Default for GuessLimits {
    fn default() -> Self {
        Self {
            per_addr: PER_ADDR,
            window_ms: WINDOW_MS,
            lockout_unit_ms: LOCKOUT_UNIT_MS,
            max_lockout_ms: MAX_LOCKOUT_MS,
            forgive_ms: FORGIVE_MS,
            global_per_minute: GLOBAL_PER_MINUTE,
            max_tracked: MAX_TRACKED,
        }
    }
}

/// Why a guess was not even looked at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Refused {
    /// This address sent too many wrong codes; it may try again in `retry_ms`.
    Address { retry_ms: Millis },
    /// Too many wrong codes from everyone; try again in `retry_ms`.
    Global { retry_ms: Millis },
    /// Too many addresses are tracked.
    Busy,
}

impl Refused {
    /// What the client is told.
    pub fn message(self) -> String {
        let secs = |ms: Millis| ((ms / 1000.0).ceil() as u64).max(1);
        match self {
            Refused::Address { retry_ms } => format!(
                "too many wrong pairing codes from your address; retry in {} s",
                secs(retry_ms)
            ),
            Refused::Global { retry_ms } => format!(
                "too many wrong pairing codes on this server; retry in {} s",
                secs(retry_ms)
            ),
            Refused::Busy => "the server is busy; retry in a moment".into(),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Strikes {
    failures: u32,
    window_start: Millis,
    lockouts: u32,
    locked_until: Millis,
    last_failure: Millis,
}

/// See the module docs.
#[derive(Debug)]
pub struct GuessLimiter {
    limits: GuessLimits,
    addrs: HashMap<IpAddr, Strikes>,
    global: TokenBucket,
}

impl GuessLimiter {
    pub fn new(limits: GuessLimits, now: Millis) -> Self {
        let per_minute = limits.global_per_minute;
        Self {
            global: TokenBucket::new(per_minute / 60.0, per_minute.max(1.0), now),
            limits,
            addrs: HashMap::new(),
        }
    }

    fn refresh(&self, s: &mut Strikes, now: Millis) {
        if s.failures > 0 && now - s.window_start >= self.limits.window_ms {
            s.failures = 0;
        }
        if s.lockouts > 0
            && now >= s.locked_until
            && now - s.last_failure.max(s.locked_until) >= self.limits.forgive_ms
        {
            s.lockouts = 0;
        }
    }

    /// Before looking at a code from `addr` (an address key).
    pub fn check(&mut self, addr: IpAddr, now: Millis) -> Result<(), Refused> {
        if let Some(mut s) = self.addrs.remove(&addr) {
            self.refresh(&mut s, now);
            let locked = (now < s.locked_until).then_some(s.locked_until - now);
            self.addrs.insert(addr, s);
            if let Some(retry_ms) = locked {
                return Err(Refused::Address { retry_ms });
            }
        } else if self.addrs.len() >= self.limits.max_tracked {
            self.prune(now);
            if self.addrs.len() >= self.limits.max_tracked {
                return Err(Refused::Busy);
            }
        }
        let wait = self.global.wait_ms(now);
        if self.limits.global_per_minute > 0.0 && wait > 0.0 {
            return Err(Refused::Global { retry_ms: wait });
        }
        Ok(())
    }

    /// A wrong code from `addr`: counts against it and against everyone.
    pub fn wrong(&mut self, addr: IpAddr, now: Millis) {
        self.global.take(now);
        let mut s = self.addrs.remove(&addr).unwrap_or_default();
        self.refresh(&mut s, now);
        if s.failures == 0 {
            s.window_start = now;
        }
        s.failures += 1;
        s.last_failure = now;
        if s.failures >= self.limits.per_addr.max(1) {
            s.lockouts = s.lockouts.saturating_add(1);
            let factor = f64::from(1u32 << s.lockouts.min(30));
            s.locked_until =
                now + (self.limits.lockout_unit_ms * factor).min(self.limits.max_lockout_ms);
            s.failures = 0;
        }
        self.addrs.insert(addr, s);
    }

    /// Forgets addresses with nothing worth remembering.
    pub fn prune(&mut self, now: Millis) {
        let limits = self.limits.clone();
        self.addrs.retain(|_, s| {
            let window_over = now - s.window_start >= limits.window_ms;
            let forgiven = now >= s.locked_until
                && now - s.last_failure.max(s.locked_until) >= limits.forgive_ms;
            !(forgiven && (s.failures == 0 || window_over))
        });
    }

    /// Addresses tracked (for tests).
    pub fn tracked(&self) -> usize {
        self.addrs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn an_address_is_locked_out_for_longer_each_time_and_others_are_not() {
        let mut l = GuessLimiter::new(GuessLimits::default(), 0.0);
        for _ in 0..PER_ADDR {
            assert!(l.check(ip(1), 0.0).is_ok());
            l.wrong(ip(1), 0.0);
        }
        assert_eq!(
            l.check(ip(1), 0.0),
            Err(Refused::Address { retry_ms: 2000.0 })
        );
        assert!(l.check(ip(2), 0.0).is_ok(), "another address is served");
        // After 2 s the next five wrong codes lock it out for 4 s, then 8 s.
        for _ in 0..PER_ADDR {
            assert!(l.check(ip(1), 2000.0).is_ok());
            l.wrong(ip(1), 2000.0);
        }
        assert_eq!(
            l.check(ip(1), 2000.0),
            Err(Refused::Address { retry_ms: 4000.0 })
        );
        for _ in 0..PER_ADDR {
            l.wrong(ip(1), 6000.0);
        }
        assert_eq!(
            l.check(ip(1), 6000.0),
            Err(Refused::Address { retry_ms: 8000.0 })
        );
        // Forgiven after half an hour of quiet: the next lockout is 2 s again.
        let later = 14_000.0 + FORGIVE_MS;
        for _ in 0..PER_ADDR {
            l.wrong(ip(1), later);
        }
        assert_eq!(
            l.check(ip(1), later),
            Err(Refused::Address { retry_ms: 2000.0 })
        );
    }

    #[test]
    fn the_lockout_is_capped() {
        let mut l = GuessLimiter::new(GuessLimits::default(), 0.0);
        let mut now = 0.0;
        for _ in 0..20 {
            for _ in 0..PER_ADDR {
                l.wrong(ip(1), now);
            }
            match l.check(ip(1), now) {
                Err(Refused::Address { retry_ms }) => {
                    assert!(retry_ms <= MAX_LOCKOUT_MS);
                    now += retry_ms;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(
            matches!(l.check(ip(1), now - 1.0), Err(Refused::Address { retry_ms }) if (retry_ms - 1.0).abs() < 1e-9)
        );
    }

    #[test]
    fn a_minute_of_wrong_codes_from_everyone_stops_all_guessing_for_a_while() {
        let mut l = GuessLimiter::new(GuessLimits::default(), 0.0);
        // 60 addresses, one wrong code each.
        for i in 0..60u8 {
            assert!(l.check(ip(i), 0.0).is_ok());
            l.wrong(ip(i), 0.0);
        }
        assert!(matches!(l.check(ip(200), 0.0), Err(Refused::Global { .. })));
        // One wrong code a second comes back.
        assert!(l.check(ip(200), 1000.0).is_ok());
        // In any ten minutes at most 60 + 600 wrong codes get through.
        let mut guesses = 0;
        let mut now = 1000.0;
        let mut addr = 0u32;
        while now < 601_000.0 {
            let a = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + addr));
            if l.check(a, now).is_ok() {
                l.wrong(a, now);
                guesses += 1;
                addr += 1;
            }
            now += 100.0;
        }
        assert!(guesses <= 660, "{guesses}");
    }

    #[test]
    fn quiet_addresses_are_forgotten_and_the_table_is_bounded() {
        let limits = GuessLimits {
            max_tracked: 2,
            global_per_minute: 0.0,
            ..GuessLimits::default()
        };
        let mut l = GuessLimiter::new(limits, 0.0);
        l.wrong(ip(1), 0.0);
        l.wrong(ip(2), 0.0);
        assert_eq!(l.check(ip(3), 0.0), Err(Refused::Busy));
        l.prune(FORGIVE_MS + WINDOW_MS);
        assert_eq!(l.tracked(), 0);
        assert!(l.check(ip(3), FORGIVE_MS + WINDOW_MS).is_ok());
    }
}

//! Clock offset to the rooms server from ping/pong round trips, and the reconnect delay.
//!
//! Both follow the browser client (`signaling/web/src/clock.ts`, `backoff.ts`) so a kiosk
//! and a browser in the same room agree on server time and back off alike.

use std::collections::VecDeque;
use std::time::Duration;

/// One ping/pong round trip, all times in ms since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockSample {
    /// Local time the ping was sent.
    pub client_send: f64,
    /// Local time the pong arrived.
    pub client_receive: f64,
    /// Server time in the pong.
    pub server_time: f64,
}

/// NTP-style estimate: `offset = serverTime - (clientSend + rtt / 2)`. The samples with
/// the smallest round trips are the least disturbed by queueing, so the estimate is the
/// median offset of the fastest third of the recent samples.
#[derive(Clone, Debug)]
pub struct ClockOffset {
    samples: VecDeque<(f64, f64)>,
    keep: usize,
}

impl Default for ClockOffset {
    fn default() -> Self {
        Self::new(16)
    }
}

impl ClockOffset {
    /// Keeps the last `keep` samples (at least one).
    pub fn new(keep: usize) -> Self {
        Self {
            samples: VecDeque::new(),
            keep: keep.max(1),
        }
    }

    /// Adds a round trip; one with a negative round trip or a non-finite time is ignored.
    pub fn add(&mut self, sample: ClockSample) {
        let rtt = sample.client_receive - sample.client_send;
        let usable = rtt.is_finite() && rtt >= 0.0 && sample.server_time.is_finite();
        if !usable {
            return;
        }
        let offset = sample.server_time - (sample.client_send + rtt / 2.0);
        self.samples.push_back((rtt, offset));
        while self.samples.len() > self.keep {
            self.samples.pop_front();
        }
    }

    /// Milliseconds to add to a local time to get server time; 0 before any sample.
    pub fn offset_ms(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let mut fastest: Vec<(f64, f64)> = self.samples.iter().copied().collect();
        fastest.sort_by(|a, b| a.0.total_cmp(&b.0));
        let best = fastest.len().div_ceil(3).max(1);
        let mut offsets: Vec<f64> = fastest[..best].iter().map(|s| s.1).collect();
        offsets.sort_by(f64::total_cmp);
        offsets[offsets.len() / 2]
    }

    /// Smallest round trip seen, in ms; `None` before any sample.
    pub fn best_rtt_ms(&self) -> Option<f64> {
        self.samples.iter().map(|s| s.0).min_by(f64::total_cmp)
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample arrived yet.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Exponential backoff with half jitter, capped: attempt `n` waits between half and all
/// of `min(cap, base * 2^n)`, so a restarted server is not hit by every client at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    /// 500 ms doubling up to 15 s, as the browser client does.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(15),
        }
    }
}

impl Backoff {
    /// The delay before reconnect attempt `attempt` (0 for the first), with `random` in
    /// `[0, 1)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(30));
        let ceiling = self.base.saturating_mul(factor).min(self.cap);
        let random = random.clamp(0.0, 1.0);
        ceiling / 2 + ceiling.mul_f64(random / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(send: f64, rtt: f64, offset: f64) -> ClockSample {
        ClockSample {
            client_send: send,
            client_receive: send + rtt,
            server_time: send + rtt / 2.0 + offset,
        }
    }

    #[test]
    fn offset_prefers_the_fastest_round_trips() {
        let mut clock = ClockOffset::default();
        assert!(clock.offset_ms().abs() < f64::EPSILON);
        // Slow samples carry queueing delay on one leg: their offsets are off.
        clock.add(sample(1000.0, 400.0, 900.0));
        clock.add(sample(2000.0, 10.0, 250.0));
        clock.add(sample(3000.0, 300.0, -700.0));
        assert!((clock.offset_ms() - 250.0).abs() < 1e-9);
        assert_eq!(clock.best_rtt_ms(), Some(10.0));
        // Negative round trips (a clock step) are ignored.
        clock.add(ClockSample {
            client_send: 10.0,
            client_receive: 5.0,
            server_time: 0.0,
        });
        assert_eq!(clock.len(), 3);
    }

    #[test]
    fn offset_keeps_only_recent_samples() {
        let mut clock = ClockOffset::new(2);
        clock.add(sample(0.0, 1.0, 5.0));
        clock.add(sample(0.0, 50.0, 7.0));
        clock.add(sample(0.0, 60.0, 9.0));
        assert_eq!(clock.len(), 2);
        assert!((clock.offset_ms() - 7.0).abs() < 1e-9);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(250));
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(500));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(15));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_millis(11_250));
    }
}

//! Clock offset to the rooms server from ping/pong round trips.
//!
//! It follows the browser client (`signaling/web/src/clock.ts`) so a kiosk and a browser
//! in the same room agree on server time. (When to reconnect is the engine's decision:
//! `portal_engine::backoff`.)

use std::collections::VecDeque;

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
}

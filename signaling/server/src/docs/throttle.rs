//! How fast one document connection is read: token buckets on its messages, on its
//! update bytes and on its sync requests (a SyncStep1 makes the server encode all the
//! client lacks, the whole document for an empty state vector). A connection over its
//! rate is not closed: its next frame is read once the buckets allow, so a flood waits in
//! its own socket while everyone else is served. Time is an input.

use std::time::{Duration, Instant};

use super::DocsQuotas;
use super::wire::Incoming;

/// `rate` tokens a second up to `burst`. A charge may overdraw it: the debt is what the
/// connection waits for before its next message.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64, now: Instant) -> Bucket {
        Bucket {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Takes `cost`; how long until the bucket is out of debt.
    fn charge(&mut self, cost: f64, now: Instant) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst) - cost;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// The buckets of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Throttle {
    messages: Bucket,
    update_bytes: Bucket,
    syncs: Bucket,
}

impl Throttle {
    pub(crate) fn new(q: &DocsQuotas, now: Instant) -> Throttle {
        Throttle {
            messages: Bucket::new(q.msg_rate, q.msg_burst, now),
            update_bytes: Bucket::new(q.update_bytes_rate, q.update_bytes_burst, now),
            syncs: Bucket::new(q.sync_rate, q.sync_burst, now),
        }
    }

    /// Charges `msg`, which is handled now; `Some(t)`: read nothing more before `t`.
    pub(crate) fn charge(&mut self, msg: &Incoming, now: Instant) -> Option<Instant> {
        let mut wait = self.messages.charge(1.0, now);
        match msg {
            Incoming::SyncStep1(_) => wait = wait.max(self.syncs.charge(1.0, now)),
            Incoming::Update(raw) => {
                wait = wait.max(self.update_bytes.charge(raw.len() as f64, now));
            }
            Incoming::Awareness(_) | Incoming::QueryAwareness => {}
        }
        (!wait.is_zero()).then(|| now + wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use yrs::StateVector;

    fn quotas() -> DocsQuotas {
        DocsQuotas {
            msg_rate: 100.0,
            msg_burst: 10.0,
            update_bytes_rate: 1000.0,
            update_bytes_burst: 4000.0,
            sync_rate: 0.5,
            sync_burst: 2.0,
            ..DocsQuotas::default()
        }
    }

    #[test]
    fn sync_requests_have_a_budget_of_their_own() {
        let t0 = Instant::now();
        let mut t = Throttle::new(&quotas(), t0);
        let step1 = Incoming::SyncStep1(StateVector::default());
        assert_eq!(t.charge(&step1, t0), None);
        assert_eq!(t.charge(&step1, t0), None);
        // The third overdraws: the next frame waits two seconds (0.5 a second).
        assert_eq!(t.charge(&step1, t0), Some(t0 + Duration::from_secs(2)));
        // Once the debt is paid, other messages go on at their own rate; sync requests
        // at one every two seconds.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(t.charge(&Incoming::QueryAwareness, later), None);
        assert_eq!(
            t.charge(&step1, later),
            Some(later + Duration::from_secs(2))
        );
    }

    #[test]
    fn update_bytes_and_message_counts_are_limited_too() {
        let t0 = Instant::now();
        let mut t = Throttle::new(&quotas(), t0);
        let big = Incoming::Update(Bytes::from(vec![0; 3000]));
        assert_eq!(t.charge(&big, t0), None);
        // 2000 bytes over: two seconds at 1000 bytes a second.
        assert_eq!(t.charge(&big, t0), Some(t0 + Duration::from_secs(2)));
        let mut t = Throttle::new(&quotas(), t0);
        for _ in 0..10 {
            assert_eq!(t.charge(&Incoming::QueryAwareness, t0), None);
        }
        assert_eq!(
            t.charge(&Incoming::QueryAwareness, t0),
            Some(t0 + Duration::from_millis(10))
        );
        // A rate of 0 turns a limit off.
        let mut t = Throttle::new(
            &DocsQuotas {
                msg_rate: 0.0,
                sync_rate: 0.0,
                ..quotas()
            },
            t0,
        );
        for _ in 0..1000 {
            assert_eq!(
                t.charge(&Incoming::SyncStep1(StateVector::default()), t0),
                None
            );
        }
    }
}

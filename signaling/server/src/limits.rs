//! Per-connection limits that need no socket: a token bucket for the message rate.

/// A token bucket: `rate` tokens a second, holding at most `burst`. Time is an input.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last_ms: f64,
}

impl TokenBucket {
    /// A full bucket at time `now_ms`. A `rate` of 0 turns the limit off.
    pub fn new(rate: f64, burst: f64, now_ms: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last_ms: now_ms,
        }
    }

    /// Takes one token; `false` when the bucket is empty.
    pub fn take(&mut self, now_ms: f64) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let elapsed = (now_ms - self.last_ms).max(0.0) / 1000.0;
        self.last_ms = now_ms.max(self.last_ms);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_rate() {
        let mut b = TokenBucket::new(10.0, 5.0, 0.0);
        assert_eq!((0..20).filter(|_| b.take(0.0)).count(), 5);
        assert!(!b.take(50.0));
        assert!(b.take(100.0)); // 0.1 s at 10/s = one token
        assert!(!b.take(100.0));
        // A long pause refills to the burst, no more.
        assert_eq!((0..20).filter(|_| b.take(100_000.0)).count(), 5);
        // Time going backwards gives nothing.
        assert!(!b.take(0.0));
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let mut b = TokenBucket::new(0.0, 0.0, 0.0);
        assert!((0..1000).all(|_| b.take(0.0)));
    }
}

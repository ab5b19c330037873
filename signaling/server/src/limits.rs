//! Limits that need no socket: a token bucket (the message rate of a connection, room
//! creations per address).

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
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Milliseconds until a token is there (0 when one is there now).
    pub fn wait_ms(&mut self, now_ms: f64) -> f64 {
        if self.rate <= 0.0 {
            return 0.0;
        }
        self.refill(now_ms);
        (1.0 - self.tokens).max(0.0) / self.rate * 1000.0
    }

    /// Whether the bucket has refilled to its burst: it is then no different from a new
    /// one and need not be kept.
    pub fn is_full(&mut self, now_ms: f64) -> bool {
        self.rate <= 0.0 || {
            self.refill(now_ms);
            self.tokens >= self.burst
        }
    }

    fn refill(&mut self, now_ms: f64) {
        let elapsed = (now_ms - self.last_ms).max(0.0) / 1000.0;
        self.last_ms = now_ms.max(self.last_ms);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
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
    fn says_how_long_until_the_next_token_and_when_it_is_full_again() {
        let mut b = TokenBucket::new(2.0, 2.0, 0.0);
        assert!(b.wait_ms(0.0).abs() < 1e-9);
        assert!(b.take(0.0) && b.take(0.0));
        assert!((b.wait_ms(0.0) - 500.0).abs() < 1e-9);
        assert!((b.wait_ms(250.0) - 250.0).abs() < 1e-9);
        assert!(!b.is_full(500.0));
        assert!(b.is_full(1000.0));
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let mut b = TokenBucket::new(0.0, 0.0, 0.0);
        assert!((0..1000).all(|_| b.take(0.0)));
    }
}

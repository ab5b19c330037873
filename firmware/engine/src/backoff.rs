//! Retry delays: exponential backoff with jitter drawn from a seeded generator.
//!
//! Many kiosks restart together after a power cut or a server restart; without jitter they
//! would all reconnect in the same instant, every time. The generator is seeded by the
//! caller (the kiosk seeds it from its peer id or the clock at start), so a test that fixes
//! the seed sees the same delays on every run.

use std::time::Duration;

/// A small deterministic generator (SplitMix64). Not for secrets; for spreading retries.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Backoff settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first retry (before jitter).
    pub initial: Duration,
    /// Upper bound of any delay (before jitter).
    pub max: Duration,
    /// Growth per failed attempt.
    pub factor: f64,
    /// Fraction of the delay that is random: 0.5 gives a delay in `[d/2, d]`.
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.5,
        }
    }
}

/// Delays for successive attempts; [`Backoff::reset`] after a success.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Backoff {
            config,
            attempt: 0,
            rng: Rng::new(seed),
        }
    }

    /// Failed attempts since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt; counts an attempt.
    pub fn next_delay(&mut self) -> Duration {
        let c = &self.config;
        let exp = c
            .factor
            .max(1.0)
            .powi(i32::try_from(self.attempt.min(64)).unwrap_or(64));
        let base = (c.initial.as_secs_f64() * exp).min(c.max.as_secs_f64());
        let jitter = c.jitter.clamp(0.0, 1.0);
        let delay = base * (1.0 - jitter * self.rng.next_f64());
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_secs_f64(delay.max(0.0))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_then_caps_and_resets() {
        let config = BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        };
        let mut b = Backoff::new(config, 1);
        let delays: Vec<_> = (0..10).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(&delays[..4], &[500, 1000, 2000, 4000]);
        assert_eq!(delays[9], 30_000);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }

    #[test]
    fn same_seed_same_delays_other_seed_other_delays() {
        let run = |seed| {
            let mut b = Backoff::new(BackoffConfig::default(), seed);
            (0..5).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    proptest! {
        #[test]
        fn delays_stay_within_jitter_bounds(seed: u64, attempts in 1usize..40) {
            let config = BackoffConfig::default();
            let mut b = Backoff::new(config, seed);
            for i in 0..attempts {
                let d = b.next_delay().as_secs_f64();
                let base = (config.initial.as_secs_f64() * 2f64.powi(i32::try_from(i).unwrap()))
                    .min(config.max.as_secs_f64());
                prop_assert!(d <= base + 1e-9);
                prop_assert!(d >= base * (1.0 - config.jitter) - 1e-9);
            }
        }
    }
}

//! Send-side congestion control: Google Congestion Control over transport-wide feedback.
//!
//! webrtc-rs 0.21 ships GCC (`rtc::interceptor::Gcc`) and the interceptors around it, but
//! not in its default chain. [`with_congestion_control`] adds, at the slots the chain
//! reserves for them: the TWCC sender (numbers what leaves), the congestion controller
//! (send history + feedback ingest, driving the estimator), the pacer, and the TWCC
//! receiver (so the remote's estimator hears about what we receive). It also registers
//! the `transport-cc` feedback and header extension, which Chromium needs before it
//! reports anything.
//!
//! The estimate leaves the chain through [`SendEstimate`]: the estimator is wrapped so
//! every new target is published to an atomic the peer's owner samples (the pattern of
//! the crate's `bandwidth-estimation-from-disk` example). The encoder is one per codec for
//! every peer, so the estimate is advice to `portal-engine`, which picks the bitrate.
//!
//! The pacer releases at the estimate times [`PACING_FACTOR`], as libwebrtc does: paced at
//! exactly the estimate, audio, RTP overhead and keyframe bursts on top of a video encoder
//! set to the estimate would queue without end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::interceptor::{
    BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Gcc, PacerBuilder, PacketReport,
    Registry, Slot,
};
use rtc::peer_connection::configuration::interceptor_registry::configure_twcc;
use rtc::peer_connection::configuration::media_engine::MediaEngine;

/// Pacing rate over the estimate.
pub const PACING_FACTOR: f64 = 1.5;

/// Bounds of the estimate, bit/s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BitrateBounds {
    pub min: f64,
    pub start: f64,
    pub max: f64,
}

impl Default for BitrateBounds {
    fn default() -> Self {
        BitrateBounds {
            min: 300_000.0,
            start: 1_000_000.0,
            max: 2_500_000.0,
        }
    }
}

/// The latest send estimate of one peer connection, bit/s (shared with the estimator).
#[derive(Clone, Debug)]
pub struct SendEstimate(Arc<AtomicU64>);

impl SendEstimate {
    fn new(bits_per_second: f64) -> Self {
        SendEstimate(Arc::new(AtomicU64::new(bits_per_second.to_bits())))
    }

    fn set(&self, bits_per_second: f64) {
        self.0.store(bits_per_second.to_bits(), Ordering::Relaxed);
    }

    /// The estimate now, bit/s.
    pub fn bits_per_second(&self) -> u64 {
        f64::from_bits(self.0.load(Ordering::Relaxed)) as u64
    }
}

/// GCC, publishing every target; the pacer is told the target times [`PACING_FACTOR`].
struct Reporting {
    inner: Gcc,
    published: SendEstimate,
}

impl BandwidthEstimator for Reporting {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.inner.on_reports(now, reports);
        self.published.set(self.inner.target_bitrate());
    }

    fn target_bitrate(&self) -> f64 {
        self.inner.target_bitrate() * PACING_FACTOR
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.published.set(self.inner.target_bitrate());
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.inner.stats()
    }
}

/// Adds GCC over TWCC to `registry` (see the module docs); returns the estimate's handle.
pub fn with_congestion_control(
    registry: Registry,
    media_engine: &mut MediaEngine,
    bounds: BitrateBounds,
) -> Result<(Registry, SendEstimate), rtc::shared::error::Error> {
    let min = bounds.min.max(1.0);
    let max = bounds.max.max(min);
    let start = bounds.start.clamp(min, max);
    let published = SendEstimate::new(start);
    let estimator = Reporting {
        inner: Gcc::new(start, min, max),
        published: published.clone(),
    };
    let registry = configure_twcc(registry, media_engine)?
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(estimator).build(),
        )
        .with(
            Slot::Pacer,
            PacerBuilder::new()
                .with_target_bitrate(start * PACING_FACTOR)
                .build(),
        );
    Ok((registry, published))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_holds_every_congestion_control_part_once() {
        let mut media_engine = MediaEngine::default();
        let (registry, estimate) =
            with_congestion_control(Registry::new(), &mut media_engine, BitrateBounds::default())
                .expect("registers");
        let slots: Vec<String> = registry.slots().into_iter().map(|(_, n)| n).collect();
        for part in [
            "CongestionControlInterceptor",
            "TwccSenderInterceptor",
            "PacerInterceptor",
            "TwccReceiverInterceptor",
        ] {
            assert_eq!(
                slots.iter().filter(|n| n.contains(part)).count(),
                1,
                "{part} in {slots:?}"
            );
        }
        assert_eq!(estimate.bits_per_second(), 1_000_000);
    }

    #[test]
    fn the_start_is_held_within_the_bounds() {
        let mut media_engine = MediaEngine::default();
        let bounds = BitrateBounds {
            min: 500_000.0,
            start: 100_000.0,
            max: 900_000.0,
        };
        let (_, estimate) =
            with_congestion_control(Registry::new(), &mut media_engine, bounds).expect("registers");
        assert_eq!(estimate.bits_per_second(), 500_000);
    }
}

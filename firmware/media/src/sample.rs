//! Encoded samples and their fan-out to any number of subscribers.
//!
//! Each codec is encoded once; its samples go to every subscriber (one per peer track).
//! Delivery never blocks the encoder: a subscriber is a callback that must return at
//! once (typically `try_send` on the caller's channel), and a full subscriber misses the
//! sample. Video subscribers start at a keyframe and, after missing a sample, skip to the
//! next keyframe, so a decoder never sees a broken reference chain.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use portal_proto::media::Codec;

/// One encoded unit, ready for `TrackLocalStaticSample::write_sample`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedSample {
    pub codec: Codec,
    pub data: Bytes,
    pub duration: Duration,
    /// Presentation time in the capture pipeline's running time.
    pub pts: Option<Duration>,
    /// Whether a decoder can start here (H.264 IDR with SPS/PPS, VP8 keyframe; every
    /// Opus packet).
    pub keyframe: bool,
}

/// What a subscriber did with a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Taken.
    Accepted,
    /// Not taken (the subscriber's queue is full); it stays subscribed.
    Dropped,
    /// The subscriber is gone; remove it.
    Closed,
}

/// A subscriber callback; runs on the encoder's streaming thread and must not block.
pub type SampleCallback = Box<dyn FnMut(&EncodedSample) -> Delivery + Send>;

struct Subscriber {
    id: u64,
    callback: SampleCallback,
    /// Video: waiting for a keyframe before delivering again.
    needs_keyframe: bool,
}

/// The subscribers of one codec.
pub(crate) struct Fanout {
    subscribers: Mutex<Vec<Subscriber>>,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("subscribers", &self.len())
            .field("delivered", &self.delivered.load(Ordering::Relaxed))
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Fanout {
    pub(crate) fn new() -> Self {
        Fanout {
            subscribers: Mutex::new(Vec::new()),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn add(&self, id: u64, callback: SampleCallback, video: bool) {
        self.lock().push(Subscriber {
            id,
            callback,
            needs_keyframe: video,
        });
    }

    /// Removes subscriber `id`; returns how many remain.
    pub(crate) fn remove(&self, id: u64) -> usize {
        let mut subs = self.lock();
        subs.retain(|s| s.id != id);
        subs.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Hands `sample` to every subscriber.
    pub(crate) fn deliver(&self, sample: &EncodedSample) {
        let mut subs = self.lock();
        subs.retain_mut(|s| {
            if s.needs_keyframe && !sample.keyframe {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            match (s.callback)(sample) {
                Delivery::Accepted => {
                    s.needs_keyframe = false;
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Delivery::Dropped => {
                    s.needs_keyframe = sample.codec.is_video();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Delivery::Closed => false,
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        // A panicking subscriber must not take the encoder down with it.
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn sample(keyframe: bool) -> EncodedSample {
        EncodedSample {
            codec: Codec::H264,
            data: Bytes::from_static(b"x"),
            duration: Duration::from_millis(33),
            pts: None,
            keyframe,
        }
    }

    #[test]
    fn a_full_subscriber_skips_to_the_next_keyframe_and_others_are_unaffected() {
        let fan = Fanout::new();
        let (fast_tx, fast_rx) = mpsc::sync_channel(100);
        let (slow_tx, slow_rx) = mpsc::sync_channel(1);
        let to = |tx: mpsc::SyncSender<EncodedSample>| -> SampleCallback {
            Box::new(move |s| match tx.try_send(s.clone()) {
                Ok(()) => Delivery::Accepted,
                Err(mpsc::TrySendError::Full(_)) => Delivery::Dropped,
                Err(mpsc::TrySendError::Disconnected(_)) => Delivery::Closed,
            })
        };
        fan.add(1, to(fast_tx), true);
        fan.add(2, to(slow_tx), true);
        for key in [false, true, false, false, true, false] {
            fan.deliver(&sample(key));
        }
        // The fast one got everything from the first keyframe on.
        assert_eq!(fast_rx.try_iter().count(), 5);
        // The slow one took the first keyframe, missed the next delta, then waited.
        let got: Vec<bool> = slow_rx.try_iter().map(|s| s.keyframe).collect();
        assert_eq!(got, [true]);
        fan.deliver(&sample(false));
        fan.deliver(&sample(true));
        let got: Vec<bool> = slow_rx.try_iter().map(|s| s.keyframe).collect();
        assert_eq!(got, [true], "resumes at a keyframe, not at a delta");
        drop(fast_rx);
        fan.deliver(&sample(true));
        assert_eq!(fan.len(), 1, "a closed subscriber is removed");
    }
}

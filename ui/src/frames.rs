//! Video frames from any thread to the tiles, dropping frames a slow UI cannot show.
//!
//! Every tile has one [`LatestSlot`]: the producer puts the newest frame in it and
//! schedules at most one event-loop callback; a frame still waiting when a newer one
//! arrives is dropped (and counted), so a slow UI falls behind by at most one frame per
//! tile and never queues.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Which tile a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKey {
    /// This kiosk's own camera.
    SelfView,
    /// A peer's camera.
    Camera(u64),
    /// A peer's shared screen.
    Screen(u64),
    /// The watch-together video, shown when the stage shows it
    /// ([`StageView::Watch`](crate::StageView::Watch)).
    Watch,
}

/// A frame that cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("a {width}x{height} frame has no pixels")]
    Empty { width: u32, height: u32 },
    #[error("a {width}x{height} RGBA frame needs {expected} bytes, got {actual}")]
    WrongLength {
        width: u32,
        height: u32,
        expected: u64,
        actual: usize,
    },
}

/// Checks that `len` bytes hold a `width` x `height` RGBA frame.
pub(crate) fn check_rgba(width: u32, height: u32, len: usize) -> Result<(), FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::Empty { width, height });
    }
    let expected = u64::from(width) * u64::from(height) * 4;
    if len as u64 != expected {
        return Err(FrameError::WrongLength {
            width,
            height,
            expected,
            actual: len,
        });
    }
    Ok(())
}

/// Frame counters since the UI started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameStats {
    /// Frames handed to a tile on the UI thread.
    pub shown: u64,
    /// Frames replaced by a newer one before the UI got to them, or sent to a UI that is gone.
    pub dropped: u64,
}

#[derive(Debug, Default)]
pub(crate) struct FrameCounters {
    shown: AtomicU64,
    dropped: AtomicU64,
}

impl FrameCounters {
    pub(crate) fn shown(&self) {
        self.shown.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> FrameStats {
        FrameStats {
            shown: self.shown.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// What [`LatestSlot::offer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offered {
    /// An older value was still waiting and is gone now.
    pub(crate) replaced: bool,
    /// No callback is outstanding: the caller must schedule one that calls
    /// [`LatestSlot::take`] (or [`LatestSlot::cancel`] if it cannot).
    pub(crate) schedule: bool,
}

/// The newest value for a consumer on another thread, with at most one wake-up pending.
#[derive(Debug, Default)]
pub(crate) struct LatestSlot<T> {
    pending: Mutex<Option<T>>,
    scheduled: AtomicBool,
}

impl<T> LatestSlot<T> {
    pub(crate) fn new() -> Self {
        Self {
            pending: Mutex::new(None),
            scheduled: AtomicBool::new(false),
        }
    }

    /// Producer side: keep `value` as the newest.
    pub(crate) fn offer(&self, value: T) -> Offered {
        let replaced = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(value)
            .is_some();
        let schedule = !self.scheduled.swap(true, Ordering::AcqRel);
        Offered { replaced, schedule }
    }

    /// Consumer side, in the scheduled callback: the newest value, if any. The flag is
    /// cleared first, so a value offered meanwhile schedules a fresh callback.
    pub(crate) fn take(&self) -> Option<T> {
        self.scheduled.store(false, Ordering::Release);
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Producer side, when scheduling failed: forget the wake-up and hand back the value.
    pub(crate) fn cancel(&self) -> Option<T> {
        self.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, mpsc};

    #[test]
    fn newest_value_wins_and_one_wakeup_is_pending() {
        let slot = LatestSlot::new();
        assert_eq!(
            slot.offer(1),
            Offered {
                replaced: false,
                schedule: true
            }
        );
        assert_eq!(
            slot.offer(2),
            Offered {
                replaced: true,
                schedule: false
            }
        );
        assert_eq!(
            slot.offer(3),
            Offered {
                replaced: true,
                schedule: false
            }
        );
        assert_eq!(slot.take(), Some(3));
        assert_eq!(slot.take(), None);
        assert!(
            slot.offer(4).schedule,
            "after a take the next offer wakes again"
        );
        assert_eq!(slot.cancel(), Some(4));
        assert!(
            slot.offer(5).schedule,
            "a cancelled wake-up is not outstanding"
        );
    }

    /// A producer racing a slow consumer: every value is either shown or counted as
    /// replaced, the last one is always shown, and wake-ups never pile up.
    #[test]
    fn racing_producer_loses_nothing_but_replaced_values() {
        const N: u64 = 20_000;
        let slot = Arc::new(LatestSlot::new());
        let (wake, woken) = mpsc::channel::<()>();
        let producer = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                let mut replaced = 0;
                let mut wakeups = 0;
                for value in 1..=N {
                    let offered = slot.offer(value);
                    replaced += u64::from(offered.replaced);
                    if offered.schedule {
                        wakeups += 1;
                        wake.send(()).unwrap();
                    }
                }
                (replaced, wakeups)
            })
        };
        let mut shown = Vec::new();
        let mut callbacks = 0;
        while let Ok(()) = woken.recv() {
            callbacks += 1;
            if callbacks % 7 == 0 {
                std::thread::yield_now();
            }
            if let Some(value) = slot.take() {
                shown.push(value);
            }
        }
        let (replaced, wakeups) = producer.join().unwrap();
        assert_eq!(callbacks, wakeups);
        assert_eq!(shown.len() as u64 + replaced, N);
        assert_eq!(shown.last(), Some(&N));
        assert!(
            shown.windows(2).all(|w| w[0] < w[1]),
            "frames stay in order"
        );
    }

    #[test]
    fn frame_sizes_are_checked() {
        assert_eq!(check_rgba(2, 2, 16), Ok(()));
        assert_eq!(
            check_rgba(2, 2, 15),
            Err(FrameError::WrongLength {
                width: 2,
                height: 2,
                expected: 16,
                actual: 15
            })
        );
        assert_eq!(
            check_rgba(0, 2, 0),
            Err(FrameError::Empty {
                width: 0,
                height: 2
            })
        );
    }
}

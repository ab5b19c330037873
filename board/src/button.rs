//! The kiosk's one hardware button: a short press and a long press mean different things
//! (the kiosk mutes the microphone on a short one and leaves the call on a long one).
//!
//! What a press is, is decided by [`PressDetector`] from edges and their times, with time
//! as an input (no clock is read), so it is tested without a button or a sleep. Backends
//! only deliver edges: `linux` from a GPIO line (the kernel's timestamps), `sim` from
//! software ([`crate::sim::SimButtonHandle`]).

use std::fmt;
use std::time::Duration;

use crate::Error;

/// A press held this long or longer is a long press.
pub const LONG_PRESS: Duration = Duration::from_millis(1500);

/// A press shorter than this is contact bounce, not a press.
pub const DEBOUNCE: Duration = Duration::from_millis(30);

/// A press of the button.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Press {
    Short,
    Long,
}

/// What a press held for `held` is: `None` for a bounce.
pub fn classify(held: Duration) -> Option<Press> {
    if held < DEBOUNCE {
        None
    } else if held < LONG_PRESS {
        Some(Press::Short)
    } else {
        Some(Press::Long)
    }
}

/// Turns edges (pressed or released, at a time on any monotonic clock) into presses.
#[derive(Clone, Debug, Default)]
pub struct PressDetector {
    down_since: Option<Duration>,
}

impl PressDetector {
    /// The button went down (`pressed`) or up at `at`; a press when it was released.
    /// A release without a press before it (the button was held at start) and a second
    /// press without a release are ignored.
    pub fn edge(&mut self, pressed: bool, at: Duration) -> Option<Press> {
        if pressed {
            if self.down_since.is_none() {
                self.down_since = Some(at);
            }
            None
        } else {
            let since = self.down_since.take()?;
            classify(at.saturating_sub(since))
        }
    }
}

/// A button.
pub trait Button: Send + fmt::Debug {
    /// Blocks until the next press; `None` when the button is gone for good.
    fn next_press(&mut self) -> Result<Option<Press>, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn presses_are_classified_by_how_long_they_were_held() {
        assert_eq!(classify(MS(5)), None);
        assert_eq!(classify(MS(30)), Some(Press::Short));
        assert_eq!(classify(MS(1499)), Some(Press::Short));
        assert_eq!(classify(MS(1500)), Some(Press::Long));
        assert_eq!(classify(MS(10_000)), Some(Press::Long));
    }

    #[test]
    fn the_detector_pairs_edges() {
        let mut d = PressDetector::default();
        assert_eq!(d.edge(false, MS(0)), None, "a release before any press");
        assert_eq!(d.edge(true, MS(100)), None);
        assert_eq!(
            d.edge(true, MS(150)),
            None,
            "a repeated press keeps the first"
        );
        assert_eq!(d.edge(false, MS(300)), Some(Press::Short));
        assert_eq!(d.edge(true, MS(1000)), None);
        assert_eq!(d.edge(false, MS(2600)), Some(Press::Long));
        assert_eq!(d.edge(true, MS(3000)), None);
        assert_eq!(d.edge(false, MS(3010)), None, "a bounce");
        assert_eq!(d.edge(false, MS(4000)), None);
    }
}

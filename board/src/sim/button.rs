//! The simulated button, pressed from software: [`SimButtonHandle::hold`] holds it for a
//! while, in simulated time, and the same [`PressDetector`] as the real button's decides
//! what the press was.

use std::sync::mpsc;
use std::time::Duration;

use crate::Error;
use crate::button::{Button, Press, PressDetector};

/// The button side, given to the kiosk.
#[derive(Debug)]
pub struct SimButton {
    holds: mpsc::Receiver<Duration>,
    detector: PressDetector,
    /// Simulated time: advanced by each hold and a pause after it.
    now: Duration,
}

/// The finger: presses the [`SimButton`] it was made with.
#[derive(Clone, Debug)]
pub struct SimButtonHandle {
    holds: mpsc::Sender<Duration>,
}

/// A button and the handle that presses it.
pub fn sim_button() -> (SimButton, SimButtonHandle) {
    let (tx, rx) = mpsc::channel();
    (
        SimButton {
            holds: rx,
            detector: PressDetector::default(),
            now: Duration::ZERO,
        },
        SimButtonHandle { holds: tx },
    )
}

impl SimButtonHandle {
    /// Presses the button and releases it `held` later; `false` when the button is gone.
    pub fn hold(&self, held: Duration) -> bool {
        self.holds.send(held).is_ok()
    }
}

impl Button for SimButton {
    fn next_press(&mut self) -> Result<Option<Press>, Error> {
        loop {
            let Ok(held) = self.holds.recv() else {
                return Ok(None);
            };
            self.detector.edge(true, self.now);
            self.now += held;
            let press = self.detector.edge(false, self.now);
            self.now += Duration::from_secs(1);
            if press.is_some() {
                return Ok(press);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_become_presses_and_bounces_are_dropped() {
        let (mut button, finger) = sim_button();
        assert!(finger.hold(Duration::from_millis(200)));
        assert!(finger.hold(Duration::from_millis(2)));
        assert!(finger.hold(Duration::from_secs(2)));
        assert_eq!(button.next_press().unwrap(), Some(Press::Short));
        assert_eq!(button.next_press().unwrap(), Some(Press::Long));
        drop(finger);
        assert_eq!(button.next_press().unwrap(), None);
    }
}

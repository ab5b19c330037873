//! A button on a GPIO line, through the GPIO character device (`/dev/gpiochip0`). The
//! kernel timestamps each edge, and debounces it where the chip can.

use std::time::Duration;

use gpiocdev::line::{Bias, EdgeDetection, EdgeKind};

use crate::button::{Button, Press, PressDetector};
use crate::{Error, ErrorKind};

/// A button between a GPIO line and ground (or the supply, when not `active_low`).
#[derive(Debug)]
pub struct LinuxButton {
    request: gpiocdev::Request,
    detector: PressDetector,
}

impl LinuxButton {
    /// Requests `line` of `chip` for edge events. `active_low`: the button pulls the line
    /// to ground (the pull-up is turned on).
    pub fn open(chip: &str, line: u32, active_low: bool) -> Result<Self, Error> {
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(chip)
            .with_consumer("portal-kiosk")
            .with_line(line)
            .with_edge_detection(EdgeDetection::BothEdges)
            .with_debounce_period(Duration::from_millis(5));
        if active_low {
            builder.as_active_low().with_bias(Bias::PullUp);
        }
        let request = builder.request().map_err(|e| {
            Error::new(
                ErrorKind::NoDevice,
                format!("requesting line {line} of {chip}: {e}"),
            )
        })?;
        Ok(LinuxButton {
            request,
            detector: PressDetector::default(),
        })
    }
}

impl Button for LinuxButton {
    fn next_press(&mut self) -> Result<Option<Press>, Error> {
        loop {
            let event = self.request.read_edge_event().map_err(|e| {
                Error::new(ErrorKind::Io, format!("reading the button's line: {e}"))
            })?;
            let pressed = event.kind == EdgeKind::Rising;
            let at = Duration::from_nanos(event.timestamp_ns);
            if let Some(press) = self.detector.edge(pressed, at) {
                return Ok(Some(press));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_chip_is_no_device() {
        let err = LinuxButton::open("/dev/gpiochip-portal-test-none", 17, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoDevice);
    }
}

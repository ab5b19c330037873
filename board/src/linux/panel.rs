//! An SSD1306 128x64 panel on an I2C bus (`/dev/i2c-1`, address `0x3c` on most modules).
//! [`Ssd1306Panel`] takes any embedded-hal I2C bus, which is how the tests check the
//! bytes it sends without the hardware; [`LinuxPanel`] is it on a Linux `i2c-dev` bus.

use linux_embedded_hal::I2cdev;
use ssd1306::mode::{BufferedGraphicsMode, DisplayConfig};
use ssd1306::prelude::{DisplayRotation, DisplaySize128x64, I2CInterface, WriteOnlyDataCommand};
use ssd1306::{I2CDisplayInterface, Ssd1306};

use crate::panel::{Frame, HEIGHT, Panel, WIDTH};
use crate::{Error, ErrorKind};

/// An SSD1306 panel on a display interface (an I2C bus, in practice).
pub struct Ssd1306Panel<DI> {
    display: Ssd1306<DI, DisplaySize128x64, BufferedGraphicsMode<DisplaySize128x64>>,
    bus: String,
}

/// The SSD1306 panel on a Linux I2C bus.
pub type LinuxPanel = Ssd1306Panel<I2CInterface<I2cdev>>;

impl<DI> std::fmt::Debug for Ssd1306Panel<DI> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ssd1306Panel")
            .field("bus", &self.bus)
            .finish_non_exhaustive()
    }
}

impl LinuxPanel {
    /// Opens the panel at `address` on the I2C bus `bus` (`/dev/i2c-1`) and clears it.
    pub fn open(bus: &str, address: u8) -> Result<Self, Error> {
        let i2c = I2cdev::new(bus).map_err(|e| {
            Error::new(
                ErrorKind::NoDevice,
                format!("opening the I2C bus {bus}: {e}"),
            )
        })?;
        Ssd1306Panel::on_i2c(i2c, address, bus)
    }
}

impl<I: embedded_hal::i2c::I2c> Ssd1306Panel<I2CInterface<I>> {
    /// The panel at `address` on `i2c` (named `bus` in messages), initialised.
    pub fn on_i2c(i2c: I, address: u8, bus: &str) -> Result<Self, Error> {
        let interface = I2CDisplayInterface::new_custom_address(i2c, address);
        let mut display = Ssd1306::new(interface, DisplaySize128x64, DisplayRotation::Rotate0)
            .into_buffered_graphics_mode();
        display.init().map_err(|e| {
            Error::new(
                ErrorKind::NoDevice,
                format!("no SSD1306 answers at {address:#04x} on {bus}: {e:?}"),
            )
        })?;
        Ok(Ssd1306Panel {
            display,
            bus: bus.to_owned(),
        })
    }
}

impl<DI: WriteOnlyDataCommand + Send> Panel for Ssd1306Panel<DI> {
    fn show(&mut self, frame: &Frame) -> Result<(), Error> {
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                self.display.set_pixel(x, y, frame.pixel(x, y));
            }
        }
        // Only the part that changed goes over the bus.
        self.display.flush().map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("writing to the panel on {}: {e:?}", self.bus),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use embedded_hal::i2c::{ErrorKind as I2cErrorKind, ErrorType, I2c, Operation};

    use super::*;
    use crate::panel::{PanelCall, PanelState, render};

    /// Each write: the address, and the bytes.
    type Writes = Arc<Mutex<Vec<(u8, Vec<u8>)>>>;

    /// An I2C bus that records what is written, or fails every transfer.
    #[derive(Clone, Default)]
    struct Bus {
        writes: Writes,
        broken: bool,
    }

    impl ErrorType for Bus {
        type Error = I2cErrorKind;
    }

    impl I2c for Bus {
        fn transaction(
            &mut self,
            address: u8,
            operations: &mut [Operation<'_>],
        ) -> Result<(), Self::Error> {
            if self.broken {
                return Err(I2cErrorKind::NoAcknowledge(
                    embedded_hal::i2c::NoAcknowledgeSource::Address,
                ));
            }
            for op in operations {
                if let Operation::Write(bytes) = op {
                    self.writes.lock().unwrap().push((address, bytes.to_vec()));
                }
            }
            Ok(())
        }
    }

    /// What the SSD1306 holds for `frame`: pages of 8 rows, one byte a column, bit 0 on top.
    fn pages(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        for page in 0..HEIGHT / 8 {
            for x in 0..WIDTH {
                let byte = (0..8).fold(0u8, |b, bit| {
                    b | (u8::from(frame.pixel(x, page * 8 + bit)) << bit)
                });
                out.push(byte);
            }
        }
        out
    }

    #[test]
    fn a_frame_goes_to_the_display_ram_as_it_was_drawn() {
        let bus = Bus::default();
        let mut panel = Ssd1306Panel::on_i2c(bus.clone(), 0x3d, "test").unwrap();
        bus.writes.lock().unwrap().clear();
        let frame = render(&PanelState {
            name: "Room 4.01".into(),
            call: PanelCall::InCall {
                room: "4-01".into(),
                people: 3,
                mic_muted: false,
            },
            ..PanelState::default()
        });
        panel.show(&frame).unwrap();
        let writes = bus.writes.lock().unwrap();
        assert!(writes.iter().all(|(address, _)| *address == 0x3d));
        // Data transfers start with 0x40 (commands with 0x00).
        let data: Vec<u8> = writes
            .iter()
            .filter(|(_, w)| w.first() == Some(&0x40))
            .flat_map(|(_, w)| w[1..].iter().copied())
            .collect();
        assert_eq!(data, pages(&frame));
    }

    #[test]
    fn a_panel_that_does_not_answer_is_no_device() {
        let bus = Bus {
            broken: true,
            ..Bus::default()
        };
        let err = Ssd1306Panel::on_i2c(bus, 0x3c, "test").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoDevice);
        let err = LinuxPanel::open("/dev/i2c-portal-test-none", 0x3c).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoDevice);
    }
}

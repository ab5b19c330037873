//! The status panel: a small monochrome display beside the kiosk (128x64, an SSD1306 on
//! a Raspberry Pi) that says at a glance what the kiosk is doing, for people in the room
//! when the touch screen is off or there is none.
//!
//! One rendering function, [`render`], turns a [`PanelState`] into a [`Frame`]; every
//! backend shows that same frame ([`Panel::show`]): `linux` sends it to the SSD1306 over
//! I2C, `sim` writes it as a PNG. So the reference PNGs in `tests/` are what the real
//! panel shows, pixel for pixel.
//!
//! ```text
//! ┌──────────────────────┐
//! │ Room 4.01            │  the kiosk's name, inverted
//! │ In call: 4-01        │  call state and room
//! │ 3 people  mic off    │  in a call: people, and the microphone when muted
//! │ Code 482 913         │  a pairing code, when there is one
//! │ Update 42% [■■■    ] │  update progress, while an update runs
//! │ 192.168.1.20         │  the kiosk's address
//! └──────────────────────┘
//! ```

use std::convert::Infallible;
use std::fmt;

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

use crate::Error;

/// Panel width in pixels (the update bar assumes 128).
pub const WIDTH: u32 = 128;
/// Panel height in pixels.
pub const HEIGHT: u32 = 64;

/// Characters of [`FONT_6X10`] on one line.
const COLUMNS: usize = (WIDTH / 6) as usize;
/// Height of one text line, pixels.
const LINE: i32 = 10;
/// Top of each line: the name bar, then five lines below it.
const ROWS: [i32; 6] = [1, 13, 23, 33, 43, 53];

/// Where the call stands, as the panel says it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanelCall {
    /// No call.
    #[default]
    Idle,
    /// Joining `room`.
    Connecting { room: String },
    /// In `room` with `people` (this kiosk included).
    InCall {
        room: String,
        people: u32,
        mic_muted: bool,
    },
    /// The connection dropped; trying again.
    Reconnecting { room: String, attempt: u32 },
    /// The room could not be joined.
    Failed { message: String },
}

/// What the panel shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PanelState {
    /// The kiosk's (the meeting room's) name.
    pub name: String,
    pub call: PanelCall,
    /// A code to pair this kiosk, when one is offered.
    pub pairing_code: Option<String>,
    /// The kiosk's address on the network.
    pub address: Option<String>,
    /// An update in progress, percent (0 to 100).
    pub update_percent: Option<u8>,
}

/// One panel picture: 128x64 pixels, on or off. Drawn on with embedded-graphics.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Row-major, one bit a pixel, most significant bit leftmost.
    bits: [u8; (WIDTH * HEIGHT / 8) as usize],
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            bits: [0; (WIDTH * HEIGHT / 8) as usize],
        }
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lit = self.bits.iter().map(|b| b.count_ones()).sum::<u32>();
        write!(f, "Frame({WIDTH}x{HEIGHT}, {lit} pixels on)")
    }
}

impl Frame {
    /// Whether the pixel at `x`, `y` is on (off outside the frame).
    pub fn pixel(&self, x: u32, y: u32) -> bool {
        if x >= WIDTH || y >= HEIGHT {
            return false;
        }
        let i = (y * WIDTH + x) as usize;
        self.bits[i / 8] & (0x80 >> (i % 8)) != 0
    }

    fn set(&mut self, x: u32, y: u32, on: bool) {
        let i = (y * WIDTH + x) as usize;
        if on {
            self.bits[i / 8] |= 0x80 >> (i % 8);
        } else {
            self.bits[i / 8] &= !(0x80 >> (i % 8));
        }
    }

    /// The pixels that are on, as `(x, y)`.
    pub fn lit(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..HEIGHT).flat_map(move |y| {
            (0..WIDTH)
                .map(move |x| (x, y))
                .filter(|&(x, y)| self.pixel(x, y))
        })
    }

    /// A frame from rows of one bit a pixel (as [`Frame::rows`] gives them); missing
    /// bytes are off.
    pub fn from_rows(data: &[u8]) -> Frame {
        let mut frame = Frame::default();
        let n = frame.bits.len().min(data.len());
        frame.bits[..n].copy_from_slice(&data[..n]);
        frame
    }

    /// Rows of one bit a pixel, most significant bit leftmost (a 1-bit PNG's rows).
    pub fn rows(&self) -> impl Iterator<Item = &[u8]> {
        self.bits.chunks((WIDTH / 8) as usize)
    }
}

impl OriginDimensions for Frame {
    fn size(&self) -> Size {
        Size::new(WIDTH, HEIGHT)
    }
}

impl DrawTarget for Frame {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, color) in pixels {
            if let (Ok(x), Ok(y)) = (u32::try_from(p.x), u32::try_from(p.y))
                && x < WIDTH
                && y < HEIGHT
            {
                self.set(x, y, color.is_on());
            }
        }
        Ok(())
    }
}

/// A status panel.
pub trait Panel: Send + fmt::Debug {
    /// Shows `frame` until the next one.
    fn show(&mut self, frame: &Frame) -> Result<(), Error>;
}

/// Draws `state`. The same state always gives the same frame.
pub fn render(state: &PanelState) -> Frame {
    let mut frame = Frame::default();
    let on = MonoTextStyle::new(&FONT_6X10, BinaryColor::On);
    let off = MonoTextStyle::new(&FONT_6X10, BinaryColor::Off);
    let _ = Rectangle::new(Point::zero(), Size::new(WIDTH, (LINE + 2) as u32))
        .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
        .draw(&mut frame);
    let mut line = |row: usize, text: &str, style| {
        let _ = Text::with_baseline(
            &fit(text, COLUMNS),
            Point::new(1, ROWS[row]),
            style,
            Baseline::Top,
        )
        .draw(&mut frame);
    };
    line(0, &state.name, off);
    let (call, detail) = match &state.call {
        PanelCall::Idle => ("Ready".to_owned(), String::new()),
        PanelCall::Connecting { room } => (format!("Joining {room}"), String::new()),
        PanelCall::InCall {
            room,
            people,
            mic_muted,
        } => {
            let people = match people {
                1 => "1 person".to_owned(),
                n => format!("{n} people"),
            };
            let mic = if *mic_muted { "  mic off" } else { "" };
            (format!("In call: {room}"), format!("{people}{mic}"))
        }
        PanelCall::Reconnecting { room, attempt } => {
            (format!("Reconnecting {room}"), format!("attempt {attempt}"))
        }
        PanelCall::Failed { message } => ("Could not join".to_owned(), message.clone()),
    };
    line(1, &call, on);
    line(2, &detail, on);
    if let Some(code) = &state.pairing_code {
        line(3, &format!("Code {code}"), on);
    }
    if let Some(address) = &state.address {
        line(5, address, on);
    }
    if let Some(percent) = state.update_percent {
        let percent = percent.min(100);
        line(4, &format!("Update {percent}%"), on);
        // A bar after the text: outline, filled to the percentage.
        let (left, width) = (75, 128 - 75 - 1);
        let top = ROWS[4] + 1;
        let _ = Rectangle::new(Point::new(left, top), Size::new(width as u32, 7))
            .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
            .draw(&mut frame);
        let filled = (width - 4) * i32::from(percent) / 100;
        if filled > 0 {
            let _ = Rectangle::new(Point::new(left + 2, top + 2), Size::new(filled as u32, 3))
                .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
                .draw(&mut frame);
        }
    }
    frame
}

/// `text` in at most `columns` characters of the panel's ASCII font: other characters
/// become `?`, and a longer text ends in `..`.
fn fit(text: &str, columns: usize) -> String {
    let ascii: Vec<char> = text
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if ascii.len() <= columns {
        return ascii.into_iter().collect();
    }
    ascii[..columns - 2]
        .iter()
        .chain(['.', '.'].iter())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fits_the_panel() {
        assert_eq!(fit("Room 4.01", 21), "Room 4.01");
        assert_eq!(fit("Salle été", 21), "Salle ?t?");
        assert_eq!(fit("abcdefghijklmnopqrstuvwxyz", 10), "abcdefgh..");
    }

    #[test]
    fn the_same_state_draws_the_same_frame_and_states_differ() {
        let idle = PanelState {
            name: "Room 4.01".into(),
            ..PanelState::default()
        };
        assert_eq!(render(&idle), render(&idle));
        let muted = PanelState {
            call: PanelCall::InCall {
                room: "r".into(),
                people: 2,
                mic_muted: true,
            },
            ..idle.clone()
        };
        assert_ne!(render(&idle), render(&muted));
        // The name bar is lit across the top.
        assert!(render(&idle).pixel(127, 0));
        assert!(!render(&idle).pixel(127, 63));
    }

    #[test]
    fn the_update_bar_grows_with_the_percentage() {
        let at = |p| {
            let state = PanelState {
                update_percent: Some(p),
                ..PanelState::default()
            };
            render(&state).lit().count()
        };
        assert!(at(10) < at(50) && at(50) < at(100));
        assert_eq!(at(100), at(200), "clamped to 100 %");
    }
}

//! The read-along code editor: syntax colours for the room's shared document, and the
//! window of lines the kiosk shows around the line it follows.

mod highlight;
mod language;
mod read_along;

pub(crate) use language::{Palette, Rgb, load, palette};
pub(crate) use read_along::{ReadAlong, Shown, ShownLine};

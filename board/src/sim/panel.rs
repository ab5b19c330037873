//! The simulated status panel: every frame shown becomes `panel.png` in a directory (when
//! one is given), and the last frame is kept for whoever asks.

use std::path::{Path, PathBuf};

use crate::panel::{Frame, HEIGHT, Panel, WIDTH};
use crate::{Error, ErrorKind};

/// A panel that draws to a PNG file.
#[derive(Debug, Default)]
pub struct SimPanel {
    dir: Option<PathBuf>,
    last: Option<Frame>,
    shown: u64,
}

impl SimPanel {
    /// A panel that writes `dir/panel.png` (`None`: keeps the frames in memory only).
    pub fn new(dir: Option<PathBuf>) -> Self {
        SimPanel {
            dir,
            last: None,
            shown: 0,
        }
    }

    /// The frame shown last.
    pub fn last_frame(&self) -> Option<&Frame> {
        self.last.as_ref()
    }

    /// How many frames were shown.
    pub fn shown(&self) -> u64 {
        self.shown
    }

    /// Where the frames are written.
    pub fn png_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("panel.png"))
    }
}

impl Panel for SimPanel {
    fn show(&mut self, frame: &Frame) -> Result<(), Error> {
        if let Some(path) = self.png_path() {
            write_replacing(&path, &to_png(frame)?)?;
        }
        self.last = Some(frame.clone());
        self.shown += 1;
        Ok(())
    }
}

/// `frame` as a 1-bit greyscale PNG (white is on).
pub fn to_png(frame: &Frame) -> Result<Vec<u8>, Error> {
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let encode = |e: png::EncodingError| Error::new(ErrorKind::Io, format!("encoding a PNG: {e}"));
    let mut writer = encoder.write_header().map_err(encode)?;
    let data: Vec<u8> = frame.rows().flatten().copied().collect();
    writer.write_image_data(&data).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(png)
}

/// Decodes a PNG written by [`to_png`] (or any 128x64 greyscale PNG of that kind).
pub fn from_png(bytes: &[u8]) -> Result<Frame, Error> {
    let bad = |what: String| Error::new(ErrorKind::Io, format!("not a panel PNG: {what}"));
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
    let info = reader.info();
    if (info.width, info.height) != (WIDTH, HEIGHT)
        || info.color_type != png::ColorType::Grayscale
        || info.bit_depth != png::BitDepth::One
    {
        return Err(bad(format!(
            "{}x{} {:?} {:?}",
            info.width, info.height, info.color_type, info.bit_depth
        )));
    }
    let mut data = vec![0; reader.output_buffer_size().unwrap_or(0)];
    reader
        .next_frame(&mut data)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Frame::from_rows(&data))
}

/// Writes `bytes` to `path` in one rename, so a reader sees the old file or the new one.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let temp = path.with_extension("png.new");
    std::fs::write(&temp, bytes)
        .map_err(|e| Error::io(format!("writing {}", temp.display()), e))?;
    std::fs::rename(&temp, path).map_err(|e| Error::io(format!("replacing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::{PanelState, render};

    #[test]
    fn frames_round_trip_through_png() {
        let frame = render(&PanelState {
            name: "Room 4.01".into(),
            ..PanelState::default()
        });
        let png = to_png(&frame).unwrap();
        assert_eq!(from_png(&png).unwrap(), frame);
        assert!(from_png(b"not a png").is_err());
    }
}

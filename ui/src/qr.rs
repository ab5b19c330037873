//! QR codes as pictures for the views, drawn module by module so they stay sharp.

use qrcode::{Color, EcLevel, QrCode};
use slint::{Rgba8Pixel, SharedPixelBuffer};

/// Light modules around the code, as the QR specification asks for.
const QUIET_ZONE: u32 = 4;
/// Pixels per module in the picture. The views show it at a whole number of screen pixels
/// per module with nearest-neighbour sampling; several source pixels per module keep every
/// sample in the middle of its module even when a renderer rounds a little.
const PIXELS_PER_MODULE: u32 = 8;

const DARK: Rgba8Pixel = Rgba8Pixel::new(0, 0, 0, 255);
const LIGHT: Rgba8Pixel = Rgba8Pixel::new(255, 255, 255, 255);

/// A QR code drawn black on white, quiet zone included.
#[derive(Debug, Clone)]
pub(crate) struct QrPicture {
    pub(crate) pixels: SharedPixelBuffer<Rgba8Pixel>,
    /// Modules across, quiet zone included: the views size the picture in multiples of it.
    pub(crate) modules: u32,
}

/// Draws `text` as a QR code (error correction M: a phone still reads it from across a
/// table at an angle). Fails when the text does not fit in a QR code.
pub(crate) fn draw(text: &str) -> Result<QrPicture, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
    // At most 177 modules (version 40), so this always fits.
    let width = u32::try_from(code.width()).unwrap_or(u32::MAX);
    let colors = code.to_colors();
    let modules = width + 2 * QUIET_ZONE;
    let side = modules * PIXELS_PER_MODULE;
    let mut pixels = SharedPixelBuffer::<Rgba8Pixel>::new(side, side);
    pixels.make_mut_slice().fill(LIGHT);
    let stride = side as usize;
    let module_pixels = PIXELS_PER_MODULE as usize;
    let out = pixels.make_mut_slice();
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let column = index % code.width() + QUIET_ZONE as usize;
        let row = index / code.width() + QUIET_ZONE as usize;
        for y in row * module_pixels..(row + 1) * module_pixels {
            let start = y * stride + column * module_pixels;
            out[start..start + module_pixels].fill(DARK);
        }
    }
    Ok(QrPicture { pixels, modules })
}

#[cfg(test)]
mod tests {
    use super::{DARK, LIGHT, PIXELS_PER_MODULE, QUIET_ZONE, draw};

    #[test]
    fn drawn_codes_read_back_and_keep_their_quiet_zone() {
        let url = "https://rooms.example.org/p/K7P2XM";
        let qr = draw(url).unwrap();
        let side = qr.modules * PIXELS_PER_MODULE;
        assert_eq!((qr.pixels.width(), qr.pixels.height()), (side, side));
        assert_eq!((qr.modules - 2 * QUIET_ZONE - 17) % 4, 0, "a QR size");

        let pixels = qr.pixels.as_slice();
        let quiet = (QUIET_ZONE * PIXELS_PER_MODULE) as usize;
        let side = side as usize;
        for y in 0..side {
            for x in 0..side {
                let p = pixels[y * side + x];
                assert!(p == DARK || p == LIGHT, "only black and white");
                let border = x < quiet || y < quiet || x >= side - quiet || y >= side - quiet;
                assert!(!border || p == LIGHT, "quiet zone at {x},{y}");
            }
        }

        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| pixels[y * side + x].r);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, url);
    }

    #[test]
    fn text_too_long_for_a_qr_code_is_an_error() {
        assert!(draw(&"x".repeat(8000)).is_err());
    }
}

//! PNG snapshots of decoded frames (the status endpoint's `POST /snapshot`).

use std::path::Path;

use crate::MediaError;
use crate::frame::VideoFrame;

/// Encodes an RGBA frame as PNG, honouring its row stride.
pub fn encode_png(frame: &VideoFrame) -> Result<Vec<u8>, MediaError> {
    let row = frame.width as usize * 4;
    let stride = frame.stride as usize;
    let rows = frame.height as usize;
    if stride < row || frame.data.len() < stride * rows.saturating_sub(1) + row {
        return Err(MediaError::BadFrame(format!(
            "{}x{} RGBA with stride {stride} needs more than {} bytes",
            frame.width,
            frame.height,
            frame.data.len()
        )));
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, frame.width, frame.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header()?;
        if stride == row {
            writer.write_image_data(&frame.data[..row * rows])?;
        } else {
            let mut packed = Vec::with_capacity(row * rows);
            for y in 0..rows {
                packed.extend_from_slice(&frame.data[y * stride..y * stride + row]);
            }
            writer.write_image_data(&packed)?;
        }
    }
    Ok(out)
}

/// Writes `frame` as a PNG file at `path` (whole file or nothing: temp then rename).
pub fn write_png(frame: &VideoFrame, path: &Path) -> Result<(), MediaError> {
    let bytes = encode_png(frame)?;
    let tmp = path.with_extension("png.partial");
    let io = |source| MediaError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn padded_rows_are_packed_and_bad_sizes_refused() {
        // 2x2 RGBA with 4 bytes of padding per row.
        let data: Vec<u8> = [
            [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0],
            [9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0],
        ]
        .concat();
        let frame = VideoFrame {
            width: 2,
            height: 2,
            stride: 12,
            data: Bytes::from(data),
            pts: None,
        };
        let png = encode_png(&frame).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut pixels).unwrap();
        assert_eq!(pixels, (1..=16).collect::<Vec<u8>>());

        let short = VideoFrame {
            data: Bytes::from_static(&[0; 10]),
            ..frame
        };
        assert!(matches!(encode_png(&short), Err(MediaError::BadFrame(_))));
    }
}

//! Pixel snapshots against the references in `tests/snapshots/`: `PORTAL_UPDATE_SNAPSHOTS=1`
//! rewrites them; a failing comparison writes the actual picture beside the test's
//! temporary directory for a look.

use std::path::PathBuf;

use super::Harness;

/// Channel difference a pixel may have and still count as equal (anti-aliasing noise).
const CHANNEL_TOLERANCE: u8 = 16;
/// Share of pixels allowed to differ by more than that.
const MAX_DIFFERING: f64 = 0.002;

pub fn reference_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.png"))
}

pub fn write_png(path: &std::path::Path, width: u32, height: u32, rgba: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(rgba).unwrap();
}

pub fn read_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (PORTAL_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    }));
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut rgba = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut rgba).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba, "{}", path.display());
    rgba.truncate(info.buffer_size());
    (info.width, info.height, rgba)
}

/// The share of pixels that differ by more than the tolerance in any channel.
pub fn differing(expected: &[u8], actual: &[u8]) -> f64 {
    let pixels = expected.len() / 4;
    let bad = expected
        .chunks_exact(4)
        .zip(actual.chunks_exact(4))
        .filter(|(e, a)| {
            e.iter()
                .zip(a.iter())
                .any(|(e, a)| e.abs_diff(*a) > CHANNEL_TOLERANCE)
        })
        .count();
    bad as f64 / pixels as f64
}

pub fn check(h: &Harness, name: &str) {
    let snapshot =
        h.ui.window()
            .take_snapshot()
            .expect("software renderer snapshot");
    let (width, height) = (snapshot.width(), snapshot.height());
    let actual = snapshot.as_bytes();
    let path = reference_path(name);
    if std::env::var_os("PORTAL_UPDATE_SNAPSHOTS").is_some() {
        write_png(&path, width, height, actual);
        return;
    }
    let (ref_width, ref_height, expected) = read_png(&path);
    let failed = if (ref_width, ref_height) == (width, height) {
        let share = differing(&expected, actual);
        (share > MAX_DIFFERING).then(|| format!("{:.3}% of pixels differ", share * 100.0))
    } else {
        Some(format!(
            "size {width}x{height}, reference {ref_width}x{ref_height}"
        ))
    };
    if let Some(why) = failed {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.actual.png"));
        write_png(&out, width, height, actual);
        panic!("{name}: {why}; actual picture in {}", out.display());
    }
}

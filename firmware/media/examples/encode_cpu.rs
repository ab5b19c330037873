//! Measures the CPU the sender costs: capture from the sim camera and encode one codec
//! for a while, then print the process's CPU time as a share of one core.
//!
//! `cargo run --release -p portal-media --example encode_cpu -- [h264|vp8|opus] [WxH] [seconds] [camera]`
//!
//! The figure includes the source: the sim board's default camera (`sim:call`), or the one
//! named (`sim:bars` is the `videotestsrc` FIELD-NOTES.md's table was measured with).
//! CPU time comes from `/proc/self/stat` (utime + stime, in USER_HZ = 100 ticks a second).

use std::time::{Duration, Instant};

use portal_board::Board;
use portal_board::sim::SimBoard;
use portal_media::{Codec, Sender, SenderConfig};

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let codec = match args.next().as_deref() {
        Some("vp8") => Codec::Vp8,
        Some("opus") => Codec::Opus,
        _ => Codec::H264,
    };
    let (width, height) = args
        .next()
        .and_then(|s| {
            let (w, h) = s.split_once('x')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .unwrap_or((640, 480));
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);

    let camera_id = args.next();
    let board = SimBoard::default();
    let (Ok(camera), Ok(mic)) = (board.camera(camera_id.as_deref()), board.microphone(None)) else {
        eprintln!("the sim board has no camera or microphone");
        std::process::exit(1);
    };
    let mut config = SenderConfig::new(camera, mic, board.facts());
    config.width = width;
    config.height = height;
    let sender = match Sender::new(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let sub = match sender.subscribe(codec, 64) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    // Warm up: the first samples include pipeline start-up.
    for _ in 0..10 {
        let _ = sub.recv_timeout(Duration::from_secs(30));
    }
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut samples = 0u64;
    let mut bytes = 0usize;
    while t0.elapsed() < Duration::from_secs(seconds) {
        if let Some(s) = sub.recv_timeout(Duration::from_secs(5)) {
            samples += 1;
            bytes += s.data.len();
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    // On a busy machine the encoder gets less than the frames it is offered, so CPU per
    // sample (scaled to the nominal rate) says more than CPU per second of wall time.
    let per_sample = cpu / samples.max(1) as f64;
    let nominal = if codec == Codec::Opus { 50.0 } else { 30.0 };
    println!(
        "{codec:?} {width}x{height} via {}: {:.1} % of one core over {wall:.0} s, \
         {:.1} samples/s, {:.2} ms CPU a sample (= {:.0} % of one core at {nominal} /s), {:.0} kbit/s",
        sender.encoder_element(codec).unwrap_or("?"),
        100.0 * cpu / wall,
        samples as f64 / wall,
        per_sample * 1000.0,
        per_sample * nominal * 100.0,
        bytes as f64 * 8.0 / wall / 1000.0,
    );
}

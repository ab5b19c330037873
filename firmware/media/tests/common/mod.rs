//! Helpers for the media tests: the sim board, test pipelines, bitstream inspection, and
//! waiting for conditions with generous timeouts (the test machine is small and shared; no
//! test asserts how fast anything happens).

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use portal_board::Board;
use portal_board::sim::SimBoard;
use portal_media::{EncodedSample, SenderConfig, Subscription};

pub const PATIENCE: Duration = Duration::from_mins(1);

/// A `gst-launch` description as a pipeline (not started).
pub fn launch(description: &str) -> gst::Pipeline {
    portal_media::init().expect("GStreamer");
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline")
}

/// The element called `name` in `pipeline`, as a `T` (an `AppSrc`, an `AppSink`, ...).
pub fn element<T: IsA<gst::Element>>(pipeline: &gst::Pipeline, name: &str) -> T {
    pipeline
        .by_name(name)
        .unwrap_or_else(|| panic!("no element {name}"))
        .downcast::<T>()
        .unwrap_or_else(|_| panic!("{name} is not a {}", T::static_type().name()))
}

/// A small sender config on the sim board (small frames keep a 2-core machine usable).
pub fn sim_sender(width: u32, height: u32) -> SenderConfig {
    let board = SimBoard::default();
    let mut config = SenderConfig::new(
        board.camera(None).unwrap(),
        board.microphone(None).unwrap(),
        board.facts(),
    );
    config.width = width;
    config.height = height;
    config.video_kbps = 500;
    config
}

/// Waits until `cond` holds, polling; panics after `PATIENCE` with `what`.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The next `n` samples of a subscription.
pub fn take(sub: &Subscription, n: usize) -> Vec<EncodedSample> {
    (0..n)
        .map(|i| {
            sub.recv_timeout(PATIENCE)
                .unwrap_or_else(|| panic!("sample {i} of {n} never came"))
        })
        .collect()
}

/// NAL units of an Annex B byte stream.
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..].starts_with(&[0, 0, 1]) {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
            // A 4-byte start code leaves a zero before the next 3-byte one.
            while end > s && data[end - 1] == 0 && k + 1 < starts.len() {
                end -= 1;
            }
            &data[s..end]
        })
        .collect()
}

pub fn nal_types(data: &[u8]) -> Vec<u8> {
    nal_units(data)
        .iter()
        .filter_map(|n| n.first())
        .map(|b| b & 0x1f)
        .collect()
}

/// `(profile_idc, constraint flags, level_idc)` of the first SPS in an AU.
pub fn sps_profile(data: &[u8]) -> Option<(u8, u8, u8)> {
    nal_units(data)
        .into_iter()
        .find(|n| n.first().is_some_and(|b| b & 0x1f == 7) && n.len() >= 4)
        .map(|n| (n[1], n[2], n[3]))
}

/// Whether a VP8 frame is a keyframe (RFC 6386 frame tag: bit 0 clear, then start code).
pub fn vp8_is_keyframe(frame: &[u8]) -> bool {
    frame.len() >= 10 && frame[0] & 1 == 0 && frame[3..6] == [0x9d, 0x01, 0x2a]
}

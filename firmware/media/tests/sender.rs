//! The sender on real GStreamer with the sim board's live test sources.

mod common;

use std::time::Duration;

use common::{nal_types, sim_sender, sps_profile, take, vp8_is_keyframe, wait_for};
use portal_media::{Codec, Delivery, H264Encoder, Sender};

#[test]
fn h264_is_constrained_baseline_annex_b_with_a_keyframe_at_least_every_two_seconds() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    let sub = sender.subscribe(Codec::H264, 512).unwrap();
    assert!(sender.encoder_element(Codec::H264).is_some());

    // Five seconds of stream time, whatever wall time that takes here.
    let mut samples = Vec::new();
    while samples
        .last()
        .and_then(|s: &portal_media::EncodedSample| s.pts)
        .zip(
            samples
                .first()
                .and_then(|s: &portal_media::EncodedSample| s.pts),
        )
        .is_none_or(|(last, first)| last.saturating_sub(first) < Duration::from_secs(5))
    {
        samples.extend(take(&sub, 1));
    }

    let first = &samples[0];
    assert!(first.keyframe, "a subscription starts at a keyframe");
    let (profile, constraints, _level) = sps_profile(&first.data).expect("keyframe carries SPS");
    assert_eq!(profile, 66, "baseline profile_idc");
    assert!(
        constraints & 0x40 != 0,
        "constraint_set1: constrained baseline"
    );

    let mut keyframe_pts = Vec::new();
    for s in &samples {
        assert!(s.data.starts_with(&[0, 0, 0, 1]) || s.data.starts_with(&[0, 0, 1]));
        assert!(s.duration > Duration::ZERO);
        let types = nal_types(&s.data);
        if s.keyframe {
            // config-interval=-1: every IDR comes with its SPS and PPS.
            assert!(
                types.contains(&7) && types.contains(&8) && types.contains(&5),
                "{types:?}"
            );
            keyframe_pts.push(s.pts.unwrap());
        } else {
            assert!(!types.contains(&5), "a delta AU holds no IDR slice");
        }
    }
    assert!(keyframe_pts.len() >= 3, "{keyframe_pts:?}");
    for gap in keyframe_pts.windows(2).map(|w| w[1].saturating_sub(w[0])) {
        assert!(gap <= Duration::from_millis(2050), "keyframe gap {gap:?}");
    }
}

#[test]
fn openh264_is_a_working_fallback_when_installed() {
    if !portal_media::select::has_element("openh264enc") {
        eprintln!("openh264enc not installed; nothing to check");
        return;
    }
    let mut config = sim_sender(320, 240);
    config.h264_encoder = Some(H264Encoder::OpenH264);
    let sender = Sender::new(config).unwrap();
    let sub = sender.subscribe(Codec::H264, 256).unwrap();
    let samples = take(&sub, 20);
    assert_eq!(sender.encoder_element(Codec::H264), Some("openh264enc"));
    let (profile, constraints, _) = sps_profile(&samples[0].data).expect("SPS");
    assert_eq!(profile, 66);
    assert!(constraints & 0x40 != 0);
    assert!(sender.force_keyframe(Codec::H264));
    let next = take(&sub, 10);
    assert!(
        next.iter()
            .any(|s| s.keyframe && nal_types(&s.data).contains(&5))
    );
}

#[test]
fn force_keyframe_gives_an_idr_within_a_few_frames() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    let sub = sender.subscribe(Codec::H264, 512).unwrap();
    take(&sub, 5);
    for round in 0..3 {
        // Get well away from the last keyframe first.
        while take(&sub, 1)[0].keyframe {}
        let before = sender.stats(Codec::H264);
        assert!(sender.force_keyframe(Codec::H264));
        let next = take(&sub, 10);
        let at = next.iter().position(|s| s.keyframe);
        assert!(
            at.is_some(),
            "round {round}: no keyframe in 10 frames after forcing"
        );
        let idr = &next[at.unwrap()];
        assert!(nal_types(&idr.data).contains(&5));
        let after = sender.stats(Codec::H264);
        assert_eq!(after.keyframe_requests, before.keyframe_requests + 1);
        assert!(after.keyframes > before.keyframes);
    }
    assert!(
        !sender.force_keyframe(Codec::Vp8),
        "no VP8 encoder is running"
    );
}

#[test]
fn vp8_frames_and_opus_packets_come_out() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    let vp8 = sender.subscribe(Codec::Vp8, 256).unwrap();
    let opus = sender.subscribe(Codec::Opus, 256).unwrap();
    let frames = take(&vp8, 30);
    assert!(vp8_is_keyframe(&frames[0].data), "starts at a keyframe");
    assert!(
        frames
            .iter()
            .all(|f| f.keyframe == vp8_is_keyframe(&f.data))
    );
    assert!(frames.iter().any(|f| !f.keyframe));
    let packets = take(&opus, 50);
    for p in &packets {
        assert!(!p.data.is_empty());
        assert_eq!(
            p.duration,
            Duration::from_millis(20),
            "{:?}",
            packets
                .iter()
                .take(5)
                .map(|p| (p.duration, p.pts))
                .collect::<Vec<_>>()
        );
        // TOC byte: configurations 0..31, 20 ms frames are 1, 5, 9, 13, 15, 19, 23, 27, 31.
        assert!(p.data[0] >> 3 < 32);
    }
    assert_eq!(sender.encoders_running(), 2);
    assert_eq!(sender.encoder_element(Codec::Vp8), Some("vp8enc"));
    assert_eq!(sender.encoder_element(Codec::Opus), Some("opusenc"));
}

#[test]
fn three_subscribers_share_one_encoder_which_stops_with_the_last() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    assert_eq!(
        sender.encoders_running(),
        0,
        "nothing runs before a subscriber"
    );
    let subs: Vec<_> = (0..3)
        .map(|_| sender.subscribe(Codec::H264, 256).unwrap())
        .collect();
    for sub in &subs {
        let got = take(sub, 10);
        assert!(got[0].keyframe, "each subscriber starts at a keyframe");
    }
    let stats = sender.stats(Codec::H264);
    assert_eq!(sender.encoders_running(), 1);
    assert_eq!(stats.starts, 1);
    assert_eq!(stats.subscribers, 3);
    drop(subs);
    assert_eq!(sender.encoders_running(), 0);
    assert_eq!(sender.stats(Codec::H264).subscribers, 0);

    // A later subscriber starts it again.
    let again = sender.subscribe(Codec::H264, 16).unwrap();
    take(&again, 3);
    assert_eq!(sender.stats(Codec::H264).starts, 2);
}

#[test]
fn a_stuck_subscriber_never_stalls_the_others() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    // Never read: full after one sample.
    let _stuck = sender.subscribe(Codec::H264, 1).unwrap();
    // A callback subscriber that refuses everything.
    let _refusing = sender
        .subscribe_with(Codec::H264, Box::new(|_| Delivery::Dropped))
        .unwrap();
    let live = sender.subscribe(Codec::H264, 256).unwrap();
    take(&live, 60);
    assert!(sender.stats(Codec::H264).dropped > 50);
}

#[test]
fn bitrate_stays_within_bounds() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    let sub = sender.subscribe(Codec::H264, 64).unwrap();
    take(&sub, 2);
    assert_eq!(sender.set_bitrate(1), 150);
    assert_eq!(sender.set_bitrate(1_000_000), 4000);
    assert_eq!(sender.set_bitrate(800), 800);
    assert_eq!(sender.bitrate(), 800);
    // The encoder keeps running after a change.
    take(&sub, 10);
    wait_for("frames captured", || sender.frames_captured() > 10);
}

#[test]
fn a_flood_of_keyframe_requests_forces_one_keyframe() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    let sub = sender.subscribe(Codec::H264, 512).unwrap();
    take(&sub, 5);
    while take(&sub, 1)[0].keyframe {}
    let before = sender.stats(Codec::H264);
    // A peer (or many) asking for a keyframe on every packet.
    for _ in 0..200 {
        assert!(sender.force_keyframe(Codec::H264));
    }
    let after = sender.stats(Codec::H264);
    assert_eq!(after.keyframe_requests, before.keyframe_requests + 200);
    assert_eq!(
        after.keyframes_coalesced,
        before.keyframes_coalesced + 199,
        "one forced keyframe serves the burst"
    );
    let next = take(&sub, 5);
    assert_eq!(
        next.iter().filter(|s| s.keyframe).count(),
        1,
        "one keyframe, not a run of them"
    );
}

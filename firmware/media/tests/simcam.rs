//! `portalsimcam` in a real pipeline: what it negotiates, how it stamps frames, what it draws.

mod common;

use common::{element, launch};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use portal_media::simcam::{BACKGROUND, DISC, ELEMENT_NAME};

/// Runs `description` (ending in `appsink name=sink`) and pulls `n` samples.
fn pull(description: &str, n: usize) -> Vec<gst::Sample> {
    let pipeline = launch(description);
    let sink: gst_app::AppSink = element(&pipeline, "sink");
    pipeline.set_state(gst::State::Playing).unwrap();
    let samples = (0..n)
        .map(|_| {
            sink.try_pull_sample(gst::ClockTime::from_seconds(10))
                .expect("a frame within 10 s")
        })
        .collect();
    pipeline.set_state(gst::State::Null).unwrap();
    samples
}

fn luma_at(sample: &gst::Sample, x: usize, y: usize) -> u8 {
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let buffer = sample.buffer().unwrap();
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
    frame.plane_data(0).unwrap()[y * frame.plane_stride()[0] as usize + x]
}

#[test]
fn it_takes_the_size_and_rate_asked_for_and_stamps_frames_at_that_rate() {
    let samples = pull(
        &format!(
            "{ELEMENT_NAME} ! video/x-raw,width=320,height=240,framerate=25/1 \
             ! appsink name=sink sync=false"
        ),
        5,
    );
    let info = gst_video::VideoInfo::from_caps(samples[0].caps().unwrap()).unwrap();
    assert_eq!(info.format(), gst_video::VideoFormat::I420);
    assert_eq!((info.width(), info.height()), (320, 240));
    // One frame duration apart. (Where the first one lands depends on when the live
    // pipeline's clock started, so only the spacing is ours to check.)
    let pts: Vec<u64> = samples
        .iter()
        .map(|s| s.buffer().unwrap().pts().unwrap().nseconds())
        .collect();
    let steps: Vec<u64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(steps, [40_000_000; 4], "pts {pts:?}");
    assert_eq!(
        samples[0].buffer().unwrap().duration(),
        Some(gst::ClockTime::from_mseconds(40))
    );
    // A flat field with the disc in the middle.
    assert_eq!(luma_at(&samples[0], 5, 235), BACKGROUND.y);
    assert_eq!(luma_at(&samples[0], 160, 120), DISC.y);
}

#[test]
fn with_nothing_asked_it_is_a_live_720p30_camera() {
    portal_media::init().unwrap();
    let src = gst::ElementFactory::make(ELEMENT_NAME).build().unwrap();
    let pipeline = gst::Pipeline::new();
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline.add_many([&src, sink.upcast_ref()]).unwrap();
    src.link(&sink).unwrap();
    // A live source does not preroll.
    assert_eq!(
        pipeline.set_state(gst::State::Paused).unwrap(),
        gst::StateChangeSuccess::NoPreroll
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .unwrap();
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    assert_eq!((info.width(), info.height()), (1280, 720));
    assert_eq!(info.fps(), gst::Fraction::new(30, 1));
    let mut latency = gst::query::Latency::new();
    assert!(src.query(&mut latency));
    let (live, min, _) = latency.result();
    assert!(live);
    assert_eq!(min, gst::ClockTime::from_nseconds(33_333_333));
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn it_feeds_an_encoder_through_the_kiosks_camera_chain() {
    // The chain `Sender` puts behind a board camera, then the software H.264 encoder.
    let samples = pull(
        &format!(
            "{ELEMENT_NAME} ! videoconvert ! videoscale ! videorate drop-only=true \
             ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 \
             ! video/x-h264,profile=constrained-baseline \
             ! appsink name=sink sync=false"
        ),
        10,
    );
    assert!(samples.iter().all(|s| s.buffer().unwrap().size() > 0));
    let first = samples[0].buffer().unwrap();
    assert!(
        !first.flags().contains(gst::BufferFlags::DELTA_UNIT),
        "starts on a keyframe"
    );
}

//! Sender → GStreamer's own RTP payloaders → receiver, all real GStreamer: the receiver
//! must decode what a standard payloader makes of our encoder's output.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use bytes::Bytes;
use common::{PATIENCE, element, launch, sim_sender, wait_for};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use portal_board::Board;
use portal_board::sim::SimBoard;
use portal_media::{Codec, KeyframeRequest, Receiver, ReceiverConfig, Sender, Subscription};

/// A test pipeline `appsrc ! <payloader> ! appsink` whose RTP packets go to `on_packet`.
struct Payloader {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
}

impl Payloader {
    fn new(codec: Codec, pt: u8, on_packet: impl Fn(Bytes) + Send + Sync + 'static) -> Self {
        let (caps, pay) = match codec {
            Codec::H264 => (
                "video/x-h264,stream-format=byte-stream,alignment=au",
                format!("rtph264pay pt={pt} config-interval=-1 mtu=1200"),
            ),
            Codec::Vp8 => ("video/x-vp8", format!("rtpvp8pay pt={pt} mtu=1200")),
            Codec::Opus => (
                "audio/x-opus,rate=48000,channels=1,channel-mapping-family=0",
                format!("rtpopuspay pt={pt}"),
            ),
        };
        let description = format!(
            "appsrc name=src is-live=true format=time do-timestamp=true caps=\"{caps}\" \
             ! {pay} ! appsink name=sink sync=false"
        );
        let pipeline = launch(&description);
        let src: gst_app::AppSrc = element(&pipeline, "src");
        let sink: gst_app::AppSink = element(&pipeline, "sink");
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(buffer) = sample.buffer() {
                        let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                        on_packet(Bytes::copy_from_slice(map.as_slice()));
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline.set_state(gst::State::Playing).unwrap();
        Payloader { pipeline, src }
    }

    /// Feeds every sample of `sub` until the subscription ends.
    fn feed(self, sub: Subscription) -> thread::JoinHandle<()> {
        thread::spawn(move || {
            while let Some(sample) = sub.recv_timeout(PATIENCE) {
                let buffer = gst::Buffer::from_slice(sample.data.clone());
                if self.src.push_buffer(buffer).is_err() {
                    break;
                }
            }
            let _ = self.pipeline.set_state(gst::State::Null);
        })
    }
}

/// Runs `codec` from the sender through a payloader into a video receiver and checks
/// frames of the right size reach the frame sink and the PNG snapshot.
fn video_loopback(codec: Codec, pt: u8) {
    let (w, h) = (320, 240);
    let sender = Sender::new(sim_sender(w, h)).unwrap();
    let facts = SimBoard::default().facts();
    let sunk = Arc::new(AtomicU64::new(0));
    let sunk_in_sink = Arc::clone(&sunk);
    let requests = Arc::new(AtomicU64::new(0));
    let requests_in_hook = Arc::clone(&requests);
    let receiver = Arc::new(
        Receiver::video(
            &ReceiverConfig::new(codec, pt, facts),
            Some(Box::new(move |frame| {
                assert_eq!((frame.width, frame.height), (320, 240));
                assert!(frame.stride >= frame.width * 4);
                sunk_in_sink.fetch_add(1, Ordering::Relaxed);
            })),
            Some(Arc::new(move |_: KeyframeRequest| {
                requests_in_hook.fetch_add(1, Ordering::Relaxed);
            })),
        )
        .unwrap(),
    );
    let rx = Arc::clone(&receiver);
    let payloader = Payloader::new(codec, pt, move |packet| rx.push_rtp(packet));
    let sub = sender.subscribe(codec, 256).unwrap();
    let feeder = payloader.feed(sub);

    wait_for("30 decoded frames", || {
        receiver.stats().frames_decoded >= 30
    });
    wait_for("frames at the sink", || sunk.load(Ordering::Relaxed) >= 10);
    let stats = receiver.stats();
    assert_eq!((stats.width, stats.height), (w, h));
    assert!(stats.packets_in >= stats.frames_decoded);

    let png = receiver.snapshot_png().unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (w, h));

    drop(sender);
    feeder.join().unwrap();
}

#[test]
fn h264_loopback_decodes_frames_of_the_right_size() {
    video_loopback(Codec::H264, 102);
}

#[test]
fn vp8_loopback_decodes_frames_of_the_right_size() {
    video_loopback(Codec::Vp8, 96);
}

#[test]
fn opus_loopback_plays_on_the_sim_speaker() {
    opus_loopback(None);
}

#[test]
fn opus_loopback_plays_through_alsa() {
    opus_loopback(Some("sim:alsa-null"));
}

fn opus_loopback(speaker: Option<&str>) {
    let sender = Sender::new(sim_sender(160, 120)).unwrap();
    let board = SimBoard::default();
    let receiver = Arc::new(
        Receiver::audio(
            &ReceiverConfig::new(Codec::Opus, 111, board.facts()),
            &board.speaker(speaker).unwrap(),
            None,
        )
        .unwrap(),
    );
    let rx = Arc::clone(&receiver);
    let payloader = Payloader::new(Codec::Opus, 111, move |packet| rx.push_rtp(packet));
    let feeder = payloader.feed(sender.subscribe(Codec::Opus, 256).unwrap());
    wait_for("50 decoded audio packets", || {
        receiver.stats().audio_decoded >= 50
    });
    wait_for("an audio level", || receiver.stats().audio_level > 0.01);
    drop(sender);
    feeder.join().unwrap();
}

#[test]
fn without_a_sink_frames_are_counted_and_a_snapshot_is_still_rgba() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    let facts = SimBoard::default().facts();
    let receiver = Arc::new(
        Receiver::video(&ReceiverConfig::new(Codec::H264, 102, facts), None, None).unwrap(),
    );
    let rx = Arc::clone(&receiver);
    let payloader = Payloader::new(Codec::H264, 102, move |packet| rx.push_rtp(packet));
    let feeder = payloader.feed(sender.subscribe(Codec::H264, 256).unwrap());
    wait_for("10 decoded frames", || {
        receiver.stats().frames_decoded >= 10
    });
    let stats = receiver.stats();
    assert_eq!((stats.width, stats.height), (320, 240));
    assert!(stats.first_frame_unix_ms > 0);
    // The decoder's I420 is converted for the snapshot only.
    let frame = receiver.latest_frame().unwrap();
    assert_eq!((frame.width, frame.height), (320, 240));
    assert!(frame.stride >= 320 * 4);
    assert!(frame.data.len() >= (frame.stride * 240) as usize);
    let png = receiver.snapshot_png().unwrap();
    let reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    assert_eq!((reader.info().width, reader.info().height), (320, 240));
    assert_eq!(reader.info().color_type, png::ColorType::Rgba);
    drop(sender);
    feeder.join().unwrap();
}

#[test]
fn lost_packets_ask_for_a_keyframe() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    let facts = SimBoard::default().facts();
    let requests = Arc::new(AtomicU64::new(0));
    let in_hook = Arc::clone(&requests);
    let receiver = Arc::new(
        Receiver::video(
            &ReceiverConfig::new(Codec::H264, 102, facts),
            None,
            Some(Arc::new(move |_| {
                in_hook.fetch_add(1, Ordering::Relaxed);
            })),
        )
        .unwrap(),
    );
    let rx = Arc::clone(&receiver);
    let count = AtomicU64::new(0);
    // Requests seen when the loss starts; u64::MAX until then.
    let at_loss = Arc::new(AtomicU64::new(u64::MAX));
    let (at_loss_in_pay, requests_in_pay) = (Arc::clone(&at_loss), Arc::clone(&requests));
    let payloader = Payloader::new(Codec::H264, 102, move |packet| {
        // Lose a burst of packets once the stream runs.
        let n = count.fetch_add(1, Ordering::Relaxed);
        if n == 300 {
            at_loss_in_pay.store(requests_in_pay.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        if !(300..310).contains(&n) {
            rx.push_rtp(packet);
        }
    });
    let feeder = payloader.feed(sender.subscribe(Codec::H264, 256).unwrap());
    wait_for("a keyframe request after the loss", || {
        let before = at_loss.load(Ordering::Relaxed);
        before != u64::MAX && requests.load(Ordering::Relaxed) > before
    });
    assert!(receiver.stats().packets_lost > 0 || receiver.stats().decode_errors > 0);
    wait_for("decoding again", || receiver.stats().frames_decoded >= 60);
    drop(sender);
    feeder.join().unwrap();
}

#[test]
fn a_slow_frame_sink_misses_frames_and_never_stalls_decoding() {
    let sender = Sender::new(sim_sender(320, 240)).unwrap();
    let facts = SimBoard::default().facts();
    let shown = Arc::new(AtomicU64::new(0));
    let shown_in_sink = Arc::clone(&shown);
    let receiver = Arc::new(
        Receiver::video(
            &ReceiverConfig::new(Codec::H264, 102, facts),
            Some(Box::new(move |_| {
                // A UI that takes far longer than a frame interval to draw.
                thread::sleep(std::time::Duration::from_millis(400));
                shown_in_sink.fetch_add(1, Ordering::Relaxed);
            })),
            None,
        )
        .unwrap(),
    );
    let rx = Arc::clone(&receiver);
    let payloader = Payloader::new(Codec::H264, 102, move |packet| rx.push_rtp(packet));
    let feeder = payloader.feed(sender.subscribe(Codec::H264, 256).unwrap());
    wait_for("60 decoded frames", || {
        receiver.stats().frames_decoded >= 60
    });
    let stats = receiver.stats();
    assert!(stats.frames_dropped > 0, "{stats:?}");
    assert!(shown.load(Ordering::Relaxed) < stats.frames_decoded);
    drop(sender);
    feeder.join().unwrap();
}

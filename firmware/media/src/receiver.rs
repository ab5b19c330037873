//! Receive and decode: one remote track's RTP packets to video frames or the speaker.
//!
//! ```text
//! video: appsrc (RTP caps, negotiated payload type) ! rtpjitterbuffer do-lost=true
//!        ! rtph264depay|rtpvp8depay request-keyframe=true wait-for-keyframe=true
//!        ! [h264parse !] v4l2h264dec|avdec_h264|vp8dec [! videoconvert ! RGBA] ! appsink
//! audio: appsrc ! rtpjitterbuffer ! rtpopusdepay ! opusdec plc=true ! audioconvert
//!        ! audioresample ! level ! <board speaker>
//! ```
//!
//! Frames go to a frame sink through a latest-frame mailbox on a thread of its own: a
//! slow sink (the UI) only ever gets the newest frame and the decoder never waits for it.
//! The last frame is also kept for [`Receiver::snapshot_png`]. Without a sink (a headless
//! kiosk) frames stay in the decoder's format and only a snapshot is converted: turning
//! every 720p frame into RGBA that nobody looks at costs several percent of a core.
//!
//! Loss: when the jitter buffer gives up on a packet, the depayloader asks upstream for a
//! keyframe; that request (and any decoder error) reaches the caller's
//! [`KeyframeRequest`] hook, which should send a PLI to the remote peer. The depayloader
//! also asks at the start, so a track that starts mid-stream gets a PLI at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use portal_board::{BoardFacts, Sink};
use portal_proto::media::{Codec, KeyframeRequest};

use crate::delivery::Delivery;
use crate::frame::{VideoFrame, kept, rgba, to_frame, video_info};
use crate::pipeline::{BusHook, Pipeline, first_that_builds};
use crate::select::{h264_decoder, require};
use crate::{MediaError, init};

/// Where decoded frames go (the UI, or nothing in headless mode). Called on the
/// receiver's delivery thread, never on a GStreamer thread.
pub type FrameSink = Box<dyn FnMut(&VideoFrame) + Send>;

/// Called (on a GStreamer thread; keep it short) when the caller should send a PLI;
/// the request is [`KeyframeRequest::Loss`] or [`KeyframeRequest::DecodeError`].
pub type KeyframeHook = Arc<dyn Fn(KeyframeRequest) + Send + Sync>;

/// Consecutive video packets after which the jitter buffer starts without waiting out its
/// latency.
const FASTSTART_PACKETS: u32 = 4;

/// What to receive.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    pub codec: Codec,
    /// The negotiated RTP payload type.
    pub payload_type: u8,
    /// Jitter buffer latency.
    pub latency: Duration,
    pub facts: BoardFacts,
    /// Audio: the playback volume, 0 to 1 (see [`Receiver::set_volume`]).
    pub volume: f64,
}

impl ReceiverConfig {
    pub fn new(codec: Codec, payload_type: u8, facts: BoardFacts) -> Self {
        ReceiverConfig {
            codec,
            payload_type,
            latency: match codec {
                Codec::Opus => Duration::from_millis(60),
                Codec::H264 | Codec::Vp8 => Duration::from_millis(100),
            },
            facts,
            volume: 1.0,
        }
    }
}

/// Counters of a receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReceiverStats {
    pub packets_in: u64,
    /// Video frames out of the decoder.
    pub frames_decoded: u64,
    /// Frames the sink missed because it was slower than the decoder.
    pub frames_dropped: u64,
    /// Audio buffers out of the decoder (one per Opus packet, concealed ones included).
    pub audio_decoded: u64,
    pub width: u32,
    pub height: u32,
    pub keyframe_requests: u64,
    pub decode_errors: u64,
    /// Packets the jitter buffer declared lost.
    pub packets_lost: u64,
    /// Last audio level, 0.0 .. 1.0 (RMS of the loudest channel).
    pub audio_level: f32,
    /// When the first video frame came out of the decoder, ms since the Unix epoch (0:
    /// none yet); for join-to-first-frame figures.
    pub first_frame_unix_ms: u64,
}

#[derive(Debug, Default)]
struct Counters {
    packets_in: AtomicU64,
    frames_decoded: AtomicU64,
    frames_dropped: AtomicU64,
    audio_decoded: AtomicU64,
    size: AtomicU64,
    keyframe_requests: AtomicU64,
    decode_errors: AtomicU64,
    audio_level_bits: AtomicU64,
    first_frame_unix_ms: AtomicU64,
}

/// A remote track being decoded. Dropping it stops the pipeline.
pub struct Receiver {
    codec: Codec,
    pipeline: Pipeline,
    src: gst_app::AppSrc,
    jitter: gst::Element,
    counters: Arc<Counters>,
    /// The newest decoded sample, RGBA when frames go to a sink, else the decoder's format.
    latest: Arc<Mutex<Option<gst::Sample>>>,
    /// Frames to the frame sink, when there is one.
    delivery: Option<Delivery>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("codec", &self.codec)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// A video receiver (H.264 or VP8) delivering frames to `sink`.
    pub fn video(
        config: &ReceiverConfig,
        sink: Option<FrameSink>,
        on_keyframe: Option<KeyframeHook>,
    ) -> Result<Self, MediaError> {
        init()?;
        let (depay, decode) = match config.codec {
            Codec::H264 => (
                "rtph264depay request-keyframe=true wait-for-keyframe=true",
                format!("h264parse ! {} name=dec", h264_decoder(&config.facts)?),
            ),
            Codec::Vp8 => (
                "rtpvp8depay request-keyframe=true wait-for-keyframe=true",
                format!("{} name=dec", require("vp8dec", "VP8 decoding")?),
            ),
            Codec::Opus => {
                return Err(MediaError::Build {
                    name: "video-receiver",
                    message: "Opus is audio; use Receiver::audio".into(),
                });
            }
        };
        let convert = if sink.is_some() {
            "videoconvert ! video/x-raw,format=RGBA ! "
        } else {
            ""
        };
        // In-order packets leave the jitter buffer at once; `latency` is how long it waits
        // for a missing one, and also how long it holds the very first packet unless
        // `faststart-min-packets` consecutive ones arrive: a keyframe is dozens of packets
        // in a row, so the first frame does not wait out the latency.
        let description = format!(
            "{src} ! rtpjitterbuffer name=jitter latency={latency} do-lost=true \
             faststart-min-packets={FASTSTART_PACKETS} \
             ! {depay} ! {decode} ! {convert}appsink name=sink sync=false max-buffers=1 drop=true",
            src = appsrc(config),
            latency = config.latency.as_millis(),
        );
        let counters = Arc::new(Counters::default());
        let hook = bus_hook(&counters, on_keyframe.clone());
        let pipeline = Pipeline::launch("video-receiver", &description, Some(hook))?;
        let mut receiver = Self::assemble(config.codec, pipeline, counters, on_keyframe)?;
        receiver.attach_video_sink(sink)?;
        receiver.pipeline.start()?;
        Ok(receiver)
    }

    /// An Opus receiver playing to `speaker` (its first description that builds).
    pub fn audio(
        config: &ReceiverConfig,
        speaker: &Sink,
        on_keyframe: Option<KeyframeHook>,
    ) -> Result<Self, MediaError> {
        init()?;
        require("opusdec", "Opus decoding")?;
        let counters = Arc::new(Counters::default());
        let pipeline = first_that_builds(speaker.launch.candidates().map(str::to_owned), |sink| {
            let description = format!(
                "{src} ! rtpjitterbuffer name=jitter latency={latency} do-lost=true \
                     ! rtpopusdepay ! opusdec name=dec plc=true ! audioconvert ! audioresample \
                     ! volume name=volume volume={volume} \
                     ! level name=level interval=100000000 post-messages=true ! {sink}",
                src = appsrc(config),
                latency = config.latency.as_millis(),
                volume = config.volume.clamp(0.0, 1.0),
            );
            Pipeline::launch(
                "audio-receiver",
                &description,
                Some(bus_hook(&counters, on_keyframe.clone())),
            )
        })?;
        let receiver = Self::assemble(config.codec, pipeline, counters, on_keyframe)?;
        let dec: gst::Element = receiver.pipeline.get("dec")?;
        let counters = Arc::clone(&receiver.counters);
        if let Some(pad) = dec.static_pad("src") {
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counters.audio_decoded.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        }
        tracing::info!(speaker = %speaker.device.id, "audio receiver started");
        receiver.pipeline.start()?;
        Ok(receiver)
    }

    fn assemble(
        codec: Codec,
        pipeline: Pipeline,
        counters: Arc<Counters>,
        on_keyframe: Option<KeyframeHook>,
    ) -> Result<Self, MediaError> {
        let src: gst_app::AppSrc = pipeline.get("src")?;
        let jitter: gst::Element = pipeline.get("jitter")?;
        // Keyframe requests travel upstream from the depayloader (and decoder) to appsrc.
        if let Some(pad) = src.static_pad("src") {
            let counters = Arc::clone(&counters);
            pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                if let Some(event) = info.event()
                    && gst_video::UpstreamForceKeyUnitEvent::parse(event).is_ok()
                {
                    counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(?codec, "decoder wants a keyframe");
                    if let Some(hook) = &on_keyframe {
                        hook(KeyframeRequest::Loss);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        Ok(Receiver {
            codec,
            pipeline,
            src,
            jitter,
            counters,
            latest: Arc::new(Mutex::new(None)),
            delivery: None,
        })
    }

    fn attach_video_sink(&mut self, sink: Option<FrameSink>) -> Result<(), MediaError> {
        let appsink: gst_app::AppSink = self.pipeline.get("sink")?;
        let counters = Arc::clone(&self.counters);
        let latest = Arc::clone(&self.latest);
        self.delivery = sink
            .map(|sink| Delivery::start("portal-frames", sink))
            .transpose()?;
        let poster = self.delivery.as_ref().map(Delivery::poster);
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |appsink| {
                    let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(info) = video_info(&sample) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    if counters.frames_decoded.fetch_add(1, Ordering::Relaxed) == 0 {
                        counters
                            .first_frame_unix_ms
                            .store(unix_ms(), Ordering::Relaxed);
                    }
                    counters.size.store(
                        u64::from(info.width()) << 32 | u64::from(info.height()),
                        Ordering::Relaxed,
                    );
                    let frame = poster.as_ref().and_then(|_| to_frame(&sample, &info));
                    *latest
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(kept(&sample));
                    if let (Some(poster), Some(frame)) = (&poster, frame)
                        && poster.post(frame)
                    {
                        counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        Ok(())
    }

    /// Feeds one RTP packet (as received from the peer connection's track).
    /// An audio receiver's playback volume, 0 to 1 (a video receiver has none).
    pub fn set_volume(&self, volume: f64) {
        if let Ok(element) = self.pipeline.get::<gst::Element>("volume") {
            element.set_property("volume", volume.clamp(0.0, 1.0));
        }
    }

    pub fn push_rtp(&self, packet: impl AsRef<[u8]> + Send + 'static) {
        self.counters.packets_in.fetch_add(1, Ordering::Relaxed);
        let buffer = gst::Buffer::from_slice(packet);
        if self.src.push_buffer(buffer).is_err() {
            tracing::trace!(codec = ?self.codec, "receiver not accepting packets");
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn stats(&self) -> ReceiverStats {
        let c = &self.counters;
        let size = c.size.load(Ordering::Relaxed);
        let lost = self
            .jitter
            .property::<gst::Structure>("stats")
            .get::<u64>("num-lost")
            .unwrap_or(0);
        ReceiverStats {
            packets_in: c.packets_in.load(Ordering::Relaxed),
            frames_decoded: c.frames_decoded.load(Ordering::Relaxed),
            frames_dropped: c.frames_dropped.load(Ordering::Relaxed),
            audio_decoded: c.audio_decoded.load(Ordering::Relaxed),
            width: (size >> 32) as u32,
            height: (size & 0xFFFF_FFFF) as u32,
            keyframe_requests: c.keyframe_requests.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            packets_lost: lost,
            audio_level: f32::from_bits(c.audio_level_bits.load(Ordering::Relaxed) as u32),
            first_frame_unix_ms: c.first_frame_unix_ms.load(Ordering::Relaxed),
        }
    }

    /// The newest decoded frame, as RGBA.
    pub fn latest_frame(&self) -> Option<VideoFrame> {
        let sample = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        rgba(&sample)
    }

    /// The newest decoded frame as a PNG file's bytes.
    pub fn snapshot_png(&self) -> Result<Vec<u8>, MediaError> {
        let frame = self.latest_frame().ok_or(MediaError::NoFrame)?;
        crate::snapshot::encode_png(&frame)
    }
}

fn appsrc(config: &ReceiverConfig) -> String {
    let codec = config.codec;
    let media = if codec.is_video() { "video" } else { "audio" };
    format!(
        "appsrc name=src is-live=true format=time do-timestamp=true block=false \
         max-bytes=4000000 leaky-type=downstream \
         caps=\"application/x-rtp,media={media},clock-rate={rate},encoding-name={name},payload={pt}\"",
        rate = codec.clock_rate(),
        name = codec.encoding_name(),
        pt = config.payload_type,
    )
}

fn bus_hook(counters: &Arc<Counters>, on_keyframe: Option<KeyframeHook>) -> BusHook {
    let counters = Arc::clone(counters);
    Arc::new(move |msg: &gst::Message| {
        use gst::MessageView;
        match msg.view() {
            MessageView::Error(_) | MessageView::Warning(_)
                if msg.src().is_some_and(|s| s.name() == "dec") =>
            {
                counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(hook) = &on_keyframe {
                    hook(KeyframeRequest::DecodeError);
                }
            }
            MessageView::Element(e) => {
                if let Some(level) = e.structure().filter(|s| s.name() == "level")
                    && let Ok(rms) = level.get::<gst::glib::ValueArray>("rms")
                {
                    let loudest = rms
                        .iter()
                        .filter_map(|v| v.get::<f64>().ok())
                        .fold(f64::NEG_INFINITY, f64::max);
                    let linear = 10f64.powf(loudest / 20.0).clamp(0.0, 1.0) as f32;
                    counters
                        .audio_level_bits
                        .store(u64::from(linear.to_bits()), Ordering::Relaxed);
                }
            }
            _ => {}
        }
    })
}

/// Wall-clock ms since the Unix epoch.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

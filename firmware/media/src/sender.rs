//! Capture and encode: the camera and microphone, encoded once per codec, fanned out to
//! every peer's track.
//!
//! ```text
//! camera: <board camera> ! videoconvert ! videoscale ! videorate ! I420 WxH@fps ! appsink
//!            │ (same gst::Buffer, refcounted, to each running video encoder)
//!            ├─► appsrc (leaky) ! x264enc|v4l2h264enc|openh264enc ! h264parse ! AU appsink ─► fan-out
//!            └─► appsrc (leaky) ! vp8enc deadline=1 ! appsink ──────────────────────────────► fan-out
//! mic:    <board microphone> ! audioconvert ! audioresample ! 48 kHz mono ! opusenc ! appsink ─► fan-out
//! ```
//!
//! Pipelines start lazily: the camera and an encoder when the first subscriber of that
//! codec arrives, the microphone with the first Opus subscriber; an encoder (and, with the
//! last video encoder, the camera) stops when its last subscriber goes. Encoders are fed
//! through leaky `appsrc`s so a slow encoder drops frames instead of stalling the camera
//! or the other encoder, and subscribers are non-blocking callbacks (see [`crate::sample`]).
//! A keyframe is forced for every new subscriber of a running video encoder, so a new
//! peer sees a picture at once; [`Sender::force_keyframe`] does the same for a PLI/FIR.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use portal_board::{BoardFacts, Source};
use portal_proto::media::Codec;

use crate::pipeline::{Pipeline, first_that_builds};
use crate::sample::{Delivery, EncodedSample, Fanout, SampleCallback};
use crate::select::{H264Encoder, require};
use crate::{MediaError, init};

/// What to capture and how to encode it.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    pub camera: Source,
    pub microphone: Source,
    pub facts: BoardFacts,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Video bitrate at start, kbit/s.
    pub video_kbps: u32,
    /// Bounds of [`Sender::set_bitrate`], kbit/s.
    pub min_video_kbps: u32,
    pub max_video_kbps: u32,
    /// Frames between keyframes at most; capped at 2 s worth of frames.
    pub keyframe_interval: u32,
    /// Opus bitrate, bit/s.
    pub audio_bps: u32,
    /// Use this H.264 encoder instead of the first one found (it must exist).
    pub h264_encoder: Option<H264Encoder>,
}

impl SenderConfig {
    /// 640x480 at 30 fps, 1 Mbit/s, a keyframe at least every 2 s.
    pub fn new(camera: Source, microphone: Source, facts: BoardFacts) -> Self {
        SenderConfig {
            camera,
            microphone,
            facts,
            width: 640,
            height: 480,
            fps: 30,
            video_kbps: 1000,
            min_video_kbps: 150,
            max_video_kbps: 4000,
            keyframe_interval: 60,
            audio_bps: 32_000,
            h264_encoder: None,
        }
    }

    fn keyframe_frames(&self) -> u32 {
        self.keyframe_interval.clamp(1, self.fps.max(1) * 2)
    }

    fn raw_caps(&self) -> String {
        format!(
            "video/x-raw,format=I420,width={},height={},framerate={}/1,pixel-aspect-ratio=1/1",
            self.width, self.height, self.fps
        )
    }
}

/// Counters of one codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodecStats {
    /// Whether its encoder is running now.
    pub running: bool,
    /// How many times its encoder was started.
    pub starts: u64,
    pub subscribers: usize,
    /// Samples out of the encoder since start of the sender.
    pub samples: u64,
    pub keyframes: u64,
    /// Keyframes asked for (PLI, FIR, new subscriber).
    pub keyframe_requests: u64,
    /// Of those, how many came within [`KEYFRAME_GAP`] of a forced one and were served by
    /// it.
    pub keyframes_coalesced: u64,
    /// Samples subscribers missed (full, or waiting for a keyframe).
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    starts: AtomicU64,
    samples: AtomicU64,
    keyframes: AtomicU64,
    keyframe_requests: AtomicU64,
    keyframes_coalesced: AtomicU64,
}

/// The shortest time between two forced keyframes of one encoder: a peer that sends PLIs
/// in a loop cannot make every frame a keyframe for everyone.
pub const KEYFRAME_GAP: std::time::Duration = std::time::Duration::from_millis(250);

struct Encoder {
    /// Kept for its drop, which stops the pipeline.
    _pipeline: Pipeline,
    /// Where the camera pushes raw frames (video only).
    input: Option<gst_app::AppSrc>,
    element: gst::Element,
    sink: gst_app::AppSink,
    kind: EncoderKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EncoderKind {
    H264(H264Encoder),
    Vp8,
    Opus,
}

#[derive(Default)]
struct State {
    camera: Option<Pipeline>,
    encoders: BTreeMap<Codec, Encoder>,
    next_id: u64,
    video_kbps: u32,
    /// When each encoder was last made to send a keyframe.
    last_forced: BTreeMap<Codec, std::time::Instant>,
}

struct Shared {
    config: SenderConfig,
    state: Mutex<State>,
    /// Raw-frame inputs of the running video encoders; the camera callback pushes to these.
    video_inputs: Arc<Mutex<Vec<(Codec, gst_app::AppSrc)>>>,
    fanouts: BTreeMap<Codec, Arc<Fanout>>,
    counters: BTreeMap<Codec, Arc<Counters>>,
    frames_captured: Arc<AtomicU64>,
}

/// The kiosk's outgoing media. Cheap to clone; every clone is the same sender.
#[derive(Clone)]
pub struct Sender {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("encoders_running", &self.encoders_running())
            .finish_non_exhaustive()
    }
}

/// A subscription; dropping it unsubscribes (and stops an encoder nobody uses).
#[derive(Debug)]
pub struct SubscriptionGuard {
    codec: Codec,
    id: u64,
    shared: Weak<Shared>,
}

impl SubscriptionGuard {
    pub fn codec(&self) -> Codec {
        self.codec
    }
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            Sender { shared }.unsubscribe(self.codec, self.id);
        }
    }
}

/// A subscription delivering into a bounded queue, for consumers on their own thread.
#[derive(Debug)]
pub struct Subscription {
    pub guard: SubscriptionGuard,
    pub samples: mpsc::Receiver<EncodedSample>,
}

impl Subscription {
    /// The next sample, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<EncodedSample> {
        self.samples.recv_timeout(timeout).ok()
    }
}

/// Opus frame length (`opusenc frame-size=20`).
const OPUS_FRAME: Duration = Duration::from_millis(20);

impl Sender {
    /// A sender; nothing runs until the first subscription.
    pub fn new(config: SenderConfig) -> Result<Self, MediaError> {
        init()?;
        let video_kbps = config.video_kbps.clamp(
            config.min_video_kbps,
            config.max_video_kbps.max(config.min_video_kbps),
        );
        Ok(Sender {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State {
                    video_kbps,
                    ..State::default()
                }),
                video_inputs: Arc::new(Mutex::new(Vec::new())),
                fanouts: Codec::ALL.map(|c| (c, Arc::new(Fanout::new()))).into(),
                counters: Codec::ALL
                    .map(|c| (c, Arc::new(Counters::default())))
                    .into(),
                frames_captured: Arc::new(AtomicU64::new(0)),
            }),
        })
    }

    /// Subscribes a non-blocking callback to `codec`'s samples, starting its encoder (and
    /// the capture) if needed.
    pub fn subscribe_with(
        &self,
        codec: Codec,
        callback: SampleCallback,
    ) -> Result<SubscriptionGuard, MediaError> {
        let mut state = self.lock();
        let fresh = !state.encoders.contains_key(&codec);
        if fresh && let Err(e) = self.start_encoder(&mut state, codec) {
            if !state.encoders.keys().any(|c| c.is_video()) {
                state.camera = None;
            }
            tracing::warn!(?codec, error = %e, "encoder did not start");
            return Err(e);
        }
        state.next_id += 1;
        let id = state.next_id;
        self.shared.fanouts[&codec].add(id, callback, codec.is_video());
        drop(state);
        if !fresh && codec.is_video() {
            self.force_keyframe(codec);
        }
        tracing::debug!(?codec, id, "subscribed");
        Ok(SubscriptionGuard {
            codec,
            id,
            shared: Arc::downgrade(&self.shared),
        })
    }

    /// Subscribes with a queue of `capacity` samples; when it is full, samples are missed
    /// (video then resumes at the next keyframe).
    pub fn subscribe(&self, codec: Codec, capacity: usize) -> Result<Subscription, MediaError> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let guard = self.subscribe_with(
            codec,
            Box::new(move |s| match tx.try_send(s.clone()) {
                Ok(()) => Delivery::Accepted,
                Err(mpsc::TrySendError::Full(_)) => Delivery::Dropped,
                Err(mpsc::TrySendError::Disconnected(_)) => Delivery::Closed,
            }),
        )?;
        Ok(Subscription { guard, samples: rx })
    }

    /// Asks `codec`'s encoder for a keyframe on its next frame (a PLI or FIR arrived).
    /// Returns whether an encoder of that codec is running.
    pub fn force_keyframe(&self, codec: Codec) -> bool {
        let sink = {
            let mut state = self.lock();
            let Some(sink) = state.encoders.get(&codec).map(|e| e.sink.clone()) else {
                return false;
            };
            self.shared.counters[&codec]
                .keyframe_requests
                .fetch_add(1, Ordering::Relaxed);
            // Every peer shares this encoder, and any of them may ask: requests closer
            // together than KEYFRAME_GAP are served by the keyframe already asked for.
            let now = std::time::Instant::now();
            if state
                .last_forced
                .get(&codec)
                .is_some_and(|t| now.duration_since(*t) < KEYFRAME_GAP)
            {
                self.shared.counters[&codec]
                    .keyframes_coalesced
                    .fetch_add(1, Ordering::Relaxed);
                return true;
            }
            state.last_forced.insert(codec, now);
            sink
        };
        let event = gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        let sent = sink.send_event(event);
        tracing::debug!(?codec, sent, "forcing a keyframe");
        true
    }

    /// Sets the video bitrate of every video encoder, clamped to the configured bounds;
    /// returns the bitrate applied.
    pub fn set_bitrate(&self, kbps: u32) -> u32 {
        let c = &self.shared.config;
        let kbps = kbps.clamp(c.min_video_kbps, c.max_video_kbps.max(c.min_video_kbps));
        let mut state = self.lock();
        if state.video_kbps == kbps {
            return kbps;
        }
        state.video_kbps = kbps;
        for enc in state.encoders.values() {
            apply_bitrate(enc, kbps);
        }
        tracing::debug!(kbps, "video bitrate set");
        kbps
    }

    /// The video bitrate now, kbit/s.
    pub fn bitrate(&self) -> u32 {
        self.lock().video_kbps
    }

    /// How many encoders run now (at most one per codec).
    pub fn encoders_running(&self) -> usize {
        self.lock().encoders.len()
    }

    /// The element encoding `codec` now (`x264enc`, `vp8enc`, ...), if running.
    pub fn encoder_element(&self, codec: Codec) -> Option<&'static str> {
        self.lock().encoders.get(&codec).map(|e| match e.kind {
            EncoderKind::H264(h) => h.element(),
            EncoderKind::Vp8 => "vp8enc",
            EncoderKind::Opus => "opusenc",
        })
    }

    /// Camera frames captured so far.
    pub fn frames_captured(&self) -> u64 {
        self.shared.frames_captured.load(Ordering::Relaxed)
    }

    pub fn stats(&self, codec: Codec) -> CodecStats {
        let running = self.lock().encoders.contains_key(&codec);
        let c = &self.shared.counters[&codec];
        let fan = &self.shared.fanouts[&codec];
        CodecStats {
            running,
            starts: c.starts.load(Ordering::Relaxed),
            subscribers: fan.len(),
            samples: c.samples.load(Ordering::Relaxed),
            keyframes: c.keyframes.load(Ordering::Relaxed),
            keyframe_requests: c.keyframe_requests.load(Ordering::Relaxed),
            keyframes_coalesced: c.keyframes_coalesced.load(Ordering::Relaxed),
            dropped: fan.dropped(),
        }
    }

    /// Samples handed to subscribers of `codec` so far.
    pub fn delivered(&self, codec: Codec) -> u64 {
        self.shared.fanouts[&codec].delivered()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unsubscribe(&self, codec: Codec, id: u64) {
        let remaining = self.shared.fanouts[&codec].remove(id);
        tracing::debug!(?codec, id, remaining, "unsubscribed");
        if remaining > 0 {
            return;
        }
        let mut state = self.lock();
        // Check again under the lock: a subscriber may have arrived meanwhile.
        if self.shared.fanouts[&codec].len() > 0 {
            return;
        }
        if let Some(enc) = state.encoders.remove(&codec) {
            if let Some(input) = &enc.input {
                self.inputs().retain(|(_, src)| src != input);
            }
            tracing::info!(?codec, "stopping idle encoder");
            drop(enc);
        }
        if !state.encoders.keys().any(|c| c.is_video()) && state.camera.take().is_some() {
            tracing::info!("stopping the camera: no video encoder left");
        }
    }

    fn inputs(&self) -> std::sync::MutexGuard<'_, Vec<(Codec, gst_app::AppSrc)>> {
        self.shared
            .video_inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn start_encoder(&self, state: &mut State, codec: Codec) -> Result<(), MediaError> {
        let config = &self.shared.config;
        let kbps = state.video_kbps;
        let keyint = config.keyframe_frames();
        let (kind, description) = match codec {
            Codec::H264 => {
                let enc = match config.h264_encoder {
                    Some(enc) => {
                        require(enc.element(), "H.264 encoding")?;
                        enc
                    }
                    None => H264Encoder::pick(&config.facts)?,
                };
                let fragment = h264_fragment(enc, kbps, keyint);
                let d = format!(
                    "appsrc name=src is-live=true format=time do-timestamp=false block=false \
                     max-buffers=2 leaky-type=downstream caps=\"{caps}\" \
                     ! {fragment} \
                     ! h264parse config-interval=-1 \
                     ! video/x-h264,stream-format=byte-stream,alignment=au \
                     ! appsink name=sink sync=false max-buffers=8 drop=true",
                    caps = config.raw_caps()
                );
                (EncoderKind::H264(enc), d)
            }
            Codec::Vp8 => {
                require("vp8enc", "VP8 encoding")?;
                let d = format!(
                    "appsrc name=src is-live=true format=time do-timestamp=false block=false \
                     max-buffers=2 leaky-type=downstream caps=\"{caps}\" \
                     ! vp8enc name=enc deadline=1 cpu-used=8 end-usage=cbr lag-in-frames=0 \
                       error-resilient=default target-bitrate={bps} \
                       keyframe-max-dist={keyint} \
                     ! appsink name=sink sync=false max-buffers=8 drop=true",
                    caps = config.raw_caps(),
                    bps = u64::from(kbps) * 1000,
                );
                (EncoderKind::Vp8, d)
            }
            Codec::Opus => {
                require("opusenc", "Opus encoding")?;
                (EncoderKind::Opus, String::new())
            }
        };
        if codec.is_video() && state.camera.is_none() {
            state.camera = Some(self.start_camera()?);
        }
        let (pipeline, input) = if kind == EncoderKind::Opus {
            let bps = config.audio_bps;
            let pipeline = first_that_builds(
                config.microphone.launch.candidates().map(str::to_owned),
                |mic| {
                    let d = format!(
                        "{mic} ! audioconvert ! audioresample \
                         ! audio/x-raw,rate=48000,channels=1 \
                         ! opusenc name=enc bitrate={bps} frame-size=20 audio-type=voice \
                           inband-fec=true \
                         ! appsink name=sink sync=false max-buffers=50 drop=true"
                    );
                    Pipeline::launch("opus-encoder", &d, None)
                },
            )?;
            (pipeline, None)
        } else {
            let name = if codec == Codec::H264 {
                "h264-encoder"
            } else {
                "vp8-encoder"
            };
            let pipeline = Pipeline::launch(name, &description, None)?;
            let input: gst_app::AppSrc = pipeline.get("src")?;
            (pipeline, Some(input))
        };
        let encoder: gst::Element = pipeline.get("enc")?;
        let sink: gst_app::AppSink = pipeline.get("sink")?;
        sink.set_callbacks(self.sample_callbacks(codec));
        pipeline.start()?;
        if let Some(input) = &input {
            self.inputs().push((codec, input.clone()));
        }
        self.shared.counters[&codec]
            .starts
            .fetch_add(1, Ordering::Relaxed);
        let enc = Encoder {
            _pipeline: pipeline,
            input,
            element: encoder,
            sink,
            kind,
        };
        tracing::info!(?codec, kind = ?enc.kind, kbps, keyint, "encoder started");
        state.encoders.insert(codec, enc);
        Ok(())
    }

    fn start_camera(&self) -> Result<Pipeline, MediaError> {
        let config = &self.shared.config;
        let caps = config.raw_caps();
        let pipeline = first_that_builds(
            config.camera.launch.candidates().map(str::to_owned),
            |cam| {
                let d = format!(
                    "{cam} ! videoconvert ! videoscale ! videorate drop-only=true ! {caps} \
                     ! appsink name=raw sync=false max-buffers=2 drop=true"
                );
                Pipeline::launch("camera", &d, None)
            },
        )?;
        let sink: gst_app::AppSink = pipeline.get("raw")?;
        let inputs = Arc::clone(&self.shared.video_inputs);
        let captured = Arc::clone(&self.shared.frames_captured);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buffer) = sample.buffer_owned() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    captured.fetch_add(1, Ordering::Relaxed);
                    let inputs = inputs
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for (_, src) in inputs.iter() {
                        // Leaky appsrc: never blocks; a flushing (stopping) encoder refuses.
                        let _ = src.push_buffer(buffer.clone());
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline.start()?;
        tracing::info!(camera = %config.camera.device.id, "camera started");
        Ok(pipeline)
    }

    fn sample_callbacks(&self, codec: Codec) -> gst_app::AppSinkCallbacks {
        let fanout = Arc::clone(&self.shared.fanouts[&codec]);
        let counters = Arc::clone(&self.shared.counters[&codec]);
        let fps = self.shared.config.fps.max(1);
        // Frames dropped before the encoder (a busy CPU) stretch a keyframe interval counted
        // in frames; this watchdog forces one when 2 s of stream time pass without.
        let max_gap = Duration::from_secs(2).saturating_sub(Duration::from_secs(2) / fps);
        let mut last_key: Option<Duration> = None;
        let mut forced_at: Option<Duration> = None;
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(buffer) = sample.buffer_owned() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                // Every Opus packet holds one 20 ms frame; opusenc marks the first one
                // shorter (its encoder delay is clipped), but RTP time must advance by a
                // whole frame per packet.
                let duration = match (codec, buffer.duration()) {
                    (Codec::Opus, _) => OPUS_FRAME,
                    (_, Some(d)) => Duration::from_nanos(d.nseconds()),
                    (_, None) => Duration::from_secs(1) / fps,
                };
                let pts = buffer.pts().map(|t| Duration::from_nanos(t.nseconds()));
                let Ok(mapped) = buffer.into_mapped_buffer_readable() else {
                    tracing::warn!(?codec, "unreadable encoded buffer");
                    return Ok(gst::FlowSuccess::Ok);
                };
                counters.samples.fetch_add(1, Ordering::Relaxed);
                if codec.is_video() {
                    if keyframe {
                        counters.keyframes.fetch_add(1, Ordering::Relaxed);
                        last_key = pts;
                        forced_at = None;
                    } else if let (Some(now), Some(key)) = (pts, last_key)
                        && now.saturating_sub(key) + duration >= max_gap
                        && forced_at.is_none()
                    {
                        forced_at = Some(now);
                        tracing::debug!(?codec, "keyframe overdue; forcing one");
                        sink.send_event(
                            gst_video::UpstreamForceKeyUnitEvent::builder()
                                .all_headers(true)
                                .build(),
                        );
                    }
                }
                let sample = EncodedSample {
                    codec,
                    data: Bytes::from_owner(mapped),
                    duration,
                    pts,
                    keyframe,
                };
                fanout.deliver(&sample);
                Ok(gst::FlowSuccess::Ok)
            })
            .build()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Encoders first, so the camera never pushes into a half-stopped encoder.
        state.encoders.clear();
        state.camera = None;
    }
}

/// The `gst-launch` fragment of an H.264 encoder with its output caps, named `enc`.
fn h264_fragment(enc: H264Encoder, kbps: u32, keyint: u32) -> String {
    let bps = u64::from(kbps) * 1000;
    match enc {
        H264Encoder::V4l2 => format!(
            "v4l2h264enc name=enc extra-controls=\"controls,video_bitrate={bps},\
             h264_i_frame_period={keyint},repeat_sequence_header=1\" \
             ! video/x-h264,level=(string)3.1,profile=constrained-baseline"
        ),
        H264Encoder::X264 => format!(
            "x264enc name=enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} \
             key-int-max={keyint} \
             ! video/x-h264,profile=constrained-baseline"
        ),
        H264Encoder::OpenH264 => format!(
            "openh264enc name=enc bitrate={bps} gop-size={keyint} rate-control=bitrate \
             complexity=low usage-type=camera \
             ! video/x-h264,profile=constrained-baseline"
        ),
    }
}

fn apply_bitrate(enc: &Encoder, kbps: u32) {
    let bps = u64::from(kbps) * 1000;
    let (property, value) = match enc.kind {
        EncoderKind::H264(H264Encoder::X264) => ("bitrate", kbps.to_string()),
        EncoderKind::H264(H264Encoder::OpenH264) => ("bitrate", bps.to_string()),
        EncoderKind::Vp8 => ("target-bitrate", bps.to_string()),
        EncoderKind::H264(H264Encoder::V4l2) => {
            ("extra-controls", format!("controls,video_bitrate={bps}"))
        }
        EncoderKind::Opus => return,
    };
    enc.element.set_property_from_str(property, &value);
}

//! The watch-together player: one direct video URL (`http(s)://`, `file://`) through
//! `playbin3`, video to a frame sink and audio to the board's speaker, driven by the
//! kiosk's watch loop with play, pause, seek and rate.
//!
//! ```text
//! playbin3 uri=URL audio-filter=scaletempo
//!   video-sink: videoscale ! videoconvert ! RGBA, height <= max_height ! appsink sync=true
//!               (without a frame sink: appsink sync=true in the decoder's format)
//!   audio-sink: audioconvert ! audioresample ! <board speaker>, volume on playbin3
//! ```
//!
//! Decoders come from `playbin3`'s own autoplugging, by rank: where the board has a
//! hardware decoder element (`v4l2h264dec` on a Pi 4) it outranks libav and is picked
//! without anything here knowing about it. A board whose facts say it has no H.264
//! hardware decoding gets the V4L2 decoders ranked out instead ([`PlayerConfig::facts`]).
//!
//! Over HTTP the server must answer `Range` requests: the demuxer reads an mp4's index at
//! the end of the file and seeks by byte offset.
//!
//! [`Player::open`] returns at once with the pipeline prerolling; [`Player::status`] says
//! when it is `ready` (or why it failed). Every control returns at once too: the pipeline's
//! answers arrive on the bus, which a thread of the player's own watches (`bus`), and
//! `status` reads what it recorded, so the watch loop may call it every 100 ms.
//!
//! Rate: every change is a flushing, accurate seek to the current position at the new
//! rate, which lets `scaletempo` keep the voices' pitch and costs a pause about as long as
//! a seek (about 10 ms for a 360p clip on a laptop-class core), so rates are rounded to
//! [`RATE_STEP`] and a drift correction that asks for a slightly different rate on every
//! sample only touches the pipeline when the step changes. An instant rate change
//! (`GST_SEEK_FLAG_INSTANT_RATE_CHANGE`) would not stall, but with GStreamer 1.22
//! `playbin3` refuses it (the seek event returns false, over HTTP and from a file), and
//! `playbin` accepts it while its position query keeps counting at the old pace, which
//! would mislead the drift correction.

mod bus;
mod frames;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::prelude::*;
use portal_board::{BoardFacts, Sink};

use crate::select::has_element;
use crate::{FrameSink, MediaError, PlaybackError, PlaybackErrorKind, VideoFrame, init};
use bus::Shared;
use frames::VideoOut;

/// The slowest and fastest rates the player accepts (what `<video>` plays sensibly).
pub const RATE_RANGE: std::ops::RangeInclusive<f64> = 0.25..=4.0;

/// Rates are rounded to this step (see the module notes).
pub const RATE_STEP: f64 = 0.01;

/// Hardware video decoders that the board's facts can rule out (see [`PlayerConfig::facts`]).
const HARDWARE_H264_DECODERS: &[&str] = &["v4l2h264dec", "v4l2slh264dec"];

/// What to play, and where.
#[derive(Clone, Debug)]
pub struct PlayerConfig {
    /// `http://`, `https://` or `file://`.
    pub uri: String,
    /// The speaker (the board's; each description is tried in order).
    pub audio: Sink,
    /// Frames are scaled down (never up) to at most this height.
    pub max_height: u32,
    /// Playback volume, 0 to 1 (see [`Player::set_volume`]).
    pub volume: f64,
    /// The board's facts: a board known to have no working H.264 hardware decoder gets
    /// the V4L2 ones ranked out of `playbin3`'s autoplugging (their rank is lowered for
    /// the whole process, as the receiver's decoder choice already skips them).
    pub facts: BoardFacts,
}

impl PlayerConfig {
    /// `uri` to `audio`, at most 720 lines, full volume.
    pub fn new(uri: impl Into<String>, audio: Sink, facts: BoardFacts) -> Self {
        PlayerConfig {
            uri: uri.into(),
            audio,
            max_height: 720,
            volume: 1.0,
            facts,
        }
    }
}

/// Where playback is, as the pipeline last reported it.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::struct_excessive_bools)] // independent facts, as `<video>` reports them
pub struct PlaybackStatus {
    /// Seconds: the pipeline's position when asked (after a seek: its target).
    pub position: f64,
    /// Seconds; `None` until known (or for a stream without one).
    pub duration: Option<f64>,
    /// What [`Player::play`]/[`Player::pause`] last asked for; whether the picture moves
    /// also depends on `seeking`, `buffering` and `ended`.
    pub paused: bool,
    /// A flushing seek was sent and the pipeline has not yet prerolled at its target.
    pub seeking: bool,
    /// An HTTP source is filling its queue; playback is held until it is full.
    pub buffering: bool,
    /// The end of the video was reached (cleared by a seek).
    pub ended: bool,
    pub rate: f64,
    /// Prerolled at least once: the first frame is decoded and seeks work.
    pub ready: bool,
    /// Why playback stopped, if it failed; the pipeline is then stopped.
    pub error: Option<PlaybackError>,
    /// Video frames that reached the sink so far.
    pub frames: u64,
    /// The size of the frames handed out (after scaling), once one was.
    pub video_size: Option<(u32, u32)>,
}

/// A video URL playing (or prerolled, or failed). Dropping it stops the pipeline and
/// joins its threads.
pub struct Player {
    uri: String,
    playbin: gst::Element,
    shared: Arc<Shared>,
    video: VideoOut,
    stop: Arc<AtomicBool>,
    bus_thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("uri", &self.uri)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Player {
    /// Builds the pipeline for `config.uri` and starts prerolling it, paused on the first
    /// frame; returns at once. A URL no GStreamer source reads (`ftp:`, `javascript:`, a
    /// malformed one) is refused here as [`PlaybackErrorKind::UnsupportedUri`]; a URL
    /// that fails later (404, refused, not a video) shows in [`PlaybackStatus::error`].
    pub fn open(config: PlayerConfig, frames: Option<FrameSink>) -> Result<Self, MediaError> {
        init()?;
        check_uri(&config.uri)?;
        if !config.facts.try_hardware_h264_decode() {
            rank_out(HARDWARE_H264_DECODERS);
        }
        let playbin = gst::ElementFactory::make("playbin3")
            .name("player")
            .build()
            .map_err(|_| MediaError::MissingElement {
                what: "URL playback",
                tried: "playbin3".into(),
            })?;
        // Audio and video only: no subtitles, no deinterlacing or colour balance stages.
        playbin.set_property_from_str("flags", "audio+video+soft-volume");
        playbin.set_property("uri", &config.uri);
        playbin.set_property("volume", config.volume.clamp(0.0, 1.0));
        let video = VideoOut::new(frames, config.max_height)?;
        playbin.set_property("video-sink", &video.bin);
        playbin.set_property("audio-sink", &audio_sink(&config.audio)?);
        if has_element("scaletempo") {
            let scaletempo = gst::ElementFactory::make("scaletempo")
                .build()
                .map_err(|e| MediaError::Build {
                    name: "player",
                    message: e.to_string(),
                })?;
            playbin.set_property("audio-filter", &scaletempo);
        }

        let shared = Arc::new(Shared::new(1.0));
        let stop = Arc::new(AtomicBool::new(false));
        let on_ready = {
            let playbin = playbin.clone();
            let shared = Arc::clone(&shared);
            Box::new(move |seek: Option<gst::ClockTime>| {
                let position = seek
                    .or_else(|| playbin.query_position::<gst::ClockTime>())
                    .unwrap_or(gst::ClockTime::ZERO);
                flushing_seek(&playbin, &shared, position, shared.rate());
            })
        };
        let bus_thread = bus::watch(
            playbin.clone(),
            Arc::clone(&shared),
            Arc::clone(&stop),
            on_ready,
        )?;
        let player = Player {
            uri: config.uri,
            playbin,
            shared,
            video,
            stop,
            bus_thread: Some(bus_thread),
        };
        if player.playbin.set_state(gst::State::Paused).is_err() {
            // The cause is on the bus; give it a moment to be recorded.
            let error = player.wait_for_error().unwrap_or(PlaybackError {
                kind: PlaybackErrorKind::Other,
                message: "the pipeline refused to start".into(),
            });
            return Err(MediaError::Playback {
                uri: player.uri.clone(),
                error,
            });
        }
        tracing::info!(uri = %player.uri, "player opening");
        Ok(player)
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Plays from where the player is (after a preroll still in progress, once it ends).
    pub fn play(&self) {
        self.shared.want_playing.store(true, Ordering::Relaxed);
        if !self.shared.buffering.load(Ordering::Relaxed) && !self.failed() {
            let _ = self.playbin.set_state(gst::State::Playing);
        }
    }

    pub fn pause(&self) {
        self.shared.want_playing.store(false, Ordering::Relaxed);
        if !self.failed() {
            let _ = self.playbin.set_state(gst::State::Paused);
        }
    }

    /// Seeks to `seconds` (clamped to the video), to the exact frame: a flushing, accurate
    /// seek that decodes from the keyframe before the target. Before the first preroll the
    /// target is kept and applied when it completes. `seeking` is set until the pipeline
    /// has prerolled at the target.
    pub fn seek(&self, seconds: f64) {
        if self.failed() {
            return;
        }
        let mut seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        if let Some(duration) = self.duration() {
            seconds = seconds.min(duration);
        }
        let target = gst::ClockTime::from_nseconds((seconds * 1e9) as u64);
        self.shared.ended.store(false, Ordering::Relaxed);
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !self.shared.ready.load(Ordering::Relaxed) {
                pending.seek = Some(target);
                self.shared.seek_pending.store(true, Ordering::Relaxed);
                return;
            }
        }
        flushing_seek(&self.playbin, &self.shared, target, self.shared.rate());
    }

    /// Sets the playback rate (rounded to [`RATE_STEP`], clamped to [`RATE_RANGE`]) and
    /// returns the rate the player runs at: a
    /// flushing, accurate seek to the current position at the new rate (see the module
    /// notes on why not an instant rate change), so `seeking` is set until it prerolls.
    pub fn set_rate(&self, rate: f64) -> f64 {
        let rate = if rate.is_finite() {
            ((rate / RATE_STEP).round() * RATE_STEP).clamp(*RATE_RANGE.start(), *RATE_RANGE.end())
        } else {
            1.0
        };
        let current = self.shared.rate();
        if (rate - current).abs() < RATE_STEP / 2.0 || self.failed() {
            return current;
        }
        {
            let _pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !self.shared.ready.load(Ordering::Relaxed) {
                // Applied with the first preroll's seek.
                self.shared.set_rate(rate);
                return rate;
            }
        }
        let position = self
            .playbin
            .query_position::<gst::ClockTime>()
            .unwrap_or(gst::ClockTime::ZERO);
        if flushing_seek(&self.playbin, &self.shared, position, rate) {
            self.shared.set_rate(rate);
            rate
        } else {
            current
        }
    }

    /// The playback volume, 0 to 1.
    pub fn set_volume(&self, volume: f64) {
        let volume = if volume.is_finite() {
            volume.clamp(0.0, 1.0)
        } else {
            1.0
        };
        self.playbin.set_property("volume", volume);
    }

    /// Where playback is; cheap (one position query, atomics), never waits.
    pub fn status(&self) -> PlaybackStatus {
        let s = &self.shared;
        let position = match self.playbin.query_position::<gst::ClockTime>() {
            Some(p) if !self.failed() => {
                s.last_position_ns.store(p.nseconds(), Ordering::Relaxed);
                p.nseconds()
            }
            _ => s.last_position_ns.load(Ordering::Relaxed),
        };
        let counters = &self.video.counters;
        let size = counters.size.load(Ordering::Relaxed);
        PlaybackStatus {
            position: position as f64 / 1e9,
            duration: self.duration(),
            paused: !s.want_playing.load(Ordering::Relaxed),
            seeking: s.seeking(),
            buffering: s.buffering.load(Ordering::Relaxed),
            ended: s.ended.load(Ordering::Relaxed),
            rate: s.rate(),
            ready: s.ready.load(Ordering::Relaxed),
            error: s.error(),
            frames: counters.shown.load(Ordering::Relaxed),
            video_size: (size != 0).then_some(((size >> 32) as u32, size as u32)),
        }
    }

    /// The failure, as a [`MediaError::Playback`], if playback failed.
    pub fn error(&self) -> Option<MediaError> {
        self.shared.error().map(|error| MediaError::Playback {
            uri: self.uri.clone(),
            error,
        })
    }

    /// The newest frame shown, as RGBA.
    pub fn latest_frame(&self) -> Option<VideoFrame> {
        self.video.latest_frame()
    }

    /// The newest frame shown as a PNG file's bytes.
    pub fn snapshot_png(&self) -> Result<Vec<u8>, MediaError> {
        let frame = self.latest_frame().ok_or(MediaError::NoFrame)?;
        crate::snapshot::encode_png(&frame)
    }

    fn failed(&self) -> bool {
        self.shared.error().is_some()
    }

    fn duration(&self) -> Option<f64> {
        let ns = self.shared.duration_ns.load(Ordering::Relaxed);
        (ns != u64::MAX).then(|| ns as f64 / 1e9)
    }

    /// The error the bus thread records shortly after a failed state change.
    fn wait_for_error(&self) -> Option<PlaybackError> {
        for _ in 0..20 {
            if let Some(error) = self.shared.error() {
                return Some(error);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        if self.playbin.set_state(gst::State::Null).is_err() {
            tracing::warn!(uri = %self.uri, "player did not stop cleanly");
        }
        bus::unwatch(&self.playbin);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.bus_thread.take() {
            let _ = handle.join();
        }
        self.video.shut_down();
    }
}

/// Sends a flushing, accurate seek to `position` at `rate`, marking the player as seeking
/// until its ASYNC_DONE; whether the pipeline took it.
fn flushing_seek(
    playbin: &gst::Element,
    shared: &Shared,
    position: gst::ClockTime,
    rate: f64,
) -> bool {
    shared.seek_sent();
    let event = gst::event::Seek::new(
        rate,
        gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
        gst::SeekType::Set,
        position,
        gst::SeekType::None,
        gst::ClockTime::NONE,
    );
    let sent = playbin.send_event(event);
    if !sent {
        tracing::debug!(%position, rate, "player refused a seek");
        shared.seek_refused();
    }
    sent
}

/// Lowers these decoders' rank so autoplugging never picks them (in this process).
fn rank_out(decoders: &[&str]) {
    let registry = gst::Registry::get();
    for name in decoders {
        if let Some(feature) = registry.lookup_feature(name)
            && feature.rank() != gst::Rank::NONE
        {
            tracing::info!(
                decoder = name,
                "board has no hardware H.264 decoding; not autoplugging it"
            );
            feature.set_rank(gst::Rank::NONE);
        }
    }
}

/// Refuses a URI no GStreamer source element reads, before building anything.
fn check_uri(uri: &str) -> Result<(), MediaError> {
    let refuse = |reason: String| MediaError::Playback {
        uri: uri.to_owned(),
        error: PlaybackError {
            kind: PlaybackErrorKind::UnsupportedUri,
            message: reason,
        },
    };
    match gst::Element::make_from_uri(gst::URIType::Src, uri, None) {
        Ok(_) => Ok(()),
        Err(e) => Err(refuse(e.to_string())),
    }
}

/// `audioconvert ! audioresample ! <speaker>`, for the speaker's first description that
/// builds.
fn audio_sink(speaker: &Sink) -> Result<gst::Element, MediaError> {
    crate::pipeline::first_that_builds(speaker.launch.candidates().map(str::to_owned), |sink| {
        gst::parse::bin_from_description(&format!("audioconvert ! audioresample ! {sink}"), true)
            .map(Cast::upcast::<gst::Element>)
            .map_err(|e| MediaError::Build {
                name: "player-audio",
                message: e.to_string(),
            })
    })
}

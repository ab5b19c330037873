//! The player's bus, watched on a thread of its own (never a GStreamer streaming thread,
//! so it may change the pipeline's state), and the state it keeps for `Player::status`
//! in atomics and short-held locks: reading the status never waits for GStreamer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::{MediaError, PlaybackError, PlaybackErrorKind};

/// How long the bus thread waits for a message before looking at its stop flag.
const POLL: Duration = Duration::from_millis(50);

/// A seek or rate asked for before the first preroll, applied when it completes.
#[derive(Debug, Default)]
pub(super) struct Pending {
    pub(super) seek: Option<gst::ClockTime>,
}

/// Everything the bus thread learns and the player's methods ask for.
#[derive(Debug)]
pub(super) struct Shared {
    /// Prerolled at least once: duration known (if the file has one) and seekable.
    pub(super) ready: AtomicBool,
    /// What `play`/`pause` asked for.
    pub(super) want_playing: AtomicBool,
    /// A seek asked for before the first preroll is waiting for it.
    pub(super) seek_pending: AtomicBool,
    /// ASYNC_DONE messages the pipeline has posted, counted when posted (by a bus sync
    /// handler, not when the bus thread gets to them).
    pub(super) async_dones: AtomicU64,
    /// The pipeline is seeking until `async_dones` reaches this.
    ///
    /// The ASYNC_DONE that ends a flushing seek does not carry the seek's sequence number
    /// (playbin3 posts its own), so a seek is known to be done by order instead: the
    /// first ASYNC_DONE posted after the seek was sent (flushing cancels any preroll
    /// still under way, so an earlier one cannot come later).
    pub(super) seek_until: AtomicU64,
    pub(super) buffering: AtomicBool,
    pub(super) ended: AtomicBool,
    pub(super) rate_bits: AtomicU64,
    /// Nanoseconds, `u64::MAX` while unknown.
    pub(super) duration_ns: AtomicU64,
    /// Nanoseconds: the last position a query answered, for when the pipeline has stopped.
    pub(super) last_position_ns: AtomicU64,
    pub(super) error: Mutex<Option<PlaybackError>>,
    /// What the file holds, from the stream collection and missing-plugin messages: a
    /// URL that prerolls with nothing to show (a web page served as `text/html`) is
    /// not a video, although GStreamer reports no error.
    pub(super) streams: Mutex<Streams>,
    pub(super) pending: Mutex<Pending>,
    /// When `open` was called, to log the time to preroll.
    pub(super) opened: std::time::Instant,
}

impl Shared {
    pub(super) fn new(rate: f64) -> Self {
        Shared {
            ready: AtomicBool::new(false),
            want_playing: AtomicBool::new(false),
            seek_pending: AtomicBool::new(false),
            async_dones: AtomicU64::new(0),
            seek_until: AtomicU64::new(0),
            buffering: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            rate_bits: AtomicU64::new(rate.to_bits()),
            duration_ns: AtomicU64::new(u64::MAX),
            last_position_ns: AtomicU64::new(0),
            error: Mutex::new(None),
            streams: Mutex::new(Streams::default()),
            pending: Mutex::new(Pending::default()),
            opened: std::time::Instant::now(),
        }
    }

    pub(super) fn rate(&self) -> f64 {
        f64::from_bits(self.rate_bits.load(Ordering::Relaxed))
    }

    pub(super) fn set_rate(&self, rate: f64) {
        self.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
    }

    pub(super) fn error(&self) -> Option<PlaybackError> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn seeking(&self) -> bool {
        self.seek_pending.load(Ordering::Relaxed)
            || self.seek_until.load(Ordering::SeqCst) > self.async_dones.load(Ordering::SeqCst)
    }

    /// Marks a flushing seek about to be sent; `seeking` holds until the next ASYNC_DONE.
    pub(super) fn seek_sent(&self) {
        let next = self.async_dones.load(Ordering::SeqCst) + 1;
        self.seek_until.store(next, Ordering::SeqCst);
    }

    /// A seek that was refused: nothing to wait for.
    pub(super) fn seek_refused(&self) {
        self.seek_until.store(0, Ordering::SeqCst);
    }

    pub(super) fn fail(&self, error: PlaybackError) {
        self.seek_pending.store(false, Ordering::Relaxed);
        self.seek_until.store(0, Ordering::SeqCst);
        self.buffering.store(false, Ordering::Relaxed);
        let mut slot = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        // The first error is the cause; later ones are its consequences.
        slot.get_or_insert(error);
    }

    pub(super) fn update_duration(&self, playbin: &gst::Element) {
        if let Some(d) = playbin.query_duration::<gst::ClockTime>() {
            self.duration_ns.store(d.nseconds(), Ordering::Relaxed);
        }
    }
}

/// The streams found in the file, for telling a video from something else.
#[derive(Debug, Default)]
pub(super) struct Streams {
    /// The last stream collection had an audio or video stream (`None`: none seen).
    pub(super) audio_or_video: Option<bool>,
    /// Caps of a video stream no installed decoder takes.
    pub(super) missing_video_decoder: Option<String>,
}

/// What the bus thread does when the first preroll completes: apply a pending seek.
pub(super) type OnReady = Box<dyn Fn(Option<gst::ClockTime>) + Send>;

/// Starts the bus thread (it ends when `stop` is set) and the sync handler that counts
/// ASYNC_DONEs as they are posted (unset by `unwatch`).
pub(super) fn watch(
    playbin: gst::Element,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    on_ready: OnReady,
) -> Result<JoinHandle<()>, MediaError> {
    let bus = playbin.bus().ok_or_else(|| MediaError::Build {
        name: "player",
        message: "playbin3 has no bus".into(),
    })?;
    {
        let shared = Arc::clone(&shared);
        bus.set_sync_handler(move |_, msg| {
            // Only the top-level pipeline's: bins keep their children's to themselves.
            if msg.type_() == gst::MessageType::AsyncDone
                && msg.src().is_some_and(|s| s.parent().is_none())
            {
                shared.async_dones.fetch_add(1, Ordering::SeqCst);
            }
            gst::BusSyncReply::Pass
        });
    }
    std::thread::Builder::new()
        .name("portal-player-bus".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(msg) =
                    bus.timed_pop(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64))
                {
                    handle(&playbin, &shared, &msg, &on_ready);
                }
            }
        })
        .map_err(|e| MediaError::Io {
            path: "player bus thread".into(),
            source: e,
        })
}

fn handle(playbin: &gst::Element, shared: &Shared, msg: &gst::Message, on_ready: &OnReady) {
    use gst::MessageView;
    let from_playbin = msg.src().is_some_and(|s| s == playbin);
    match msg.view() {
        MessageView::AsyncDone(_) if from_playbin => {
            shared.update_duration(playbin);
            // Under the pending lock: a seek or rate asked for meanwhile is either seen
            // here or sent by the caller itself.
            let mut pending = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !shared.ready.load(Ordering::Relaxed)
                && let Some(error) = nothing_to_play(shared)
            {
                drop(pending);
                tracing::warn!(kind = ?error.kind, message = %error.message, "playback failed");
                shared.fail(error);
                let _ = playbin.set_state(gst::State::Null);
                return;
            }
            if !shared.ready.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    preroll_ms = shared.opened.elapsed().as_millis() as u64,
                    duration = ?playbin.query_duration::<gst::ClockTime>(),
                    "player prerolled"
                );
                let seek = pending.seek.take();
                drop(pending);
                if seek.is_some() || (shared.rate() - 1.0).abs() > f64::EPSILON {
                    on_ready(seek);
                }
                shared.seek_pending.store(false, Ordering::Relaxed);
            }
        }
        MessageView::DurationChanged(_) => shared.update_duration(playbin),
        MessageView::StreamCollection(c) => {
            let collection = c.stream_collection();
            let av = collection.iter().any(|stream| {
                stream
                    .stream_type()
                    .intersects(gst::StreamType::AUDIO | gst::StreamType::VIDEO)
            });
            shared
                .streams
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .audio_or_video = Some(av);
        }
        MessageView::Element(e) => {
            if let Some(missing) = e.structure().filter(|s| s.name() == "missing-plugin")
                && let Ok(caps) = missing.get::<gst::Caps>("detail")
                && caps
                    .structure(0)
                    .is_some_and(|s| s.name().starts_with("video/"))
            {
                tracing::warn!(%caps, "no decoder for the video stream");
                shared
                    .streams
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .missing_video_decoder = Some(caps.to_string());
            }
        }
        MessageView::Eos(_) => {
            tracing::debug!("player reached the end");
            shared.ended.store(true, Ordering::Relaxed);
        }
        MessageView::Buffering(b) => {
            let buffering = b.percent() < 100;
            if shared.buffering.swap(buffering, Ordering::Relaxed) != buffering {
                tracing::debug!(percent = b.percent(), "player buffering");
                // Hold playback while the queue fills, then carry on where asked.
                let state = if buffering || !shared.want_playing.load(Ordering::Relaxed) {
                    gst::State::Paused
                } else {
                    gst::State::Playing
                };
                let _ = playbin.set_state(state);
            }
        }
        MessageView::Error(e) => {
            let origin = e.src().map_or(Origin::Other, |s| {
                if s.dynamic_cast_ref::<gst::URIHandler>()
                    .is_some_and(|h| h.uri_type() == gst::URIType::Src)
                {
                    Origin::Source
                } else if s
                    .downcast_ref::<gst::Element>()
                    .and_then(gst::Element::factory)
                    .is_some_and(|f| f.name() == "typefind")
                {
                    Origin::Typefind
                } else {
                    Origin::Other
                }
            });
            let error = classify(&e.error(), e.debug().as_deref(), origin);
            tracing::warn!(
                source = ?e.src().map(GstObjectExt::path_string),
                error = %e.error(),
                debug = ?e.debug(),
                kind = ?error.kind,
                "playback failed"
            );
            shared.fail(error);
            if playbin.set_state(gst::State::Null).is_err() {
                tracing::warn!("player did not stop cleanly after an error");
            }
        }
        MessageView::Warning(w) => tracing::debug!(
            source = ?w.src().map(GstObjectExt::path_string),
            warning = %w.error(),
            "player warning"
        ),
        _ => {}
    }
}

/// Why a pipeline that prerolled cannot play: no audio or video stream in it, or no
/// decoder for its video.
fn nothing_to_play(shared: &Shared) -> Option<PlaybackError> {
    let streams = shared
        .streams
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(caps) = &streams.missing_video_decoder {
        return Some(PlaybackError {
            kind: PlaybackErrorKind::MissingDecoder,
            message: format!("no decoder for {caps}"),
        });
    }
    (streams.audio_or_video == Some(false)).then(|| PlaybackError {
        kind: PlaybackErrorKind::NotMedia,
        message: "no audio or video stream in it".into(),
    })
}

/// Which element posted an error, where that changes what it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// The URI's source element (`souphttpsrc`, `filesrc`).
    Source,
    /// The type finder that looks at the first bytes.
    Typefind,
    Other,
}

/// A GStreamer error as a [`PlaybackError`] a caller can act on.
///
/// A generic flow error means different things by where it comes from: souphttpsrc (1.22)
/// reports a refused connection only that way (a source that fails without saying why
/// could not read its URL), and the type finder that way when it found a type nothing
/// plays (plain text).
pub(super) fn classify(
    error: &gst::glib::Error,
    debug: Option<&str>,
    origin: Origin,
) -> PlaybackError {
    let kind = if let Some(e) = error.kind::<gst::ResourceError>() {
        match e {
            gst::ResourceError::NotFound => PlaybackErrorKind::NotFound,
            gst::ResourceError::OpenRead
            | gst::ResourceError::Read
            | gst::ResourceError::OpenReadWrite
            | gst::ResourceError::Seek
            | gst::ResourceError::Busy => PlaybackErrorKind::Unreachable,
            _ => PlaybackErrorKind::Other,
        }
    } else if let Some(e) = error.kind::<gst::StreamError>() {
        match e {
            gst::StreamError::TypeNotFound
            | gst::StreamError::WrongType
            | gst::StreamError::Demux
            | gst::StreamError::Format => PlaybackErrorKind::NotMedia,
            gst::StreamError::CodecNotFound => PlaybackErrorKind::MissingDecoder,
            gst::StreamError::Decode => PlaybackErrorKind::Decode,
            gst::StreamError::Failed if origin == Origin::Source => PlaybackErrorKind::Unreachable,
            gst::StreamError::Failed if origin == Origin::Typefind => PlaybackErrorKind::NotMedia,
            _ => PlaybackErrorKind::Other,
        }
    } else if error.kind::<gst::CoreError>() == Some(gst::CoreError::MissingPlugin) {
        PlaybackErrorKind::MissingDecoder
    } else {
        PlaybackErrorKind::Other
    };
    let message = match debug {
        Some(debug) if !debug.is_empty() => format!("{error} ({debug})"),
        _ => error.to_string(),
    };
    PlaybackError { kind, message }
}

/// Removes the sync handler (it holds the shared state).
pub(super) fn unwatch(playbin: &gst::Element) {
    if let Some(bus) = playbin.bus() {
        bus.unset_sync_handler();
    }
}

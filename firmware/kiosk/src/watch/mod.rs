//! Watch-together on the kiosk: the room's video, played by a local player that follows
//! the room's timeline.
//!
//! The room's watch state is the server's (browsers set it; the kiosk never does): the
//! engine keeps the latest snapshot, the signaling transport knows the server's clock.
//! Every [`TICK`] the session calls [`Watching::tick`], which
//! - opens the right player when the source changes: GStreamer ([`native`], direct
//!   `http(s)` URLs, video to the stage tile, audio to the speaker) or the YouTube IFrame
//!   player in a web engine window ([`crate::webplayer`]), and closes the old one;
//! - samples the player and lets `portal_engine::watch::SyncController` (the same
//!   decisions as the browser's `watchsync.ts`) say what to do: seek, nudge the rate,
//!   play, pause.
//!
//! `/status` reads [`Watching::status`]: the player's own position when asked, not the
//! computed target.

mod native;

use std::time::Duration;

use portal_engine::watch::{NATIVE_TUNING, SyncController, SyncStatus, YOUTUBE_TUNING};
use portal_proto::{VideoSource, WatchSnapshot};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use self::native::NativePlayer;
use crate::player::WatchPlayer;
use crate::webplayer::{WebPlayer, WebPlayerError};

/// How often the player is sampled and corrected (the browser samples every 250 ms; the
/// kiosk shares a room with the browsers, so it corrects faster).
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// How long a web engine window may take to load the YouTube player (a Pi starting a
/// browser from an SD card is slow).
const WEB_READY: Duration = Duration::from_secs(45);

/// What the player needs from the kiosk.
pub(crate) struct PlayerSetup {
    /// The speaker, for a native player's audio.
    pub speaker: portal_board::Sink,
    pub facts: portal_board::BoardFacts,
    /// Where a native player's video goes (the stage tile); none on a headless kiosk.
    pub frames: Option<Box<dyn Fn() -> portal_media::FrameSink + Send>>,
    /// The YouTube player's window.
    pub web: crate::config::WatchConfig,
}

/// A player being opened: YouTube's window starts asynchronously.
enum Slot {
    None,
    Opening(oneshot::Receiver<Result<WebPlayer, WebPlayerError>>),
    Open(Box<dyn WatchPlayer>),
    Failed(String),
}

/// The kiosk's side of watch-together in one call.
pub(crate) struct Watching {
    setup: PlayerSetup,
    /// The snapshot last acted on.
    snapshot: Option<WatchSnapshot>,
    player: Slot,
    controller: SyncController,
    status: SyncStatus,
    drift: Option<f64>,
    volume: f64,
}

impl Watching {
    pub(crate) fn new(setup: PlayerSetup, volume: f32) -> Self {
        Watching {
            setup,
            snapshot: None,
            player: Slot::None,
            controller: SyncController::new(NATIVE_TUNING),
            status: SyncStatus::Loading,
            drift: None,
            volume: f64::from(volume),
        }
    }

    /// Whether the room watches something (a source is set).
    pub(crate) fn active(&self) -> bool {
        self.source().is_some()
    }

    fn source(&self) -> Option<&VideoSource> {
        self.snapshot.as_ref().and_then(|s| s.state.source.as_ref())
    }

    /// Follows the room's state: `snapshot` as the engine holds it, `target` where the
    /// video should be now (`Engine::watch_target` at the server's clock), `now_ms` the
    /// local clock the player's samples use.
    pub(crate) fn tick(
        &mut self,
        snapshot: Option<&WatchSnapshot>,
        target: Option<f64>,
        now_ms: f64,
    ) {
        if snapshot != self.snapshot.as_ref() {
            let source_changed = snapshot.and_then(|s| s.state.source.as_ref()) != self.source();
            self.snapshot = snapshot.cloned();
            if source_changed {
                self.open();
            }
            self.controller.state_changed();
        }
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        if let Slot::Opening(rx) = &mut self.player {
            match rx.try_recv() {
                Ok(Ok(player)) => {
                    let mut player: Box<dyn WatchPlayer> = Box::new(player);
                    player.set_volume(self.volume);
                    self.player = Slot::Open(player);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the YouTube player did not start");
                    self.player = Slot::Failed(e.to_string());
                }
                Err(oneshot::error::TryRecvError::Empty) => return,
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.player = Slot::Failed("the YouTube player did not start".into());
                }
            }
        }
        let (Slot::Open(player), Some(target)) = (&mut self.player, target) else {
            return;
        };
        if let Some(failure) = player.failure() {
            tracing::warn!(error = failure, "the room's video cannot be played");
            self.player = Slot::Failed(failure);
            return;
        }
        let sample = player.sample(now_ms);
        let decision = self.controller.decide(&snapshot.state, target, &sample);
        if let Some(rate) = decision.rate {
            player.set_rate(rate);
        }
        if let Some(seek) = decision.seek {
            player.seek(seek);
        }
        match decision.play {
            Some(true) => player.play(),
            Some(false) => player.pause(),
            None => {}
        }
        self.status = decision.status;
        self.drift = decision.drift;
    }

    /// Opens a player for the current source (the old one takes it if it can, else it
    /// is closed).
    fn open(&mut self) {
        self.status = SyncStatus::Loading;
        self.drift = None;
        let Some(source) = self.source().cloned() else {
            self.player = Slot::None;
            return;
        };
        if let Slot::Open(player) = &mut self.player
            && player.switch(&source)
        {
            return;
        }
        self.player = Slot::None;
        match source {
            VideoSource::Url { url } => {
                self.controller = SyncController::new(NATIVE_TUNING);
                let frames = self.setup.frames.as_ref().map(|make| make());
                match NativePlayer::open(&url, &self.setup, frames) {
                    Ok(mut player) => {
                        player.set_volume(self.volume);
                        self.player = Slot::Open(Box::new(player));
                    }
                    Err(e) => {
                        tracing::warn!(url, error = %e, "cannot play the room's video");
                        self.player = Slot::Failed(e.to_string());
                    }
                }
            }
            VideoSource::Youtube { video_id } => {
                self.controller = SyncController::new(YOUTUBE_TUNING);
                let (tx, rx) = oneshot::channel();
                let config = self.setup.web.clone();
                tokio::spawn(async move {
                    let started = match WebPlayer::start(&config, &video_id).await {
                        Ok(mut player) => player.ready(WEB_READY).await.map(|()| player),
                        Err(e) => Err(e),
                    };
                    let _ = tx.send(started);
                });
                self.player = Slot::Opening(rx);
            }
        }
    }

    /// The kiosk's volume control, 0 to 1.
    pub(crate) fn set_volume(&mut self, volume: f32) {
        self.volume = f64::from(volume.clamp(0.0, 1.0));
        if let Slot::Open(player) = &mut self.player {
            player.set_volume(self.volume);
        }
    }

    /// `/status`'s `"watch"`: `null` when the room watches nothing; else the source, and
    /// what the player does now (`position` is its own, read now).
    pub(crate) fn status(&mut self, now_ms: f64) -> Value {
        let Some(source) = self.source() else {
            return Value::Null;
        };
        let source = match source {
            VideoSource::Url { url } => json!({ "url": url }),
            VideoSource::Youtube { video_id } => json!({ "youtube": video_id }),
        };
        let sync = self.status.as_str();
        match &mut self.player {
            Slot::Open(player) => {
                let s = player.sample(now_ms);
                json!({
                    "source": source,
                    "playing": s.ready && !s.paused && !s.ended,
                    "rate": s.rate,
                    "position": s.time,
                    "duration": s.duration.is_finite().then_some(s.duration),
                    "sync": sync,
                    "drift": self.drift,
                })
            }
            Slot::Failed(error) => json!({
                "source": source, "playing": false, "rate": Value::Null,
                "position": Value::Null, "error": error,
            }),
            Slot::None | Slot::Opening(_) => json!({
                "source": source, "playing": false, "rate": Value::Null,
                "position": Value::Null, "sync": "loading",
            }),
        }
    }
}

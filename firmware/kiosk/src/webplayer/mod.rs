//! YouTube on the kiosk: the official IFrame player in a web engine window the kiosk
//! starts over its stage and drives. Downloading YouTube media is against its terms, so
//! the kiosk cannot play it natively; it plays where YouTube allows, in its own player.
//!
//! The kiosk, not the page, owns the timeline: [`WebPlayer`] is a
//! [`WatchPlayer`](crate::player::WatchPlayer) like the GStreamer one, the sync
//! loop commands it and reads back [`PlayerSample`]s; the page only obeys and reports.
//!
//! - [`engine`]: the web engines (Chromium in app mode, WPE `cog`) behind [`WebEngine`];
//! - [`channel`]: the local server that serves the page and carries the WebSocket;
//! - `page.html`: the player page.

mod channel;
#[cfg(test)]
mod channel_tests;
mod engine;
#[cfg(test)]
mod tests;

use std::process::Child;
use std::time::{Duration, Instant};

use portal_engine::watch::PlayerSample;

use crate::config::{WatchConfig, WebEngineKind};
use crate::player::WatchPlayer;
use channel::{Channel, Command, PageState, Report, SendError};
pub(crate) use engine::{ChromiumApp, Cog, WebEngine};

/// The IFrame API's `PlayerState` values used here.
const PLAYING: i32 = 1;
const BUFFERING: i32 = 3;
const ENDED: i32 = 0;

/// The rates a YouTube player usually offers, until the page says which it has.
const USUAL_RATES: [f64; 8] = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0];

/// Reports come every 100 ms; a page silent for longer is not carried forward further.
const EXTRAPOLATE_AT_MOST: Duration = Duration::from_secs(1);

/// A seek the page never confirms is taken as over after this long.
const SEEK_GIVE_UP: Duration = Duration::from_secs(5);

/// Why the YouTube player cannot play.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum WebPlayerError {
    #[error("no web engine is configured for YouTube ([watch] web_engine = \"none\")")]
    NoEngine,
    #[error("the web engine binary {0} was not found")]
    EngineMissing(String),
    #[error("the web engine could not be started: {0}")]
    Launch(#[source] std::io::Error),
    #[error("the web engine window closed")]
    EngineExited,
    #[error("the player page did not connect within {0:?}")]
    NeverConnected(Duration),
    #[error("the YouTube player did not get ready within {0:?}")]
    NotReady(Duration),
    #[error("the player page could not load the YouTube IFrame API")]
    ApiUnavailable,
    #[error("{}", describe(*.0))]
    Player(i64),
    #[error("the player page's channel closed")]
    ChannelClosed,
    #[error("{0:?} is not a YouTube video id")]
    InvalidVideoId(String),
}

impl WebPlayerError {
    /// The player's `onError` code, for a [`WebPlayerError::Player`].
    #[cfg(test)]
    pub(crate) fn player_code(&self) -> Option<i64> {
        match self {
            WebPlayerError::Player(code) => Some(*code),
            _ => None,
        }
    }
}

/// What an IFrame player error code means.
fn describe(code: i64) -> String {
    match code {
        2 => "YouTube says the video id is not valid (error 2)".to_owned(),
        5 => "YouTube's HTML5 player could not play this video (error 5)".to_owned(),
        100 => "this YouTube video was not found, or it is private (error 100)".to_owned(),
        101 | 150 => format!(
            "the owner of this YouTube video does not allow it to be played on other sites (error {code})"
        ),
        153 => "YouTube refused the player: the page has no http(s) origin (error 153)".to_owned(),
        _ => format!("the YouTube player reported error {code}"),
    }
}

/// The YouTube player: a web engine window with the player page, and the channel that
/// drives it. Dropping it kills the window's processes and stops the channel.
#[derive(Debug)]
pub(crate) struct WebPlayer {
    child: Child,
    channel: Channel,
    /// Declared after `child`: a profile directory goes once the browser is dead.
    _engine: Box<dyn WebEngine>,
    video: String,
    /// The `errors` count of the page state when `video` was set.
    errors_before: u64,
    seek_seq: u64,
    /// The last seek asked for and when, while the page has not confirmed it.
    seek: Option<(f64, Instant)>,
}

impl WebPlayer {
    /// Starts the local channel and the configured web engine with the player page for
    /// `video_id`; returns at once. [`WebPlayer::ready`] waits for the player, and
    /// samples say `ready` once it is.
    pub(crate) async fn start(
        config: &WatchConfig,
        video_id: &str,
    ) -> Result<WebPlayer, WebPlayerError> {
        check_video_id(video_id)?;
        let binary = match (config.web_engine, &config.browser) {
            (WebEngineKind::None, _) => return Err(WebPlayerError::NoEngine),
            (_, None) => {
                let name = if config.web_engine == WebEngineKind::Cog {
                    "cog"
                } else {
                    "chromium"
                };
                return Err(WebPlayerError::EngineMissing(name.to_owned()));
            }
            (_, Some(path)) if !path.is_file() => {
                return Err(WebPlayerError::EngineMissing(path.display().to_string()));
            }
            (_, Some(path)) => path.clone(),
        };
        let engine: Box<dyn WebEngine> = match config.web_engine {
            WebEngineKind::Cog => Box::new(Cog::new(binary)),
            _ => {
                Box::new(ChromiumApp::new(binary, config.headless).map_err(WebPlayerError::Launch)?)
            }
        };
        let channel = Channel::start(&config.iframe_api, video_id)
            .await
            .map_err(WebPlayerError::Launch)?;
        let child = engine
            .launch(&channel.page_url(), config.window)
            .map_err(WebPlayerError::Launch)?;
        tracing::info!(
            video = video_id,
            pid = child.id(),
            "YouTube player window started"
        );
        Ok(WebPlayer {
            child,
            channel,
            _engine: engine,
            video: video_id.to_owned(),
            errors_before: 0,
            seek_seq: 0,
            seek: None,
        })
    }

    /// Switches to another video without a new window; it is cued, paused at `start`.
    pub(crate) fn load(&mut self, video_id: &str, start: f64) -> Result<(), WebPlayerError> {
        check_video_id(video_id)?;
        video_id.clone_into(&mut self.video);
        self.errors_before = self.channel.state().borrow().errors;
        self.seek = None;
        self.send(Command::Load {
            video: video_id.to_owned(),
            start: start.max(0.0),
        });
        Ok(())
    }

    /// Waits until the player holds the current video and can be driven, or says why it
    /// cannot.
    pub(crate) async fn ready(&mut self, limit: Duration) -> Result<(), WebPlayerError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut state = self.channel.subscribe();
        loop {
            if let Some(e) = self.error() {
                return Err(e);
            }
            if self.is_ready(&state.borrow_and_update()) {
                return Ok(());
            }
            // Also wakes now and then to notice the engine exiting.
            let wait = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(250)),
                state.changed(),
            );
            if let Ok(Err(_)) = wait.await {
                return Err(WebPlayerError::ChannelClosed);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(if state.borrow().connections == 0 {
                    WebPlayerError::NeverConnected(limit)
                } else {
                    WebPlayerError::NotReady(limit)
                });
            }
        }
    }

    /// What keeps the player from playing now, if anything: a player error for the
    /// current video, an IFrame API that did not load, a closed window, a page gone.
    pub(crate) fn error(&mut self) -> Option<WebPlayerError> {
        if let Ok(Some(_)) = self.child.try_wait() {
            return Some(WebPlayerError::EngineExited);
        }
        let state = self.channel.state().borrow();
        if state.errors > self.errors_before
            && let Some(code) = state.error
        {
            return Some(WebPlayerError::Player(code));
        }
        if state.api_failed {
            return Some(WebPlayerError::ApiUnavailable);
        }
        if state.connections > 0 && !state.connected {
            return Some(WebPlayerError::ChannelClosed);
        }
        None
    }

    /// The player's volume as the page last reported it, 0.0 (silent or muted) ..= 1.0.
    #[cfg(test)]
    pub(crate) fn reported_volume(&self) -> Option<f64> {
        let state = self.channel.state().borrow();
        let report = state.report.as_ref()?;
        Some(if report.muted {
            0.0
        } else {
            (report.volume / 100.0).clamp(0.0, 1.0)
        })
    }

    /// The engine's process id (its process group's too).
    #[cfg(test)]
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn is_ready(&self, state: &PageState) -> bool {
        state.connected
            && state
                .report
                .as_ref()
                .is_some_and(|r| r.ready && r.video == self.video)
    }

    fn send(&self, cmd: Command) {
        match self.channel.send(cmd) {
            Ok(()) => {}
            Err(SendError::Full) => {
                tracing::warn!("player page is not taking commands; one dropped");
            }
            Err(SendError::Closed) => tracing::warn!("player channel closed; command dropped"),
        }
    }

    /// The rates the page offers, else the usual ones.
    fn rates(&self) -> Vec<f64> {
        let state = self.channel.state().borrow();
        let offered: Vec<f64> = state
            .report
            .as_ref()
            .map(|r| {
                r.rates
                    .iter()
                    .copied()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .collect()
            })
            .unwrap_or_default();
        if offered.is_empty() {
            USUAL_RATES.to_vec()
        } else {
            offered
        }
    }
}

/// The position `report` implies `since` it arrived: carried forward at its rate while
/// playing (reports come every 100 ms; without this they would look like 100 ms of
/// drift), for at most [`EXTRAPOLATE_AT_MOST`] of a silent page.
fn carried(report: &Report, since: Duration) -> f64 {
    if report.state == PLAYING {
        report.time + since.min(EXTRAPOLATE_AT_MOST).as_secs_f64() * report.rate
    } else {
        report.time
    }
}

/// The rate of `available` closest to `wanted` (1 when there is none).
fn nearest_rate(wanted: f64, available: &[f64]) -> f64 {
    available
        .iter()
        .copied()
        .min_by(|a, b| (a - wanted).abs().total_cmp(&(b - wanted).abs()))
        .unwrap_or(1.0)
}

/// Ids go into the page and its messages: YouTube's alphabet only, and not too long.
/// (Whether one names a video is the player's to say: error 2 or 100.)
fn check_video_id(id: &str) -> Result<(), WebPlayerError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(WebPlayerError::InvalidVideoId(id.to_owned()))
    }
}

impl WatchPlayer for WebPlayer {
    fn switch(&mut self, source: &portal_proto::VideoSource) -> bool {
        match source {
            portal_proto::VideoSource::Youtube { video_id } => self.load(video_id, 0.0).is_ok(),
            portal_proto::VideoSource::Url { .. } => false,
        }
    }

    fn failure(&mut self) -> Option<String> {
        // A page that lost its channel reconnects by itself: not a failure yet.
        self.error()
            .filter(|e| !matches!(e, WebPlayerError::ChannelClosed))
            .map(|e| e.to_string())
    }

    fn sample(&mut self, now_ms: f64) -> PlayerSample {
        let state = self.channel.state().borrow();
        let ready = self.is_ready(&state);
        let Some(report) = state.report.as_ref().filter(|r| r.video == self.video) else {
            return PlayerSample {
                now: now_ms,
                time: 0.0,
                paused: true,
                seeking: self.seek.is_some(),
                buffering: false,
                ended: false,
                duration: f64::NAN,
                rate: 1.0,
                ready: false,
            };
        };
        if let Some((_, at)) = self.seek
            && (report.seeked >= self.seek_seq || at.elapsed() > SEEK_GIVE_UP)
        {
            self.seek = None;
        }
        let time = match self.seek {
            // While seeking the position is the target, as a <video>'s currentTime is.
            Some((target, _)) => target,
            None => carried(
                report,
                state.received.map_or(Duration::ZERO, |t| t.elapsed()),
            ),
        };
        PlayerSample {
            now: now_ms,
            time,
            paused: report.paused,
            seeking: self.seek.is_some(),
            buffering: report.state == BUFFERING,
            ended: report.state == ENDED,
            duration: if report.duration > 0.0 {
                report.duration
            } else {
                f64::NAN
            },
            rate: report.rate,
            ready,
        }
    }

    fn seek(&mut self, seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        self.seek_seq += 1;
        self.seek = Some((seconds, Instant::now()));
        self.send(Command::Seek {
            time: seconds,
            seq: self.seek_seq,
        });
    }

    fn play(&mut self) {
        self.send(Command::Play);
    }

    fn pause(&mut self) {
        self.send(Command::Pause);
    }

    fn set_rate(&mut self, rate: f64) -> f64 {
        let chosen = nearest_rate(rate, &self.rates());
        self.send(Command::Rate { rate: chosen });
        chosen
    }

    fn set_volume(&mut self, volume: f64) {
        let volume = if volume.is_finite() {
            volume.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.send(Command::Volume { volume });
    }
}

impl Drop for WebPlayer {
    fn drop(&mut self) {
        engine::kill_tree(&mut self.child);
        tracing::info!("YouTube player window closed");
    }
}

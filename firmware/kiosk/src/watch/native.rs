//! Direct video URLs through GStreamer (`portal_media::player`): the stage tile shows the
//! video, the speaker plays the sound, hardware decoders are picked where the board has
//! them.

use portal_engine::watch::PlayerSample;
use portal_media::player::{Player, PlayerConfig};
use portal_media::{FrameSink, MediaError};

use super::PlayerSetup;
use crate::player::WatchPlayer;

/// Tallest picture decoded for the stage (a 1080p display shows 1080p; more only costs).
const MAX_HEIGHT: u32 = 1080;

pub(crate) struct NativePlayer {
    player: Player,
}

impl NativePlayer {
    pub(crate) fn open(
        url: &str,
        setup: &PlayerSetup,
        frames: Option<FrameSink>,
    ) -> Result<Self, MediaError> {
        let mut config = PlayerConfig::new(url, setup.speaker.clone(), setup.facts.clone());
        config.max_height = MAX_HEIGHT;
        Ok(NativePlayer {
            player: Player::open(config, frames)?,
        })
    }
}

impl WatchPlayer for NativePlayer {
    fn sample(&mut self, now_ms: f64) -> PlayerSample {
        let s = self.player.status();
        PlayerSample {
            now: now_ms,
            time: s.position,
            paused: s.paused,
            seeking: s.seeking,
            buffering: s.buffering,
            ended: s.ended,
            duration: s.duration.unwrap_or(f64::NAN),
            rate: s.rate,
            ready: s.ready,
        }
    }

    fn seek(&mut self, seconds: f64) {
        self.player.seek(seconds);
    }

    fn play(&mut self) {
        self.player.play();
    }

    fn pause(&mut self) {
        self.player.pause();
    }

    fn set_rate(&mut self, rate: f64) -> f64 {
        self.player.set_rate(rate)
    }

    fn set_volume(&mut self, volume: f64) {
        self.player.set_volume(volume);
    }

    fn failure(&mut self) -> Option<String> {
        self.player.error().map(|e| e.to_string())
    }
}

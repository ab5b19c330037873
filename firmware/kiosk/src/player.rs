//! What the watch-together loop ([`crate::watch`]) needs from a local player: the
//! GStreamer player for direct URLs ([`portal_media::player`]) and the YouTube IFrame
//! player in a web engine window ([`crate::webplayer`]) both implement it. Its own module,
//! so that the loop and the players depend on it and not on each other.

use portal_engine::watch::PlayerSample;
use portal_proto::VideoSource;

/// A local player the sync loop drives. Every call returns at once: commands are carried
/// out in the background and [`WatchPlayer::sample`] reports what the player does now.
pub(crate) trait WatchPlayer: Send {
    /// What the player is doing at `now_ms` (the same clock as the controller's samples).
    fn sample(&mut self, now_ms: f64) -> PlayerSample;
    /// Seeks to `seconds` into the video.
    fn seek(&mut self, seconds: f64);
    fn play(&mut self);
    fn pause(&mut self);
    /// Sets the rate; returns the rate the player really uses (a YouTube player takes only
    /// a few fixed rates).
    fn set_rate(&mut self, rate: f64) -> f64;
    /// 0.0 (silent) ..= 1.0, following the kiosk's volume control.
    fn set_volume(&mut self, volume: f64);
    /// Why the player cannot play this video, for good (a broken file, a YouTube video
    /// that may not be embedded, a window that closed); `None` while it can, or may
    /// still recover.
    fn failure(&mut self) -> Option<String>;
    /// Takes `source` without being reopened when it can (a YouTube window cues the next
    /// video); `false`: the caller opens a new player.
    fn switch(&mut self, source: &VideoSource) -> bool {
        let _ = source;
        false
    }
}

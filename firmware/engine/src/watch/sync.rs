//! Where the shared video should be now, and what a local player must do to be there.
//!
//! A port of the browser's `watchsync.ts`, number for number: a kiosk and a laptop that
//! decide differently would drift apart by the difference. The caller samples its player
//! every ~250 ms and applies each [`SyncDecision`]:
//! - far off (more than `seek_threshold`, or just after a state change): seek, aiming
//!   ahead by the measured seek latency so playback resumes on the timeline;
//! - slightly off (more than `nudge_start`): play a little faster or slower, by an amount
//!   proportional to the drift and bounded by `max_nudge`, until within `nudge_stop`;
//! - a player that only takes a few fixed rates (YouTube) cannot be nudged: right after
//!   a seek, while it landed further off than `settle_threshold`, it seeks again with the
//!   latency it has just measured (at most `max_settle_seeks` times in a row);
//! - paused: pause and seek to the exact position.

use portal_proto::{WatchSnapshot, WatchState};

use super::PlayerSample;

/// Where the shared video stands at `server_now` (ms, server clock), in seconds.
pub fn position_at(snapshot: &WatchSnapshot, server_now: f64) -> f64 {
    let state = &snapshot.state;
    if !state.playing {
        return state.position;
    }
    // A snapshot stamped "in the future" (clock estimate still settling) counts as now.
    let elapsed = (server_now - snapshot.server_time).max(0.0);
    state.position + elapsed / 1000.0 * state.rate
}

/// How a player follows the timeline; [`VIDEO_TUNING`] and [`YOUTUBE_TUNING`] are the
/// browser's own values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncTuning {
    /// Seek when further off than this, in seconds.
    pub seek_threshold: f64,
    /// Start nudging the rate when further off than this.
    pub nudge_start: f64,
    /// Stop nudging (back to the base rate) when within this.
    pub nudge_stop: f64,
    /// Rate change per second of drift, as a fraction of the base rate.
    pub gain: f64,
    /// Largest rate change, as a fraction of the base rate.
    pub max_nudge: f64,
    /// When paused, seek again if further off than this.
    pub paused_tolerance: f64,
    /// False for players that only take a few fixed rates (YouTube): seek only.
    pub fine_rate: bool,
    /// No second seek within this many ms of a seek (unless the state changed).
    pub seek_cooldown: f64,
    /// After a seek that landed further off than this, seek again (players without
    /// nudging).
    pub settle_threshold: f64,
    /// Most such extra seeks after one seek; 0 turns them off.
    pub max_settle_seeks: u32,
    /// First guess of the time from a seek to playback running again, in seconds.
    pub initial_seek_latency: f64,
    pub max_seek_latency: f64,
    /// How far one measurement moves the latency estimate (0..=1): the browser's players
    /// take half a step; a player that only seeks takes the whole step, as a seek that
    /// landed off is only mended by the next seek.
    pub latency_learning: f64,
}

/// A player with a fine rate that changes without a stall (`<video>`).
pub const VIDEO_TUNING: SyncTuning = SyncTuning {
    seek_threshold: 0.4,
    nudge_start: 0.04,
    nudge_stop: 0.02,
    gain: 0.5,
    max_nudge: 0.1,
    paused_tolerance: 0.01,
    fine_rate: true,
    seek_cooldown: 1000.0,
    // Nudging takes care of where a seek lands.
    settle_threshold: 0.4,
    max_settle_seeks: 0,
    initial_seek_latency: 0.05,
    max_seek_latency: 1.5,
    latency_learning: 0.5,
};

/// The YouTube IFrame player: a few fixed rates, slower seeks.
pub const YOUTUBE_TUNING: SyncTuning = SyncTuning {
    seek_threshold: 0.5,
    paused_tolerance: 0.05,
    fine_rate: false,
    seek_cooldown: 2500.0,
    settle_threshold: 0.1,
    max_settle_seeks: 3,
    initial_seek_latency: 0.3,
    max_seek_latency: 3.0,
    ..VIDEO_TUNING
};

/// The kiosk's GStreamer player: accurate seeks that land in 10-40 ms, but rate changes
/// that stall like a seek (playbin3 in GStreamer 1.22 refuses instant rate changes), so
/// nudging would fall behind with every step. It is held on the timeline by seeks
/// alone: after each seek it seeks again, with the latency it has just measured, until
/// it lands within 15 ms (at most five times, 300 ms apart; a seek while playing a 720p
/// file decodes from the last keyframe and can take 150 ms, so each seek learns the
/// whole latency it saw); once there it runs on the
/// same clock as the timeline and only a drift past 50 ms calls for another seek.
pub const NATIVE_TUNING: SyncTuning = SyncTuning {
    seek_threshold: 0.05,
    nudge_stop: 0.015,
    fine_rate: false,
    seek_cooldown: 300.0,
    settle_threshold: 0.015,
    max_settle_seeks: 5,
    initial_seek_latency: 0.02,
    max_seek_latency: 1.0,
    latency_learning: 1.0,
    ..VIDEO_TUNING
};

/// Where a player stands against the timeline, for a status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncStatus {
    Loading,
    Seeking,
    Buffering,
    InSync,
    Correcting,
    Paused,
    Ended,
}

impl SyncStatus {
    /// The browser's word for it (`in-sync`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Loading => "loading",
            SyncStatus::Seeking => "seeking",
            SyncStatus::Buffering => "buffering",
            SyncStatus::InSync => "in-sync",
            SyncStatus::Correcting => "correcting",
            SyncStatus::Paused => "paused",
            SyncStatus::Ended => "ended",
        }
    }
}

/// What the player must do after one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncDecision {
    pub status: SyncStatus,
    /// Where the player should be now (clamped to the duration), in seconds.
    pub target: f64,
    /// Local minus target in seconds, when it could be measured this time.
    pub drift: Option<f64>,
    /// Seek to this position.
    pub seek: Option<f64>,
    /// Set this rate.
    pub rate: Option<f64>,
    /// `true`: start playing; `false`: pause.
    pub play: Option<bool>,
}

/// The playback rate that removes `drift` (local - target) gradually, bounded.
pub fn nudged_rate(base: f64, drift: f64, tuning: &SyncTuning) -> f64 {
    base * (1.0 - (drift * tuning.gain).clamp(-tuning.max_nudge, tuning.max_nudge))
}

/// Decides, sample by sample, how a player follows the shared timeline. Keeps the few
/// things that need memory: whether a state change is still to be applied, whether the
/// rate is being nudged, and an estimate of how long a seek takes to land.
#[derive(Clone, Debug)]
#[allow(clippy::struct_excessive_bools)] // the browser's controller, field for field
pub struct SyncController {
    tuning: SyncTuning,
    /// Seconds from issuing a seek to playback running again (measured).
    seek_latency: f64,
    force: bool,
    nudging: bool,
    last_seek_at: f64,
    /// The next measured drift tells how good the last seek's latency guess was.
    calibrate: bool,
    /// Since the last seek the player has not been within `settle_threshold`.
    settling: bool,
    /// Extra seeks made since the last regular one.
    settle_seeks: u32,
}

impl Default for SyncController {
    fn default() -> Self {
        SyncController::new(VIDEO_TUNING)
    }
}

impl SyncController {
    pub fn new(tuning: SyncTuning) -> Self {
        SyncController {
            tuning,
            seek_latency: tuning.initial_seek_latency,
            force: true,
            nudging: false,
            last_seek_at: f64::NEG_INFINITY,
            calibrate: false,
            settling: false,
            settle_seeks: 0,
        }
    }

    pub fn tuning(&self) -> &SyncTuning {
        &self.tuning
    }

    /// Seconds from issuing a seek to playback running again, as measured so far.
    pub fn seek_latency(&self) -> f64 {
        self.seek_latency
    }

    /// A new state arrived: the next decision lines the player up exactly.
    pub fn state_changed(&mut self) {
        self.force = true;
    }

    /// What the player sampled as `s` must do to be at `target_now` (seconds, from
    /// [`position_at`]) on the timeline of `state`.
    pub fn decide(
        &mut self,
        state: &WatchState,
        target_now: f64,
        s: &PlayerSample,
    ) -> SyncDecision {
        let t = self.tuning;
        let base = state.rate;
        let known = s.duration.is_finite() && s.duration > 0.0;
        let target = if known {
            target_now.min(s.duration)
        } else {
            target_now
        };
        let mut out = SyncDecision {
            status: SyncStatus::Loading,
            target,
            drift: None,
            seek: None,
            rate: None,
            play: None,
        };
        if !s.ready {
            return out;
        }
        let set_rate = |out: &mut SyncDecision, r: f64| {
            if (s.rate - r).abs() > 1e-9 {
                out.rate = Some(r);
            }
        };

        if !state.playing {
            self.nudging = false;
            self.calibrate = false;
            self.settling = false;
            out.status = SyncStatus::Paused;
            if !s.paused {
                out.play = Some(false);
            }
            set_rate(&mut out, base);
            if s.seeking && !self.force {
                return out;
            }
            let drift = s.time - target;
            out.drift = Some(drift);
            if self.force || drift.abs() > t.paused_tolerance {
                out.seek = Some(target);
                self.last_seek_at = s.now;
            }
            self.force = false;
            return out;
        }

        // Playing, and the shared timeline is at (or past) the end.
        if known && target_now >= s.duration - 0.05 {
            self.force = false;
            self.nudging = false;
            self.calibrate = false;
            self.settling = false;
            out.status = SyncStatus::Ended;
            set_rate(&mut out, base);
            let drift = s.time - target;
            out.drift = Some(if s.ended { 0.0 } else { drift });
            // Let a player that is just behind play out; one far behind jumps to the end.
            if !s.ended && !s.seeking && drift.abs() > t.seek_threshold {
                out.seek = Some(target);
            }
            return out;
        }

        if self.force {
            self.force = false;
            self.nudging = false;
            set_rate(&mut out, base);
            if s.paused || s.ended {
                out.play = Some(true);
            }
            let drift = (!(s.seeking || s.buffering || s.paused)).then_some(s.time - target);
            out.drift = drift;
            if drift.is_none_or(|d| d.abs() > t.nudge_stop) {
                return self.seek_to(out, target, base, s.now, false);
            }
            self.settling = false;
            out.status = SyncStatus::InSync;
            return out;
        }

        if s.paused || s.ended {
            // Should be playing: start again (seeking first if a seek is needed).
            out.play = Some(true);
            out.status = SyncStatus::Buffering;
            let far = s.ended || (s.time - target).abs() > t.seek_threshold;
            if far && !s.seeking && s.now - self.last_seek_at >= t.seek_cooldown {
                return self.seek_to(out, target, base, s.now, false);
            }
            return out;
        }
        if s.seeking {
            out.status = SyncStatus::Seeking;
            return out;
        }
        if s.buffering {
            out.status = SyncStatus::Buffering;
            return out;
        }

        let drift = s.time - target;
        out.drift = Some(drift);
        if self.calibrate {
            self.calibrate = false;
            // drift = (guess - actual latency) * rate: move the guess halfway to the actual.
            if drift.abs() < t.max_seek_latency * base {
                let actual = self.seek_latency - drift / base;
                self.seek_latency = (self.seek_latency
                    + t.latency_learning * (actual - self.seek_latency))
                    .clamp(0.0, t.max_seek_latency);
            }
        }
        let cooled = s.now - self.last_seek_at >= t.seek_cooldown;
        if drift.abs() > t.seek_threshold && cooled {
            self.nudging = false;
            set_rate(&mut out, base);
            return self.seek_to(out, target, base, s.now, false);
        }
        if self.settling {
            if drift.abs() <= t.settle_threshold || self.settle_seeks >= t.max_settle_seeks {
                self.settling = false;
            } else if cooled {
                self.settle_seeks += 1;
                set_rate(&mut out, base);
                return self.seek_to(out, target, base, s.now, true);
            } else {
                out.status = SyncStatus::Correcting;
                set_rate(&mut out, base);
                return out;
            }
        }
        if t.fine_rate {
            let limit = if self.nudging {
                t.nudge_stop
            } else {
                t.nudge_start
            };
            if drift.abs() > limit {
                self.nudging = true;
                out.status = SyncStatus::Correcting;
                set_rate(&mut out, nudged_rate(base, drift, &t));
                return out;
            }
        }
        self.nudging = false;
        out.status = if drift.abs() > t.seek_threshold {
            SyncStatus::Correcting
        } else {
            SyncStatus::InSync
        };
        set_rate(&mut out, base);
        out
    }

    fn seek_to(
        &mut self,
        mut out: SyncDecision,
        target: f64,
        base: f64,
        now: f64,
        settle: bool,
    ) -> SyncDecision {
        out.status = SyncStatus::Seeking;
        out.seek = Some(target + self.seek_latency * base);
        self.last_seek_at = now;
        self.calibrate = true;
        if !settle {
            self.settle_seeks = 0;
        }
        self.settling = self.tuning.max_settle_seeks > 0;
        out
    }
}

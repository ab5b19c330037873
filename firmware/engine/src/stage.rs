//! Which peer the room display shows large ("on stage").
//!
//! In order: a pinned peer (a person chose); else the presenting laptop's screen share
//! (a paired laptop that pressed Present); else the peer sharing its screen (the most
//! recent share wins); else the active speaker; else the first peer to arrive. The active
//! speaker changes only when another peer has spoken above the threshold for
//! `min_speech` and the current speaker has held the stage for `hold`, so the view does
//! not flicker between two people talking over each other. Time is an input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use portal_proto::PeerId;

/// Stage settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageConfig {
    /// Audio level (0.0 silence .. 1.0 full scale) above which a peer is speaking.
    pub speech_level: f32,
    /// How long a peer must speak before it takes the stage.
    pub min_speech: Duration,
    /// How long a speaker keeps the stage before another speaker may take it.
    pub hold: Duration,
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            speech_level: 0.05,
            min_speech: Duration::from_millis(300),
            hold: Duration::from_secs(2),
        }
    }
}

/// Why a peer is on stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageReason {
    Pinned,
    Presenting,
    ScreenShare,
    Speaking,
    First,
}

#[derive(Clone, Debug, Default)]
struct PeerStage {
    seq: u64,
    /// Since when the peer shares its screen (for "most recent share wins").
    screen_since: Option<Instant>,
    /// Since when the peer has been speaking without a pause.
    speaking_since: Option<Instant>,
}

/// The stage decision.
#[derive(Clone, Debug)]
pub struct Stage {
    config: StageConfig,
    peers: BTreeMap<PeerId, PeerStage>,
    seq: u64,
    pinned: Option<PeerId>,
    presenter: Option<PeerId>,
    speaker: Option<(PeerId, Instant)>,
    current: Option<(PeerId, StageReason)>,
}

impl Stage {
    pub fn new(config: StageConfig) -> Self {
        Stage {
            config,
            peers: BTreeMap::new(),
            seq: 0,
            pinned: None,
            presenter: None,
            speaker: None,
            current: None,
        }
    }

    /// Who is on stage and why.
    pub fn current(&self) -> Option<(PeerId, StageReason)> {
        self.current
    }

    pub fn add(&mut self, peer: PeerId) {
        self.seq += 1;
        let seq = self.seq;
        self.peers.entry(peer).or_insert(PeerStage {
            seq,
            ..PeerStage::default()
        });
    }

    pub fn remove(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
        if self.pinned == Some(peer) {
            self.pinned = None;
        }
        if self.speaker.is_some_and(|(p, _)| p == peer) {
            self.speaker = None;
        }
    }

    /// Pins `peer` (or unpins with `None`). Pinning an unknown peer does nothing.
    pub fn pin(&mut self, peer: Option<PeerId>) {
        self.pinned = peer.filter(|p| self.peers.contains_key(p));
    }

    /// The presenting laptop (or nobody): its screen share takes the stage from
    /// everything but a pin, and a pin made before it is dropped (presenting is the
    /// newer choice).
    pub fn set_presenter(&mut self, peer: Option<PeerId>) {
        if peer.is_some() {
            self.pinned = None;
        }
        self.presenter = peer;
    }

    pub fn set_screen(&mut self, now: Instant, peer: PeerId, sharing: bool) {
        if let Some(p) = self.peers.get_mut(&peer) {
            match (sharing, p.screen_since) {
                (true, None) => p.screen_since = Some(now),
                (false, Some(_)) => p.screen_since = None,
                _ => {}
            }
        }
    }

    /// An audio level measurement of `peer` at `now`.
    pub fn audio_level(&mut self, now: Instant, peer: PeerId, level: f32) {
        let threshold = self.config.speech_level;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if level >= threshold {
            p.speaking_since.get_or_insert(now);
        } else {
            p.speaking_since = None;
        }
        let since = p.speaking_since;
        let Some(since) = since else { return };
        if now.duration_since(since) < self.config.min_speech {
            return;
        }
        match self.speaker {
            Some((current, _)) if current == peer => {}
            Some((_, taken)) if now.duration_since(taken) < self.config.hold => {}
            _ => self.speaker = Some((peer, now)),
        }
    }

    /// Recomputes the decision; returns the new one when it changed.
    pub fn update(&mut self) -> Option<Option<(PeerId, StageReason)>> {
        let next = self.decide();
        if next == self.current {
            None
        } else {
            self.current = next;
            Some(next)
        }
    }

    fn decide(&self) -> Option<(PeerId, StageReason)> {
        if let Some(p) = self.pinned {
            return Some((p, StageReason::Pinned));
        }
        if let Some(p) = self
            .presenter
            .filter(|p| self.peers.get(p).is_some_and(|s| s.screen_since.is_some()))
        {
            return Some((p, StageReason::Presenting));
        }
        if let Some((id, _)) = self
            .peers
            .iter()
            .filter_map(|(id, p)| p.screen_since.map(|t| (*id, (t, p.seq))))
            .max_by_key(|(_, key)| *key)
        {
            return Some((id, StageReason::ScreenShare));
        }
        if let Some((id, _)) = self.speaker {
            return Some((id, StageReason::Speaking));
        }
        self.peers
            .iter()
            .min_by_key(|(_, p)| p.seq)
            .map(|(id, _)| (*id, StageReason::First))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: PeerId = PeerId(1);
    const B: PeerId = PeerId(2);
    const C: PeerId = PeerId(3);

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn the_presenters_share_beats_a_newer_share_and_an_older_pin() {
        let t0 = Instant::now();
        let mut s = Stage::new(StageConfig::default());
        s.add(A);
        s.add(B);
        s.add(C);
        s.pin(Some(C));
        s.set_presenter(Some(A));
        assert_eq!(s.update(), Some(Some((A, StageReason::First))));
        s.set_screen(ms(t0, 0), A, true);
        s.set_screen(ms(t0, 10), B, true);
        assert_eq!(s.update(), Some(Some((A, StageReason::Presenting))));
        s.pin(Some(C));
        assert_eq!(s.update(), Some(Some((C, StageReason::Pinned))));
        s.pin(None);
        s.set_presenter(None);
        assert_eq!(s.update(), Some(Some((B, StageReason::ScreenShare))));
    }

    #[test]
    fn first_then_speaker_with_hold_then_screen_then_pin() {
        let t0 = Instant::now();
        let mut s = Stage::new(StageConfig::default());
        assert_eq!(s.update(), None, "empty room, nothing on stage, no change");
        s.add(A);
        s.add(B);
        s.add(C);
        assert_eq!(s.update(), Some(Some((A, StageReason::First))));

        // B speaks: takes the stage after min_speech.
        s.audio_level(ms(t0, 0), B, 0.3);
        s.audio_level(ms(t0, 100), B, 0.3);
        assert_eq!(s.update(), None);
        s.audio_level(ms(t0, 400), B, 0.3);
        assert_eq!(s.update(), Some(Some((B, StageReason::Speaking))));

        // C talks over B at once: B holds the stage for `hold`.
        for t in (500..2400).step_by(100) {
            s.audio_level(ms(t0, t), C, 0.4);
            s.update();
            assert_eq!(s.current(), Some((B, StageReason::Speaking)), "at {t} ms");
        }
        s.audio_level(ms(t0, 2500), C, 0.4);
        assert_eq!(s.update(), Some(Some((C, StageReason::Speaking))));

        s.set_screen(ms(t0, 3000), A, true);
        assert_eq!(s.update(), Some(Some((A, StageReason::ScreenShare))));
        s.set_screen(ms(t0, 3100), B, true);
        assert_eq!(
            s.update(),
            Some(Some((B, StageReason::ScreenShare))),
            "latest share"
        );
        s.pin(Some(C));
        assert_eq!(s.update(), Some(Some((C, StageReason::Pinned))));
        s.remove(C);
        assert_eq!(s.update(), Some(Some((B, StageReason::ScreenShare))));
        s.set_screen(ms(t0, 4000), B, false);
        assert_eq!(s.update(), Some(Some((A, StageReason::ScreenShare))));
    }

    proptest! {
        /// Whatever happens, the stage shows a peer that is in the room (or nobody when
        /// the room is empty), and a pinned peer always wins.
        #[test]
        fn stage_is_always_a_present_peer(ops in proptest::collection::vec((0u8..6, 1u64..5, 0u32..1000), 0..200)) {
            let t0 = Instant::now();
            let mut s = Stage::new(StageConfig::default());
            let mut present = std::collections::BTreeSet::new();
            let mut pinned = None;
            for (i, (op, peer, x)) in ops.into_iter().enumerate() {
                let now = t0 + Duration::from_millis(i as u64 * 50);
                let p = PeerId(peer);
                match op {
                    0 => { s.add(p); present.insert(p); }
                    1 => { s.remove(p); present.remove(&p); if pinned == Some(p) { pinned = None; } }
                    2 => s.audio_level(now, p, x as f32 / 1000.0),
                    3 => s.set_screen(now, p, x % 2 == 0),
                    4 => { s.pin(Some(p)); pinned = present.contains(&p).then_some(p); }
                    _ => { s.pin(None); pinned = None; }
                }
                s.update();
                match s.current() {
                    None => prop_assert!(present.is_empty()),
                    Some((id, reason)) => {
                        prop_assert!(present.contains(&id));
                        if let Some(pin) = pinned {
                            prop_assert_eq!((id, reason), (pin, StageReason::Pinned));
                        }
                    }
                }
            }
        }
    }
}

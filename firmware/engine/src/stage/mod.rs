//! What the room display shows large ("on stage").
//!
//! One rule, in order of what a room came to see:
//! 1. a screen share: the presenting laptop's share (a paired laptop that pressed
//!    Present) first, else the most recent share;
//! 2. the presenter's editor (someone in the room's code editor pressed Present);
//! 3. the watch-together video (the room's watch state has a source);
//! 4. the active speaker's camera;
//! 5. the filmstrip: nobody special, so the first peer to arrive (or nothing at all).
//!
//! A tap pins something else ([`StageContent`]) until the next change of rule or a
//! second tap. "Change of rule" means the rule's own tiers: a share starts or stops, an
//! editor presenter appears or leaves, watching starts or stops, a laptop starts
//! presenting. The active speaker changing is not one: a person pinned a camera to stop
//! following voices. A pin also ends when the pinned thing goes away (its peer left, its
//! share stopped, the video was closed).
//!
//! The active speaker changes only when another peer has spoken above the threshold for
//! `min_speech` and the current speaker has held the stage for `hold`, so the view does
//! not flicker between two people talking over each other. Time is an input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use portal_proto::PeerId;

#[cfg(test)]
mod tests;

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

/// What fills the stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StageContent {
    /// A peer's screen share.
    Screen(PeerId),
    /// A peer's camera.
    Camera(PeerId),
    /// The room's code editor (read-along).
    Editor,
    /// The watch-together video.
    Watch,
    /// Every peer's camera side by side, none large.
    Filmstrip,
}

impl StageContent {
    /// The peer whose screen or camera this is.
    pub fn peer(self) -> Option<PeerId> {
        match self {
            StageContent::Screen(p) | StageContent::Camera(p) => Some(p),
            StageContent::Editor | StageContent::Watch | StageContent::Filmstrip => None,
        }
    }
}

/// Why the stage shows what it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StageReason {
    /// A person tapped it.
    Pinned,
    /// The presenting laptop's screen share.
    Presenting,
    /// The most recent screen share.
    ScreenShare,
    /// Someone presents in the room's code editor.
    Editor,
    /// The room watches a video together.
    Watching,
    /// The active speaker.
    Speaking,
    /// Nobody special: the first peer to arrive.
    First,
    /// Nobody in the room.
    Empty,
}

/// The stage decision: what, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StageChoice {
    pub content: StageContent,
    pub reason: StageReason,
}

impl StageChoice {
    /// An empty room's stage.
    pub const EMPTY: StageChoice = StageChoice {
        content: StageContent::Filmstrip,
        reason: StageReason::Empty,
    };
}

#[derive(Clone, Debug, Default)]
struct PeerStage {
    seq: u64,
    /// Since when the peer shares its screen (for "most recent share wins").
    screen_since: Option<Instant>,
    /// Since when the peer has been speaking without a pause.
    speaking_since: Option<Instant>,
}

/// The stage decision, fed with what happens in the room.
#[derive(Clone, Debug)]
pub struct Stage {
    config: StageConfig,
    peers: BTreeMap<PeerId, PeerStage>,
    seq: u64,
    pinned: Option<StageContent>,
    presenter: Option<PeerId>,
    editor_presenter: Option<String>,
    watching: bool,
    speaker: Option<(PeerId, Instant)>,
    current: StageChoice,
}

impl Stage {
    pub fn new(config: StageConfig) -> Self {
        Stage {
            config,
            peers: BTreeMap::new(),
            seq: 0,
            pinned: None,
            presenter: None,
            editor_presenter: None,
            watching: false,
            speaker: None,
            current: StageChoice::EMPTY,
        }
    }

    /// What is on stage and why, as of the last [`Stage::update`].
    pub fn current(&self) -> StageChoice {
        self.current
    }

    /// What a person pinned, while the pin holds.
    pub fn pinned(&self) -> Option<StageContent> {
        self.pinned
    }

    /// Who presents in the room's code editor.
    pub fn editor_presenter(&self) -> Option<&str> {
        self.editor_presenter.as_deref()
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
        let Some(gone) = self.peers.remove(&peer) else {
            return;
        };
        // Its share stops with it: that changes the rule.
        if gone.screen_since.is_some() || self.pinned.and_then(StageContent::peer) == Some(peer) {
            self.pinned = None;
        }
        if self.speaker.is_some_and(|(p, _)| p == peer) {
            self.speaker = None;
        }
    }

    /// Pins `content` (or unpins with `None`). Pinning what is not there (a peer not in
    /// the room, a share that is not on, a video nobody watches) does nothing.
    pub fn pin(&mut self, content: Option<StageContent>) {
        match content {
            None => self.pinned = None,
            Some(c) if self.available(c) => self.pinned = Some(c),
            Some(c) => tracing::debug!(?c, "not pinning what is not there"),
        }
    }

    /// A tap on `content`: pins it, or unpins it when it is the pin already.
    pub fn tap(&mut self, content: StageContent) {
        if self.pinned == Some(content) {
            self.pinned = None;
        } else {
            self.pin(Some(content));
        }
    }

    /// The presenting laptop (or nobody): its screen share goes first. A laptop starting
    /// to present changes the rule, so a pin made before it is dropped.
    pub fn set_presenter(&mut self, peer: Option<PeerId>) {
        if peer.is_some() && peer != self.presenter {
            self.pinned = None;
        }
        self.presenter = peer;
    }

    pub fn set_screen(&mut self, now: Instant, peer: PeerId, sharing: bool) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let changed = match (sharing, p.screen_since) {
            (true, None) => {
                p.screen_since = Some(now);
                true
            }
            (false, Some(_)) => {
                p.screen_since = None;
                true
            }
            _ => false,
        };
        if changed {
            self.pinned = None;
        }
    }

    /// Who presents in the room's code editor, by name (`None`: nobody). A presenter
    /// appearing or leaving changes the rule; another one taking over does not.
    pub fn set_editor_presenter(&mut self, name: Option<String>) {
        if name.is_some() != self.editor_presenter.is_some() {
            self.pinned = None;
        }
        self.editor_presenter = name;
    }

    /// Whether the room watches a video (its watch state has a source, playing or
    /// paused).
    pub fn set_watching(&mut self, watching: bool) {
        if watching != self.watching {
            self.pinned = None;
        }
        self.watching = watching;
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
    pub fn update(&mut self) -> Option<StageChoice> {
        let next = self.decide();
        if next == self.current {
            None
        } else {
            self.current = next;
            Some(next)
        }
    }

    /// Whether `content` can be shown now.
    fn available(&self, content: StageContent) -> bool {
        match content {
            StageContent::Screen(p) => self.peers.get(&p).is_some_and(|s| s.screen_since.is_some()),
            StageContent::Camera(p) => self.peers.contains_key(&p),
            StageContent::Watch => self.watching,
            // The room's document is always there; with no presenter the editor view
            // follows the latest edit.
            StageContent::Editor | StageContent::Filmstrip => true,
        }
    }

    fn decide(&self) -> StageChoice {
        let choice = |content, reason| StageChoice { content, reason };
        if let Some(c) = self.pinned {
            return choice(c, StageReason::Pinned);
        }
        if let Some(p) = self
            .presenter
            .filter(|p| self.available(StageContent::Screen(*p)))
        {
            return choice(StageContent::Screen(p), StageReason::Presenting);
        }
        if let Some((id, _)) = self
            .peers
            .iter()
            .filter_map(|(id, p)| p.screen_since.map(|t| (*id, (t, p.seq))))
            .max_by_key(|(_, key)| *key)
        {
            return choice(StageContent::Screen(id), StageReason::ScreenShare);
        }
        if self.editor_presenter.is_some() {
            return choice(StageContent::Editor, StageReason::Editor);
        }
        if self.watching {
            return choice(StageContent::Watch, StageReason::Watching);
        }
        if let Some((id, _)) = self.speaker {
            return choice(StageContent::Camera(id), StageReason::Speaking);
        }
        self.peers
            .iter()
            .min_by_key(|(_, p)| p.seq)
            .map_or(StageChoice::EMPTY, |(id, _)| {
                choice(StageContent::Camera(*id), StageReason::First)
            })
    }
}

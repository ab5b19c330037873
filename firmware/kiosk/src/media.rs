//! The kiosk's media side, shared by every link of a call: the one sender (camera and
//! microphone, encoded once for every peer), the speaker, the board's facts, and the
//! gates that mute and camera-off close. The engine decides the gates' state
//! (`Output::LocalMedia`); the session sets them and the links read them per sample.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use anyhow::Context;
use portal_board::{BoardFacts, Sink};
use portal_media::{Sender, SenderConfig};

use crate::config::{Config, Devices};

/// The media side every link shares.
#[derive(Clone, Debug)]
pub(crate) struct Media {
    pub sender: Sender,
    pub speaker: Sink,
    pub facts: BoardFacts,
    /// Whether the microphone and the camera go out (mute and camera off).
    pub gates: Gates,
}

/// Mute and camera-off: samples of a closed gate are not handed to any peer.
#[derive(Clone, Debug)]
pub(crate) struct Gates {
    pub audio: Arc<AtomicBool>,
    pub video: Arc<AtomicBool>,
    /// The speaker's volume (0 to 1, as `f32` bits) for every peer's audio.
    pub volume: Arc<AtomicU32>,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            audio: Arc::new(AtomicBool::new(true)),
            video: Arc::new(AtomicBool::new(true)),
            volume: Arc::new(AtomicU32::new(1.0f32.to_bits())),
        }
    }
}

impl Gates {
    /// Opens or closes the gates as the engine says.
    pub(crate) fn set(&self, state: portal_engine::MediaState) {
        self.audio.store(state.audio, Ordering::Relaxed);
        self.video.store(state.video, Ordering::Relaxed);
    }

    /// The volume new audio receivers start at.
    pub(crate) fn volume(&self) -> f32 {
        f32::from_bits(self.volume.load(Ordering::Relaxed))
    }
}

impl Media {
    /// Sets the volume for the receivers made from now on (the links set their own).
    pub(crate) fn set_volume(&self, volume: f32) {
        self.gates
            .volume
            .store(volume.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }
}

/// How links build their peer connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NetSettings {
    pub udp_ports: Option<(u16, u16)>,
    pub ice_timeouts: Option<portal_net::IceTimeouts>,
    /// The congestion controller's bounds (the encoder's too).
    pub bitrate: portal_engine::BitrateConfig,
}

impl NetSettings {
    pub(crate) fn from_config(config: &Config) -> Self {
        NetSettings {
            udp_ports: config.udp_ports,
            ice_timeouts: config.ice_timeouts,
            bitrate: config.bitrate,
        }
    }
}

/// Loads the media plugins a call needs (see [`portal_media::preload`]), so the first
/// call does not wait for them; returns once they are loaded.
pub(crate) fn preload(facts: &BoardFacts) {
    let started = std::time::Instant::now();
    let loaded = portal_media::preload(facts);
    tracing::info!(loaded, took = ?started.elapsed(), "media plugins loaded");
}

/// [`preload`] on a thread of its own.
pub(crate) fn preload_in_background(board: &dyn portal_board::Board) {
    let facts = board.facts();
    let spawned = std::thread::Builder::new()
        .name("media-preload".into())
        .spawn(move || preload(&facts));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no thread to preload media plugins");
    }
}

/// Opens the chosen devices (`None`: the board's default) and starts the one sender every
/// peer shares.
pub(crate) fn open(
    config: &Config,
    board: &dyn portal_board::Board,
    chosen: &Devices,
) -> anyhow::Result<Media> {
    let facts = board.facts();
    let camera = board
        .camera(chosen.camera.as_deref())
        .context("no camera")?;
    let microphone = board
        .microphone(chosen.microphone.as_deref())
        .context("no microphone")?;
    let speaker = board
        .speaker(chosen.speaker.as_deref())
        .context("no speaker")?;
    tracing::info!(
        board = %config.board,
        camera = %camera.device.id,
        microphone = %microphone.device.id,
        speaker = %speaker.device.id,
        "devices opened"
    );
    let mut sender_config = SenderConfig::new(camera, microphone, facts.clone());
    sender_config.width = config.width;
    sender_config.height = config.height;
    sender_config.fps = config.fps;
    sender_config.video_kbps = config.bitrate.start_kbps;
    sender_config.min_video_kbps = config.bitrate.min_kbps;
    sender_config.max_video_kbps = config.bitrate.max_kbps;
    let sender = Sender::new(sender_config).context("starting the media sender")?;
    Ok(Media {
        sender,
        speaker,
        facts,
        gates: Gates::default(),
    })
}

//! The call on the touch screen: the engine's events turned into `portal-ui` updates.
//!
//! The session hands every [`Event`] to [`CallView::on_event`], which sends the UI what
//! that event changed: a chat line is appended, a peer coming or going or changing its
//! media rebuilds the tiles, a transfer event rebuilds the files list and the consent
//! prompt, our own mute and camera state and the call's status go straight through.
//! Counters that move without events (a transfer's progress, a link's packet loss, shown
//! as its quality) are refreshed by [`CallView::refresh_counters`] once a second; only
//! what changed is sent. Decoded video reaches the tiles by [`CallView::frame_route`],
//! not through here.

use std::collections::HashMap;
use std::sync::Arc;

use portal_engine::{CallState, Engine, Event, FileKey, StageContent, StageReason, TransferState};
use portal_proto::PeerId;
use portal_proto::channel::TransferSide;
use portal_proto::media::{ConnectionState, Slot};
use portal_ui::{
    CallStatus, ChatLine, FilePrompt, FileState, FileView, PeerView, Picture, Quality, StageView,
    TileKey, UiHandle, Update,
};

use crate::link::{FrameRoute, Link};

/// What the view last sent, so unchanged views are not sent again.
pub(crate) struct CallView {
    ui: UiHandle,
    peers: Vec<PeerView>,
    prompt: Option<FilePrompt>,
    files: Vec<FileView>,
}

impl CallView {
    pub(crate) fn new(ui: UiHandle) -> Self {
        CallView {
            ui,
            peers: Vec::new(),
            prompt: None,
            files: Vec::new(),
        }
    }

    /// Decoded frames of `peer` to its camera or screen tile (one copy, into the UI's
    /// pixel buffer; a frame the UI has not shown yet is replaced, not queued).
    pub(crate) fn frame_route(&self, peer: PeerId) -> FrameRoute {
        let ui = self.ui.clone();
        Arc::new(move |slot, frame| {
            let key = match slot {
                Slot::Screen => TileKey::Screen(peer.0),
                _ => TileKey::Camera(peer.0),
            };
            if let Err(e) = push(&ui, key, frame) {
                tracing::debug!(%peer, error = %e, "frame not shown");
            }
        })
    }

    /// The read-along editor (`None`: nothing to read).
    pub(crate) fn editor(&mut self, view: Option<portal_ui::EditorView>) {
        self.ui.apply(Update::Editor(view));
    }

    /// Whether the room watches a video (the stage may show it; a tab offers it).
    pub(crate) fn watch_available(&mut self, available: bool) {
        self.ui.apply(Update::WatchAvailable(available));
    }

    /// The speaker's volume, 0 to 1.
    pub(crate) fn volume(&self, volume: f32) {
        self.ui.apply(Update::Volume(volume));
    }

    /// Sends what `event` changed.
    pub(crate) fn on_event(
        &mut self,
        engine: &Engine,
        links: &HashMap<PeerId, Link>,
        event: &Event,
    ) {
        match event {
            Event::Call(state) => self.ui.apply(Update::Status(call_status(state))),
            Event::Chat(entry) => self.ui.apply(Update::ChatMessage(ChatLine {
                from: entry.from.clone(),
                text: entry.text.clone(),
                mine: entry.peer.is_none(),
            })),
            Event::LocalMedia(state) => {
                self.ui.apply(Update::MicMuted(!state.audio));
                self.ui.apply(Update::CameraOff(!state.video));
            }
            Event::Stage(choice) => {
                self.ui.apply(Update::Stage(match choice.content {
                    StageContent::Screen(_) | StageContent::Camera(_) => StageView::Peer,
                    StageContent::Editor => StageView::Editor,
                    StageContent::Watch => StageView::Watch,
                    StageContent::Filmstrip => StageView::Filmstrip,
                }));
                self.show_peers(engine, links);
            }
            Event::PeerAdded(_)
            | Event::PeerRemoved(_)
            | Event::PeerMedia { .. }
            | Event::Joined { .. } => {
                self.show_peers(engine, links);
                // Names in the files list follow the peers.
                self.show_files(engine);
            }
            Event::Transfer {
                side: TransferSide::Receiver,
                ..
            } => self.show_files(engine),
            _ => {}
        }
    }

    /// Counters without events: link quality and transfer progress.
    pub(crate) fn refresh_counters(&mut self, engine: &Engine, links: &HashMap<PeerId, Link>) {
        self.show_peers(engine, links);
        self.show_files(engine);
    }

    /// Shows a received image full screen.
    pub(crate) fn open_image(&mut self, path: &std::path::Path) {
        match decode_image(path) {
            Ok(picture) => self.ui.apply(Update::Image(Some(picture))),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot show the image"),
        }
    }

    fn show_peers(&mut self, engine: &Engine, links: &HashMap<PeerId, Link>) {
        let stage = engine.stage();
        let peers: Vec<PeerView> = engine
            .peers()
            .into_iter()
            .map(|p| {
                let media = engine.peer_media(p.id).unwrap_or_default();
                let lost = links
                    .get(&p.id)
                    .and_then(|l| l.shared.receiver_stats(Slot::Camera))
                    .map(|(_, s)| (s.packets_lost, s.packets_in));
                PeerView {
                    id: p.id.0,
                    name: p.name.clone(),
                    muted: !media.audio,
                    camera_off: !media.video,
                    quality: quality(engine.peer_connection(p.id), lost),
                    on_stage: stage.content.peer() == Some(p.id),
                    pinned: stage.content.peer() == Some(p.id)
                        && stage.reason == StageReason::Pinned,
                    has_screen: media.screen,
                }
            })
            .collect();
        if peers != self.peers {
            self.ui.apply(Update::Peers(peers.clone()));
            self.peers = peers;
        }
    }

    fn show_files(&mut self, engine: &Engine) {
        let names: HashMap<u64, String> = engine
            .peers()
            .into_iter()
            .map(|p| (p.id.0, p.name.clone()))
            .collect();
        let name = |peer: &PeerId| names.get(&peer.0).cloned().unwrap_or_default();
        let incoming: Vec<(PeerId, &portal_engine::Transfer)> = engine
            .transfers()
            .into_iter()
            .filter(|(_, t)| t.side == TransferSide::Receiver)
            .collect();
        let prompt = incoming
            .iter()
            .find(|(_, t)| t.state == TransferState::Offered)
            .map(|(peer, t)| FilePrompt {
                id: FileKey::new(*peer, t.id).to_string(),
                name: t.offered_name.clone(),
                size: t.size,
                from: name(peer),
            });
        if prompt != self.prompt {
            self.ui.apply(Update::FilePrompt(prompt.clone()));
            self.prompt = prompt;
        }
        let files: Vec<FileView> = incoming
            .iter()
            .filter(|(_, t)| t.state != TransferState::Offered)
            .map(|(peer, t)| FileView {
                id: FileKey::new(*peer, t.id).to_string(),
                name: t
                    .stored_name
                    .clone()
                    .unwrap_or_else(|| t.offered_name.clone()),
                size: t.size,
                from: name(peer),
                progress: if t.size == 0 {
                    1.0
                } else {
                    (t.transferred as f64 / t.size as f64) as f32
                },
                state: file_state(&t.state),
                is_image: t.mime.starts_with("image/png")
                    || t.offered_name.to_ascii_lowercase().ends_with(".png"),
            })
            .collect();
        if files != self.files {
            self.ui.apply(Update::Files(files.clone()));
            self.files = files;
        }
    }
}

fn call_status(state: &CallState) -> CallStatus {
    match state {
        CallState::Connecting => CallStatus::Connecting,
        CallState::Joined => CallStatus::Connected,
        CallState::Reconnecting { attempt } => CallStatus::Reconnecting { attempt: *attempt },
        CallState::Failed { .. } => CallStatus::Offline,
        _ => CallStatus::Idle,
    }
}

fn quality(state: Option<ConnectionState>, lost: Option<(u64, u64)>) -> Quality {
    match state {
        Some(ConnectionState::Connected) => match lost {
            Some((lost, total)) if total > 100 && lost * 50 > total => Quality::Fair,
            _ => Quality::Good,
        },
        Some(ConnectionState::Connecting | ConnectionState::Disconnected) => Quality::Fair,
        Some(ConnectionState::Failed) => Quality::Poor,
        _ => Quality::Unknown,
    }
}

fn file_state(state: &TransferState) -> FileState {
    match state {
        TransferState::Offered => FileState::Waiting,
        TransferState::Complete => FileState::Done,
        TransferState::Declined(_) => FileState::Declined,
        TransferState::Failed(_) | TransferState::Cancelled { .. } => FileState::Failed,
        _ => FileState::Receiving,
    }
}

/// A received PNG as RGBA for the full-screen viewer (PNG is what the kiosk's own
/// snapshots and most screenshots are; other formats show as files).
fn decode_image(path: &std::path::Path) -> anyhow::Result<Picture> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut reader = decoder.read_info()?;
    let info = reader.info();
    if u64::from(info.width) * u64::from(info.height) > 40_000_000 {
        anyhow::bail!("{}x{} is too large to show", info.width, info.height);
    }
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let frame = reader.next_frame(&mut buf)?;
    let bytes = &buf[..frame.buffer_size()];
    let rgba: Vec<u8> = match frame.color_type {
        png::ColorType::Rgba => bytes.to_vec(),
        png::ColorType::Rgb => bytes
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::Grayscale => bytes.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        other => anyhow::bail!("PNG colour type {other:?} is not shown"),
    };
    Ok(Picture {
        title: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        width: frame.width,
        height: frame.height,
        rgba,
    })
}

/// The watch-together video's decoded frames to the stage's video tile.
pub(crate) fn watch_frames(ui: UiHandle) -> portal_media::FrameSink {
    Box::new(move |frame: &portal_media::VideoFrame| {
        if let Err(e) = push(&ui, TileKey::Watch, frame) {
            tracing::debug!(error = %e, "video frame not shown");
        }
    })
}

/// One frame into a tile's pixel buffer (rows packed when the decoder pads them).
fn push(
    ui: &UiHandle,
    key: TileKey,
    frame: &portal_media::VideoFrame,
) -> Result<(), portal_ui::FrameError> {
    let row = frame.width as usize * 4;
    if frame.stride as usize == row {
        ui.push_frame(key, frame.width, frame.height, &frame.data)
    } else {
        let packed: Vec<u8> = frame
            .data
            .chunks(frame.stride as usize)
            .flat_map(|r| &r[..row.min(r.len())])
            .copied()
            .collect();
        ui.push_frame(key, frame.width, frame.height, &packed)
    }
}

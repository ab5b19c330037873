//! The touch screen: `portal-ui` driven from the kiosk's tokio side.
//!
//! Slint owns the main thread ([`crate::main`] runs its event loop there); everything here
//! runs on tokio and talks to the window only through a [`UiHandle`] (updates and video
//! frames, dropped when the window is slower than the decoders). Taps arrive as
//! [`UiEvent`]s on a channel.
//!
//! - [`run`] is the home screen's controller: the configured rooms, the clock, the
//!   settings; tapping a room (or a code) starts a [`crate::session`] for it, Leave stops
//!   it. Call events go to the running session as [`Request::Ui`].
//! - [`CallView`] lives in the session and turns the engine's state into the UI's view
//!   types, sending only what changed; its [`CallView::frame_route`] feeds each peer's
//!   decoded video to its tile.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use portal_engine::{ConnectionState, Engine, StageReason, TransferState};
use portal_net::Slot;
use portal_proto::PeerId;
use portal_proto::channel::TransferSide;
use portal_ui::{
    CallStatus, ChatLine, FilePrompt, FileState, FileView, Page, PeerView, Picture, Quality,
    TileKey, UiEvent, UiHandle, Update,
};
use tokio::sync::{mpsc, oneshot};

use crate::link::{FrameRoute, LinkShared};
use crate::session::{Gates, Request};

/// What the session last showed, so unchanged views are not sent again.
pub(crate) struct CallView {
    ui: UiHandle,
    peers: Vec<PeerView>,
    chat: Vec<ChatLine>,
    prompt: Option<FilePrompt>,
    files: Vec<FileView>,
    status: Option<CallStatus>,
    muted: Option<bool>,
    camera_off: Option<bool>,
}

impl CallView {
    pub(crate) fn new(ui: UiHandle) -> Self {
        CallView {
            ui,
            peers: Vec::new(),
            chat: Vec::new(),
            prompt: None,
            files: Vec::new(),
            status: None,
            muted: None,
            camera_off: None,
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
            let row = frame.width as usize * 4;
            let result = if frame.stride as usize == row {
                ui.push_frame(key, frame.width, frame.height, &frame.data)
            } else {
                let packed: Vec<u8> = frame
                    .data
                    .chunks(frame.stride as usize)
                    .flat_map(|r| &r[..row.min(r.len())])
                    .copied()
                    .collect();
                ui.push_frame(key, frame.width, frame.height, &packed)
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "frame not shown");
            }
        })
    }

    /// Shows a received image full screen.
    pub(crate) fn open_file(&mut self, id: &str, stored: &HashMap<(PeerId, u32), PathBuf>) {
        let Some((Some(peer), n)) = crate::status::parse_file_id(id) else {
            return;
        };
        let Some(path) = stored.get(&(peer, n)) else {
            return;
        };
        match decode_image(path) {
            Ok(picture) => self.ui.apply(Update::Image(Some(picture))),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot show the image"),
        }
    }

    /// Sends what changed since the last call.
    pub(crate) fn show(
        &mut self,
        engine: &Engine,
        status: CallStatus,
        link: impl Fn(PeerId) -> Option<Arc<LinkShared>>,
        gates: &Gates,
    ) {
        if self.status != Some(status) {
            self.status = Some(status);
            self.ui.apply(Update::Status(status));
        }
        let muted = !gates.audio.load(Ordering::Relaxed);
        if self.muted != Some(muted) {
            self.muted = Some(muted);
            self.ui.apply(Update::MicMuted(muted));
        }
        let camera_off = !gates.video.load(Ordering::Relaxed);
        if self.camera_off != Some(camera_off) {
            self.camera_off = Some(camera_off);
            self.ui.apply(Update::CameraOff(camera_off));
        }
        let stage = engine.stage();
        let peers: Vec<PeerView> = engine
            .peers()
            .into_iter()
            .map(|p| {
                let media = engine.peer_media(p.id).unwrap_or_default();
                let shared = link(p.id);
                let lost = shared
                    .as_ref()
                    .and_then(|l| l.receiver_stats(Slot::Camera))
                    .map(|(_, s)| (s.packets_lost, s.packets_in));
                PeerView {
                    id: p.id.0,
                    name: p.name.clone(),
                    muted: !media.audio,
                    camera_off: !media.video,
                    quality: quality(engine.peer_connection(p.id), lost),
                    on_stage: stage.is_some_and(|(s, _)| s == p.id),
                    pinned: stage == Some((p.id, StageReason::Pinned)),
                    has_screen: media.screen,
                }
            })
            .collect();
        if peers != self.peers {
            self.ui.apply(Update::Peers(peers.clone()));
            self.peers = peers;
        }
        let chat: Vec<ChatLine> = engine
            .chat()
            .map(|c| ChatLine {
                from: c.from.clone(),
                text: c.text.clone(),
                mine: c.peer.is_none(),
            })
            .collect();
        if chat != self.chat {
            self.ui.apply(Update::Chat(chat.clone()));
            self.chat = chat;
        }
        // `self.peers` is the room as just computed (sent or unchanged).
        let names: HashMap<u64, &str> =
            self.peers.iter().map(|p| (p.id, p.name.as_str())).collect();
        let name = |peer: &PeerId| names.get(&peer.0).copied().unwrap_or_default().to_owned();
        let incoming: Vec<(PeerId, &portal_engine::Transfer)> = engine
            .transfers()
            .into_iter()
            .filter(|(_, t)| t.side == TransferSide::Receiver)
            .collect();
        let prompt = incoming
            .iter()
            .find(|(_, t)| t.state == TransferState::Offered)
            .map(|(peer, t)| FilePrompt {
                id: format!("{peer}-{}", t.id),
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
                id: format!("{peer}-{}", t.id),
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

/// A running call: its requests channel and how to end it.
struct Call {
    room: String,
    requests: mpsc::Sender<Request>,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

/// What [`run`] needs to start calls.
pub(crate) struct Display {
    pub ui: UiHandle,
    pub events: mpsc::UnboundedReceiver<UiEvent>,
    /// Requests of the status endpoint (forwarded to the call, answered at home).
    pub requests: mpsc::Receiver<Request>,
    pub rooms: Vec<String>,
    /// Join this room at once (the command line's `--room`).
    pub join: Option<String>,
}

/// Starts a session in `room`; returns its requests channel, the stop switch and its task.
pub(crate) type StartCall = Box<
    dyn Fn(String, mpsc::Receiver<Request>, oneshot::Receiver<()>) -> tokio::task::JoinHandle<()>
        + Send,
>;

/// Takes the device choices of the settings page; `false` for any other event.
pub(crate) type OnDevice = Box<dyn FnMut(&UiEvent) -> bool + Send>;

/// The home screen's controller: runs until the window closes (its event channel ends)
/// or `shutdown` resolves, and leaves the call then.
pub(crate) async fn run(
    mut display: Display,
    start: StartCall,
    device: portal_ui::DeviceInfo,
    mut on_device: OnDevice,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let ui = display.ui.clone();
    ui.apply(Update::Device(device));
    ui.apply(Update::Rooms(
        display
            .rooms
            .iter()
            .map(|r| portal_ui::RoomView {
                id: r.clone(),
                name: r.clone(),
                detail: String::new(),
            })
            .collect(),
    ));
    ui.apply(Update::Status(CallStatus::Idle));
    let mut call: Option<Call> = None;
    if let Some(room) = display.join.take() {
        call = Some(begin(&ui, &start, room));
    }
    let mut clock = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut shown_clock = String::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = display.events.recv() => {
                let Some(event) = event else { break };
                if on_device(&event) {
                    continue;
                }
                match event {
                    UiEvent::JoinRoom(room) | UiEvent::JoinByCode(room) => {
                        if let Some(old) = call.take() {
                            end(old).await;
                        }
                        call = Some(begin(&ui, &start, room));
                    }
                    UiEvent::Leave => {
                        if let Some(old) = call.take() {
                            end(old).await;
                        }
                        ui.apply(Update::Call(None));
                        ui.apply(Update::Status(CallStatus::Idle));
                        ui.apply(Update::Peers(Vec::new()));
                        ui.apply(Update::ShowPage(Page::Home));
                    }
                    UiEvent::CloseImage => ui.apply(Update::Image(None)),
                    other => {
                        if let Some(c) = &call {
                            if c.requests.send(Request::Ui(other)).await.is_err() {
                                tracing::debug!("the call has ended");
                            }
                        } else {
                            tracing::debug!(?other, "not in a call");
                        }
                    }
                }
            }
            Some(request) = display.requests.recv() => match &call {
                Some(c) => {
                    let _ = c.requests.send(request).await;
                }
                None => answer_at_home(request),
            },
            _ = clock.tick() => {
                let now = chrono::Local::now().format("%H:%M").to_string();
                if now != shown_clock {
                    ui.apply(Update::Clock(now.clone()));
                    shown_clock = now;
                }
            }
        }
        if call.as_ref().is_some_and(|c| c.done.is_finished()) {
            call = None;
        }
    }
    if let Some(old) = call.take() {
        end(old).await;
    }
}

fn begin(ui: &UiHandle, start: &StartCall, room: String) -> Call {
    tracing::info!(room, "joining from the touch screen");
    let (requests, request_rx) = mpsc::channel(64);
    let (stop, stop_rx) = oneshot::channel();
    let done = start(room.clone(), request_rx, stop_rx);
    ui.apply(Update::Call(Some(room.clone())));
    ui.apply(Update::Status(CallStatus::Connecting));
    ui.apply(Update::ShowPage(Page::Call));
    Call {
        room,
        requests,
        stop,
        done,
    }
}

async fn end(call: Call) {
    tracing::info!(room = call.room, "leaving from the touch screen");
    let _ = call.stop.send(());
    let _ = call.done.await;
}

fn answer_at_home(request: Request) {
    let not_in_call = || "not in a call".to_owned();
    match request {
        Request::Status(reply) => {
            let _ = reply.send(serde_json::json!({
                "room": null,
                "connected": false,
                "peers": [],
                "chat": [],
                "files": [],
            }));
        }
        Request::Chat { reply, .. } | Request::Decide { reply, .. } => {
            let _ = reply.send(Err(not_in_call()));
        }
        Request::Snapshot { reply, .. } => {
            let _ = reply.send(Err(not_in_call()));
        }
        Request::SendFile { reply, .. } => {
            let _ = reply.send(Err(not_in_call()));
        }
        Request::Ui(_) => {}
    }
}

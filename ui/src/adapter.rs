//! The thin layer between the `Api` global and the plain view types.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};

use slint::{ComponentHandle, Image, Model, ModelRc, Rgba8Pixel, SharedPixelBuffer, VecModel};

use crate::event::UiEvent;
use crate::frames::{FrameCounters, FrameError, FrameStats, LatestSlot, TileKey, check_rgba};
use crate::generated as g;
use crate::generated::{Api, MainWindow};
use crate::view::{
    CallStatus, ChatLine, FileState, FileView, Page, PeerView, Picture, Quality, Update,
    format_size,
};

type Frame = SharedPixelBuffer<Rgba8Pixel>;

/// The UI could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UiError {
    /// No windowing backend could be set up, or its event loop failed.
    #[error("UI platform: {0}")]
    Platform(#[from] slint::PlatformError),
}

/// State shared by [`Ui`] and every [`UiHandle`].
struct Shared {
    slots: Mutex<HashMap<TileKey, Arc<LatestSlot<Frame>>>>,
    counters: FrameCounters,
    /// Only touched on the UI thread; a mutex so handles can carry it across threads.
    placement: Mutex<Placement>,
}

/// Where each tile sits, and the last frame of every tile (so a peer moving between
/// the stage and the filmstrip keeps its picture).
#[derive(Default)]
struct Placement {
    stage: Option<TileKey>,
    filmstrip: Vec<TileKey>,
    last: HashMap<TileKey, Frame>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn slot(&self, key: TileKey) -> Arc<LatestSlot<Frame>> {
        Arc::clone(
            lock(&self.slots)
                .entry(key)
                .or_insert_with(|| Arc::new(LatestSlot::new())),
        )
    }
}

/// The UI window. Create it, run it and call it on the UI (main) thread only; give other
/// threads a [`UiHandle`].
pub struct Ui {
    window: MainWindow,
    shared: Arc<Shared>,
}

impl fmt::Debug for Ui {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ui")
            .field("frames", &self.shared.counters.get())
            .finish_non_exhaustive()
    }
}

impl Ui {
    /// Creates the window (not shown yet). `on_event` runs on the UI thread for every
    /// [`UiEvent`]; keep it short (forward to a channel).
    pub fn new(on_event: impl Fn(UiEvent) + 'static) -> Result<Self, UiError> {
        let window = MainWindow::new()?;
        connect(
            &window.global::<Api>(),
            &(Rc::new(on_event) as Rc<dyn Fn(UiEvent)>),
        );
        Ok(Self {
            window,
            shared: Arc::new(Shared {
                slots: Mutex::default(),
                counters: FrameCounters::default(),
                placement: Mutex::default(),
            }),
        })
    }

    /// Like [`Ui::new`], with the events going to a channel.
    pub fn with_channel() -> Result<(Self, mpsc::Receiver<UiEvent>), UiError> {
        let (sender, receiver) = mpsc::channel();
        let ui = Self::new(move |event| {
            // A dropped receiver means nobody listens any more; the UI keeps working.
            let _ = sender.send(event);
        })?;
        Ok((ui, receiver))
    }

    /// A handle for other threads.
    pub fn handle(&self) -> UiHandle {
        UiHandle {
            window: self.window.as_weak(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Shows `update` now.
    pub fn apply(&self, update: Update) {
        apply(&self.window, &self.shared, update);
    }

    /// Shows a frame on its tile now (one copy of the pixels).
    pub fn show_frame(
        &self,
        key: TileKey,
        width: u32,
        height: u32,
        rgba: &[u8],
    ) -> Result<(), FrameError> {
        check_rgba(width, height, rgba.len())?;
        let frame = Frame::clone_from_slice(rgba, width, height);
        show_frame(&self.window, &self.shared, key, frame);
        Ok(())
    }

    pub fn frame_stats(&self) -> FrameStats {
        self.shared.counters.get()
    }

    /// Shows the window and runs the event loop until it quits.
    pub fn run(&self) -> Result<(), UiError> {
        self.window.run()?;
        Ok(())
    }

    /// The Slint window, e.g. to size it, show it full screen or take a snapshot.
    pub fn window(&self) -> &slint::Window {
        self.window.window()
    }

    /// The generated component, for `i-slint-backend-testing` lookups.
    #[doc(hidden)]
    pub fn component(&self) -> &MainWindow {
        &self.window
    }
}

/// Sends updates and frames to the UI from any thread. Everything is ignored once the UI
/// is gone; nothing here blocks on the UI thread.
#[derive(Clone)]
pub struct UiHandle {
    window: slint::Weak<MainWindow>,
    shared: Arc<Shared>,
}

impl fmt::Debug for UiHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UiHandle")
            .field("frames", &self.shared.counters.get())
            .finish_non_exhaustive()
    }
}

impl UiHandle {
    /// Shows `update` when the UI thread gets to it.
    pub fn apply(&self, update: Update) {
        let shared = Arc::clone(&self.shared);
        if let Err(error) = self
            .window
            .upgrade_in_event_loop(move |window| apply(&window, &shared, update))
        {
            tracing::debug!(%error, "UI event loop gone; update ignored");
        }
    }

    /// Hands a frame to a tile: the pixels are copied once, here, and the newest frame
    /// per tile wins; a frame the UI had no time for is dropped and counted.
    pub fn push_frame(
        &self,
        key: TileKey,
        width: u32,
        height: u32,
        rgba: &[u8],
    ) -> Result<(), FrameError> {
        check_rgba(width, height, rgba.len())?;
        let frame = Frame::clone_from_slice(rgba, width, height);
        let slot = self.shared.slot(key);
        let offered = slot.offer(frame);
        if offered.replaced {
            self.shared.counters.dropped();
        }
        if offered.schedule {
            let shared = Arc::clone(&self.shared);
            let pending = Arc::clone(&slot);
            let scheduled = self.window.upgrade_in_event_loop(move |window| {
                if let Some(frame) = pending.take() {
                    show_frame(&window, &shared, key, frame);
                }
            });
            if let Err(error) = scheduled {
                tracing::debug!(%error, "UI event loop gone; frame dropped");
                if slot.cancel().is_some() {
                    self.shared.counters.dropped();
                }
            }
        }
        Ok(())
    }

    pub fn frame_stats(&self) -> FrameStats {
        self.shared.counters.get()
    }

    /// Asks the UI event loop to return from [`Ui::run`].
    pub fn quit(&self) {
        if let Err(error) = slint::quit_event_loop() {
            tracing::debug!(%error, "UI event loop gone already");
        }
    }
}

/// Wires every `Api` callback to `on_event`.
fn connect(api: &Api<'_>, on_event: &Rc<dyn Fn(UiEvent)>) {
    let text = |f: fn(String) -> UiEvent| {
        let on_event = Rc::clone(on_event);
        move |text: slint::SharedString| on_event(f(text.into()))
    };
    api.on_join_room(text(UiEvent::JoinRoom));
    api.on_join_by_code(text(UiEvent::JoinByCode));
    api.on_accept_file(text(UiEvent::AcceptFile));
    api.on_decline_file(text(UiEvent::DeclineFile));
    api.on_open_file(text(UiEvent::OpenFile));
    api.on_choose_camera(text(UiEvent::ChooseCamera));
    api.on_choose_microphone(text(UiEvent::ChooseMicrophone));
    api.on_choose_speaker(text(UiEvent::ChooseSpeaker));

    let trimmed = |f: fn(String) -> UiEvent| {
        let on_event = Rc::clone(on_event);
        move |text: slint::SharedString| {
            let text = text.trim();
            if !text.is_empty() {
                on_event(f(text.into()));
            }
        }
    };
    api.on_send_chat(trimmed(UiEvent::SendChat));
    api.on_set_device_name(trimmed(UiEvent::SetDeviceName));
    api.on_set_server(trimmed(UiEvent::SetServer));

    let flag = |f: fn(bool) -> UiEvent| {
        let on_event = Rc::clone(on_event);
        move |value: bool| on_event(f(value))
    };
    api.on_set_mic_muted(flag(UiEvent::SetMicMuted));
    api.on_set_camera_off(flag(UiEvent::SetCameraOff));
    api.on_full_screen_changed(flag(UiEvent::ScreenFullScreen));

    let plain = |event: UiEvent| {
        let on_event = Rc::clone(on_event);
        move || on_event(event.clone())
    };
    api.on_leave(plain(UiEvent::Leave));
    api.on_close_image(plain(UiEvent::CloseImage));
    api.on_dismiss_join_failure(plain(UiEvent::DismissJoinFailure));

    {
        let on_event = Rc::clone(on_event);
        api.on_set_volume(move |volume| on_event(UiEvent::SetVolume(volume.clamp(0.0, 1.0))));
    }
    {
        let on_event = Rc::clone(on_event);
        api.on_pin(move |peer| {
            if peer.is_empty() {
                on_event(UiEvent::Pin(None));
            } else if let Ok(id) = peer.parse() {
                on_event(UiEvent::Pin(Some(id)));
            } else {
                tracing::warn!(%peer, "pin for a tile without a peer id");
            }
        });
    }
    {
        let on_event = Rc::clone(on_event);
        api.on_join_with_password(move |room, password| {
            if !password.is_empty() {
                on_event(UiEvent::JoinWithPassword {
                    room: room.into(),
                    password: password.into(),
                });
            }
        });
    }
    api.on_mask(|text| "•".repeat(text.chars().count()).into());
    api.on_drop_last_character(|text| {
        let mut text = text.to_string();
        text.pop();
        text.into()
    });
}

fn model<T: Clone + 'static>(rows: Vec<T>) -> ModelRc<T> {
    ModelRc::new(VecModel::from(rows))
}

/// Applies one update on the UI thread.
fn apply(window: &MainWindow, shared: &Shared, update: Update) {
    let api = window.global::<Api>();
    match update {
        Update::Clock(text) => api.set_clock(text.into()),
        Update::Device(info) => {
            api.set_device_name(info.name.into());
            api.set_address(info.address.into());
            api.set_version(info.version.into());
        }
        Update::Rooms(rooms) => api.set_rooms(model(
            rooms
                .into_iter()
                .map(|room| g::Room {
                    id: room.id.into(),
                    name: room.name.into(),
                    detail: room.detail.into(),
                })
                .collect(),
        )),
        Update::Status(status) => {
            let attempt = match status {
                CallStatus::Reconnecting { attempt } => i32::try_from(attempt).unwrap_or(i32::MAX),
                _ => 0,
            };
            api.set_reconnect_attempt(attempt);
            api.set_status(match status {
                CallStatus::Idle => g::Status::Idle,
                CallStatus::Connecting => g::Status::Connecting,
                CallStatus::Connected => g::Status::Connected,
                CallStatus::Reconnecting { .. } => g::Status::Reconnecting,
                CallStatus::Offline => g::Status::Offline,
            });
        }
        Update::Call(Some(room)) => {
            api.set_has_join_failure(false);
            api.set_room_name(room.into());
            api.set_in_call(true);
            api.set_page(g::Page::Call);
        }
        Update::Call(None) => {
            api.set_in_call(false);
            api.set_room_name("".into());
            set_peers(&api, shared, &[]);
            api.set_chat(model(Vec::new()));
            api.set_unread_chat(0);
            api.set_has_file_prompt(false);
            api.set_screen_full_screen(false);
            if matches!(api.get_page(), g::Page::Call | g::Page::Chat) {
                api.set_page(g::Page::Home);
            }
        }
        Update::Peers(peers) => set_peers(&api, shared, &peers),
        Update::MicMuted(muted) => api.set_mic_muted(muted),
        Update::CameraOff(off) => api.set_camera_off(off),
        Update::Volume(volume) => api.set_volume(volume.clamp(0.0, 1.0)),
        Update::Chat(lines) => {
            api.set_chat(model(lines.into_iter().map(chat_message).collect()));
        }
        Update::ChatMessage(line) => {
            if !line.mine && api.get_page() != g::Page::Chat {
                api.set_unread_chat(api.get_unread_chat().saturating_add(1));
            }
            let chat = api.get_chat();
            if let Some(rows) = chat.as_any().downcast_ref::<VecModel<g::ChatMessage>>() {
                rows.push(chat_message(line));
            } else {
                let mut rows: Vec<_> = chat.iter().collect();
                rows.push(chat_message(line));
                api.set_chat(model(rows));
            }
        }
        Update::QuickReplies(replies) => {
            api.set_quick_replies(model(replies.into_iter().map(Into::into).collect()));
        }
        Update::FilePrompt(prompt) => {
            if let Some(prompt) = prompt {
                api.set_file_prompt(g::IncomingFile {
                    id: prompt.id.into(),
                    name: prompt.name.into(),
                    size: format_size(prompt.size).into(),
                    from: prompt.from.into(),
                });
                api.set_has_file_prompt(true);
            } else {
                api.set_has_file_prompt(false);
            }
        }
        Update::Files(files) => {
            api.set_files(model(files.into_iter().map(received_file).collect()));
        }
        Update::Image(picture) => show_picture(&api, picture),
        Update::Devices(devices) => {
            let names = |names: Vec<String>| model(names.into_iter().map(Into::into).collect());
            api.set_cameras(names(devices.cameras));
            api.set_microphones(names(devices.microphones));
            api.set_speakers(names(devices.speakers));
            api.set_camera(devices.camera.into());
            api.set_microphone(devices.microphone.into());
            api.set_speaker(devices.speaker.into());
        }
        Update::ShowPage(page) => api.set_page(match page {
            Page::Home => g::Page::Home,
            Page::Call => g::Page::Call,
            Page::Chat => g::Page::Chat,
            Page::Files => g::Page::Files,
            Page::Settings => g::Page::Settings,
        }),
        Update::FullScreen(full) => api.set_screen_full_screen(full),
        Update::JoinFailed(Some(failure)) => {
            api.set_join_failure(g::JoinFailure {
                room: failure.room.into(),
                message: failure.message.into(),
                ask_password: failure.ask_password,
            });
            api.set_has_join_failure(true);
        }
        Update::JoinFailed(None) => api.set_has_join_failure(false),
        Update::ServerSetup(Some(setup)) => {
            api.set_server_address(setup.address.into());
            api.set_server_error(setup.error.into());
            api.set_server_setup(true);
        }
        Update::ServerSetup(None) => {
            if api.get_server_setup() {
                api.set_server_setup(false);
                api.set_server_error("".into());
                api.set_page(g::Page::Home);
            }
        }
    }
}

fn chat_message(line: ChatLine) -> g::ChatMessage {
    g::ChatMessage {
        from: line.from.into(),
        text: line.text.into(),
        mine: line.mine,
    }
}

fn received_file(file: FileView) -> g::ReceivedFile {
    g::ReceivedFile {
        id: file.id.into(),
        name: file.name.into(),
        size: format_size(file.size).into(),
        from: file.from.into(),
        progress: file.progress.clamp(0.0, 1.0),
        state: match file.state {
            FileState::Waiting => g::FileState::Waiting,
            FileState::Receiving => g::FileState::Receiving,
            FileState::Done => g::FileState::Done,
            FileState::Failed => g::FileState::Failed,
            FileState::Declined => g::FileState::Declined,
        },
        is_image: file.is_image,
    }
}

fn show_picture(api: &Api<'_>, picture: Option<Picture>) {
    let Some(picture) = picture else {
        api.set_showing_image(false);
        api.set_viewer_image(Image::default());
        return;
    };
    if let Err(error) = check_rgba(picture.width, picture.height, picture.rgba.len()) {
        tracing::warn!(%error, title = %picture.title, "picture not shown");
        return;
    }
    let pixels = Frame::clone_from_slice(&picture.rgba, picture.width, picture.height);
    api.set_viewer_image(Image::from_rgba8(pixels));
    api.set_viewer_title(picture.title.into());
    api.set_showing_image(true);
}

/// The letter drawn on a tile without a picture.
fn initial(name: &str) -> String {
    name.chars()
        .find(|c| c.is_alphanumeric())
        .map_or_else(|| "?".to_owned(), |c| c.to_uppercase().collect())
}

fn tile(peer: &PeerView, screen: bool, frame: Option<&Frame>) -> g::Tile {
    g::Tile {
        peer: peer.id.to_string().into(),
        name: peer.name.clone().into(),
        initial: initial(&peer.name).into(),
        muted: peer.muted,
        camera_off: peer.camera_off,
        quality: match peer.quality {
            Quality::Unknown => g::Quality::Unknown,
            Quality::Good => g::Quality::Good,
            Quality::Fair => g::Quality::Fair,
            Quality::Poor => g::Quality::Poor,
        },
        pinned: peer.pinned,
        screen,
        frame: frame
            .map(|f| Image::from_rgba8(f.clone()))
            .unwrap_or_default(),
        has_frame: frame.is_some(),
    }
}

/// Lays the peers out: the first peer marked `on_stage` takes the stage (its screen if it
/// shares one, and then its camera joins the filmstrip); everyone else is in the filmstrip.
fn set_peers(api: &Api<'_>, shared: &Shared, peers: &[PeerView]) {
    let mut placement = lock(&shared.placement);
    let mut stage = None;
    let mut filmstrip = Vec::with_capacity(peers.len());
    let mut keys = Vec::with_capacity(peers.len());
    for peer in peers {
        if stage.is_none() && peer.on_stage {
            let key = if peer.has_screen {
                TileKey::Screen(peer.id)
            } else {
                TileKey::Camera(peer.id)
            };
            stage = Some((key, tile(peer, peer.has_screen, placement.last.get(&key))));
            if !peer.has_screen {
                continue;
            }
        }
        let key = TileKey::Camera(peer.id);
        filmstrip.push(tile(peer, false, placement.last.get(&key)));
        keys.push(key);
    }

    let live: HashSet<TileKey> = peers
        .iter()
        .flat_map(|p| [TileKey::Camera(p.id), TileKey::Screen(p.id)])
        .chain([TileKey::SelfView])
        .collect();
    placement.last.retain(|key, _| live.contains(key));
    lock(&shared.slots).retain(|key, _| live.contains(key));

    placement.filmstrip = keys;
    if let Some((key, tile)) = stage {
        placement.stage = Some(key);
        api.set_stage(tile);
        api.set_has_stage(true);
    } else {
        placement.stage = None;
        api.set_has_stage(false);
        api.set_stage(g::Tile::default());
    }
    api.set_filmstrip(model(filmstrip));
}

/// Puts a frame on its tile, wherever that tile is now.
fn show_frame(window: &MainWindow, shared: &Shared, key: TileKey, frame: Frame) {
    shared.counters.shown();
    let api = window.global::<Api>();
    let image = Image::from_rgba8(frame.clone());
    let mut placement = lock(&shared.placement);
    placement.last.insert(key, frame);
    if key == TileKey::SelfView {
        api.set_self_view(image);
        api.set_self_view_has_frame(true);
    } else if placement.stage == Some(key) {
        let mut stage = api.get_stage();
        stage.frame = image;
        stage.has_frame = true;
        api.set_stage(stage);
    } else if let Some(row) = placement.filmstrip.iter().position(|k| *k == key) {
        let filmstrip = api.get_filmstrip();
        if let Some(mut tile) = filmstrip.row_data(row) {
            tile.frame = image;
            tile.has_frame = true;
            filmstrip.set_row_data(row, tile);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{UiHandle, initial};

    #[test]
    fn handles_go_to_any_thread() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<UiHandle>();
    }

    #[test]
    fn initials_skip_punctuation_and_upper_case() {
        assert_eq!(initial("ada"), "A");
        assert_eq!(initial("  (bob)"), "B");
        assert_eq!(initial("émile"), "É");
        assert_eq!(initial(""), "?");
    }
}

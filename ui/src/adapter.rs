//! The thin layer between the `Api` global and the plain view types.
//!
//! Split by what it does: `connect` turns callbacks into [`UiEvent`]s, `apply` shows
//! [`Update`]s (with `stage` for the call's tiles, `editor` for the read-along editor and
//! the stage's content, `updates` for the update section and `pairing` for laptop
//! pairing), and this file holds the window and its handles.

mod apply;
mod connect;
mod editor;
mod model;
mod pairing;
mod stage;
mod updates;

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};

use slint::{ComponentHandle, Rgba8Pixel, SharedPixelBuffer};

use crate::event::UiEvent;
use crate::frames::{FrameCounters, FrameError, FrameStats, LatestSlot, TileKey, check_rgba};
use crate::generated::{Api, MainWindow};
use crate::view::Update;

use apply::apply;
use connect::connect;
use stage::show_frame;

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
    /// The read-along editor's state; UI thread only, like `placement`.
    editor: Mutex<editor::EditorState>,
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
        let shared = Arc::new(Shared {
            slots: Mutex::default(),
            counters: FrameCounters::default(),
            placement: Mutex::default(),
            editor: Mutex::default(),
        });
        editor::connect_rows(&window, &shared);
        Ok(Self { window, shared })
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
        if matches!(update, Update::Editor(Some(_))) {
            // The syntax definitions load once, on the first document: here, on the
            // caller's thread, rather than as a stall of the UI thread.
            crate::editor::load();
        }
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

#[cfg(test)]
mod tests {
    use super::UiHandle;

    #[test]
    fn handles_go_to_any_thread() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<UiHandle>();
    }
}

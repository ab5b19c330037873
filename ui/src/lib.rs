//! Portal's touch UI: Slint views (in `ui/ui/`) behind one `Api` global, and the thin Rust
//! adapters that fill it.
//!
//! - [`Ui`] owns the window and lives on the UI (main) thread.
//! - [`UiHandle`] is `Clone + Send + Sync`: engine, network and GStreamer threads use it to
//!   send [`Update`]s and video frames. A UI that is gone is ignored.
//! - The views never change device state themselves: buttons become [`UiEvent`]s, and the
//!   state (muted, camera off, selected camera…) changes when Rust reports it back.
//!
//! The public types are plain Rust; no Slint type is needed to drive the UI.

mod adapter;
mod editor;
mod event;
mod frames;
mod qr;
mod view;

/// The compiled views (`portal-ui-views`, built from `ui/*.slint`).
use portal_ui_views as generated;

pub use adapter::{Ui, UiError, UiHandle};
pub use event::{StageTarget, UiEvent};
pub use frames::{FrameError, FrameStats, TileKey};
pub use view::{
    CallStatus, ChatLine, DeviceInfo, Devices, EditorCursor, EditorView, FilePrompt, FileState,
    FileView, JoinFailure, Page, PairedLaptop, PairingView, PeerView, Picture, Quality, RoomView,
    ServerSetup, StageView, Update, UpdatePhase, UpdateView, format_size, occupancy,
};

/// The generated Slint component, for tests and tools that look inside the views
/// (`i-slint-backend-testing`). Application code uses [`Ui`].
#[doc(hidden)]
pub use generated::MainWindow;

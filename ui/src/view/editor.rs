//! The room's shared code editor as the kiosk reads along, and what fills the stage.

use std::sync::Arc;

/// The room's code document as the kiosk shows it, read-only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EditorView {
    /// The browser editor's language id (`"rust"`, `"typescript"`, …); anything unknown
    /// is shown as plain text, as in the browser.
    pub language: String,
    /// The whole document. Shared, since it is handed on many times a second while
    /// people type: only the lines on screen are coloured.
    pub text: Arc<str>,
    /// The 1-based line to keep in sight and highlight (the presenter's cursor, or the
    /// latest edit); `None` leaves the view where it is.
    pub follow_line: Option<u32>,
    /// Whom the view follows; `None`: the latest edit.
    pub presenter: Option<String>,
    /// Everyone's cursors, each shown as a name tag on its line.
    pub cursors: Vec<EditorCursor>,
}

/// Someone's cursor in the document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EditorCursor {
    pub name: String,
    /// `"#rrggbb"`, as the browser sends it; anything else is drawn in the text colour.
    pub color: String,
    /// 1-based.
    pub line: u32,
    /// This cursor is the presenter's.
    pub presenter: bool,
}

/// What fills the call page's stage. The engine decides; the tabs above the stage ask
/// it with [`UiEvent::PinContent`](crate::UiEvent::PinContent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StageView {
    /// The tile of the [`PeerView`](crate::PeerView) with `on_stage` (its screen when it
    /// shares one).
    #[default]
    Peer,
    /// The read-along editor (from [`Update::Editor`](crate::Update::Editor)).
    Editor,
    /// The watch-together video: frames pushed with
    /// [`TileKey::Watch`](crate::TileKey::Watch).
    Watch,
    /// Nothing large: everyone is in the filmstrip.
    Filmstrip,
}

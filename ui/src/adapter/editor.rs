//! The read-along editor and what fills the stage.
//!
//! The read-along state (the highlighter's checkpoints, the scroll position) lives in
//! [`Shared`] and is only touched on the UI thread; every update colours only the lines
//! on screen.

use std::sync::Arc;
use std::time::Duration;

use slint::{Color, ComponentHandle as _, Image, Model as _, ModelRc, VecModel};

use super::model::model;
use super::{Shared, lock};
use crate::editor::{Palette, ReadAlong, Rgb, Shown, ShownLine, palette};
use crate::event::{StageTarget, UiEvent};
use crate::frames::TileKey;
use crate::generated as g;
use crate::generated::{Api, MainWindow};
use crate::view::{EditorView, StageView};

fn color(rgb: Rgb) -> Color {
    Color::from_rgb_u8(rgb.r, rgb.g, rgb.b)
}

/// Black or white, whichever reads better on `background`.
fn text_on(background: Rgb) -> Color {
    let luma = 299 * u32::from(background.r)
        + 587 * u32::from(background.g)
        + 114 * u32::from(background.b);
    if luma > 150_000 {
        Color::from_rgb_u8(0, 0, 0)
    } else {
        Color::from_rgb_u8(255, 255, 255)
    }
}

fn line(line: ShownLine, palette: &Palette) -> g::CodeLine {
    g::CodeLine {
        number: i32::try_from(line.number).unwrap_or(i32::MAX),
        text: line.text.into(),
        tokens: model(
            line.tokens
                .into_iter()
                .map(|token| g::CodeToken {
                    column: i32::try_from(token.column).unwrap_or(i32::MAX),
                    text: token.text.into(),
                    color: color(token.color),
                })
                .collect(),
        ),
        followed: line.followed,
        cursors: model(
            line.cursors
                .into_iter()
                .map(|tag| {
                    let rgb = tag.color.unwrap_or(palette.foreground);
                    g::CodeCursor {
                        name: tag.name.into(),
                        color: color(rgb),
                        text_color: text_on(rgb),
                    }
                })
                .collect(),
        ),
    }
}

/// The read-along model and the lines the view has now: a keystroke re-makes only the
/// row it changed (re-making a row re-makes its token elements).
#[derive(Debug, Default)]
pub(super) struct EditorState {
    read_along: ReadAlong,
    rows: Vec<ShownLine>,
}

impl EditorState {
    fn show(&mut self, api: &Api<'_>, shown: Shown) {
        let palette = palette();
        api.set_editor(g::EditorHeader {
            language: shown.language.into(),
            following: shown.following.into(),
            total_lines: i32::try_from(shown.total_lines).unwrap_or(i32::MAX),
            background: color(palette.background),
            foreground: color(palette.foreground),
            line_highlight: color(palette.line_highlight),
            gutter: color(palette.gutter),
        });
        let model = api.get_editor_lines();
        let rows = model.as_any().downcast_ref::<VecModel<g::CodeLine>>();
        match rows {
            Some(rows)
                if rows.row_count() == shown.lines.len()
                    && self.rows.len() == shown.lines.len() =>
            {
                for (index, (new, old)) in shown.lines.iter().zip(&self.rows).enumerate() {
                    if new != old {
                        rows.set_row_data(index, line(new.clone(), &palette));
                    }
                }
            }
            _ => {
                let lines = shown
                    .lines
                    .iter()
                    .map(|l| line(l.clone(), &palette))
                    .collect::<Vec<_>>();
                api.set_editor_lines(ModelRc::new(VecModel::from(lines)));
            }
        }
        self.rows = shown.lines;
    }

    fn clear(&mut self, api: &Api<'_>) {
        self.read_along.clear();
        self.rows.clear();
        api.set_editor_lines(model(Vec::new()));
        api.set_editor(g::EditorHeader::default());
    }
}

/// Shows the room's document, or forgets it (`None`).
pub(super) fn show_editor(api: &Api<'_>, shared: &Shared, view: Option<EditorView>) {
    let mut state = lock(&shared.editor);
    if let Some(view) = view {
        let shown = state.read_along.show(view);
        state.show(api, shown);
        api.set_has_editor(true);
    } else {
        state.clear(api);
        api.set_has_editor(false);
    }
}

pub(super) fn show_stage(api: &Api<'_>, stage: StageView) {
    api.set_stage_content(match stage {
        StageView::Peer => g::StageContent::Peer,
        StageView::Editor => g::StageContent::Editor,
        StageView::Watch => g::StageContent::Watch,
        StageView::Filmstrip => g::StageContent::Filmstrip,
    });
}

/// A video to watch together, or none (its last frame goes too).
pub(super) fn show_watch_available(api: &Api<'_>, shared: &Shared, available: bool) {
    api.set_has_watch(available);
    if !available {
        lock(&shared.placement).last.remove(&TileKey::Watch);
        api.set_watch_has_frame(false);
        api.set_watch_frame(Image::default());
    }
}

/// Wires the view's report of how many lines fit. The answer is deferred to the next
/// turn of the event loop: the view asks while it is being built.
pub(super) fn connect_rows(window: &MainWindow, shared: &Arc<Shared>) {
    let weak = window.as_weak();
    let shared = Arc::clone(shared);
    window.global::<Api>().on_editor_rows(move |rows| {
        let (weak, shared) = (weak.clone(), Arc::clone(&shared));
        let rows = usize::try_from(rows).unwrap_or(1);
        slint::Timer::single_shot(Duration::ZERO, move || {
            let Some(window) = weak.upgrade() else {
                return;
            };
            let mut state = lock(&shared.editor);
            if let Some(shown) = state.read_along.set_rows(rows) {
                state.show(&window.global::<Api>(), shown);
            }
        });
    });
}

/// A tab above the stage as an event; `peer` and `screen` describe the tile on stage.
pub(super) fn pin_content(content: g::StageContent, peer: &str, screen: bool) -> Option<UiEvent> {
    let target = match content {
        g::StageContent::Editor => StageTarget::Editor,
        g::StageContent::Watch => StageTarget::Watch,
        g::StageContent::Peer => {
            let Ok(id) = peer.parse() else {
                tracing::warn!(%peer, "stage tab for a tile without a peer id");
                return None;
            };
            if screen {
                StageTarget::Screen(id)
            } else {
                StageTarget::Peer(id)
            }
        }
        g::StageContent::Filmstrip => return None,
    };
    Some(UiEvent::PinContent(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_tags_read_on_their_colour() {
        assert_eq!(
            text_on(Rgb {
                r: 255,
                g: 235,
                b: 59
            }),
            Color::from_rgb_u8(0, 0, 0)
        );
        assert_eq!(
            text_on(Rgb {
                r: 30,
                g: 60,
                b: 160
            }),
            Color::from_rgb_u8(255, 255, 255)
        );
    }

    #[test]
    fn tabs_name_what_they_pin() {
        assert_eq!(
            pin_content(g::StageContent::Peer, "7", false),
            Some(UiEvent::PinContent(StageTarget::Peer(7)))
        );
        assert_eq!(
            pin_content(g::StageContent::Peer, "7", true),
            Some(UiEvent::PinContent(StageTarget::Screen(7)))
        );
        assert_eq!(pin_content(g::StageContent::Peer, "", false), None);
        assert_eq!(
            pin_content(g::StageContent::Editor, "", false),
            Some(UiEvent::PinContent(StageTarget::Editor))
        );
        assert_eq!(
            pin_content(g::StageContent::Watch, "", false),
            Some(UiEvent::PinContent(StageTarget::Watch))
        );
    }
}

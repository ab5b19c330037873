//! What the read-along view shows: which lines, coloured, with whose cursors, scrolled so
//! the followed line stays in sight.

use std::sync::Arc;

use super::highlight::{Highlighter, Token};
use super::language::{Language, Rgb};
use crate::view::{EditorCursor, EditorView};

/// Rows assumed until the view says how many fit.
const DEFAULT_ROWS: usize = 20;

/// A cursor colour that is not `#rrggbb`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor colour {0:?} is not #rrggbb")]
pub(crate) struct BadColor(pub(crate) String);

/// Reads the browser's `"#rrggbb"`.
pub(crate) fn parse_color(text: &str) -> Result<Rgb, BadColor> {
    let bad = || BadColor(text.to_owned());
    let hex = text
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(bad)?;
    let value = u32::from_str_radix(hex, 16).map_err(|_| bad())?;
    let [_, r, g, b] = value.to_be_bytes();
    Ok(Rgb { r, g, b })
}

/// A name tag on a line; `color` is `None` when the browser's colour was unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    pub(crate) name: String,
    pub(crate) color: Option<Rgb>,
}

/// One line on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShownLine {
    /// 1-based.
    pub(crate) number: usize,
    /// The line as shown (tabs expanded, clipped), for assistive technology.
    pub(crate) text: String,
    pub(crate) tokens: Vec<Token>,
    pub(crate) followed: bool,
    pub(crate) cursors: Vec<Tag>,
}

/// The view's content after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shown {
    /// "Rust", "Plain text".
    pub(crate) language: &'static str,
    /// "Following Ada", "Following the latest edit".
    pub(crate) following: String,
    pub(crate) lines: Vec<ShownLine>,
    pub(crate) total_lines: usize,
}

/// The first line to show: unchanged while `follow` (0-based) is in sight with
/// `context` lines around it; otherwise `follow` moves to a third of the way down.
/// Never past the point where the last line is at the bottom.
pub(crate) fn scroll(top: usize, rows: usize, follow: Option<usize>, total: usize) -> usize {
    let rows = rows.max(1);
    let context = (rows / 4).min(3);
    let top = match follow {
        Some(line) => {
            let line = line.min(total.saturating_sub(1));
            let above = line < top + context;
            let below = line + context >= top + rows;
            if above || below {
                line.saturating_sub((rows / 3).max(context))
            } else {
                top
            }
        }
        None => top,
    };
    top.min(total.saturating_sub(rows))
}

/// The read-along state kept across updates: the highlighter (with its checkpoints),
/// the scroll position and the rows that fit.
#[derive(Debug)]
pub(crate) struct ReadAlong {
    highlighter: Option<Highlighter>,
    view: Option<EditorView>,
    rows: usize,
    top: usize,
}

impl Default for ReadAlong {
    fn default() -> Self {
        Self {
            highlighter: None,
            view: None,
            rows: DEFAULT_ROWS,
            top: 0,
        }
    }
}

impl ReadAlong {
    /// Shows a new version of the document.
    pub(crate) fn show(&mut self, view: EditorView) -> Shown {
        let language = Language::from_id(&view.language);
        match &mut self.highlighter {
            Some(highlighter) => {
                highlighter.set_language(language);
                highlighter.set_text(Arc::clone(&view.text));
            }
            None => self.highlighter = Some(Highlighter::new(language, Arc::clone(&view.text))),
        }
        self.view = Some(view);
        self.render().expect("a view was just set")
    }

    /// Forgets the document (and its checkpoints).
    pub(crate) fn clear(&mut self) {
        *self = Self {
            rows: self.rows,
            ..Self::default()
        };
    }

    /// The view has room for `rows` lines now; the content again if that changed it.
    pub(crate) fn set_rows(&mut self, rows: usize) -> Option<Shown> {
        let rows = rows.max(1);
        if rows == self.rows {
            return None;
        }
        self.rows = rows;
        self.render()
    }

    fn render(&mut self) -> Option<Shown> {
        let (Some(view), Some(highlighter)) = (&self.view, &mut self.highlighter) else {
            return None;
        };
        let total = highlighter.line_count();
        let follow = view
            .follow_line
            .and_then(|line| usize::try_from(line).ok())
            .filter(|&line| line >= 1)
            .map(|line| line.min(total) - 1);
        self.top = scroll(self.top, self.rows, follow, total);
        let lines = highlighter
            .window(self.top, self.rows)
            .into_iter()
            .enumerate()
            .map(|(offset, tokens)| {
                let index = self.top + offset;
                ShownLine {
                    number: index + 1,
                    text: highlighter.display_line(index),
                    tokens,
                    followed: follow == Some(index),
                    cursors: view
                        .cursors
                        .iter()
                        .filter(|c| usize::try_from(c.line).ok() == Some(index + 1))
                        .map(tag)
                        .collect(),
                }
            })
            .collect();
        Some(Shown {
            language: highlighter.language().label(),
            following: view.presenter.as_ref().map_or_else(
                || "Following the latest edit".to_owned(),
                |name| format!("Following {name}"),
            ),
            lines,
            total_lines: total,
        })
    }
}

fn tag(cursor: &EditorCursor) -> Tag {
    let color = parse_color(&cursor.color)
        .inspect_err(|error| tracing::debug!(%error, name = %cursor.name, "cursor colour"))
        .ok();
    Tag {
        name: cursor.name.clone(),
        color,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_followed_line_stays_in_sight_without_jumping() {
        // Far below: a third of the way down.
        assert_eq!(scroll(0, 30, Some(3999), 5000), 3989);
        // Visible with three lines of context around it: no move.
        for line in 3989 + 3..=3989 + 26 {
            assert_eq!(scroll(3989, 30, Some(line), 5000), 3989, "line {line}");
        }
        // Too near the bottom or the top edge: moves.
        assert_eq!(scroll(3989, 30, Some(3989 + 27), 5000), 4006);
        assert_eq!(scroll(3989, 30, Some(3990), 5000), 3980);
        // The start and the end of the document.
        assert_eq!(scroll(100, 30, Some(2), 5000), 0);
        assert_eq!(scroll(0, 30, Some(4999), 5000), 4970);
        assert_eq!(scroll(4970, 30, Some(4999), 5000), 4970);
        // Short documents and no line to follow.
        assert_eq!(scroll(0, 30, Some(5), 10), 0);
        assert_eq!(
            scroll(40, 30, None, 50),
            20,
            "a shorter text pulls the view up"
        );
        assert_eq!(scroll(7, 30, None, 5000), 7);
        assert_eq!(scroll(0, 0, Some(3), 10), 3);
    }

    #[test]
    fn colours_are_read_as_the_browser_writes_them() {
        assert_eq!(
            parse_color("#30bced"),
            Ok(Rgb {
                r: 0x30,
                g: 0xbc,
                b: 0xed
            })
        );
        assert_eq!(
            parse_color("#FFFFFF"),
            Ok(Rgb {
                r: 255,
                g: 255,
                b: 255
            })
        );
        for bad in ["", "30bced", "#fff", "#30bcedff", "#30bcgg", "#+0bced"] {
            assert_eq!(parse_color(bad), Err(BadColor(bad.to_owned())), "{bad}");
        }
    }

    fn view(text: &str, follow: Option<u32>) -> EditorView {
        EditorView {
            language: "rust".into(),
            text: text.into(),
            follow_line: follow,
            presenter: Some("Ada".into()),
            cursors: vec![
                EditorCursor {
                    name: "Ada".into(),
                    color: "#30bced".into(),
                    line: 2,
                    presenter: true,
                },
                EditorCursor {
                    name: "Bob".into(),
                    color: "teal".into(),
                    line: 3,
                    presenter: false,
                },
            ],
        }
    }

    #[test]
    fn lines_carry_numbers_cursors_and_the_followed_mark() {
        let mut read_along = ReadAlong::default();
        let shown = read_along.show(view("fn a() {}\nfn b() {}\n\tlet c = 1;\n", Some(2)));
        assert_eq!(shown.language, "Rust");
        assert_eq!(shown.following, "Following Ada");
        assert_eq!(shown.total_lines, 4);
        let numbers: Vec<_> = shown.lines.iter().map(|l| l.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        assert!(shown.lines[1].followed && !shown.lines[0].followed);
        assert_eq!(shown.lines[2].text, "    let c = 1;");
        assert_eq!(
            shown.lines[1].cursors,
            [Tag {
                name: "Ada".into(),
                color: Some(Rgb {
                    r: 0x30,
                    g: 0xbc,
                    b: 0xed
                })
            }]
        );
        assert_eq!(shown.lines[2].cursors[0].color, None, "unreadable colour");

        let shown = read_along.set_rows(2).expect("fewer rows show again");
        assert_eq!(shown.lines.len(), 2);
        assert!(read_along.set_rows(2).is_none(), "no change");

        let mut no_presenter = view("x", Some(99));
        no_presenter.presenter = None;
        let shown = read_along.show(no_presenter);
        assert_eq!(shown.following, "Following the latest edit");
        assert!(
            shown.lines[0].followed,
            "a line past the end follows the last"
        );

        read_along.clear();
        assert!(read_along.set_rows(5).is_none(), "nothing to show");
    }
}

//! The read-along editor and the stage's content on the real views (testing backend,
//! software renderer): coloured tokens, line numbers, following a line far down a long
//! document, cursor name tags, the tabs above the stage, the watch-together video, and
//! reference snapshots (`PORTAL_UPDATE_SNAPSHOTS=1` rewrites them, as in `snapshots.rs`).

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;

use std::sync::Arc;

use common::snapshot::check;
use common::{Harness, home_scene, peers, synthetic_frame};
use i_slint_backend_testing::ElementHandle;
use portal_ui::{
    CallStatus, EditorCursor, EditorView, StageTarget, StageView, TileKey, UiEvent, Update,
};

const SAMPLE: &str = r#"//! Rooms and who is in them.
use std::collections::HashMap;

/// A meeting room and its peers.
#[derive(Debug, Default)]
pub struct Room {
    name: String,
    peers: HashMap<u64, String>,
}

impl Room {
	pub fn join(&mut self, id: u64, name: &str) -> bool {
        if self.peers.len() >= 8 {
            return false; // full
        }
        self.peers.insert(id, name.to_owned());
        println!("{} joined {}", name, self.name);
        true
    }
}

fn main() {
    let mut room = Room { name: "Board room".into(), ..Room::default() };
    assert!(room.join(1, "Ada"));
}
"#;

fn cursor(name: &str, color: &str, line: u32, presenter: bool) -> EditorCursor {
    EditorCursor {
        name: name.into(),
        color: color.into(),
        line,
        presenter,
    }
}

fn sample(follow: u32) -> EditorView {
    EditorView {
        language: "rust".into(),
        text: SAMPLE.into(),
        follow_line: Some(follow),
        presenter: Some("Ada".into()),
        cursors: vec![
            cursor("Ada", "#30bced", follow, true),
            cursor("Bob", "#ee6352", 16, false),
        ],
    }
}

fn long_document(lines: usize) -> Arc<str> {
    let mut text = String::new();
    for i in 1..=lines {
        writeln!(text, "    let value_{i} = compute({i}, \"line\"); // {i}").unwrap();
    }
    text.into()
}

/// A call with four peers (no chat, so nothing covers the stage's corner).
fn call(h: &Harness) {
    home_scene(h);
    h.apply(Update::Call(Some("Board room".into())));
    h.apply(Update::Status(CallStatus::Connected));
    h.apply(Update::Peers(peers()));
    for (id, rgb) in [
        (1, [40, 90, 160]),
        (2, [150, 70, 40]),
        (3, [60, 130, 70]),
        (4, [120, 60, 140]),
    ] {
        h.ui.show_frame(
            TileKey::Camera(id),
            320,
            180,
            &synthetic_frame(320, 180, rgb),
        )
        .unwrap();
    }
}

/// Applies and lets the view report its rows, and Rust answer (a turn of the loop each).
fn show(h: &Harness, update: Update) {
    h.apply(update);
    h.settle();
    h.settle();
}

fn editor_scene(h: &Harness, view: EditorView) {
    call(h);
    h.apply(Update::WatchAvailable(true));
    show(h, Update::Editor(Some(view)));
    show(h, Update::Stage(StageView::Editor));
}

/// Logical rectangle of an element, in whole pixels (scale factor 1 here).
fn rect(element: &ElementHandle) -> (usize, usize, usize, usize) {
    let (position, size) = (element.absolute_position(), element.size());
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let [x, y, width, height] =
        [position.x, position.y, size.width, size.height].map(|v| v.round().max(0.0) as usize);
    (x, y, width, height)
}

/// Hue, saturation and value of a pixel, each 0..1 (hue in turns).
fn hsv(r: u8, g: u8, b: u8) -> (f32, f32, f32) {
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let delta = f32::from(max - min);
    let [rf, gf, bf] = [r, g, b].map(f32::from);
    let hue = if max == min {
        0.0
    } else if max == r {
        ((gf - bf) / delta).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((bf - rf) / delta + 2.0) / 6.0
    } else {
        ((rf - gf) / delta + 4.0) / 6.0
    };
    let saturation = if max > 0 { delta / f32::from(max) } else { 0.0 };
    (hue, saturation, f32::from(max) / 255.0)
}

/// How many clearly different token colours the editor shows: bright, saturated pixels
/// grouped by hue into twelve bins, counting the bins with a fair number of pixels.
/// Grey text (punctuation, comments) and the backgrounds count for nothing.
fn token_hues(h: &Harness) -> usize {
    let snapshot = h.ui.window().take_snapshot().expect("snapshot");
    let (x0, y0, width, height) = rect(&h.find("Code"));
    let stride = snapshot.width() as usize;
    let pixels = snapshot.as_slice();
    let mut bins: HashMap<usize, usize> = HashMap::new();
    for y in y0..(y0 + height).min(snapshot.height() as usize) {
        for x in x0..(x0 + width).min(stride) {
            let p = pixels[y * stride + x];
            let (hue, saturation, value) = hsv(p.r, p.g, p.b);
            if saturation > 0.2 && value > 0.45 {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let bin = ((hue * 12.0) as usize).min(11);
                *bins.entry(bin).or_default() += 1;
            }
        }
    }
    bins.values().filter(|&&n| n >= 40).count()
}

#[test]
fn the_editor_shows_coloured_numbered_lines_in_large_type() {
    let h = Harness::new(1920, 1080);
    editor_scene(
        &h,
        EditorView {
            cursors: Vec::new(),
            ..sample(4)
        },
    );
    assert_eq!(h.value("Code"), "Rust, Following Ada");
    for line in 1..=15 {
        assert!(h.exists(&format!("Line {line}")), "line {line} is shown");
    }
    assert_eq!(h.value("Line 5"), "#[derive(Debug, Default)]");
    assert_eq!(
        h.value("Line 12"),
        "    pub fn join(&mut self, id: u64, name: &str) -> bool {",
        "tab expanded"
    );
    let hues = token_hues(&h);
    assert!(hues > 3, "{hues} token colours");
    // Rows tall enough for type of at least 28 px (rows are 1.3 times the type).
    let (_, _, _, row) = rect(&h.find("Line 1"));
    assert!(row >= 36, "rows of {row} px");

    // Plain text has one colour.
    show(
        &h,
        Update::Editor(Some(EditorView {
            language: "plaintext".into(),
            cursors: Vec::new(),
            ..sample(4)
        })),
    );
    assert_eq!(h.value("Code"), "Plain text, Following Ada");
    assert!(token_hues(&h) <= 1);
}

#[test]
fn following_line_4000_of_5000_keeps_it_in_sight() {
    let h = Harness::new(1920, 1080);
    let view = |line| EditorView {
        language: "rust".into(),
        text: long_document(5000),
        follow_line: Some(line),
        presenter: None,
        cursors: Vec::new(),
    };
    editor_scene(&h, view(4000));
    assert_eq!(h.value("Code"), "Rust, Following the latest edit");
    let (_, top, _, height) = rect(&h.find("Code"));
    let (_, y, _, row) = rect(&h.find("Line 4000"));
    assert!(
        y >= top + 3 * row && y + row <= top + height,
        "line 4000 at {y}, code {top}..{}",
        top + height
    );
    assert_eq!(
        h.value("Line 4000"),
        "    let value_4000 = compute(4000, \"line\"); // 4000"
    );
    assert!(!h.exists("Line 1"), "only the window around it is made");
    assert!(h.exists("Line 3997"), "context above");

    // A line already in sight: the view does not move.
    show(&h, Update::Editor(Some(view(4004))));
    assert_eq!(rect(&h.find("Line 4000")).1, y, "no jump");
    assert!(h.exists("Line 4004"));

    // A keystroke on a line in sight changes that row.
    let mut typed = long_document(5000).to_string();
    typed = typed.replacen("value_4001 = ", "value_4001 = 1 + ", 1);
    show(
        &h,
        Update::Editor(Some(EditorView {
            text: typed.into(),
            ..view(4001)
        })),
    );
    assert_eq!(
        h.value("Line 4001"),
        "    let value_4001 = 1 + compute(4001, \"line\"); // 4001"
    );
    assert_eq!(rect(&h.find("Line 4000")).1, y, "still no jump");

    // Far away: the view goes there.
    show(&h, Update::Editor(Some(view(120))));
    assert!(!h.exists("Line 4000"));
    let (_, y, _, _) = rect(&h.find("Line 120"));
    assert!(y > top && y < top + height);
    // The end of the document fills the view to its last line.
    show(&h, Update::Editor(Some(view(5000))));
    let (_, y, _, row) = rect(&h.find("Line 5000"));
    assert!(
        y + row <= top + height && y + 2 * row > top + height - row,
        "last line at the bottom"
    );
}

#[test]
fn cursors_show_as_name_tags_on_their_lines() {
    let h = Harness::new(1280, 720);
    editor_scene(&h, sample(6));
    let (_, ada, _, _) = rect(&h.find("Ada's cursor"));
    let (_, line6, _, row6) = rect(&h.find("Line 6"));
    assert!(ada >= line6 && ada < line6 + row6, "Ada's tag on line 6");
    let (_, bob, _, _) = rect(&h.find("Bob's cursor"));
    let (_, line16, _, row16) = rect(&h.find("Line 16"));
    assert!(
        bob >= line16 && bob < line16 + row16,
        "Bob's tag on line 16"
    );

    // Cursors move with the next update; a colour the browser got wrong still shows.
    let mut view = sample(7);
    view.cursors[1] = cursor("Bob", "teal", 2, false);
    show(&h, Update::Editor(Some(view)));
    let (_, bob, _, _) = rect(&h.find("Bob's cursor"));
    let (_, line2, _, row2) = rect(&h.find("Line 2"));
    assert!(bob >= line2 && bob < line2 + row2);
}

#[test]
fn tabs_above_the_stage_ask_for_content() {
    let h = Harness::new(1280, 720);
    call(&h);
    assert!(!h.exists("Show the editor"), "no tabs with only people");
    assert!(!h.exists("Show Ada"));

    show(&h, Update::Editor(Some(sample(3))));
    assert!(h.exists("Show the editor"));
    assert!(!h.exists("Show the video"));
    h.apply(Update::WatchAvailable(true));
    assert!(
        h.checked("Show Ada"),
        "the stage shows the peer until told otherwise"
    );

    h.touch("Show the editor");
    assert_eq!(h.event(), UiEvent::PinContent(StageTarget::Editor));
    h.no_event();
    assert!(!h.exists("Code"), "Rust decides what the stage shows");
    show(&h, Update::Stage(StageView::Editor));
    assert!(h.exists("Code"));
    assert!(h.checked("Show the editor") && !h.checked("Show Ada"));
    h.tap("Show the editor");
    assert_eq!(
        h.event(),
        UiEvent::PinContent(StageTarget::Editor),
        "again: Rust toggles"
    );

    h.touch("Show the video");
    assert_eq!(h.event(), UiEvent::PinContent(StageTarget::Watch));
    h.tap("Show Ada");
    assert_eq!(h.event(), UiEvent::PinContent(StageTarget::Peer(1)));

    // A peer sharing a screen: the tab asks for the screen.
    let mut shared = peers();
    shared[0].has_screen = true;
    h.apply(Update::Peers(shared));
    h.tap("Show Ada's screen");
    assert_eq!(h.event(), UiEvent::PinContent(StageTarget::Screen(1)));

    // No document and no video: the tabs go.
    h.apply(Update::Editor(None));
    h.apply(Update::WatchAvailable(false));
    assert!(!h.exists("Show the editor") && !h.exists("Show the video"));
    assert!(
        h.exists("No code to show yet"),
        "the stage says so until Rust moves on"
    );
}

#[test]
fn the_watch_together_video_fills_the_stage() {
    let h = Harness::new(800, 480);
    call(&h);
    h.apply(Update::WatchAvailable(true));
    h.apply(Update::Stage(StageView::Watch));
    assert!(h.exists("Waiting for the video…"));
    assert!(!h.exists("Pin Ada"), "the peer's tile leaves the stage");
    let frame = synthetic_frame(320, 180, [200, 40, 40]);
    h.ui.show_frame(TileKey::Watch, 320, 180, &frame).unwrap();
    h.settle();
    assert!(h.exists("Video"));
    assert!(!h.exists("Waiting for the video…"));
    // The video survives a change of peers, and goes when the room stops watching.
    h.apply(Update::Peers(peers()));
    assert!(h.exists("Video"));
    h.apply(Update::WatchAvailable(false));
    assert!(h.exists("Waiting for the video…"));

    h.apply(Update::Stage(StageView::Filmstrip));
    assert!(h.exists("Tap someone to put them on stage"));
    h.apply(Update::Stage(StageView::Peer));
    assert!(h.exists("Pin Ada"));
    // Leaving the call puts everything back.
    h.apply(Update::Stage(StageView::Watch));
    h.apply(Update::Call(None));
    h.apply(Update::Call(Some("Lobby".into())));
    h.apply(Update::Peers(peers()));
    assert!(h.exists("Pin Ada"));
}

// ---- Reference snapshots ----

#[test]
fn snapshots_of_the_editor_on_stage() {
    for (width, height) in [(800, 480), (1280, 720), (1920, 1080)] {
        std::thread::scope(|s| {
            s.spawn(|| {
                let h = Harness::new(width, height);
                editor_scene(&h, sample(12));
                check(&h, &format!("editor-{width}x{height}"));
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        });
    }
}

//! The status panel's frames against the reference PNGs in `tests/panel/`, pixel for
//! pixel. After a deliberate change of the layout, regenerate them with
//! `PORTAL_BLESS=1 cargo test -p portal-board --test panel` and look at them before
//! committing.

use std::path::{Path, PathBuf};

use portal_board::panel::{PanelCall, PanelState, render};
use portal_board::sim::{from_png, to_png};

fn base() -> PanelState {
    PanelState {
        name: "Room 4.01".into(),
        address: Some("192.168.1.20".into()),
        ..PanelState::default()
    }
}

fn cases() -> Vec<(&'static str, PanelState)> {
    vec![
        ("idle", base()),
        (
            "in-call-3-people",
            PanelState {
                call: PanelCall::InCall {
                    room: "4-01".into(),
                    people: 3,
                    mic_muted: false,
                },
                ..base()
            },
        ),
        (
            "pairing-code",
            PanelState {
                pairing_code: Some("482 913".into()),
                ..base()
            },
        ),
        (
            "updating-42",
            PanelState {
                update_percent: Some(42),
                ..base()
            },
        ),
    ]
}

fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/panel/{name}.png"))
}

#[test]
fn frames_match_the_reference_pngs() {
    let bless = std::env::var_os("PORTAL_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, state) in cases() {
        let frame = render(&state);
        let path = reference(name);
        if bless {
            std::fs::write(&path, to_png(&frame).expect("png")).expect("write the reference");
            continue;
        }
        let want = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|png| from_png(&png).map_err(|e| e.to_string()));
        match want {
            Ok(want) if want == frame => {}
            other => {
                // What it draws now, beside the reference, for a look.
                let now = std::env::temp_dir().join(format!("portal-panel-{name}.png"));
                let _ = std::fs::write(&now, to_png(&frame).expect("png"));
                stale.push(format!(
                    "{}: {} (now drawn: {})",
                    path.display(),
                    other.map_or_else(|e| e, |_| "differs".into()),
                    now.display()
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "the panel draws something else than its references; if that is meant, run \
         PORTAL_BLESS=1 cargo test -p portal-board --test panel:\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_case_looks_different() {
    let frames: Vec<_> = cases().into_iter().map(|(_, s)| render(&s)).collect();
    for (i, a) in frames.iter().enumerate() {
        for b in &frames[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

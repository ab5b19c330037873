//! Pixel snapshots of the main screens at the display sizes, on the software
//! renderer with the embedded font. `PORTAL_UPDATE_SNAPSHOTS=1` rewrites the references
//! in `tests/snapshots/`; a failing comparison leaves the actual picture next to the
//! test's temporary directory for a look.

mod common;

use common::snapshot::check;
use common::{
    Harness, PAIRING_URL, call_scene, devices, file_prompt, files, home_scene, pairing_scene,
    update,
};
use portal_ui::{JoinFailure, ServerSetup, Update, UpdatePhase, UpdateView};

const SIZES: [(u32, u32); 3] = [(800, 480), (1280, 720), (1920, 1080)];
/// The smallest and largest, and the 1280x800 touch screen.
const TOUCH_SIZES: [(u32, u32); 3] = [(800, 480), (1280, 800), (1920, 1080)];

fn each_size(scene: impl Fn(&Harness) + Sync, name: &str) {
    at_sizes(&SIZES, scene, name);
}

fn at_sizes(sizes: &[(u32, u32)], scene: impl Fn(&Harness) + Sync, name: &str) {
    // One backend per thread: run each size on its own thread.
    for &(width, height) in sizes {
        std::thread::scope(|s| {
            s.spawn(|| {
                let h = Harness::new(width, height);
                scene(&h);
                check(&h, &format!("{name}-{width}x{height}"));
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        });
    }
}

#[test]
fn home() {
    each_size(home_scene, "home");
}

#[test]
fn call_with_a_file_prompt() {
    each_size(
        |h| {
            call_scene(h);
            h.apply(Update::FilePrompt(Some(file_prompt())));
        },
        "call-prompt",
    );
}

#[test]
fn call() {
    each_size(call_scene, "call");
}

#[test]
fn chat() {
    each_size(
        |h| {
            call_scene(h);
            h.apply(Update::Status(portal_ui::CallStatus::Reconnecting {
                attempt: 2,
            }));
            h.apply(Update::ChatMessage(portal_ui::ChatLine {
                from: "Chioma".into(),
                text: "Could everyone mute while Ada presents? There is an echo on my side.".into(),
                mine: false,
            }));
            h.tap("Show chat");
        },
        "chat",
    );
}

#[test]
fn settings() {
    each_size(
        |h| {
            home_scene(h);
            h.apply(Update::Devices(devices()));
            h.tap("Show settings");
        },
        "settings",
    );
}

#[test]
fn keyboard_and_files() {
    each_size(
        |h| {
            call_scene(h);
            h.tap("Show chat");
            h.tap("Type a message");
            h.type_text("Be there in 5");
        },
        "keyboard",
    );
    each_size(
        |h| {
            call_scene(h);
            h.apply(Update::Files(files()));
            h.tap("Show files");
        },
        "files",
    );
}

#[test]
fn join_failures() {
    at_sizes(
        &TOUCH_SIZES,
        |h| {
            home_scene(h);
            h.apply(Update::JoinFailed(Some(JoinFailure {
                room: "Board room".into(),
                message: "Wrong password for this room".into(),
                ask_password: true,
            })));
            h.type_text("Tea4");
        },
        "join-failure-password",
    );
    at_sizes(
        &TOUCH_SIZES,
        |h| {
            home_scene(h);
            h.apply(Update::JoinFailed(Some(JoinFailure {
                room: "Lobby".into(),
                message: "The room is full".into(),
                ask_password: false,
            })));
        },
        "join-failure",
    );
}

#[test]
fn first_run() {
    at_sizes(
        &TOUCH_SIZES,
        |h| {
            home_scene(h);
            h.apply(Update::ServerSetup(Some(ServerSetup {
                address: "wss://rooms.example.org".into(),
                error: "Could not reach rooms.example.org: connection refused".into(),
            })));
            h.tap("Symbols");
        },
        "first-run",
    );
}

fn settings_with(h: &Harness, view: UpdateView) {
    home_scene(h);
    h.apply(Update::Devices(devices()));
    h.apply(Update::Update(Some(view)));
    h.tap("Show settings");
}

#[test]
fn settings_with_updates() {
    each_size(
        |h| {
            settings_with(
                h,
                UpdateView {
                    progress: Some(0.42),
                    ..update(UpdatePhase::Downloading, true)
                },
            );
        },
        "settings-update-downloading",
    );
    each_size(
        |h| {
            settings_with(
                h,
                UpdateView {
                    deferred_by_call: true,
                    ..update(UpdatePhase::Ready, true)
                },
            );
        },
        "settings-update-deferred",
    );
    each_size(
        |h| {
            settings_with(
                h,
                UpdateView {
                    error: Some("The download did not match its checksum".into()),
                    ..update(UpdatePhase::Failed, true)
                },
            );
        },
        "settings-update-failed",
    );
}

#[test]
fn home_with_a_pairing_code() {
    each_size(
        |h| {
            home_scene(h);
            pairing_scene(h);
        },
        "home-pairing",
    );
}

#[test]
fn call_with_the_pairing_corner() {
    each_size(
        |h| {
            call_scene(h);
            pairing_scene(h);
        },
        "call-pairing",
    );
}

/// Crops the element labelled "Pairing QR code" out of the rendered window, checks that
/// it is sharp (only black and white pixels, a whole number of pixels per module) and
/// decodes it.
fn read_pairing_qr(h: &Harness) -> String {
    let snapshot =
        h.ui.window()
            .take_snapshot()
            .expect("software renderer snapshot");
    let element = h.find("Pairing QR code");
    let (position, size) = (element.absolute_position(), element.size());
    let scale = h.ui.window().scale_factor();
    // Whole pixels by construction; rounding only drops float noise.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let [x0, y0, width, height] =
        [position.x, position.y, size.width, size.height].map(|v| (v * scale).round() as usize);
    assert_eq!(width, height, "square");
    assert!(width > 0);
    let stride = snapshot.width() as usize;
    let pixels = snapshot.as_slice();
    let pixel = |x: usize, y: usize| pixels[(y0 + y) * stride + x0 + x];
    for y in 0..height {
        for x in 0..width {
            let p = pixel(x, y);
            assert!(
                [p.r, p.g, p.b] == [0, 0, 0] || [p.r, p.g, p.b] == [255, 255, 255],
                "pixel {x},{y} of the QR code is {p:?}: blurred"
            );
        }
    }
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixel(x, y).r);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code found");
    let (meta, content) = grids[0].decode().expect("the QR code decodes");
    // Modules across, quiet zone of 4 included.
    let modules = 17 + 4 * meta.version.0 + 8;
    assert_eq!(
        width % modules,
        0,
        "{width} px for {modules} modules: not a whole number of pixels per module"
    );
    assert!(width / modules >= 2, "at least two pixels per module");
    content
}

#[test]
fn pairing_qr_codes_decode_at_every_size() {
    for &(width, height) in &SIZES {
        std::thread::scope(|s| {
            s.spawn(|| {
                let h = Harness::new(width, height);
                home_scene(&h);
                pairing_scene(&h);
                assert_eq!(read_pairing_qr(&h), PAIRING_URL, "home at {width}x{height}");
                call_scene(&h);
                assert_eq!(read_pairing_qr(&h), PAIRING_URL, "call at {width}x{height}");
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        });
    }
}

//! Test harness: the real UI on `i-slint-backend-testing` (software renderer, mock time),
//! driven only through accessible labels.
#![allow(dead_code, unreachable_pub)]

pub mod snapshot;

use std::sync::mpsc::Receiver;
use std::time::Duration;

use i_slint_backend_testing::{
    AccessibleRole, ElementHandle, TestingBackend, TestingBackendOptions,
};
use portal_ui::{
    CallStatus, ChatLine, DeviceInfo, Devices, FilePrompt, FileState, FileView, PairedLaptop,
    PairingView, PeerView, Quality, RoomView, TileKey, Ui, UiEvent, Update, UpdatePhase,
    UpdateView,
};
use slint::PhysicalSize;

pub struct Harness {
    pub ui: Ui,
    pub events: Receiver<UiEvent>,
}

/// Each test thread gets its own backend (no event loop, so threads do not share it).
fn init_backend() {
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    })))
    .expect("one testing backend per test thread");
}

impl Harness {
    pub fn new(width: u32, height: u32) -> Self {
        init_backend();
        let (ui, events) = Ui::with_channel().expect("UI starts on the testing backend");
        ui.window().set_size(PhysicalSize::new(width, height));
        ui.window().show().expect("window shows");
        let harness = Self { ui, events };
        harness.settle();
        harness
    }

    /// Lets layouts, `if`s and `for`s catch up (mock time, no animations run here).
    #[allow(clippy::unused_self)] // keeps `h.settle()` next to the other steps
    pub fn settle(&self) {
        i_slint_backend_testing::mock_elapsed_time(Duration::from_millis(20));
    }

    pub fn apply(&self, update: Update) {
        self.ui.apply(update);
        self.settle();
    }

    pub fn find_all(&self, label: &str) -> Vec<ElementHandle> {
        ElementHandle::find_by_accessible_label(self.ui.component(), label).collect()
    }

    /// The one element with this label; fails the test when there is none or several.
    pub fn find(&self, label: &str) -> ElementHandle {
        let mut found = self.find_all(label);
        assert_eq!(
            found.len(),
            1,
            "expected exactly one element labelled {label:?}; buttons here: {:?}",
            self.button_labels()
        );
        found.pop().unwrap()
    }

    pub fn exists(&self, label: &str) -> bool {
        !self.find_all(label).is_empty()
    }

    /// Activates the element labelled `label` as assistive technology would.
    pub fn tap(&self, label: &str) {
        self.find(label).invoke_accessible_default_action();
        self.settle();
    }

    /// Presses and releases a finger at the centre of the element labelled `label`, so
    /// whatever is drawn on top there gets the touch.
    pub fn touch(&self, label: &str) {
        self.find(label)
            .mock_single_click(slint::platform::PointerEventButton::Left);
        self.settle();
    }

    /// Whether the element labelled `label` can be used (elements say so when they cannot).
    pub fn enabled(&self, label: &str) -> bool {
        self.find(label).accessible_enabled().unwrap_or(true)
    }

    pub fn checked(&self, label: &str) -> bool {
        self.find(label).accessible_checked().unwrap_or(false)
    }

    pub fn value(&self, label: &str) -> String {
        self.find(label)
            .accessible_value()
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    /// The next event the UI sent; fails when there is none.
    pub fn event(&self) -> UiEvent {
        self.events.try_recv().expect("the UI sent an event")
    }

    pub fn no_event(&self) {
        if let Ok(event) = self.events.try_recv() {
            panic!("unexpected event {event:?}");
        }
    }

    pub fn buttons(&self) -> Vec<ElementHandle> {
        self.ui
            .component()
            .root_element()
            .query_descendants()
            .match_accessible_role(AccessibleRole::Button)
            .find_all()
    }

    pub fn button_labels(&self) -> Vec<String> {
        self.buttons()
            .iter()
            .map(|b| b.accessible_label().unwrap_or_default().to_string())
            .collect()
    }

    /// Types `text` on the on-screen keyboard, key by key.
    pub fn type_text(&self, text: &str) {
        for c in text.chars() {
            match c {
                ' ' => self.tap("Space"),
                '!' => self.tap("Key exclamation mark"),
                '?' => self.tap("Key question mark"),
                '.' => self.tap("Key period"),
                ',' => self.tap("Key comma"),
                '\'' => self.tap("Key apostrophe"),
                c if c.is_ascii_uppercase() => {
                    self.tap("Shift");
                    self.tap(&format!("Key {c}"));
                }
                c => self.tap(&format!("Key {c}")),
            }
        }
    }
}

use i_slint_backend_testing::ElementRoot as _;

// ---- Scenes shared by interaction and snapshot tests ----

pub fn rooms() -> Vec<RoomView> {
    vec![
        RoomView {
            id: "board".into(),
            name: "Board room".into(),
            detail: "3 people here".into(),
        },
        RoomView {
            id: "design".into(),
            name: "Design studio".into(),
            detail: String::new(),
        },
        RoomView {
            id: "lobby".into(),
            name: "Lobby".into(),
            detail: "Empty".into(),
        },
    ]
}

pub fn home_scene(h: &Harness) {
    h.apply(Update::Device(DeviceInfo {
        name: "Meeting room 3".into(),
        address: "192.168.1.40".into(),
        version: "0.1.0".into(),
    }));
    h.apply(Update::Clock("09:41".into()));
    h.apply(Update::Rooms(rooms()));
    h.apply(Update::Status(CallStatus::Idle));
}

pub fn peer(id: u64, name: &str) -> PeerView {
    PeerView {
        id,
        name: name.into(),
        quality: Quality::Good,
        ..PeerView::default()
    }
}

pub fn peers() -> Vec<PeerView> {
    vec![
        PeerView {
            on_stage: true,
            ..peer(1, "Ada")
        },
        PeerView {
            muted: true,
            quality: Quality::Fair,
            ..peer(2, "Bob")
        },
        PeerView {
            camera_off: true,
            quality: Quality::Poor,
            ..peer(3, "Chioma")
        },
        peer(4, "Dmitri"),
    ]
}

/// A flat colour with a lighter "head" in the middle: easy to recognise, and to compress.
pub fn synthetic_frame(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut rgba = Vec::with_capacity((width * height * 4) as usize);
    for y in 0..height {
        for x in 0..width {
            let dx = i64::from(x) - i64::from(width / 2);
            let dy = i64::from(y) - i64::from(height * 2 / 5);
            let r = i64::from(height / 5);
            let head = dx * dx + dy * dy < r * r;
            let body = y > height * 3 / 5 && dx.abs() < i64::from(width / 5);
            let [red, green, blue] = if head || body {
                rgb.map(|c| c / 2 + 120)
            } else {
                rgb
            };
            rgba.extend_from_slice(&[red, green, blue, 255]);
        }
    }
    rgba
}

pub fn call_scene(h: &Harness) {
    home_scene(h);
    h.apply(Update::Call(Some("Board room".into())));
    h.apply(Update::Status(CallStatus::Connected));
    h.apply(Update::Peers(peers()));
    let colours = [
        (1, [40, 90, 160]),
        (2, [150, 70, 40]),
        (3, [60, 130, 70]),
        (4, [120, 60, 140]),
    ];
    for (id, rgb) in colours {
        let frame = synthetic_frame(320, 180, rgb);
        h.ui.show_frame(TileKey::Camera(id), 320, 180, &frame)
            .unwrap();
    }
    let me = synthetic_frame(320, 180, [90, 90, 90]);
    h.ui.show_frame(TileKey::SelfView, 320, 180, &me).unwrap();
    // Appended one by one, as they arrive: the two from others count as unread.
    for line in chat() {
        h.apply(Update::ChatMessage(line));
    }
}

pub fn chat() -> Vec<ChatLine> {
    vec![
        ChatLine {
            from: "Ada".into(),
            text: "Morning all! I'll share the slides in a minute.".into(),
            mine: false,
        },
        ChatLine {
            from: "Meeting room 3".into(),
            text: "On my way".into(),
            mine: true,
        },
        ChatLine {
            from: "Bob".into(),
            text: "Can you hear me?".into(),
            mine: false,
        },
    ]
}

pub fn file_prompt() -> FilePrompt {
    FilePrompt {
        id: "f-17".into(),
        name: "quarterly-report.pdf".into(),
        size: 2_400_000,
        from: "Ada".into(),
    }
}

pub fn files() -> Vec<FileView> {
    vec![
        FileView {
            id: "f-3".into(),
            name: "whiteboard.png".into(),
            size: 845_000,
            from: "Bob".into(),
            progress: 1.0,
            state: FileState::Done,
            is_image: true,
        },
        FileView {
            id: "f-4".into(),
            name: "agenda.txt".into(),
            size: 1_200,
            from: "Ada".into(),
            progress: 1.0,
            state: FileState::Done,
            is_image: false,
        },
        FileView {
            id: "f-5".into(),
            name: "demo-recording.mp4".into(),
            size: 48_000_000,
            from: "Dmitri".into(),
            progress: 0.42,
            state: FileState::Receiving,
            is_image: false,
        },
    ]
}

pub fn devices() -> Devices {
    Devices {
        cameras: vec!["Pi Camera Module 3".into(), "USB Camera (046d:0825)".into()],
        microphones: vec![
            "USB Camera microphone".into(),
            "ReSpeaker 4-Mic Array".into(),
        ],
        speakers: vec!["HDMI 1".into(), "Headphones".into(), "USB speaker".into()],
        camera: "Pi Camera Module 3".into(),
        microphone: "ReSpeaker 4-Mic Array".into(),
        speaker: "HDMI 1".into(),
    }
}

/// The update agent's report: running 1.3.0, with 1.4.0 on offer when `available`.
pub fn update(phase: UpdatePhase, available: bool) -> UpdateView {
    UpdateView {
        phase,
        current: "1.3.0".into(),
        available: available.then(|| "1.4.0".into()),
        ..UpdateView::default()
    }
}

pub const PAIRING_URL: &str = "https://rooms.example.org/p/K7P2XM";

pub fn pairing() -> PairingView {
    PairingView {
        code: "K7P2XM".into(),
        url: PAIRING_URL.into(),
        expires_in_secs: 300,
    }
}

pub fn paired() -> Vec<PairedLaptop> {
    vec![
        PairedLaptop {
            id: "laptop-1".into(),
            name: "Alice's laptop".into(),
            presenting: true,
        },
        PairedLaptop {
            id: "laptop-2".into(),
            name: "Reception MacBook".into(),
            presenting: false,
        },
    ]
}

/// A pairing code on show, and two laptops paired already.
pub fn pairing_scene(h: &Harness) {
    h.apply(Update::Pairing(Some(pairing())));
    h.apply(Update::Paired(paired()));
}

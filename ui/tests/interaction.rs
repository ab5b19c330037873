//! The real views on the testing backend, driven only through accessible labels.

mod common;

use common::{
    Harness, call_scene, devices, file_prompt, files, home_scene, pairing_scene, peers, update,
};
use portal_ui::{
    CallStatus, JoinFailure, Page, PeerView, Picture, ServerSetup, UiEvent, Update, UpdatePhase,
};

/// Types `text` on the on-screen keyboard, switching to its symbols for `: / @ #`… and
/// back to letters for letters (digits and `, . ? ! '` are there in both modes).
fn type_any(h: &Harness, text: &str) {
    const SYMBOLS: &str = "-/:;()$&@\"[]{}#%^*+=_\\|~<>";
    let mut symbols = false;
    for c in text.chars() {
        let wanted = if SYMBOLS.contains(c) {
            true
        } else if c.is_alphabetic() {
            false
        } else {
            symbols
        };
        if wanted != symbols {
            h.tap(if wanted { "Symbols" } else { "Letters" });
            symbols = wanted;
        }
        if SYMBOLS.contains(c) {
            h.tap(&format!("Key {c}"));
        } else {
            h.type_text(&c.to_string());
        }
    }
    if symbols {
        h.tap("Letters");
    }
}

fn wrong_password() -> JoinFailure {
    JoinFailure {
        room: "Board room".into(),
        message: "Wrong password for this room".into(),
        ask_password: true,
    }
}

fn room_full() -> JoinFailure {
    JoinFailure {
        room: "Lobby".into(),
        message: "The room is full".into(),
        ask_password: false,
    }
}

fn first_run(address: &str, error: &str) -> Update {
    Update::ServerSetup(Some(ServerSetup {
        address: address.into(),
        error: error.into(),
    }))
}

#[test]
fn tapping_a_room_joins_it() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    h.tap("Join Design studio");
    assert_eq!(h.event(), UiEvent::JoinRoom("design".into()));
    h.no_event();
}

#[test]
fn joining_by_code_on_the_keypad() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    // Real touches on the first keys: the keypad is not covered and its areas are wired.
    h.touch("Digit 4");
    h.touch("Digit 2");
    for digit in ["7", "9"] {
        h.tap(&format!("Digit {digit}"));
    }
    assert_eq!(h.value("Room code"), "4279");
    h.tap("Delete digit");
    h.tap("Digit 1");
    assert_eq!(h.value("Room code"), "4271");
    h.no_event();
    h.touch("Join with code");
    assert_eq!(h.event(), UiEvent::JoinByCode("4271".into()));
    assert_eq!(
        h.value("Room code"),
        "",
        "the code is cleared after joining"
    );
    h.tap("Join with code");
    h.no_event();
}

#[test]
fn tapping_a_tile_pins_it_and_the_stage_unpins() {
    let h = Harness::new(1280, 720);
    call_scene(&h);
    assert!(h.exists("Pin Ada"), "Ada is on stage");
    h.touch("Pin Bob");
    assert_eq!(h.event(), UiEvent::Pin(Some(2)));

    // Rust moves Bob to the stage as pinned; the UI shows what it is told.
    let peers: Vec<PeerView> = peers()
        .into_iter()
        .map(|p| PeerView {
            on_stage: p.id == 2,
            pinned: p.id == 2,
            ..p
        })
        .collect();
    h.apply(Update::Peers(peers));
    assert!(h.exists("Pin Ada"), "Ada went to the filmstrip");
    h.tap("Unpin Bob");
    assert_eq!(h.event(), UiEvent::Pin(None));
}

#[test]
fn quick_reply_sends_at_once() {
    let h = Harness::new(800, 480);
    call_scene(&h);
    h.tap("Show chat");
    h.touch("Send Can you hear me?");
    assert_eq!(h.event(), UiEvent::SendChat("Can you hear me?".into()));
    h.tap("Send Thanks!");
    assert_eq!(h.event(), UiEvent::SendChat("Thanks!".into()));
}

#[test]
fn free_text_on_the_on_screen_keyboard() {
    let h = Harness::new(800, 480);
    call_scene(&h);
    h.tap("Show chat");
    h.tap("Type a message");
    h.type_text("Hi tea");
    h.tap("Delete character");
    h.tap("Delete character");
    h.type_text("eam, 5 min!");
    assert_eq!(h.value("Typed text"), "Hi team, 5 min!");
    h.no_event();
    h.touch("Send message");
    assert_eq!(h.event(), UiEvent::SendChat("Hi team, 5 min!".into()));
    assert!(
        !h.exists("Send message"),
        "the keyboard closes after sending"
    );

    h.tap("Type a message");
    assert_eq!(h.value("Typed text"), "", "a new message starts empty");
    h.type_text("x");
    h.tap("Close keyboard");
    h.no_event();
    assert!(!h.exists("Key x"));
}

#[test]
fn accepting_and_declining_files() {
    let h = Harness::new(800, 480);
    call_scene(&h);
    h.apply(Update::FilePrompt(Some(file_prompt())));
    assert!(h.exists("Incoming file"));
    h.touch("Accept file");
    assert_eq!(h.event(), UiEvent::AcceptFile("f-17".into()));
    h.apply(Update::FilePrompt(None));
    assert!(!h.exists("Accept file"), "Rust closed the prompt");

    h.apply(Update::FilePrompt(Some(portal_ui::FilePrompt {
        id: "f-18".into(),
        ..file_prompt()
    })));
    h.touch("Decline file");
    assert_eq!(h.event(), UiEvent::DeclineFile("f-18".into()));
}

#[test]
fn a_prompt_covers_the_call_controls() {
    let h = Harness::new(800, 480);
    call_scene(&h);
    h.apply(Update::FilePrompt(Some(file_prompt())));
    h.touch("Leave call");
    h.no_event();
}

#[test]
fn received_images_open_full_screen() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    h.apply(Update::Files(files()));
    h.tap("Show files");
    assert!(!h.exists("Open agenda.txt"), "only images open");
    h.touch("Open whiteboard.png");
    assert_eq!(h.event(), UiEvent::OpenFile("f-3".into()));
    h.apply(Update::Image(Some(Picture {
        title: "whiteboard.png".into(),
        width: 2,
        height: 1,
        rgba: vec![255, 0, 0, 255, 0, 0, 255, 255],
    })));
    h.touch("Close image");
    assert_eq!(h.event(), UiEvent::CloseImage);
    h.apply(Update::Image(None));
    assert!(!h.exists("Close image"));
}

#[test]
fn choosing_a_camera_waits_for_rust() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    h.apply(Update::Devices(devices()));
    h.tap("Show settings");
    assert!(h.checked("Camera Pi Camera Module 3"));
    h.touch("Camera USB Camera (046d:0825)");
    assert_eq!(
        h.event(),
        UiEvent::ChooseCamera("USB Camera (046d:0825)".into())
    );
    assert!(
        !h.checked("Camera USB Camera (046d:0825)"),
        "not until Rust says so"
    );
    h.apply(Update::Devices(portal_ui::Devices {
        camera: "USB Camera (046d:0825)".into(),
        ..devices()
    }));
    assert!(h.checked("Camera USB Camera (046d:0825)"));
    assert!(!h.checked("Camera Pi Camera Module 3"));

    h.tap("Microphone USB Camera microphone");
    assert_eq!(
        h.event(),
        UiEvent::ChooseMicrophone("USB Camera microphone".into())
    );
    h.tap("Speaker Headphones");
    assert_eq!(h.event(), UiEvent::ChooseSpeaker("Headphones".into()));
}

#[test]
fn renaming_the_device() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    h.tap("Show settings");
    h.tap("Rename device");
    assert_eq!(h.value("Typed text"), "Meeting room 3");
    h.tap("Delete character");
    h.type_text("4");
    h.tap("Save device name");
    assert_eq!(h.event(), UiEvent::SetDeviceName("Meeting room 4".into()));
}

#[test]
fn mute_camera_and_volume_follow_rust() {
    let h = Harness::new(800, 480);
    call_scene(&h);
    h.touch("Mute microphone");
    assert_eq!(h.event(), UiEvent::SetMicMuted(true));
    assert!(
        !h.checked("Mute microphone"),
        "the button waits for the device"
    );
    h.apply(Update::MicMuted(true));
    assert!(h.checked("Mute microphone"));
    h.tap("Mute microphone");
    assert_eq!(h.event(), UiEvent::SetMicMuted(false));

    h.tap("Camera off");
    assert_eq!(h.event(), UiEvent::SetCameraOff(true));
    h.apply(Update::CameraOff(true));
    assert!(h.checked("Camera off"));

    assert_eq!(h.value("Volume"), "80%");
    h.tap("Volume up");
    assert_eq!(h.event(), UiEvent::SetVolume(0.9));
    assert_eq!(h.value("Volume"), "80%");
    h.apply(Update::Volume(0.3));
    h.tap("Volume down");
    assert_eq!(h.event(), UiEvent::SetVolume(0.2));
}

#[test]
fn leaving_the_call() {
    let h = Harness::new(800, 480);
    call_scene(&h);
    h.touch("Leave call");
    assert_eq!(h.event(), UiEvent::Leave);
    assert!(
        h.exists("Leave call"),
        "still in the call until Rust says otherwise"
    );
    h.apply(Update::Call(None));
    assert!(!h.exists("Leave call"));
    assert!(h.exists("Join Board room"), "back home");
}

#[test]
fn the_status_banner_shows_what_rust_reports() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    // A hidden banner is not offered to assistive technology at all.
    let status = || {
        h.find_all("Status")
            .first()
            .and_then(i_slint_backend_testing::ElementHandle::accessible_value)
            .map(|v| v.to_string())
    };
    assert_eq!(status(), None, "idle: no banner");
    for (state, words) in [
        (CallStatus::Connecting, "Connecting…"),
        (CallStatus::Connected, "Connected"),
        (CallStatus::Reconnecting { attempt: 0 }, "Reconnecting"),
        (
            CallStatus::Reconnecting { attempt: 1 },
            "Reconnecting (attempt 1)",
        ),
        (
            CallStatus::Reconnecting { attempt: 12 },
            "Reconnecting (attempt 12)",
        ),
        (CallStatus::Offline, "Offline"),
    ] {
        h.apply(Update::Status(state));
        assert_eq!(status().as_deref(), Some(words));
    }
    h.apply(Update::Status(CallStatus::Idle));
    assert_eq!(status(), None);
}

#[test]
fn a_shared_screen_goes_full_screen() {
    let h = Harness::new(1920, 1080);
    call_scene(&h);
    assert!(!h.exists("Full screen"), "no share, no full screen");
    let peers: Vec<PeerView> = peers()
        .into_iter()
        .map(|p| PeerView {
            has_screen: p.id == 1,
            ..p
        })
        .collect();
    h.apply(Update::Peers(peers));
    assert!(h.exists("Pin Ada's screen"));
    assert!(
        h.exists("Pin Ada"),
        "the sharer's camera is in the filmstrip"
    );
    h.touch("Full screen");
    assert_eq!(h.event(), UiEvent::ScreenFullScreen(true));
    assert!(!h.exists("Pin Bob"), "nothing but the screen");
    h.touch("Exit full screen");
    assert_eq!(h.event(), UiEvent::ScreenFullScreen(false));
    assert!(h.exists("Pin Bob"));
}

#[test]
fn unread_chat_is_counted_until_the_chat_is_seen() {
    let h = Harness::new(800, 480);
    call_scene(&h);
    let line = |text: &str, mine| portal_ui::ChatLine {
        from: "Ada".into(),
        text: text.into(),
        mine,
    };
    assert_eq!(
        h.value("Show chat"),
        "2 unread",
        "the scene's two messages from others"
    );
    h.apply(Update::ChatMessage(line("Slides are up", false)));
    h.apply(Update::ChatMessage(line("Mine do not count", true)));
    h.apply(Update::ChatMessage(line("Page 3", false)));
    assert_eq!(h.value("Show chat"), "4 unread");
    assert!(h.exists("Open chat"), "the newest show over the stage");
    h.tap("Show chat");
    assert!(h.exists("Ada: Slides are up"));
    h.apply(Update::ChatMessage(line("Read as it comes", false)));
    h.tap("Show call");
    assert_eq!(h.value("Show chat"), "");
    assert!(!h.exists("Open chat"), "nothing unseen over the stage");
}

#[test]
fn a_wrong_password_is_asked_again_on_the_keyboard() {
    let h = Harness::new(1280, 800);
    home_scene(&h);
    // What the kiosk sends when a join is refused for good.
    h.apply(Update::Call(None));
    h.apply(Update::ShowPage(Page::Home));
    h.apply(Update::JoinFailed(Some(wrong_password())));
    assert!(h.exists("Could not join Board room"));
    assert!(h.exists("Wrong password for this room"));
    assert_eq!(h.value("Room password"), "");
    assert!(
        !h.exists("Back to home"),
        "a password failure offers Join and Cancel"
    );

    h.tap("Join with password");
    h.no_event();
    type_any(&h, "Tea#42");
    assert_eq!(h.value("Room password"), "••••••", "shown as dots only");
    h.no_event();
    h.touch("Join with password");
    assert_eq!(
        h.event(),
        UiEvent::JoinWithPassword {
            room: "Board room".into(),
            password: "Tea#42".into(),
        }
    );
    h.no_event();
    assert_eq!(
        h.value("Room password"),
        "",
        "the typed password is cleared"
    );
    assert!(h.exists("Join failure"), "open until Rust closes it");
    h.apply(Update::JoinFailed(None));
    assert!(!h.exists("Join failure"));
    assert!(h.exists("Join Board room"), "home again");

    h.apply(Update::JoinFailed(Some(wrong_password())));
    assert_eq!(h.value("Room password"), "", "a new failure starts empty");
    h.touch("Cancel");
    assert_eq!(h.event(), UiEvent::DismissJoinFailure);
}

#[test]
fn a_full_room_says_so_and_ok_goes_back_home() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    h.apply(Update::JoinFailed(Some(room_full())));
    assert!(h.exists("Could not join Lobby"));
    assert!(h.exists("The room is full"));
    assert!(!h.exists("Room password"));
    assert!(!h.exists("Join with password"));
    h.touch("Join Lobby");
    h.no_event();

    h.touch("Back to home");
    assert_eq!(h.event(), UiEvent::DismissJoinFailure);
    assert!(h.exists("Back to home"), "open until Rust closes it");
    h.apply(Update::JoinFailed(None));
    assert!(!h.exists("Back to home"));
    h.touch("Join Lobby");
    assert_eq!(h.event(), UiEvent::JoinRoom("lobby".into()));

    // Only on the home page, and a call that starts closes it.
    h.apply(Update::JoinFailed(Some(room_full())));
    h.apply(Update::ShowPage(Page::Settings));
    assert!(!h.exists("Back to home"));
    h.apply(Update::ShowPage(Page::Home));
    assert!(h.exists("Back to home"));
    h.apply(Update::Call(Some("Lobby".into())));
    h.apply(Update::Call(None));
    assert!(!h.exists("Back to home"));
}

#[test]
fn first_run_saves_the_typed_server_address() {
    let h = Harness::new(1280, 800);
    home_scene(&h);
    h.apply(first_run("wss://", ""));
    assert!(h.exists("Welcome"));
    assert!(h.exists("Connect this kiosk to a rooms server"));
    assert!(!h.exists("Join Board room"), "instead of home");
    assert!(!h.exists("Show settings"));
    assert_eq!(h.value("Device name"), "Meeting room 3");
    assert_eq!(h.value("Version"), "0.1.0");
    assert_eq!(h.value("Server address"), "wss://");
    assert!(!h.exists("Server error"));

    type_any(&h, "rooms.example.org:8443");
    h.no_event();
    h.touch("Save server address");
    assert_eq!(
        h.event(),
        UiEvent::SetServer("wss://rooms.example.org:8443".into())
    );
    h.no_event();
    assert!(h.exists("Welcome"), "until Rust says otherwise");

    h.apply(first_run(
        "wss://rooms.example.org:8443",
        "Could not reach the rooms server",
    ));
    assert_eq!(h.value("Server error"), "Could not reach the rooms server");
    h.tap("Clear server address");
    assert_eq!(h.value("Server address"), "");
    type_any(&h, " ws://10.0.0.2/portal ");
    h.tap("Save server address");
    assert_eq!(h.event(), UiEvent::SetServer("ws://10.0.0.2/portal".into()));
    h.tap("Clear server address");
    h.type_text("   ");
    h.tap("Save server address");
    h.no_event();

    h.apply(Update::ServerSetup(None));
    assert!(!h.exists("Welcome"));
    assert!(!h.exists("Server error"));
    assert!(h.exists("Join Board room"), "home");
}

/// Every touch target on every screen has a role and a label, and is at least 48px
/// square on the smallest display.
#[test]
fn every_touch_target_is_labelled_and_big_enough() {
    let h = Harness::new(800, 480);
    call_scene(&h);
    h.apply(Update::Devices(devices()));
    h.apply(Update::Files(files()));
    h.apply(Update::Update(Some(update(UpdatePhase::Ready, true))));
    pairing_scene(&h);
    let mut screens = Vec::new();
    let mut check = |screen: &str| {
        let buttons = h.buttons();
        assert!(!buttons.is_empty(), "{screen}: no buttons found");
        for b in &buttons {
            let label = b.accessible_label().unwrap_or_default();
            assert!(!label.is_empty(), "{screen}: a button without a label");
            let size = b.size();
            assert!(
                size.width >= 48.0 && size.height >= 48.0,
                "{screen}: {label:?} is only {}x{}",
                size.width,
                size.height
            );
        }
        screens.push((screen.to_owned(), buttons.len()));
    };
    check("call");
    h.tap("Show chat");
    check("chat");
    h.tap("Type a message");
    check("keyboard");
    h.tap("Close keyboard");
    h.tap("Show files");
    check("files");
    h.tap("Show settings");
    check("settings");
    h.apply(Update::FilePrompt(Some(file_prompt())));
    check("file prompt");
    h.apply(Update::FilePrompt(None));
    h.apply(Update::Call(None));
    h.tap("Show home");
    check("home");
    h.apply(Update::JoinFailed(Some(wrong_password())));
    check("join failure with a password");
    h.apply(Update::JoinFailed(Some(room_full())));
    check("join failure");
    h.apply(Update::JoinFailed(None));
    h.apply(first_run("wss://", "Could not reach the rooms server"));
    check("first run");
    assert_eq!(screens.len(), 10);
}

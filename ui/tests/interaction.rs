//! The real views on the testing backend, driven only through accessible labels.

mod common;

use common::{Harness, call_scene, devices, file_prompt, files, home_scene, peers};
use portal_ui::{CallStatus, PeerView, Picture, UiEvent, Update};

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
        (CallStatus::Reconnecting, "Reconnecting…"),
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

/// Every touch target on every screen has a role and a label, and is at least 48px
/// square on the smallest display.
#[test]
fn every_touch_target_is_labelled_and_big_enough() {
    let h = Harness::new(800, 480);
    call_scene(&h);
    h.apply(Update::Devices(devices()));
    h.apply(Update::Files(files()));
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
    assert_eq!(screens.len(), 7);
}

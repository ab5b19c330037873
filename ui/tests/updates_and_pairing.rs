//! The update section of the settings page and laptop pairing, driven through accessible
//! labels like the other interaction tests.

mod common;

use common::{Harness, call_scene, home_scene, pairing_scene, update};
use portal_ui::{Page, UiEvent, Update, UpdatePhase, UpdateView};

#[test]
fn checking_for_updates_and_installing_one_ask_the_agent() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    h.apply(Update::Update(Some(update(UpdatePhase::Idle, false))));
    h.tap("Show settings");
    assert_eq!(h.value("Update status"), "Up to date");

    h.touch("Check for updates");
    assert_eq!(h.event(), UiEvent::CheckForUpdates);
    assert!(!h.enabled("Install update now"), "nothing to install");
    h.tap("Install update now");
    h.no_event();

    // The agent reports its check, then an update it downloaded.
    h.apply(Update::Update(Some(update(UpdatePhase::Checking, false))));
    assert_eq!(h.value("Update status"), "Checking for updates…");
    assert!(!h.enabled("Check for updates"));
    h.apply(Update::Update(Some(UpdateView {
        deferred_by_call: true,
        error: Some("Download interrupted, resumed".into()),
        ..update(UpdatePhase::Ready, true)
    })));
    assert_eq!(
        h.value("Update status"),
        "Update 1.4.0 will install after this call"
    );
    assert_eq!(
        h.value("Last update error"),
        "Last error: Download interrupted, resumed"
    );
    assert!(h.enabled("Install update now"));
    h.touch("Install update now");
    assert_eq!(h.event(), UiEvent::InstallUpdateNow);

    h.apply(Update::Update(Some(UpdateView {
        progress: Some(0.6),
        ..update(UpdatePhase::Installing, true)
    })));
    assert_eq!(h.value("Update status"), "Installing 1.4.0 – 60 %");
    assert!(!h.enabled("Install update now"));
    h.tap("Install update now");
    h.no_event();
}

#[test]
fn without_an_update_agent_there_is_nothing_to_press() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    h.tap("Show settings");
    assert_eq!(
        h.value("Update status"),
        "Updates are not set up on this kiosk"
    );
    assert!(h.exists("Version"), "the device card shows the version");
    assert!(!h.exists("Check for updates"));
    assert!(!h.exists("Install update now"));

    h.apply(Update::Update(Some(update(UpdatePhase::Idle, true))));
    assert_eq!(h.value("Update status"), "Update 1.4.0 available");
    assert!(!h.exists("Version"), "the update section shows it instead");
    h.apply(Update::Update(None));
    assert!(!h.exists("Check for updates"));
}

#[test]
fn pairing_shows_the_code_and_unpairing_asks_rust() {
    let h = Harness::new(800, 480);
    home_scene(&h);
    assert!(!h.exists("Pairing code"));
    pairing_scene(&h);
    assert_eq!(h.value("Pairing code"), "K7P2XM");
    assert_eq!(
        h.value("Pairing instructions"),
        "Pair a laptop: open rooms.example.org/p/K7P2XM or scan the code"
    );
    assert!(h.exists("Pairing QR code"));

    h.touch("Unpair Alice's laptop");
    assert_eq!(h.event(), UiEvent::Unpair("laptop-1".into()));
    h.tap("Unpair Reception MacBook");
    assert_eq!(h.event(), UiEvent::Unpair("laptop-2".into()));

    // The list changes when Rust says so.
    assert!(h.exists("Unpair Alice's laptop"));
    h.apply(Update::Paired(Vec::new()));
    assert!(!h.exists("Unpair Alice's laptop"));

    // In a call the code moves to a corner of the stage.
    call_scene(&h);
    assert_eq!(h.value("Pairing code"), "K7P2XM");
    h.apply(Update::Pairing(None));
    assert!(!h.exists("Pairing code"));
    assert!(!h.exists("Pairing QR code"));

    // During a call the paired laptops are on the settings page, with Unpair.
    pairing_scene(&h);
    h.apply(Update::ShowPage(Page::Settings));
    h.tap("Unpair Alice's laptop");
    assert_eq!(h.event(), UiEvent::Unpair("laptop-1".into()));
}

//! The agent against real RAUC 1.8 (file-backed slots, custom bootloader backend, private
//! bus) and a real `portal-server --updates-dir` feed. See `common` for what it needs.

mod common;

use std::time::Duration;

use common::{COMPATIBLE, Rig, error_code, file_len, state};

const LONG: Duration = Duration::from_secs(60);

#[test]
fn happy_path_installs_into_b_after_the_call_restarts_and_marks_good() {
    let mut rig = Rig::new("happy");
    let built = rig.offer("1.1.0", 3 << 20, None, COMPATIBLE);
    let call = rig.dir.join("in-call");
    std::fs::write(&call, b"").unwrap();
    let mut agent = rig.start_agent(&["--call-file", call.to_str().unwrap()]);
    rig.wait_status("deferred by the call", LONG, |s| {
        state(s) == "downloading" && s["deferred_by_call"] == true
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rig.metric("portal_update_bytes_total"),
        0,
        "nothing fetched in a call"
    );
    assert_eq!(rig.rauc.boot_var("PRIMARY"), "A");
    std::fs::remove_file(&call).unwrap();
    rig.wait_reboot(&mut agent, LONG);
    assert_eq!(rig.status()["state"], "rebooting");
    assert_eq!(rig.rauc.boot_var("PRIMARY"), "B");
    assert!(rig.slot_has_image("B"), "slot B holds the new image");
    assert!(rig.slot_untouched("A"));
    assert_eq!(rig.metric("portal_update_bytes_total"), built.size);

    // "Restart": the bootloader starts B; the UI comes up; the agent marks B good.
    let next = rig.rauc.next_boot();
    assert_eq!(next, "B");
    rig.rauc.boot(&next).unwrap();
    let log_before = rig.boot_log().len();
    std::fs::write(rig.dir.join("ui-up"), b"").unwrap();
    let mut agent = rig.start_agent(&[]);
    rig.wait_status("healthy on 1.1.0", LONG, |s| {
        state(s) == "idle" && s["current"] == "1.1.0"
    });
    assert!(
        rig.boot_log()[log_before..].contains("set-state B good"),
        "{}",
        rig.boot_log()
    );
    assert!(rig.status()["error"].is_null());
    let _ = agent.kill();
}

#[test]
fn a_failed_health_check_marks_b_bad_and_the_old_slot_boots() {
    let mut rig = Rig::new("health");
    rig.offer("1.1.0", 1 << 20, None, COMPATIBLE);
    let mut agent = rig.start_agent(&[]);
    rig.wait_reboot(&mut agent, LONG);
    assert_eq!(rig.rauc.next_boot(), "B");
    rig.rauc.boot("B").unwrap();
    let log_before = rig.boot_log().len();
    // No UI comes up.
    let mut agent = rig.start_agent(&["--health-deadline", "2"]);
    rig.wait_reboot(&mut agent, LONG);
    let log = rig.boot_log();
    assert!(log[log_before..].contains("set-state B bad"), "{log}");
    assert_eq!(rig.rauc.next_boot(), "A");
    rig.rauc.boot("A").unwrap();
    let mut agent = rig.start_agent(&[]);
    rig.wait_status("the failure reported", LONG, |s| {
        state(s) == "failed" && error_code(s) == "healthCheck"
    });
    let s = rig.status();
    assert_eq!(s["current"], "1.0.0");
    assert!(
        s["error"]["message"]
            .as_str()
            .unwrap()
            .contains("UI not up"),
        "{s}"
    );
    let _ = agent.kill();
}

/// An install RAUC refuses leaves both slots as they were.
fn refused(rig: &mut Rig, code: &str) {
    let mut agent = rig.start_agent(&[]);
    rig.wait_status(code, LONG, |s| {
        state(s) == "failed" && error_code(s) == code
    });
    let _ = agent.kill();
    assert_eq!(rig.rauc.boot_var("PRIMARY"), "A");
    assert!(rig.slot_untouched("B") && rig.slot_untouched("A"));
}

#[test]
fn a_bundle_signed_with_another_key_is_refused() {
    let mut rig = Rig::new("badsig");
    let evil = portal_testkit::rauc::make_keys(rig.dir.path(), "evil").unwrap();
    rig.offer("1.1.0", 1 << 20, Some(&evil), COMPATIBLE);
    refused(&mut rig, "badSignature");
}

#[test]
fn a_bundle_for_another_device_is_refused() {
    let mut rig = Rig::new("compat");
    // Honest manifest: refused before a byte of the bundle is fetched.
    rig.offer("1.1.0", 1 << 20, None, "portal-other");
    refused(&mut rig, "wrongCompatible");
    assert_eq!(rig.metric("portal_update_bytes_total"), 0);
    // A manifest that lies: RAUC refuses the bundle itself.
    std::fs::remove_file(rig.ota_dir().join("ota-state.json")).unwrap();
    rig.edit_manifest(|m| m["compatible"] = COMPATIBLE.into());
    refused(&mut rig, "wrongCompatible");
}

#[test]
fn a_bundle_of_another_version_than_the_manifest_names_is_refused() {
    let mut rig = Rig::new("version");
    rig.offer("1.1.0", 1 << 20, None, COMPATIBLE);
    rig.edit_manifest(|m| m["version"] = "1.2.0".into());
    refused(&mut rig, "versionMismatch");
    let s = rig.status();
    assert!(
        s["error"]["message"].as_str().unwrap().contains("1.1.0"),
        "{s}"
    );
}

#[test]
fn a_corrupted_download_is_refused() {
    let mut rig = Rig::new("corrupt");
    let built = rig.offer("1.1.0", 1 << 20, None, COMPATIBLE);
    let mut bytes = std::fs::read(&built.path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&built.path, bytes).unwrap();
    refused(&mut rig, "shaMismatch");
    assert!(
        !rig.ota_dir()
            .join(format!("{}.part", built.sha256))
            .exists()
    );
}

#[test]
fn a_killed_agent_resumes_the_download_where_it_stopped() {
    let mut rig = Rig::new("resume");
    let built = rig.offer("1.1.0", 6 << 20, None, COMPATIBLE);
    let part = rig.ota_dir().join(format!("{}.part", built.sha256));
    let mut agent = rig.start_agent(&["--max-rate", "2000000"]);
    portal_testkit::wait_until(LONG, "a third downloaded", || {
        file_len(&part) > built.size / 3
    });
    agent.kill().unwrap();
    let have = file_len(&part);
    assert!(have < built.size, "killed mid-download");
    let mut agent = rig.start_agent(&[]);
    rig.wait_reboot(&mut agent, LONG);
    assert!(rig.slot_has_image("B"));
    // The first answer counted the whole bundle (it was cut on the wire); the second
    // only what was missing.
    assert_eq!(rig.metric("portal_update_bundle_requests_total"), 2);
    assert_eq!(
        rig.metric("portal_update_bytes_total"),
        built.size + (built.size - have)
    );
}

#[test]
fn rauc_killed_mid_install_leaves_the_old_slot_primary() {
    let mut rig = Rig::new("killrauc");
    // The hook holds the install after slot B is written, before it is made bootable.
    let hold = rig.dir.join("hold");
    std::fs::write(&hold, b"").unwrap();
    let hook = rig.dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ \"$1\" = slot-post-install ] || exit 0\n\
             while [ -e {} ]; do sleep 0.1; done\n",
            hold.display()
        ),
    )
    .unwrap();
    rig.offer_with_hook("1.1.0", 1 << 20, None, COMPATIBLE, Some(&hook));
    let mut agent = rig.start_agent(&[]);
    portal_testkit::wait_until(LONG, "slot B written, install held", || {
        rig.slot_has_image("B")
    });
    assert_eq!(rig.status()["state"], "installing");
    rig.rauc.kill_service();
    std::fs::remove_file(&hold).unwrap();
    rig.wait_status("the install reported failed", LONG, |s| {
        state(s) == "failed" && error_code(s) == "install"
    });
    let _ = agent.kill();
    assert_eq!(rig.rauc.boot_var("PRIMARY"), "A");
    assert_eq!(rig.rauc.next_boot(), "A");
    rig.rauc.boot("A").unwrap();
    assert!(rig.rauc.rauc_cli(&["status"]).unwrap().contains("rootfs.0"));
}

#![allow(clippy::many_single_char_names)] // a, b, c: one agent before and after restarts

use super::*;

const HOUR: u64 = 3600 * 1000;

fn policy() -> Policy {
    Policy {
        compatible: "portal-test".into(),
        check_every_ms: HOUR,
        window: None,
        health_deadline_ms: 60_000,
        retry_ms: 1000,
        max_retries: 2,
    }
}

fn manifest(version: &str) -> Manifest {
    Manifest {
        version: version.parse().unwrap(),
        bundle: format!("portal-{version}.raucb"),
        size: 1000,
        sha256: format!("{:0>64}", version.replace('.', "")),
        notes: "notes".into(),
        min_version: None,
        allow_downgrade: false,
        compatible: "portal-test".into(),
    }
}

fn at(ms: u64) -> Now {
    at_local(ms, 12 * 60)
}

fn at_local(ms: u64, minute_of_day: u16) -> Now {
    Now { ms, minute_of_day }
}

/// Everything but status and saves, so tests read as the I/O the agent asks for.
fn io(agent: &mut Agent) -> Vec<Action> {
    std::iter::from_fn(|| agent.poll())
        .filter(|a| !matches!(a, Action::Status(_) | Action::Save(_)))
        .collect()
}

fn started(agent: &mut Agent, now: Now, current: &str, booted: &str, primary: &str) {
    agent.handle(
        now,
        Input::Started {
            current: current.parse().unwrap(),
            booted_slot: booted.into(),
            primary: Some(primary.into()),
        },
    );
}

/// An agent on 1.0.0 in slot rootfs.0 that found 1.1.0 and downloaded it.
fn ready(policy: Policy) -> Agent {
    let mut a = Agent::new(policy, Persisted::default());
    started(&mut a, at(0), "1.0.0", "rootfs.0", "rootfs.0");
    assert_eq!(io(&mut a), [Action::FetchManifest]);
    a.handle(at(10), Input::Manifest(Ok(manifest("1.1.0"))));
    assert_eq!(io(&mut a), [Action::Download(manifest("1.1.0"))]);
    a.handle(
        at(20),
        Input::DownloadProgress {
            done: 500,
            total: 1000,
        },
    );
    assert_eq!(a.status().unwrap().progress, Some(50));
    a.handle(at(30), Input::CallActive(true));
    a.handle(at(30), Input::Downloaded(Ok(())));
    a
}

#[test]
fn happy_path_through_a_restart_into_the_new_slot() {
    let mut a = ready(policy());
    assert_eq!(io(&mut a), []);
    a.handle(at(40), Input::CallActive(false));
    assert_eq!(io(&mut a), [Action::Install(manifest("1.1.0"))]);
    a.handle(at(50), Input::InstallProgress(40));
    assert_eq!(a.status().unwrap().progress, Some(40));
    a.handle(at(60), Input::Installed(Ok("rootfs.1".into())));
    // The state is saved before the restart is asked for.
    let acts: Vec<_> = std::iter::from_fn(|| a.poll()).collect();
    let save = acts
        .iter()
        .position(|x| matches!(x, Action::Save(p) if p.phase == Phase::Rebooting));
    let reboot = acts.iter().position(|x| *x == Action::Reboot);
    assert!(save.unwrap() < reboot.unwrap(), "{acts:?}");

    // Restarted into the new slot: health, then mark good.
    let mut b = Agent::new(policy(), a.persisted().clone());
    started(&mut b, at(0), "1.1.0", "rootfs.1", "rootfs.1");
    assert_eq!(io(&mut b), [Action::ProbeHealth]);
    assert_eq!(b.status().unwrap().state, Phase::Rebooting);
    b.handle(at(100), Input::ServerReached);
    assert_eq!(io(&mut b), []);
    b.handle(at(200), Input::UiUp);
    assert_eq!(io(&mut b), [Action::MarkGood]);
    b.handle(at(300), Input::Marked(Ok(())));
    let s = b.status().unwrap();
    assert_eq!(
        (s.state, s.current.to_string()),
        (Phase::Idle, "1.1.0".into())
    );
    assert_eq!(b.persisted(), &Persisted::default());
}

#[test]
fn a_call_defers_the_install_and_the_restart() {
    let mut a = ready(policy());
    assert!(a.status().unwrap().deferred_by_call);
    a.handle(at(HOUR / 2), Input::Tick);
    assert_eq!(io(&mut a), []);
    a.handle(at(HOUR / 2), Input::CallActive(false));
    assert_eq!(io(&mut a), [Action::Install(manifest("1.1.0"))]);
    a.handle(at(HOUR / 2), Input::CallActive(true));
    a.handle(at(HOUR / 2 + 1), Input::Installed(Ok("rootfs.1".into())));
    assert_eq!(io(&mut a), []);
    assert!(a.status().unwrap().deferred_by_call);
    a.handle(at(HOUR / 2 + 2), Input::CallActive(false));
    assert_eq!(io(&mut a), [Action::Reboot]);
}

#[test]
fn a_call_defers_the_download() {
    let mut a = Agent::new(policy(), Persisted::default());
    started(&mut a, at(0), "1.0.0", "rootfs.0", "rootfs.0");
    a.handle(at(1), Input::CallActive(true));
    io(&mut a);
    a.handle(at(2), Input::Manifest(Ok(manifest("1.1.0"))));
    assert_eq!(io(&mut a), []);
    a.handle(at(3), Input::CallActive(false));
    assert_eq!(io(&mut a), [Action::Download(manifest("1.1.0"))]);
}

#[test]
fn installs_only_inside_the_window_unless_asked_now() {
    let window = Some("02:00-05:00".parse().unwrap());
    let mut a = ready(Policy { window, ..policy() });
    a.handle(at_local(40, 12 * 60), Input::CallActive(false));
    assert_eq!(io(&mut a), []);
    a.handle(at_local(50, 60 + 59), Input::Tick);
    assert_eq!(io(&mut a), []);
    a.handle(at_local(60, 2 * 60), Input::Tick);
    assert_eq!(io(&mut a), [Action::Install(manifest("1.1.0"))]);

    let mut b = ready(Policy { window, ..policy() });
    b.handle(at_local(40, 12 * 60), Input::CallActive(false));
    b.handle(at_local(41, 12 * 60), Input::InstallNow);
    assert_eq!(io(&mut b), [Action::Install(manifest("1.1.0"))]);
}

#[test]
fn install_now_still_waits_for_the_call() {
    let mut a = ready(Policy {
        window: Some("02:00-05:00".parse().unwrap()),
        ..policy()
    });
    a.handle(at(40), Input::InstallNow);
    assert_eq!(io(&mut a), []);
    a.handle(at(50), Input::CallActive(false));
    assert_eq!(io(&mut a), [Action::Install(manifest("1.1.0"))]);
}

#[test]
fn older_same_and_downgrades() {
    let mut a = Agent::new(policy(), Persisted::default());
    started(&mut a, at(0), "1.2.0", "rootfs.0", "rootfs.0");
    io(&mut a);
    a.handle(at(1), Input::Manifest(Ok(manifest("1.2.0"))));
    assert_eq!(a.status().unwrap().state, Phase::Idle);
    assert_eq!(io(&mut a), []);
    a.handle(at(HOUR + 1), Input::Tick);
    assert_eq!(io(&mut a), [Action::FetchManifest]);
    a.handle(at(HOUR + 2), Input::Manifest(Ok(manifest("1.1.0"))));
    let s = a.status().unwrap();
    assert_eq!(s.state, Phase::Failed);
    assert_eq!(s.error.unwrap().code, "olderVersion");
    a.handle(at(2 * HOUR + 2), Input::Tick);
    io(&mut a);
    let back = Manifest {
        allow_downgrade: true,
        ..manifest("1.0.1")
    };
    a.handle(at(2 * HOUR + 3), Input::Manifest(Ok(back.clone())));
    assert_eq!(io(&mut a), [Action::Download(back)]);
}

#[test]
fn a_failed_health_check_marks_bad_restarts_and_reports_on_the_next_start() {
    let mut a = ready(policy());
    a.handle(at(40), Input::CallActive(false));
    a.handle(at(50), Input::Installed(Ok("rootfs.1".into())));
    io(&mut a);
    let mut b = Agent::new(policy(), a.persisted().clone());
    started(&mut b, at(0), "1.1.0", "rootfs.1", "rootfs.1");
    assert_eq!(io(&mut b), [Action::ProbeHealth]);
    b.handle(at(1000), Input::ServerReached);
    b.handle(at(59_999), Input::Tick);
    assert_eq!(io(&mut b), []);
    b.handle(at(60_000), Input::Tick);
    assert_eq!(io(&mut b), [Action::MarkBad]);
    b.handle(at(60_100), Input::Marked(Ok(())));
    assert_eq!(io(&mut b), [Action::Reboot]);
    let saved = b.persisted().clone();
    assert_eq!(saved.phase, Phase::Failed);

    // The bootloader runs the old slot again.
    let mut c = Agent::new(policy(), saved);
    started(&mut c, at(0), "1.0.0", "rootfs.0", "rootfs.0");
    let s = c.status().unwrap();
    assert_eq!(s.state, Phase::Failed);
    let e = s.error.unwrap();
    assert_eq!(e.code, "healthCheck");
    assert!(e.message.contains("UI not up"), "{}", e.message);
    // The same bundle is not fetched again.
    assert_eq!(io(&mut c), [Action::FetchManifest]);
    c.handle(at(1), Input::Manifest(Ok(manifest("1.1.0"))));
    assert_eq!(io(&mut c), []);
    assert_eq!(c.status().unwrap().state, Phase::Failed);
    // A newer one is.
    c.handle(at(HOUR + 1), Input::Tick);
    io(&mut c);
    c.handle(at(HOUR + 2), Input::Manifest(Ok(manifest("1.1.1"))));
    assert_eq!(io(&mut c), [Action::Download(manifest("1.1.1"))]);
}

#[test]
fn a_power_cut_before_marking_bad_marks_bad_on_the_next_start() {
    let mut p = Persisted {
        phase: Phase::Failed,
        target_slot: Some("rootfs.1".into()),
        ..Persisted::default()
    };
    p.error = Some(OtaError::HealthCheck("UI not up".into()).info());
    let mut a = Agent::new(policy(), p);
    started(&mut a, at(0), "1.1.0", "rootfs.1", "rootfs.1");
    assert_eq!(io(&mut a), [Action::MarkBad]);
    a.handle(at(1), Input::Marked(Ok(())));
    assert_eq!(io(&mut a), [Action::Reboot]);
}

#[test]
fn a_fallback_by_the_bootloader_is_a_failure() {
    let p = Persisted {
        phase: Phase::Rebooting,
        available: Some(manifest("1.1.0")),
        target_slot: Some("rootfs.1".into()),
        previous_slot: Some("rootfs.0".into()),
        ..Persisted::default()
    };
    // Not restarted yet: the bootloader still points at the new slot; restart.
    let mut a = Agent::new(policy(), p.clone());
    started(&mut a, at(0), "1.0.0", "rootfs.0", "rootfs.1");
    assert_eq!(io(&mut a), [Action::Reboot]);
    // Restarted, but the bootloader went back.
    let mut b = Agent::new(policy(), p);
    started(&mut b, at(0), "1.0.0", "rootfs.0", "rootfs.0");
    let s = b.status().unwrap();
    assert_eq!(s.state, Phase::Failed);
    assert_eq!(s.error.unwrap().code, "bootFailed");
}

#[test]
fn dropped_downloads_resume_with_backoff_then_fail() {
    let mut a = Agent::new(policy(), Persisted::default());
    started(&mut a, at(0), "1.0.0", "rootfs.0", "rootfs.0");
    io(&mut a);
    a.handle(at(1), Input::Manifest(Ok(manifest("1.1.0"))));
    io(&mut a);
    let cut = || {
        Input::Downloaded(Err(OtaError::Truncated {
            expected: 1000,
            got: 10,
        }))
    };
    a.handle(at(10), cut());
    assert_eq!(io(&mut a), []);
    assert_eq!(a.next_wake(), Some(1010));
    a.handle(at(1010), Input::Tick);
    assert_eq!(io(&mut a), [Action::Download(manifest("1.1.0"))]);
    a.handle(at(1020), cut());
    assert_eq!(a.next_wake(), Some(3020));
    a.handle(at(3020), Input::Tick);
    io(&mut a);
    a.handle(at(3030), cut());
    let s = a.status().unwrap();
    assert_eq!(
        (s.state, s.error.unwrap().code.as_str()),
        (Phase::Failed, "truncated")
    );
    // Transient: the same bundle is tried again at the next check.
    a.handle(at(HOUR + 3030), Input::Tick);
    io(&mut a);
    a.handle(at(HOUR + 3031), Input::Manifest(Ok(manifest("1.1.0"))));
    assert_eq!(io(&mut a), [Action::Download(manifest("1.1.0"))]);
}

#[test]
fn a_refused_bundle_is_not_fetched_again() {
    let mut a = ready(policy());
    a.handle(at(40), Input::CallActive(false));
    io(&mut a);
    a.handle(
        at(50),
        Input::Installed(Err(OtaError::BadSignature("x".into()))),
    );
    assert_eq!(a.persisted().refused_sha256, Some(manifest("1.1.0").sha256));
    a.handle(at(HOUR + 50), Input::Tick);
    assert_eq!(io(&mut a), [Action::FetchManifest]);
    a.handle(at(HOUR + 51), Input::Manifest(Ok(manifest("1.1.0"))));
    assert_eq!(io(&mut a), []);
    assert_eq!(a.status().unwrap().error.unwrap().code, "badSignature");
}

#[test]
fn every_step_resumes_after_a_power_cut() {
    // Downloading: the download goes on.
    let p = Persisted {
        phase: Phase::Downloading,
        available: Some(manifest("1.1.0")),
        ..Persisted::default()
    };
    let mut a = Agent::new(policy(), p);
    started(&mut a, at(0), "1.0.0", "rootfs.0", "rootfs.0");
    assert_eq!(io(&mut a), [Action::Download(manifest("1.1.0"))]);
    // Installing: installed again.
    let p = Persisted {
        phase: Phase::Installing,
        available: Some(manifest("1.1.0")),
        ..Persisted::default()
    };
    let mut b = Agent::new(policy(), p);
    started(&mut b, at(0), "1.0.0", "rootfs.0", "rootfs.0");
    assert_eq!(io(&mut b), [Action::Install(manifest("1.1.0"))]);
}

#[test]
fn an_unreachable_feed_or_nothing_offered_is_no_failure() {
    let mut a = Agent::new(policy(), Persisted::default());
    started(&mut a, at(0), "1.0.0", "rootfs.0", "rootfs.0");
    io(&mut a);
    a.handle(at(1), Input::NothingOffered);
    assert_eq!(a.status().unwrap().state, Phase::Idle);
    a.handle(at(HOUR + 1), Input::Tick);
    assert_eq!(io(&mut a), [Action::FetchManifest]);
    a.handle(
        at(HOUR + 2),
        Input::Manifest(Err(OtaError::Network("refused".into()))),
    );
    assert_eq!(a.status().unwrap().state, Phase::Idle);
    assert_eq!(a.next_wake(), Some(2 * HOUR + 2));
    // A feed answering garbage is.
    a.handle(at(2 * HOUR + 2), Input::Tick);
    io(&mut a);
    a.handle(
        at(2 * HOUR + 3),
        Input::Manifest(Err(OtaError::GarbageFeed("x".into()))),
    );
    let s = a.status().unwrap();
    assert_eq!(
        (s.state, s.error.unwrap().code.as_str()),
        (Phase::Failed, "garbageFeed")
    );
}

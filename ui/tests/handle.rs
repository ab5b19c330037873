//! `UiHandle` from other threads, through a real event loop (testing backend with
//! threading). That backend can be set up once per process, so this file has one test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use i_slint_backend_testing::{TestingBackend, TestingBackendOptions};
use portal_ui::{FrameError, FrameStats, PeerView, TileKey, Ui, Update};
use slint::ComponentHandle as _;

fn solid(width: u32, height: u32, value: u8) -> Vec<u8> {
    [value, 255 - value, 0, 255].repeat((width * height) as usize)
}

#[test]
fn frames_from_another_thread_newest_wins_and_a_gone_ui_is_ignored() {
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: true,
        renderer_name: None,
    })))
    .unwrap();

    let ui = Ui::new(|_| {}).unwrap();
    ui.apply(Update::Call(Some("Room".into())));
    ui.apply(Update::Peers(vec![
        PeerView {
            id: 7,
            name: "Ada".into(),
            on_stage: true,
            ..PeerView::default()
        },
        PeerView {
            id: 8,
            name: "Bob".into(),
            ..PeerView::default()
        },
    ]));
    let handle = ui.handle();

    // A "GStreamer thread" pushes 50 frames per tile before the UI runs at all: a UI that
    // is busy (here: not running) must end up with one callback per tile, not 100.
    let producer = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            for value in 1..=50u8 {
                handle
                    .push_frame(TileKey::Camera(7), 4, 2, &solid(4, 2, value))
                    .unwrap();
                handle
                    .push_frame(TileKey::Camera(8), 2, 2, &solid(2, 2, value))
                    .unwrap();
            }
            assert_eq!(
                handle.push_frame(TileKey::Camera(7), 4, 2, &[0; 31]),
                Err(FrameError::WrongLength {
                    width: 4,
                    height: 2,
                    expected: 32,
                    actual: 31
                })
            );
            handle.apply(Update::Clock("10:30".into()));
            handle.quit();
        })
    };
    producer.join().unwrap();
    assert_eq!(
        handle.frame_stats(),
        FrameStats {
            shown: 0,
            dropped: 98
        }
    );

    ui.run().unwrap();

    assert_eq!(
        ui.frame_stats(),
        FrameStats {
            shown: 2,
            dropped: 98
        }
    );
    let api = ui.component().global::<portal_ui_views::Api>();
    assert_eq!(api.get_clock(), "10:30");
    let stage = api.get_stage();
    assert!(stage.has_frame);
    let pixels = stage.frame.to_rgba8().expect("an RGBA frame");
    assert_eq!((pixels.width(), pixels.height()), (4, 2));
    assert_eq!(
        pixels.as_bytes()[..4],
        [50, 205, 0, 255],
        "the newest frame is shown"
    );
    let filmstrip = slint::Model::row_data(&api.get_filmstrip(), 0).unwrap();
    assert_eq!(filmstrip.frame.to_rgba8().unwrap().as_bytes()[0], 50);

    // After the window is gone, handles keep working and do nothing.
    drop(ui);
    let called = Arc::new(AtomicBool::new(false));
    handle
        .push_frame(TileKey::Camera(7), 4, 2, &solid(4, 2, 1))
        .unwrap();
    handle.apply(Update::Clock("never shown".into()));
    {
        let called = Arc::clone(&called);
        slint::invoke_from_event_loop(move || {
            called.store(true, Ordering::SeqCst);
            slint::quit_event_loop().unwrap();
        })
        .unwrap();
    }
    // Hiding the last window queued a quit of its own; run until our marker has run.
    for _ in 0..3 {
        if called.load(Ordering::SeqCst) {
            break;
        }
        slint::run_event_loop().unwrap();
    }
    assert!(
        called.load(Ordering::SeqCst),
        "the queued work ran, without a window"
    );
    assert_eq!(
        handle.frame_stats().shown,
        2,
        "nothing was shown on a gone window"
    );
}

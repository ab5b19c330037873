//! Device descriptions with fallbacks, and errors a caller can act on.

use portal_board::sim::SimBoard;
use portal_board::{Board, DeviceInfo, DeviceKind, ElementDescription, Sink, Source};
use portal_media::{Codec, MediaError, Receiver, ReceiverConfig, Sender, SenderConfig};

fn device(kind: DeviceKind) -> DeviceInfo {
    DeviceInfo {
        id: "test".into(),
        label: "test".into(),
        kind,
    }
}

#[test]
fn a_speaker_falls_back_to_its_next_description() {
    let facts = SimBoard::default().facts();
    let speaker = Sink {
        device: device(DeviceKind::Speaker),
        launch: ElementDescription::new("portalnosuchsink").or("fakesink sync=true"),
    };
    let rx = Receiver::audio(
        &ReceiverConfig::new(Codec::Opus, 111, facts.clone()),
        &speaker,
        None,
    );
    assert!(rx.is_ok(), "{rx:?}");

    let only_bogus = Sink {
        device: device(DeviceKind::Speaker),
        launch: ElementDescription::new("portalnosuchsink"),
    };
    let err = Receiver::audio(
        &ReceiverConfig::new(Codec::Opus, 111, facts),
        &only_bogus,
        None,
    )
    .unwrap_err();
    assert!(matches!(err, MediaError::Build { .. }), "{err}");
}

#[test]
fn a_camera_that_cannot_be_built_fails_the_subscription_and_leaves_nothing_running() {
    let board = SimBoard::default();
    let camera = Source {
        device: device(DeviceKind::Camera),
        launch: ElementDescription::new("portalnosuchsrc"),
    };
    let sender = Sender::new(SenderConfig::new(
        camera,
        board.microphone(None).unwrap(),
        board.facts(),
    ))
    .unwrap();
    assert!(sender.subscribe(Codec::H264, 4).is_err());
    assert_eq!(sender.encoders_running(), 0);
    // Audio does not need the camera.
    let opus = sender.subscribe(Codec::Opus, 4).unwrap();
    assert!(
        opus.recv_timeout(std::time::Duration::from_mins(1))
            .is_some()
    );
}

#[test]
fn opus_is_not_a_video_receiver() {
    let err = Receiver::video(
        &ReceiverConfig::new(Codec::Opus, 111, SimBoard::default().facts()),
        None,
        None,
    )
    .unwrap_err();
    assert!(matches!(err, MediaError::Build { .. }));
}

//! The UI in a desktop window with made-up rooms, peers and moving video, answering its
//! own events the way the kiosk would (toggles, pins, chat, files).
//!
//! `cargo run -p portal-ui --example demo -- [WIDTHxHEIGHT]` (default 1280x720)

use std::time::Duration;

use portal_ui::{
    CallStatus, ChatLine, DeviceInfo, Devices, FilePrompt, FileState, FileView, PairedLaptop,
    PairingView, PeerView, Picture, Quality, RoomView, TileKey, Ui, UiEvent, Update, UpdatePhase,
    UpdateView,
};

fn update(phase: UpdatePhase, progress: Option<f32>) -> Update {
    Update::Update(Some(UpdateView {
        phase,
        current: env!("CARGO_PKG_VERSION").into(),
        available: Some("9.9.9".into()),
        progress,
        ..UpdateView::default()
    }))
}

fn laptops() -> Vec<PairedLaptop> {
    vec![PairedLaptop {
        id: "1".into(),
        name: "Demo laptop".into(),
        presenting: false,
    }]
}

fn peers(pinned: Option<u64>) -> Vec<PeerView> {
    let names = ["Ada", "Bob", "Chioma"];
    (1..=3)
        .zip(names)
        .map(|(id, name)| PeerView {
            id,
            name: name.into(),
            muted: id == 2,
            quality: [Quality::Good, Quality::Fair, Quality::Poor][id as usize - 1],
            on_stage: pinned.map_or(id == 1, |p| p == id),
            pinned: pinned == Some(id),
            ..PeerView::default()
        })
        .collect()
}

fn frame(width: u32, height: u32, tick: u32, tint: [u8; 3]) -> Vec<u8> {
    let mut rgba = Vec::with_capacity((width * height * 4) as usize);
    for y in 0..height {
        for x in 0..width {
            let wave = ((x + y + tick * 4) % 256) as u8 / 3;
            rgba.extend_from_slice(&[
                tint[0] / 2 + wave,
                tint[1] / 2 + wave,
                tint[2] / 2 + wave,
                255,
            ]);
        }
    }
    rgba
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (width, height) = std::env::args()
        .nth(1)
        .and_then(|s| {
            let (w, h) = s.split_once('x')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .unwrap_or((1280, 720));

    let (ui, events) = Ui::with_channel()?;
    ui.window()
        .set_size(slint::PhysicalSize::new(width, height));
    ui.apply(Update::Device(DeviceInfo {
        name: "Demo kiosk".into(),
        address: "127.0.0.1".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }));
    ui.apply(Update::Clock("09:41".into()));
    ui.apply(Update::Rooms(vec![
        RoomView {
            id: "board".into(),
            name: "Board room".into(),
            detail: "3 people here".into(),
        },
        RoomView {
            id: "lobby".into(),
            name: "Lobby".into(),
            detail: String::new(),
        },
    ]));
    ui.apply(Update::Devices(Devices {
        cameras: vec!["Demo camera".into()],
        microphones: vec!["Demo microphone".into()],
        speakers: vec!["Demo speaker".into()],
        camera: "Demo camera".into(),
        microphone: "Demo microphone".into(),
        speaker: "Demo speaker".into(),
    }));

    ui.apply(update(UpdatePhase::Idle, None));
    ui.apply(Update::Pairing(Some(PairingView {
        code: "K7P2XM".into(),
        url: "http://127.0.0.1:8080/p/K7P2XM".into(),
        expires_in_secs: 300,
    })));
    ui.apply(Update::Paired(laptops()));

    // Video: a thread pushing frames, as GStreamer would.
    let handle = ui.handle();
    std::thread::spawn(move || {
        for tick in 0.. {
            for (key, tint) in [
                (TileKey::SelfView, [90, 90, 90]),
                (TileKey::Camera(1), [40, 90, 160]),
                (TileKey::Camera(2), [150, 70, 40]),
                (TileKey::Camera(3), [60, 130, 70]),
            ] {
                let _ = handle.push_frame(key, 320, 180, &frame(320, 180, tick, tint));
            }
            std::thread::sleep(Duration::from_millis(33));
        }
    });

    // The "engine": answers events on another thread through the handle.
    let handle = ui.handle();
    std::thread::spawn(move || {
        let mut files = Vec::new();
        for event in events {
            println!("{event:?}");
            let update = match event {
                UiEvent::JoinRoom(room) | UiEvent::JoinByCode(room) => {
                    handle.apply(Update::Call(Some(room)));
                    handle.apply(Update::Status(CallStatus::Connected));
                    handle.apply(Update::FilePrompt(Some(FilePrompt {
                        id: "1".into(),
                        name: "slides.png".into(),
                        size: 345_000,
                        from: "Ada".into(),
                    })));
                    Update::Peers(peers(None))
                }
                UiEvent::Leave => {
                    handle.apply(Update::Status(CallStatus::Idle));
                    Update::Call(None)
                }
                UiEvent::Pin(peer) => Update::Peers(peers(peer)),
                UiEvent::SendChat(text) => Update::ChatMessage(ChatLine {
                    from: "Demo kiosk".into(),
                    text,
                    mine: true,
                }),
                UiEvent::AcceptFile(id) => {
                    files.push(FileView {
                        id,
                        name: "slides.png".into(),
                        size: 345_000,
                        from: "Ada".into(),
                        progress: 1.0,
                        state: FileState::Done,
                        is_image: true,
                    });
                    handle.apply(Update::Files(files.clone()));
                    Update::FilePrompt(None)
                }
                UiEvent::DeclineFile(_) => Update::FilePrompt(None),
                UiEvent::OpenFile(id) => Update::Image(Some(Picture {
                    title: format!("File {id}"),
                    width: 640,
                    height: 360,
                    rgba: frame(640, 360, 0, [200, 160, 60]),
                })),
                UiEvent::CloseImage => Update::Image(None),
                UiEvent::SetMicMuted(muted) => Update::MicMuted(muted),
                UiEvent::SetCameraOff(off) => Update::CameraOff(off),
                UiEvent::SetVolume(volume) => Update::Volume(volume),
                UiEvent::SetDeviceName(name) => Update::Device(DeviceInfo {
                    name,
                    address: "127.0.0.1".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
                UiEvent::CheckForUpdates => update(UpdatePhase::Ready, None),
                UiEvent::InstallUpdateNow => update(UpdatePhase::Installing, Some(0.6)),
                UiEvent::Unpair(_) => Update::Paired(Vec::new()),
                _ => continue,
            };
            handle.apply(update);
        }
    });

    ui.run()?;
    Ok(())
}

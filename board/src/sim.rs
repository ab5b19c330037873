//! A board with no hardware: live test sources and a speaker that plays to nowhere in real
//! time. Tests, CI and laptops run the kiosk on it.
//!
//! The default camera, `sim:call`, is `portalsimcam` (registered by `portal-media` when it
//! initialises GStreamer): what a webcam in a call mostly shows — a still field, a disc
//! drifting across it, a frame counter — the same kind of picture as Chromium's fake camera,
//! drawn at almost no cost, as a V4L2 camera delivers frames by DMA. Where that element is not
//! registered (a plain `gst-launch-1.0`), its description falls back to scrolling bars. The
//! other cameras are `videotestsrc` patterns: `sim:bars`, SMPTE bars scrolling sideways
//! (every pixel changes every frame: the encoder's worst case, ~5 % of a core at 720p30 to
//! draw), `sim:ball` (~17 %: an anti-aliased ball painted per pixel) and a still
//! `sim:smpte`. The microphone is a quiet sine tone, and the default speaker (`sim:null`) is
//! a `fakesink sync=true`, which takes the decoded audio at the pace of the clock, as a sound
//! card would. `sim:alsa-null` goes through ALSA's `null` device instead (with
//! `provide-clock=false`), for checking the ALSA path; that device does not run in real
//! time, so GStreamer's ring buffer spins a core writing to it, and it is not the default.
//!
//! The status panel ([`SimPanel`]) writes its frames as PNG files, and the button
//! ([`sim_button`]) is pressed from software.

mod button;
mod panel;

pub use button::{SimButton, SimButtonHandle, sim_button};
pub use panel::{SimPanel, from_png, to_png};

use crate::{
    Backend, Board, BoardFacts, DeviceInfo, DeviceKind, ElementDescription, Error, Sink, Source,
    Support, pick,
};

/// The element `portal-media` registers (as `portal_media::simcam`) for `sim:call`.
pub const SIM_CAMERA_ELEMENT: &str = "portalsimcam";

/// Scrolling SMPTE bars.
const BARS: &str = "videotestsrc is-live=true pattern=smpte horizontal-speed=8";

/// Cameras offered, as (id suffix, launch descriptions in order of preference, label); the
/// first is the default.
const CAMERAS: &[(&str, &[&str], &str)] = &[
    (
        "call",
        &[SIM_CAMERA_ELEMENT, BARS],
        "Test camera (a call: still field, moving disc)",
    ),
    ("bars", &[BARS], "Test camera (moving colour bars)"),
    (
        "ball",
        &["videotestsrc is-live=true pattern=ball"],
        "Test camera (moving ball)",
    ),
    (
        "smpte",
        &["videotestsrc is-live=true pattern=smpte"],
        "Test camera (still colour bars)",
    ),
];

/// The simulated board.
#[derive(Clone, Debug, Default)]
pub struct SimBoard {
    _private: (),
}

impl SimBoard {
    fn all_devices() -> Vec<DeviceInfo> {
        let mut devices: Vec<DeviceInfo> = CAMERAS
            .iter()
            .map(|(id, _, label)| DeviceInfo {
                id: format!("sim:{id}"),
                label: (*label).to_owned(),
                kind: DeviceKind::Camera,
            })
            .collect();
        devices.push(DeviceInfo {
            id: "sim:tone".into(),
            label: "Test microphone (440 Hz tone)".into(),
            kind: DeviceKind::Microphone,
        });
        devices.push(DeviceInfo {
            id: "sim:null".into(),
            label: "Silent speaker".into(),
            kind: DeviceKind::Speaker,
        });
        devices.push(DeviceInfo {
            id: "sim:alsa-null".into(),
            label: "ALSA null device".into(),
            kind: DeviceKind::Speaker,
        });
        devices
    }
}

impl Board for SimBoard {
    fn backend(&self) -> Backend {
        Backend::Sim
    }

    fn facts(&self) -> BoardFacts {
        BoardFacts {
            model: "simulated board".into(),
            h264_encode: Support::No,
            h264_decode: Support::No,
        }
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, Error> {
        Ok(Self::all_devices())
    }

    fn camera(&self, id: Option<&str>) -> Result<Source, Error> {
        let devices = Self::all_devices();
        let device = pick(&devices, DeviceKind::Camera, id)?.clone();
        let launches = CAMERAS
            .iter()
            .find(|(suffix, _, _)| device.id.strip_prefix("sim:") == Some(*suffix))
            .map_or(CAMERAS[0].1, |(_, launches, _)| *launches);
        let (first, rest) = launches
            .split_first()
            .expect("every camera has a description");
        let launch = rest
            .iter()
            .fold(ElementDescription::new(*first), |d, next| d.or(*next));
        Ok(Source { device, launch })
    }

    fn microphone(&self, id: Option<&str>) -> Result<Source, Error> {
        let devices = Self::all_devices();
        let device = pick(&devices, DeviceKind::Microphone, id)?.clone();
        Ok(Source {
            device,
            launch: ElementDescription::new(
                "audiotestsrc is-live=true wave=sine freq=440 volume=0.2",
            ),
        })
    }

    fn speaker(&self, id: Option<&str>) -> Result<Sink, Error> {
        let devices = Self::all_devices();
        let device = pick(&devices, DeviceKind::Speaker, id)?.clone();
        let launch = if device.id == "sim:alsa-null" {
            ElementDescription::new("alsasink device=null provide-clock=false")
                .or("fakesink sync=true")
        } else {
            ElementDescription::new("fakesink sync=true")
        };
        Ok(Sink { device, launch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn defaults_are_live_test_sources() {
        let board = SimBoard::default();
        let cam = board.camera(None).unwrap();
        assert_eq!(cam.device.id, "sim:call");
        assert_eq!(
            cam.launch.candidates().collect::<Vec<_>>(),
            [
                "portalsimcam",
                "videotestsrc is-live=true pattern=smpte horizontal-speed=8"
            ]
        );
        let bars = board.camera(Some("sim:bars")).unwrap();
        assert_eq!(
            bars.launch.candidates().collect::<Vec<_>>(),
            ["videotestsrc is-live=true pattern=smpte horizontal-speed=8"]
        );
        let mic = board.microphone(None).unwrap();
        assert!(
            mic.launch
                .preferred()
                .starts_with("audiotestsrc is-live=true")
        );
        let spk = board.speaker(None).unwrap();
        assert_eq!(
            spk.launch.candidates().collect::<Vec<_>>(),
            ["fakesink sync=true"]
        );
        let alsa = board.speaker(Some("sim:alsa-null")).unwrap();
        assert_eq!(
            alsa.launch.candidates().collect::<Vec<_>>(),
            [
                "alsasink device=null provide-clock=false",
                "fakesink sync=true"
            ]
        );
    }

    #[test]
    fn cameras_by_id() {
        let board = SimBoard::default();
        let cam = board.camera(Some("sim:smpte")).unwrap();
        assert_eq!(
            cam.launch.preferred(),
            "videotestsrc is-live=true pattern=smpte"
        );
        assert_eq!(
            board.camera(Some("/dev/video0")).unwrap_err().kind(),
            ErrorKind::UnknownDevice
        );
    }

    #[test]
    fn lists_one_of_each_kind_at_least() {
        let devices = SimBoard::default().devices().unwrap();
        for kind in [
            DeviceKind::Camera,
            DeviceKind::Microphone,
            DeviceKind::Speaker,
        ] {
            assert!(devices.iter().any(|d| d.kind == kind), "{kind}");
        }
        assert!(!SimBoard::default().facts().try_hardware_h264_encode());
    }
}

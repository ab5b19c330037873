//! A board with no hardware: GStreamer's live test sources and a speaker that plays to
//! nowhere in real time. Tests, CI and laptops run the kiosk on it.
//!
//! Cameras are `videotestsrc` patterns. The default, `sim:bars`, is SMPTE bars scrolling
//! sideways: every frame changes, so encoders and decoders do real work, and it costs about
//! a third of `sim:ball` to draw (at 720p30 ~6 % of a core against ~17 %: the ball pattern
//! renders an anti-aliased circle per frame in software), which would otherwise be counted
//! against the kiosk in `cargo xtask bench kiosk`. The microphone is a quiet sine tone, and the default speaker (`sim:null`) is a
//! `fakesink sync=true`, which takes the decoded audio at the pace of the clock, as a sound
//! card would. `sim:alsa-null` goes through ALSA's `null` device instead (with
//! `provide-clock=false`), for checking the ALSA path; that device does not run in real
//! time, so GStreamer's ring buffer spins a core writing to it, and it is not the default.

use crate::{
    Backend, Board, BoardFacts, DeviceInfo, DeviceKind, ElementDescription, Error, Sink, Source,
    Support, pick,
};

/// Camera patterns offered, as (id suffix, `videotestsrc` properties, label); the first is
/// the default.
const CAMERAS: &[(&str, &str, &str)] = &[
    (
        "bars",
        "pattern=smpte horizontal-speed=8",
        "Test camera (moving colour bars)",
    ),
    ("ball", "pattern=ball", "Test camera (moving ball)"),
    ("smpte", "pattern=smpte", "Test camera (still colour bars)"),
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
        let pattern = CAMERAS
            .iter()
            .find(|(suffix, _, _)| device.id.strip_prefix("sim:") == Some(*suffix))
            .map_or(CAMERAS[0].1, |(_, pattern, _)| *pattern);
        Ok(Source {
            device,
            launch: ElementDescription::new(format!("videotestsrc is-live=true {pattern}")),
        })
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
        assert_eq!(cam.device.id, "sim:bars");
        assert_eq!(
            cam.launch.preferred(),
            "videotestsrc is-live=true pattern=smpte horizontal-speed=8"
        );
        assert!(
            cam.launch
                .preferred()
                .starts_with("videotestsrc is-live=true")
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

//! The kiosk's hardware, seen from the rest of the firmware.
//!
//! A board offers a camera, a microphone and a speaker. The media crate builds GStreamer
//! pipelines, so this crate describes each device as a GStreamer *element description*
//! (the text `gst-launch-1.0` takes, e.g. `v4l2src device=/dev/video0`) instead of opening
//! devices itself: the board decides *which* device and element, the media crate decides
//! what to do with the stream. That keeps this crate free of GStreamer and of device
//! libraries, so the UI's Settings screen can list devices without pulling in media code.
//!
//! Two backends, picked at run time with [`open`] (each is also a cargo feature):
//! - [`sim`] (default): test sources that need no hardware — `portal-media`'s own
//!   `portalsimcam` (falling back to `videotestsrc is-live=true`), `videotestsrc` patterns,
//!   `audiotestsrc is-live=true`, and a speaker that takes audio in real time
//!   (`fakesink sync=true`; `sim:alsa-null` uses ALSA's `null` device). Used by tests,
//!   CI and laptops.
//! - [`linux`] (feature `linux`): V4L2 and libcamera cameras and ALSA devices found in
//!   sysfs and procfs; no ioctl, so no device library and no libclang.
//!
//! Besides the media devices, a board may have a status panel ([`panel`]: a small
//! monochrome display) and a button ([`button`]: short and long presses). Each is a trait
//! with a `sim` and a `linux` implementation; both are optional on a real kiosk.
//!
//! Board facts (does it encode H.264 in hardware?) are hints: the media crate still
//! checks that an element exists before using it (ARCHITECTURE.md: pick the encoder at
//! run time, never by board name alone).

#[cfg(feature = "linux")]
pub mod linux;
#[cfg(feature = "sim")]
pub mod sim;

pub mod button;
mod error;
pub mod panel;

pub use button::{Button, Press};
pub use panel::{Panel, PanelCall, PanelState};

pub use error::{Error, ErrorKind};

use std::fmt;
use std::str::FromStr;

/// What a device is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceKind {
    Camera,
    Microphone,
    Speaker,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Camera => "camera",
            DeviceKind::Microphone => "microphone",
            DeviceKind::Speaker => "speaker",
        })
    }
}

/// One device as the Settings screen lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Stable id to store in the kiosk's config (`/dev/video0`, `plughw:1,0`, `sim:call`).
    pub id: String,
    /// What a person reads ("HD Pro Webcam C920").
    pub label: String,
    pub kind: DeviceKind,
}

/// A GStreamer element description with fallbacks, tried in order.
///
/// Each entry is a `gst-launch` fragment. The first one whose elements all exist on the
/// running system is used; later entries cover systems without an optional plugin (the
/// sim speaker falls back from `alsasink` to `fakesink` where gstreamer1.0-alsa is not
/// installed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementDescription {
    candidates: Vec<String>,
}

impl ElementDescription {
    /// One description, no fallback.
    pub fn new(launch: impl Into<String>) -> Self {
        ElementDescription {
            candidates: vec![launch.into()],
        }
    }

    /// Adds a fallback, tried when every earlier candidate is unusable.
    #[must_use]
    pub fn or(mut self, launch: impl Into<String>) -> Self {
        self.candidates.push(launch.into());
        self
    }

    /// The preferred description.
    pub fn preferred(&self) -> &str {
        &self.candidates[0]
    }

    /// Every candidate, preferred first.
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        self.candidates.iter().map(String::as_str)
    }
}

impl fmt::Display for ElementDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.candidates.join(" | "))
    }
}

/// A source of raw media (video frames or audio samples). The media crate appends its
/// own conversion (`videoconvert`, `audioresample`, caps) after [`Source::launch`], so
/// the source may produce whatever format the device gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub device: DeviceInfo,
    pub launch: ElementDescription,
}

/// A sink for decoded audio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sink {
    pub device: DeviceInfo,
    pub launch: ElementDescription,
}

/// Whether the board does something in hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    Yes,
    No,
    /// The board is not one we know; probe the elements.
    Unknown,
}

/// What the board is and can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardFacts {
    /// Model name ("Raspberry Pi 4 Model B Rev 1.5", "simulated board").
    pub model: String,
    /// H.264 encoding in hardware (V4L2 M2M, `v4l2h264enc`).
    pub h264_encode: Support,
    /// H.264 decoding in hardware (V4L2 M2M, `v4l2h264dec`).
    pub h264_decode: Support,
}

impl BoardFacts {
    /// Whether the media crate should try the hardware H.264 encoder element first.
    pub fn try_hardware_h264_encode(&self) -> bool {
        self.h264_encode != Support::No
    }

    /// Whether the media crate should try the hardware H.264 decoder element first.
    pub fn try_hardware_h264_decode(&self) -> bool {
        self.h264_decode != Support::No
    }
}

/// Which devices to use; `None` picks the board's default for that kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceChoice {
    pub camera: Option<String>,
    pub microphone: Option<String>,
    pub speaker: Option<String>,
}

/// The hardware the kiosk runs on.
pub trait Board: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// What the board is and can do.
    fn facts(&self) -> BoardFacts;
    /// Every camera, microphone and speaker found now (devices come and go: USB).
    fn devices(&self) -> Result<Vec<DeviceInfo>, Error>;
    /// The camera with this id, or the default one.
    fn camera(&self, id: Option<&str>) -> Result<Source, Error>;
    /// The microphone with this id, or the default one.
    fn microphone(&self, id: Option<&str>) -> Result<Source, Error>;
    /// The speaker with this id, or the default one.
    fn speaker(&self, id: Option<&str>) -> Result<Sink, Error>;
}

/// A board backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    Sim,
    Linux,
}

impl Backend {
    /// Whether this build includes the backend (its cargo feature is on).
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Sim => cfg!(feature = "sim"),
            Backend::Linux => cfg!(feature = "linux"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sim => "sim",
            Backend::Linux => "linux",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sim" => Ok(Backend::Sim),
            "linux" => Ok(Backend::Linux),
            other => Err(Error::new(
                ErrorKind::BackendUnavailable,
                format!("unknown board backend {other:?} (expected \"sim\" or \"linux\")"),
            )),
        }
    }
}

/// Opens a backend chosen at run time (from the kiosk's config or command line).
pub fn open(backend: Backend) -> Result<Box<dyn Board>, Error> {
    tracing::debug!(%backend, "opening board backend");
    match backend {
        #[cfg(feature = "sim")]
        Backend::Sim => Ok(Box::new(sim::SimBoard::default())),
        #[cfg(feature = "linux")]
        Backend::Linux => Ok(Box::new(linux::LinuxBoard::new())),
        #[allow(unreachable_patterns)]
        other => Err(Error::new(
            ErrorKind::BackendUnavailable,
            format!(
                "board backend {other} is not compiled into this build (cargo feature \"{other}\")"
            ),
        )),
    }
}

/// Finds a device of `kind` by id among `devices`, or the first one when `id` is `None`.
#[cfg_attr(not(any(feature = "sim", feature = "linux")), allow(dead_code))]
pub(crate) fn pick<'a>(
    devices: &'a [DeviceInfo],
    kind: DeviceKind,
    id: Option<&str>,
) -> Result<&'a DeviceInfo, Error> {
    let mut of_kind = devices.iter().filter(|d| d.kind == kind);
    match id {
        None => of_kind
            .next()
            .ok_or_else(|| Error::new(ErrorKind::NoDevice, format!("no {kind} found"))),
        Some(id) => of_kind.find(|d| d.id == id).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownDevice,
                format!("no {kind} with id {id:?}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for b in [Backend::Sim, Backend::Linux] {
            assert_eq!(b.as_str().parse::<Backend>().unwrap(), b);
        }
        let err = "v4l".parse::<Backend>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BackendUnavailable);
    }

    #[test]
    fn open_reports_a_backend_left_out_of_the_build() {
        for b in [Backend::Sim, Backend::Linux] {
            match open(b) {
                Ok(board) => {
                    assert!(b.is_compiled());
                    assert_eq!(board.backend(), b);
                }
                Err(e) => {
                    assert!(!b.is_compiled());
                    assert_eq!(e.kind(), ErrorKind::BackendUnavailable);
                }
            }
        }
    }

    #[test]
    fn element_description_keeps_fallback_order() {
        let d = ElementDescription::new("alsasink").or("fakesink");
        assert_eq!(d.preferred(), "alsasink");
        assert_eq!(d.candidates().collect::<Vec<_>>(), ["alsasink", "fakesink"]);
    }

    #[test]
    fn pick_by_id_or_first() {
        let devs = vec![
            DeviceInfo {
                id: "a".into(),
                label: "A".into(),
                kind: DeviceKind::Speaker,
            },
            DeviceInfo {
                id: "b".into(),
                label: "B".into(),
                kind: DeviceKind::Camera,
            },
        ];
        assert_eq!(pick(&devs, DeviceKind::Camera, None).unwrap().id, "b");
        assert_eq!(
            pick(&devs, DeviceKind::Camera, Some("a"))
                .unwrap_err()
                .kind(),
            ErrorKind::UnknownDevice
        );
        assert_eq!(
            pick(&devs, DeviceKind::Microphone, None)
                .unwrap_err()
                .kind(),
            ErrorKind::NoDevice
        );
    }
}

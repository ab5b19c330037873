//! A real Linux board: V4L2 and libcamera cameras, ALSA microphones and speakers.
//!
//! Devices are found by reading sysfs and procfs, not by ioctl, so this backend needs no
//! device library:
//! - cameras: `/sys/class/video4linux/video*/{name,index}`. Only a device's first node
//!   (`index` 0) is a capture node; memory-to-memory codec and ISP nodes (`bcm2835-codec`,
//!   `bcm2835-isp`, `pispbe`, `rpi-hevc-dec`) are not cameras. A CSI camera receiver
//!   (`unicam`, `rp1-cfe`) means the camera is driven through libcamera (`libcamerasrc`);
//!   a USB UVC camera goes through `v4l2src ! decodebin` (MJPEG or raw alike).
//! - audio: `/proc/asound/pcm`, one line per PCM with `playback N` / `capture N`; the
//!   device id is `plughw:CARD,DEVICE` so ALSA converts rates and formats for us.
//! - facts: `/proc/device-tree/model`. A Pi 4 (and 3) encodes and decodes H.264 in
//!   hardware through V4L2 M2M; a Pi 5 does neither. A `bcm2835-codec-encode` node also
//!   counts as a hardware encoder on any board.
//!
//! [`LinuxBoard::with_root`] reads the same files under another directory, which is how
//! the tests run without the hardware.
//!
//! The status panel is an SSD1306 on I2C ([`LinuxPanel`]) and the button a GPIO line
//! ([`LinuxButton`]); the kiosk opens them from its config, and either may be absent.

mod button;
mod panel;

pub use button::LinuxButton;
pub use panel::LinuxPanel;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{
    Backend, Board, BoardFacts, DeviceInfo, DeviceKind, ElementDescription, Error, Sink, Source,
    Support, pick,
};

/// Device id of the libcamera-driven CSI camera.
pub const LIBCAMERA_ID: &str = "libcamera";

/// V4L2 node names that are codecs or image processors, not cameras.
const NOT_CAMERAS: &[&str] = &["codec", "isp", "pispbe", "hevc", "m2m", "jpeg", "scaler"];
/// V4L2 node names of CSI receivers whose camera needs libcamera.
const CSI_RECEIVERS: &[&str] = &["unicam", "rp1-cfe"];

/// The running Linux system's devices.
#[derive(Clone, Debug)]
pub struct LinuxBoard {
    root: PathBuf,
}

impl Default for LinuxBoard {
    fn default() -> Self {
        Self::new()
    }
}

impl LinuxBoard {
    /// The devices of this machine (`/sys`, `/proc`).
    pub fn new() -> Self {
        Self::with_root("/")
    }

    /// Reads `sys/` and `proc/` under `root` instead of `/`.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        LinuxBoard { root: root.into() }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `(node, name)` of every V4L2 device's first node, sorted by node.
    fn v4l2_nodes(&self) -> Result<Vec<(String, String)>, Error> {
        let dir = self.path("sys/class/video4linux");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
        };
        let mut nodes = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
            let node = entry.file_name().to_string_lossy().into_owned();
            if !node.starts_with("video") {
                continue;
            }
            let name = read_trimmed(&entry.path().join("name")).unwrap_or_default();
            let index = read_trimmed(&entry.path().join("index")).unwrap_or_else(|| "0".into());
            if index == "0" {
                nodes.push((node, name));
            }
        }
        nodes.sort_by_key(|(node, _)| node_number(node));
        Ok(nodes)
    }

    fn cameras(&self) -> Result<Vec<DeviceInfo>, Error> {
        let mut cameras = Vec::new();
        let mut csi = false;
        for (node, name) in self.v4l2_nodes()? {
            let lower = name.to_ascii_lowercase();
            if CSI_RECEIVERS.iter().any(|r| lower.starts_with(r)) {
                csi = true;
            } else if !NOT_CAMERAS.iter().any(|n| lower.contains(n)) {
                cameras.push(DeviceInfo {
                    id: format!("/dev/{node}"),
                    label: if name.is_empty() { node } else { name },
                    kind: DeviceKind::Camera,
                });
            }
        }
        if csi {
            cameras.insert(
                0,
                DeviceInfo {
                    id: LIBCAMERA_ID.into(),
                    label: "Camera module (CSI)".into(),
                    kind: DeviceKind::Camera,
                },
            );
        }
        Ok(cameras)
    }

    fn audio(&self) -> Result<Vec<DeviceInfo>, Error> {
        let path = self.path("proc/asound/pcm");
        match fs::read_to_string(&path) {
            Ok(text) => Ok(parse_asound_pcm(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }
}

impl Board for LinuxBoard {
    fn backend(&self) -> Backend {
        Backend::Linux
    }

    fn facts(&self) -> BoardFacts {
        let model = fs::read(self.path("proc/device-tree/model"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .trim_end_matches('\0')
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        let (mut encode, decode) = facts_for_model(&model);
        let has_encoder_node = self
            .v4l2_nodes_all_names()
            .iter()
            .any(|n| n.contains("codec-encode") || n.contains("h264-enc"));
        if has_encoder_node {
            encode = Support::Yes;
        }
        BoardFacts {
            model: if model.is_empty() {
                "unknown Linux board".into()
            } else {
                model
            },
            h264_encode: encode,
            h264_decode: decode,
        }
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, Error> {
        let mut devices = self.cameras()?;
        devices.extend(self.audio()?);
        Ok(devices)
    }

    fn camera(&self, id: Option<&str>) -> Result<Source, Error> {
        let cameras = self.cameras()?;
        let device = pick(&cameras, DeviceKind::Camera, id)?.clone();
        let launch = if device.id == LIBCAMERA_ID {
            ElementDescription::new("libcamerasrc")
        } else {
            ElementDescription::new(format!("v4l2src device={} ! decodebin", device.id))
        };
        Ok(Source { device, launch })
    }

    fn microphone(&self, id: Option<&str>) -> Result<Source, Error> {
        let audio = self.audio()?;
        let device = pick(&audio, DeviceKind::Microphone, id)?.clone();
        let launch = ElementDescription::new(format!("alsasrc device={}", device.id));
        Ok(Source { device, launch })
    }

    fn speaker(&self, id: Option<&str>) -> Result<Sink, Error> {
        let audio = self.audio()?;
        let device = pick(&audio, DeviceKind::Speaker, id)?.clone();
        let launch = ElementDescription::new(format!("alsasink device={}", device.id));
        Ok(Sink { device, launch })
    }
}

impl LinuxBoard {
    /// Names of every V4L2 node, whatever its index (codec nodes are often not index 0).
    fn v4l2_nodes_all_names(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.path("sys/class/video4linux")) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| read_trimmed(&e.path().join("name")))
            .collect()
    }
}

/// What a board of this device-tree model does in hardware.
fn facts_for_model(model: &str) -> (Support, Support) {
    if model.starts_with("Raspberry Pi 5") || model.starts_with("Raspberry Pi Compute Module 5") {
        (Support::No, Support::No)
    } else if model.starts_with("Raspberry Pi 4")
        || model.starts_with("Raspberry Pi 3")
        || model.starts_with("Raspberry Pi Compute Module 4")
        || model.starts_with("Raspberry Pi 400")
    {
        (Support::Yes, Support::Yes)
    } else {
        (Support::Unknown, Support::Unknown)
    }
}

/// Parses `/proc/asound/pcm`: `CC-DD: id : name : playback N : capture N`.
fn parse_asound_pcm(text: &str) -> Vec<DeviceInfo> {
    let mut microphones = Vec::new();
    let mut speakers = Vec::new();
    for line in text.lines() {
        let mut fields = line.split(':').map(str::trim);
        let Some((card, device)) = fields.next().and_then(|f| f.split_once('-')) else {
            continue;
        };
        let (Ok(card), Ok(device)) = (card.parse::<u32>(), device.parse::<u32>()) else {
            continue;
        };
        let _id = fields.next();
        let name = fields.next().unwrap_or_default().to_owned();
        let id = format!("plughw:{card},{device}");
        let label = if name.is_empty() { id.clone() } else { name };
        for f in fields {
            if f.starts_with("playback") {
                speakers.push(DeviceInfo {
                    id: id.clone(),
                    label: label.clone(),
                    kind: DeviceKind::Speaker,
                });
            } else if f.starts_with("capture") {
                microphones.push(DeviceInfo {
                    id: id.clone(),
                    label: label.clone(),
                    kind: DeviceKind::Microphone,
                });
            }
        }
    }
    microphones.extend(speakers);
    microphones
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn node_number(node: &str) -> u32 {
    node.trim_start_matches("video").parse().unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// A fake `/` in a temp directory, removed on drop.
    struct FakeRoot(PathBuf);

    impl FakeRoot {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "portal-board-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            FakeRoot(dir)
        }

        fn write(&self, rel: &str, contents: &str) {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }

        fn v4l2(&self, node: &str, name: &str, index: u32) {
            self.write(
                &format!("sys/class/video4linux/{node}/name"),
                &format!("{name}\n"),
            );
            self.write(
                &format!("sys/class/video4linux/{node}/index"),
                &format!("{index}\n"),
            );
        }
    }

    impl Drop for FakeRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const PI4_PCM: &str = "\
00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8
01-00: USB Audio : USB Audio : playback 1 : capture 1
";

    #[test]
    fn pi4_with_a_usb_webcam() {
        let root = FakeRoot::new("pi4");
        root.write("proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.5\0");
        root.v4l2("video0", "HD Pro Webcam C920", 0);
        root.v4l2("video1", "HD Pro Webcam C920", 1);
        root.v4l2("video10", "bcm2835-codec-decode", 0);
        root.v4l2("video11", "bcm2835-codec-encode", 0);
        root.v4l2("video12", "bcm2835-codec-isp", 0);
        root.write("proc/asound/pcm", PI4_PCM);
        let board = LinuxBoard::with_root(&root.0);

        let facts = board.facts();
        assert_eq!(facts.model, "Raspberry Pi 4 Model B Rev 1.5");
        assert_eq!(facts.h264_encode, Support::Yes);

        let cam = board.camera(None).unwrap();
        assert_eq!(cam.device.id, "/dev/video0");
        assert_eq!(cam.device.label, "HD Pro Webcam C920");
        assert_eq!(
            cam.launch.preferred(),
            "v4l2src device=/dev/video0 ! decodebin"
        );

        let mic = board.microphone(None).unwrap();
        assert_eq!(mic.launch.preferred(), "alsasrc device=plughw:1,0");
        let spk = board.speaker(None).unwrap();
        assert_eq!(spk.launch.preferred(), "alsasink device=plughw:0,0");
        let usb = board.speaker(Some("plughw:1,0")).unwrap();
        assert_eq!(usb.device.label, "USB Audio");

        let cameras = board
            .devices()
            .unwrap()
            .into_iter()
            .filter(|d| d.kind == DeviceKind::Camera)
            .count();
        assert_eq!(cameras, 1, "codec and ISP nodes are not cameras");
    }

    #[test]
    fn pi5_with_a_csi_camera_uses_libcamera_and_software_h264() {
        let root = FakeRoot::new("pi5");
        root.write("proc/device-tree/model", "Raspberry Pi 5 Model B Rev 1.0\0");
        root.v4l2("video0", "rp1-cfe", 0);
        root.v4l2("video20", "pispbe", 0);
        let board = LinuxBoard::with_root(&root.0);
        assert_eq!(board.facts().h264_encode, Support::No);
        assert!(!board.facts().try_hardware_h264_encode());
        let cam = board.camera(None).unwrap();
        assert_eq!(cam.device.id, LIBCAMERA_ID);
        assert_eq!(cam.launch.preferred(), "libcamerasrc");
        assert_eq!(
            board.microphone(None).unwrap_err().kind(),
            ErrorKind::NoDevice
        );
    }

    #[test]
    fn an_empty_system_has_no_devices_and_unknown_facts() {
        let root = FakeRoot::new("empty");
        let board = LinuxBoard::with_root(&root.0);
        assert!(board.devices().unwrap().is_empty());
        assert_eq!(board.facts().h264_encode, Support::Unknown);
        assert_eq!(board.camera(None).unwrap_err().kind(), ErrorKind::NoDevice);
    }

    #[test]
    fn odd_pcm_lines_are_skipped() {
        let devices =
            parse_asound_pcm("garbage\nxx-yy: a : b : playback 1\n02-03: id : : capture 1\n");
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].id, "plughw:2,3");
        assert_eq!(devices[0].label, "plughw:2,3");
        assert_eq!(devices[0].kind, DeviceKind::Microphone);
    }
}

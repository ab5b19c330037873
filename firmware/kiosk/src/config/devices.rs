//! The board's sections of the config file: which media devices to use (`[devices]`), and
//! the optional status panel (`[panel]`) and button (`[button]`).
//!
//! ```toml
//! [devices]                  # board device ids (the Settings screen lists them); default: the board's first
//! camera = "/dev/video0"     # sim: "sim:call", "sim:bars", ...
//! microphone = "plughw:1,0"
//! speaker = "plughw:1,0"
//! [panel]                    # an SSD1306 128x64 on I2C ...
//! i2c = "/dev/i2c-1"
//! address = 0x3c
//! # png_dir = "/tmp/panel"   # ... or the simulated panel, writing panel.png there
//! [button]                   # a button between a GPIO line and ground ...
//! chip = "/dev/gpiochip0"
//! line = 17
//! active_low = true          # the default; false when it pulls the line high
//! # sim = true               # ... or the simulated one, pressed with POST /button
//! ```
//!
//! Without a section the kiosk has no panel or button; a configured device that cannot
//! be opened is a warning in the log, and the kiosk runs without it.

use std::path::PathBuf;

use anyhow::bail;
use serde::Deserialize;

/// Which of the board's devices to use; `None`: the board's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Devices {
    pub camera: Option<String>,
    pub microphone: Option<String>,
    pub speaker: Option<String>,
}

/// The status panel: which one, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PanelConfig {
    /// An SSD1306 on the I2C bus `bus` at `address`.
    I2c { bus: String, address: u8 },
    /// The simulated panel, writing `panel.png` into the directory.
    Png(PathBuf),
}

/// The button: which one, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ButtonConfig {
    /// A GPIO line.
    Gpio {
        chip: String,
        line: u32,
        active_low: bool,
    },
    /// The simulated button, pressed through the local endpoint.
    Sim,
}

/// `[panel]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PanelFile {
    pub i2c: Option<String>,
    pub address: Option<u8>,
    pub png_dir: Option<PathBuf>,
}

/// `[button]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ButtonFile {
    pub chip: Option<String>,
    pub line: Option<u32>,
    pub active_low: Option<bool>,
    #[serde(default)]
    pub sim: bool,
}

/// The SSD1306's usual address.
const DEFAULT_PANEL_ADDRESS: u8 = 0x3c;

impl PanelFile {
    pub(crate) fn resolve(self) -> anyhow::Result<Option<PanelConfig>> {
        match (self.i2c, self.png_dir) {
            (Some(_), Some(_)) => bail!("[panel] has both i2c and png_dir: pick one"),
            (Some(bus), None) => Ok(Some(PanelConfig::I2c {
                bus,
                address: self.address.unwrap_or(DEFAULT_PANEL_ADDRESS),
            })),
            (None, Some(dir)) => Ok(Some(PanelConfig::Png(dir))),
            (None, None) if self.address.is_some() => {
                bail!("[panel] has an address but no i2c bus")
            }
            (None, None) => Ok(None),
        }
    }
}

impl ButtonFile {
    pub(crate) fn resolve(self) -> anyhow::Result<Option<ButtonConfig>> {
        match (self.sim, self.chip, self.line) {
            (true, None, None) => Ok(Some(ButtonConfig::Sim)),
            (true, ..) => bail!("[button] is either sim = true or a chip and a line"),
            (false, Some(chip), Some(line)) => Ok(Some(ButtonConfig::Gpio {
                chip,
                line,
                active_low: self.active_low.unwrap_or(true),
            })),
            (false, None, None) => Ok(None),
            (false, ..) => bail!("[button] needs both chip and line"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_and_button_sections() {
        let panel: PanelFile = toml::from_str("i2c = \"/dev/i2c-1\"\naddress = 0x3d\n").unwrap();
        assert_eq!(
            panel.resolve().unwrap(),
            Some(PanelConfig::I2c {
                bus: "/dev/i2c-1".into(),
                address: 0x3d
            })
        );
        let panel: PanelFile = toml::from_str("i2c = \"/dev/i2c-1\"\n").unwrap();
        assert!(matches!(
            panel.resolve().unwrap(),
            Some(PanelConfig::I2c { address: 0x3c, .. })
        ));
        let panel: PanelFile = toml::from_str("png_dir = \"/tmp/p\"\n").unwrap();
        assert_eq!(
            panel.resolve().unwrap(),
            Some(PanelConfig::Png("/tmp/p".into()))
        );
        assert_eq!(PanelFile::default().resolve().unwrap(), None);
        let both: PanelFile = toml::from_str("i2c = \"/dev/i2c-1\"\npng_dir = \"/tmp\"\n").unwrap();
        assert!(both.resolve().is_err());
        assert!(toml::from_str::<PanelFile>("address = 300\n").is_err());

        let button: ButtonFile = toml::from_str("chip = \"/dev/gpiochip0\"\nline = 17\n").unwrap();
        assert_eq!(
            button.resolve().unwrap(),
            Some(ButtonConfig::Gpio {
                chip: "/dev/gpiochip0".into(),
                line: 17,
                active_low: true
            })
        );
        let sim: ButtonFile = toml::from_str("sim = true\n").unwrap();
        assert_eq!(sim.resolve().unwrap(), Some(ButtonConfig::Sim));
        for bad in ["line = 17\n", "sim = true\nline = 3\n"] {
            let file: ButtonFile = toml::from_str(bad).unwrap();
            assert!(file.resolve().is_err(), "{bad}");
        }
        assert_eq!(ButtonFile::default().resolve().unwrap(), None);
    }
}

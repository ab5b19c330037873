//! The feed's manifest (`GET /updates/{compatible}/manifest.json`) and the version rules.

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::OtaError;

/// Largest manifest the agent reads.
pub const MAX_MANIFEST: usize = 64 * 1024;

/// What the feed offers. Written by `cargo xtask bundle`; the bundle's signature is RAUC's
/// to check, the rest is checked here before a byte of the bundle is fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: Version,
    /// The bundle's file name beside the manifest.
    pub bundle: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    #[serde(default)]
    pub notes: String,
    /// Devices running an older version must take an intermediate update first.
    #[serde(default)]
    pub min_version: Option<Version>,
    #[serde(default)]
    pub allow_downgrade: bool,
    pub compatible: String,
}

impl Manifest {
    /// Parses and checks a manifest's shape (a garbage feed is refused here).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, OtaError> {
        if bytes.len() > MAX_MANIFEST {
            return Err(OtaError::GarbageFeed("manifest too large".into()));
        }
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| OtaError::GarbageFeed(e.to_string()))?;
        let plain = !m.bundle.is_empty()
            && m.bundle.len() <= 128
            && m.bundle.as_bytes()[0].is_ascii_alphanumeric()
            && m.bundle
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain {
            return Err(OtaError::GarbageFeed(format!(
                "bundle name {:?} is not a plain file name",
                m.bundle
            )));
        }
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(OtaError::GarbageFeed("sha256 is not 64 hex digits".into()));
        }
        if m.size == 0 {
            return Err(OtaError::GarbageFeed("size is 0".into()));
        }
        Ok(Manifest {
            sha256: m.sha256.to_ascii_lowercase(),
            ..m
        })
    }

    /// Whether this device should take the offered version: `Ok(true)` to update,
    /// `Ok(false)` when it already runs it, an error when the offer is refused.
    pub fn decide(&self, current: &Version, compatible: &str) -> Result<bool, OtaError> {
        if self.compatible != compatible {
            return Err(OtaError::WrongCompatible {
                expected: compatible.to_owned(),
                found: self.compatible.clone(),
            });
        }
        if &self.version == current {
            return Ok(false);
        }
        if let Some(min) = &self.min_version
            && current < min
        {
            return Err(OtaError::BelowMinimum {
                current: current.to_string(),
                minimum: min.to_string(),
            });
        }
        if &self.version < current && !self.allow_downgrade {
            return Err(OtaError::OlderVersion {
                current: current.to_string(),
                offered: self.version.to_string(),
            });
        }
        Ok(true)
    }
}

/// A daily maintenance window in local time, such as `02:00-05:00`; one that ends
/// before it starts runs past midnight (`22:00-02:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Minutes after local midnight.
    pub start: u16,
    pub end: u16,
}

impl Window {
    pub fn contains(&self, minute_of_day: u16) -> bool {
        if self.start <= self.end {
            (self.start..self.end).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start || minute_of_day < self.end
        }
    }
}

impl std::str::FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> Result<Window, String> {
        let minute = |hm: &str| -> Result<u16, String> {
            let (h, m) = hm
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("{hm:?} is not HH:MM"))?;
            let h: u16 = h.parse().map_err(|_| format!("{hm:?} is not HH:MM"))?;
            let m: u16 = m.parse().map_err(|_| format!("{hm:?} is not HH:MM"))?;
            if h > 24 || m > 59 || (h == 24 && m > 0) {
                return Err(format!("{hm:?} is not a time of day"));
            }
            Ok(h * 60 + m)
        };
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not HH:MM-HH:MM"))?;
        let (start, end) = (minute(a)?, minute(b)?);
        if start == end {
            return Err(format!("{s:?} is an empty window"));
        }
        Ok(Window { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(version: &str) -> Manifest {
        Manifest {
            version: version.parse().unwrap(),
            bundle: "b.raucb".into(),
            size: 10,
            sha256: "0".repeat(64),
            notes: String::new(),
            min_version: None,
            allow_downgrade: false,
            compatible: "portal-test".into(),
        }
    }

    #[test]
    fn versions() {
        let cur: Version = "1.2.0".parse().unwrap();
        assert_eq!(manifest("1.3.0").decide(&cur, "portal-test"), Ok(true));
        assert_eq!(manifest("1.2.0").decide(&cur, "portal-test"), Ok(false));
        assert!(matches!(
            manifest("1.1.9").decide(&cur, "portal-test"),
            Err(OtaError::OlderVersion { .. })
        ));
        let back = Manifest {
            allow_downgrade: true,
            ..manifest("1.1.9")
        };
        assert_eq!(back.decide(&cur, "portal-test"), Ok(true));
        // A pre-release sorts before its release.
        assert!(manifest("1.2.0-rc.1").decide(&cur, "portal-test").is_err());
        let min = Manifest {
            min_version: Some("1.2.1".parse().unwrap()),
            ..manifest("2.0.0")
        };
        assert!(matches!(
            min.decide(&cur, "portal-test"),
            Err(OtaError::BelowMinimum { .. })
        ));
        assert!(matches!(
            manifest("2.0.0").decide(&cur, "portal-other"),
            Err(OtaError::WrongCompatible { .. })
        ));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            &b"<html>"[..],
            br#"{"version":"one","bundle":"b","size":1,"sha256":"00","compatible":"x"}"#,
            br#"{"version":"1.0.0","bundle":"../b","size":1,"sha256":"0000000000000000000000000000000000000000000000000000000000000000","compatible":"x"}"#,
            br#"{"version":"1.0.0","bundle":"b","size":1,"sha256":"00","compatible":"x"}"#,
        ] {
            assert!(matches!(
                Manifest::parse(bad),
                Err(OtaError::GarbageFeed(_))
            ));
        }
        let good = serde_json::to_vec(&manifest("1.0.0")).unwrap();
        assert_eq!(Manifest::parse(&good).unwrap(), manifest("1.0.0"));
    }

    #[test]
    fn windows() {
        let w: Window = "02:00-05:00".parse().unwrap();
        assert!(!w.contains(119) && w.contains(120) && w.contains(299) && !w.contains(300));
        let night: Window = "22:00-02:00".parse().unwrap();
        assert!(night.contains(23 * 60) && night.contains(30) && !night.contains(12 * 60));
        assert!("2-5".parse::<Window>().is_err());
        assert!("02:00-02:00".parse::<Window>().is_err());
        assert!("25:00-02:00".parse::<Window>().is_err());
    }
}

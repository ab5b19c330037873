//! The update agent's section of the config file (`[update]`); without it the kiosk runs
//! no agent.
//!
//! ```toml
//! [update]
//! feed = "http://rooms.example.org:8080"  # default: the rooms server, over http
//! check_every_secs = 21600
//! window = "02:00-05:00"       # local time; default: any time
//! compatible = "portal-rpi4"   # default: RAUC's
//! data_dir = "/data/portal/ota"
//! dbus_address = "unix:path=/run/rauc-bus"  # default: the system bus
//! reboot_cmd = "systemctl reboot"
//! health_deadline_secs = 300   # a new slot's time to reach the server with its UI up
//! ```

use std::path::PathBuf;

use anyhow::{Context, bail};
use portal_ota::Window;
use serde::Deserialize;

/// `[update]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateFile {
    pub feed: Option<String>,
    pub check_every_secs: Option<u64>,
    pub window: Option<String>,
    pub compatible: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub dbus_address: Option<String>,
    pub reboot_cmd: Option<String>,
    pub health_deadline_secs: Option<u64>,
}

/// The update agent's settings in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UpdateConfig {
    /// The feed's base URL, `http://HOST:PORT`.
    pub feed: String,
    pub check_every_secs: u64,
    pub window: Option<Window>,
    /// Empty: RAUC's.
    pub compatible: String,
    pub data_dir: PathBuf,
    /// `None`: the system bus.
    pub dbus_address: Option<String>,
    pub reboot: Vec<String>,
    pub health_deadline_secs: u64,
    /// The rooms server's `/healthz`, which a new slot must reach.
    pub health_url: String,
}

impl UpdateFile {
    /// The settings, `None` without the section; `server` is the rooms server's
    /// WebSocket URL (the default feed).
    pub(crate) fn resolve(
        file: Option<UpdateFile>,
        server: Option<&str>,
    ) -> anyhow::Result<Option<UpdateConfig>> {
        let Some(file) = file else { return Ok(None) };
        let server_http = server.and_then(http_base);
        let Some(feed) = file.feed.or_else(|| server_http.clone()) else {
            bail!("[update] needs `feed` (or a rooms server to take it from)");
        };
        let feed = feed.trim_end_matches('/').to_owned();
        if !feed.starts_with("http://") {
            bail!("update.feed {feed:?} must be an http:// URL");
        }
        let window = file
            .window
            .as_deref()
            .map(str::parse::<Window>)
            .transpose()
            .map_err(|e| anyhow::anyhow!("update.window: {e}"))?;
        let check_every_secs = file.check_every_secs.unwrap_or(6 * 3600);
        if check_every_secs == 0 {
            bail!("update.check_every_secs must be at least 1");
        }
        let reboot: Vec<String> = file
            .reboot_cmd
            .as_deref()
            .unwrap_or("systemctl reboot")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if reboot.is_empty() {
            bail!("update.reboot_cmd is empty");
        }
        let health_url = format!("{}/healthz", server_http.as_deref().unwrap_or(&feed));
        let data_home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .context("no HOME for the default update.data_dir")
            .map(|h| h.join("portal-ota"));
        Ok(Some(UpdateConfig {
            feed,
            check_every_secs,
            window,
            compatible: file.compatible.unwrap_or_default(),
            data_dir: match file.data_dir {
                Some(dir) => dir,
                None => data_home?,
            },
            dbus_address: file.dbus_address,
            reboot,
            health_deadline_secs: file.health_deadline_secs.unwrap_or(300),
            health_url,
        }))
    }
}

/// `ws://HOST:PORT/ws` as `http://HOST:PORT` (`wss` as `https`, which the agent does
/// not speak: `None`).
fn http_base(server: &str) -> Option<String> {
    let rest = server.strip_prefix("ws://")?;
    let authority = rest.split('/').next()?;
    Some(format!("http://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> UpdateFile {
        toml::from_str(text).expect("valid toml")
    }

    #[test]
    fn the_section_is_optional_and_defaults_to_the_rooms_server() {
        assert_eq!(
            UpdateFile::resolve(None, Some("ws://h:1/ws")).unwrap(),
            None
        );
        let u = UpdateFile::resolve(
            Some(parse("window = \"02:00-05:00\"\ndata_dir = \"/d\"")),
            Some("ws://h:1/ws"),
        )
        .unwrap()
        .expect("configured");
        assert_eq!(u.feed, "http://h:1");
        assert_eq!(u.health_url, "http://h:1/healthz");
        assert_eq!(u.window, Some("02:00-05:00".parse().unwrap()));
        assert_eq!(u.reboot, ["systemctl", "reboot"]);
        assert_eq!(u.data_dir, PathBuf::from("/d"));
        for bad in [
            "window = \"2-5\"",
            "feed = \"https://h\"",
            "check_every_secs = 0",
            "reboot_cmd = \" \"",
        ] {
            assert!(
                UpdateFile::resolve(Some(parse(bad)), Some("ws://h:1/ws")).is_err(),
                "{bad}"
            );
        }
        assert!(UpdateFile::resolve(Some(parse("")), None).is_err());
        assert!(toml::from_str::<UpdateFile>("fed = \"x\"").is_err());
    }
}

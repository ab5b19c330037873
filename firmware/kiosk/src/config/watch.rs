//! Watch-together's section of the config file (`[watch]`): which web engine shows a
//! YouTube video (the kiosk never downloads YouTube media, so it plays in the official
//! IFrame player inside a real browser window it starts over its stage).
//!
//! ```toml
//! [watch]
//! web_engine = "chromium"   # chromium | cog | none; default: chromium when
//!                           # /usr/bin/chromium exists, else cog when on PATH, else none
//! browser = "/usr/bin/chromium"  # the engine's binary (default: the one found)
//! iframe_api = "https://www.youtube.com/iframe_api"  # tests point it at a stand-in
//! headless = false          # Chromium without a window (tests, kiosks without a display)
//! window = { x = 0, y = 0, width = 1280, height = 720 }  # default: full screen
//! ```

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::Deserialize;

/// Where Debian installs Chromium; its presence makes Chromium the default engine.
const CHROMIUM: &str = "/usr/bin/chromium";

/// The IFrame API's real address.
pub(crate) const IFRAME_API: &str = "https://www.youtube.com/iframe_api";

/// Which web engine plays YouTube.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WebEngineKind {
    /// Chromium in app (or kiosk) mode: desktops and tests.
    Chromium,
    /// WPE WebKit's `cog`: the device image.
    Cog,
    /// No web engine: YouTube videos are not shown.
    None,
}

/// A rectangle of the screen, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Area {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

/// `[watch]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WatchFile {
    pub web_engine: Option<WebEngineKind>,
    pub browser: Option<PathBuf>,
    pub iframe_api: Option<String>,
    pub headless: Option<bool>,
    pub window: Option<Area>,
}

/// Watch-together's settings in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WatchConfig {
    pub web_engine: WebEngineKind,
    /// The engine's binary; `None` only with [`WebEngineKind::None`] or when the
    /// configured engine was not found (starting it then says so).
    pub browser: Option<PathBuf>,
    /// Where the player page loads the IFrame API from (http or https).
    pub iframe_api: String,
    pub headless: bool,
    /// Where the window goes; `None`: full screen.
    pub window: Option<Area>,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchFile::default()
            .resolve()
            .expect("the defaults are valid")
    }
}

impl WatchFile {
    /// The settings, with the engine found on this machine when none is named.
    pub(crate) fn resolve(self) -> anyhow::Result<WatchConfig> {
        self.resolve_with(&|name| find_binary(name))
    }

    /// [`WatchFile::resolve`] with `find` standing in for the file system (tests).
    pub(crate) fn resolve_with(
        self,
        find: &dyn Fn(&str) -> Option<PathBuf>,
    ) -> anyhow::Result<WatchConfig> {
        let web_engine = match self.web_engine {
            Some(kind) => kind,
            None if find(CHROMIUM).is_some() => WebEngineKind::Chromium,
            None if find("cog").is_some() => WebEngineKind::Cog,
            None => WebEngineKind::None,
        };
        let browser = match (web_engine, self.browser) {
            (WebEngineKind::None, _) => None,
            (_, Some(path)) => Some(path),
            (WebEngineKind::Chromium, None) => find(CHROMIUM).or_else(|| find("chromium")),
            (WebEngineKind::Cog, None) => find("cog"),
        };
        let iframe_api = self.iframe_api.unwrap_or_else(|| IFRAME_API.to_owned());
        if !(iframe_api.starts_with("https://") || iframe_api.starts_with("http://"))
            || iframe_api.chars().any(char::is_whitespace)
        {
            bail!("watch.iframe_api {iframe_api:?} must be an http:// or https:// URL");
        }
        if let Some(area) = self.window
            && (area.width == 0 || area.height == 0)
        {
            bail!(
                "watch.window {}x{} has no area: width and height must be at least 1",
                area.width,
                area.height
            );
        }
        Ok(WatchConfig {
            web_engine,
            browser,
            iframe_api,
            headless: self.headless.unwrap_or(false),
            window: self.window,
        })
    }
}

/// `name` when it is a path to a file, else the first file of that name on `PATH`.
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    if path.is_absolute() {
        return path.is_file().then(|| path.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        watch: WatchFile,
    }

    fn parse(text: &str) -> WatchFile {
        toml::from_str::<Doc>(text).expect("valid toml").watch
    }

    #[test]
    fn the_engine_defaults_to_what_is_installed() {
        let chromium = |n: &str| (n == CHROMIUM).then(|| PathBuf::from(n));
        let cog = |n: &str| (n == "cog").then(|| PathBuf::from("/usr/bin/cog"));
        let nothing = |_: &str| None;
        let c = WatchFile::default().resolve_with(&chromium).expect("valid");
        assert_eq!(c.web_engine, WebEngineKind::Chromium);
        assert_eq!(c.browser.as_deref(), Some(Path::new(CHROMIUM)));
        assert_eq!(c.iframe_api, IFRAME_API);
        assert_eq!(c.window, None);
        let c = WatchFile::default().resolve_with(&cog).expect("valid");
        assert_eq!(c.web_engine, WebEngineKind::Cog);
        assert_eq!(c.browser.as_deref(), Some(Path::new("/usr/bin/cog")));
        let c = WatchFile::default().resolve_with(&nothing).expect("valid");
        assert_eq!((c.web_engine, c.browser), (WebEngineKind::None, None));
    }

    #[test]
    fn the_section_is_read_and_checked() {
        let file = parse(
            "[watch]\nweb_engine = \"cog\"\nbrowser = \"/opt/cog\"\niframe_api = \"http://127.0.0.1:9/api.js\"\nwindow = { x = 10, y = 20, width = 640, height = 360 }\n",
        );
        let c = file.resolve_with(&|_| None).expect("valid");
        assert_eq!(c.web_engine, WebEngineKind::Cog);
        assert_eq!(c.browser.as_deref(), Some(Path::new("/opt/cog")));
        assert_eq!(c.iframe_api, "http://127.0.0.1:9/api.js");
        assert_eq!(
            c.window,
            Some(Area {
                x: 10,
                y: 20,
                width: 640,
                height: 360
            })
        );
        for bad in [
            "[watch]\niframe_api = \"file:///tmp/api.js\"\n",
            "[watch]\nwindow = { x = 0, y = 0, width = 0, height = 10 }\n",
        ] {
            assert!(parse(bad).resolve_with(&|_| None).is_err(), "{bad}");
        }
        for unknown in [
            "[watch]\nengine = \"cog\"\n",
            "[watch]\nweb_engine = \"firefox\"\n",
        ] {
            assert!(toml::from_str::<Doc>(unknown).is_err(), "{unknown}");
        }
    }
}

//! The kiosk's settings: one TOML file (`/etc/portal/kiosk.toml`) and the command line,
//! the command line winning. Every setting has a default that works on a laptop except
//! the rooms server: a touch-screen kiosk without one asks for it on its first-run screen
//! and saves it here ([`save_server`]); a headless one needs it given.
//!
//! ```toml
//! server = "ws://127.0.0.1:8080/ws"
//! room = "4-01"              # joined at start (headless: the one room)
//! rooms = ["4-01", "lobby"]  # the touch screen's home lists these
//! name = "Room 4.01"
//! password = "..."           # optional
//! status_addr = "127.0.0.1:8090"
//! files_dir = "/var/lib/portal/files"
//! file_policy = "ask"        # ask | accept | deny
//! max_file_mib = 2048
//! board = "sim"              # sim | linux
//! snapshot_dir = "/run/user/1000/portal-kiosk/snapshots"  # private (0700)
//! status_token_file = "/run/user/1000/portal-kiosk/status-token"
//! shared_dir = "/srv/portal/shared"  # POST /files/send may offer files from here
//! [video]
//! width = 640
//! height = 480
//! fps = 30
//! kbps = 1000               # at start; congestion control moves it within min..max
//! min_kbps = 300
//! max_kbps = 2500
//! [net]
//! udp_ports = [50000, 50031] # media ports (first free one per peer); default: ephemeral
//! ice_disconnected_secs = 5  # no answer to consent checks for this long: disconnected
//! ice_failed_secs = 25       # ... and then this much longer: failed (ICE restarts)
//! ```
//!
//! The board's sections (`[devices]`, `[panel]`, `[button]`) are in [`devices`]; the
//! update agent's (`[update]`) in [`update`]; watch-together's (`[watch]`) in [`watch`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use portal_engine::ReceivePolicy;
use serde::Deserialize;

mod devices;
mod pairing;
mod server;
mod update;
mod watch;

pub(crate) use devices::{ButtonConfig, Devices, PanelConfig};
use devices::{ButtonFile, PanelFile};
use pairing::{device_token, room_for};
pub(crate) use server::{save_server, server_url};
pub(crate) use update::UpdateConfig;
use update::UpdateFile;
use watch::WatchFile;
pub(crate) use watch::{Area, WatchConfig, WebEngineKind};

/// The default config file; a missing default file is not an error.
pub(crate) const DEFAULT_CONFIG: &str = "/etc/portal/kiosk.toml";

/// Names the config file instead of [`DEFAULT_CONFIG`] (as `--config` does).
pub(crate) const CONFIG_ENV: &str = "PORTAL_KIOSK_CONFIG";

/// `portal-kiosk` command line.
#[derive(Debug, Parser)]
#[command(name = "portal-kiosk", version, about = "Portal meeting-room kiosk")]
pub(crate) struct Cli {
    /// Run without a display: join `--room` and stay (state on the status endpoint).
    #[arg(long)]
    pub headless: bool,
    /// Rooms server, `ws://HOST:PORT` or `wss://HOST:PORT` (`/ws` is added when missing).
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long)]
    pub room: Option<String>,
    /// Display name shown to the others.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, env = "PORTAL_ROOM_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// TOML config file (default /etc/portal/kiosk.toml; the first-run screen saves the
    /// server address there).
    #[arg(long, env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    /// Where `GET /status` and friends listen.
    #[arg(long)]
    pub status_addr: Option<SocketAddr>,
    /// Where received files land.
    #[arg(long)]
    pub files_dir: Option<PathBuf>,
    /// What to do with offered files: ask, accept or deny.
    #[arg(long)]
    pub file_policy: Option<Policy>,
    /// Largest file accepted, MiB.
    #[arg(long)]
    pub max_file_mib: Option<u64>,
    /// Board backend: sim or linux.
    #[arg(long)]
    pub board: Option<String>,
    /// Where `POST /snapshot` writes PNGs (a private directory).
    #[arg(long)]
    pub snapshot_dir: Option<PathBuf>,
    /// Where the local endpoint's token is written (mode 0600), for local tools.
    #[arg(long)]
    pub status_token_file: Option<PathBuf>,
    /// A folder whose files `POST /files/send` may offer (besides received files).
    #[arg(long)]
    pub shared_dir: Option<PathBuf>,
    /// Allow `ws://` to a server that is not on this machine (room passwords then cross
    /// the network in clear).
    #[arg(long)]
    pub insecure: bool,
    /// Camera by board device id (`/dev/video0`, `sim:bars`).
    #[arg(long)]
    pub camera: Option<String>,
    /// Microphone by board device id.
    #[arg(long)]
    pub microphone: Option<String>,
    /// Speaker by board device id.
    #[arg(long)]
    pub speaker: Option<String>,
    /// A file holding this kiosk's device token (from `portal-server kiosk add`), instead
    /// of `device_token` in the config file.
    #[arg(long)]
    pub device_token_file: Option<PathBuf>,
}

/// The receive policy as written in the config and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Policy {
    Ask,
    Accept,
    Deny,
}

impl From<Policy> for ReceivePolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Ask => ReceivePolicy::Ask,
            Policy::Accept => ReceivePolicy::Accept,
            Policy::Deny => ReceivePolicy::Deny,
        }
    }
}

/// Camera encoding settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VideoFile {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<u32>,
    pub kbps: Option<u32>,
    pub min_kbps: Option<u32>,
    pub max_kbps: Option<u32>,
}

/// Network settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetFile {
    pub udp_ports: Option<(u16, u16)>,
    pub ice_disconnected_secs: Option<f64>,
    pub ice_failed_secs: Option<f64>,
}

/// The TOML file, every key optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    pub server: Option<String>,
    pub room: Option<String>,
    #[serde(default)]
    pub rooms: Vec<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    pub status_addr: Option<SocketAddr>,
    pub files_dir: Option<PathBuf>,
    pub file_policy: Option<Policy>,
    pub max_file_mib: Option<u64>,
    pub board: Option<String>,
    pub snapshot_dir: Option<PathBuf>,
    pub status_token_file: Option<PathBuf>,
    pub shared_dir: Option<PathBuf>,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub video: VideoFile,
    #[serde(default)]
    pub net: NetFile,
    #[serde(default)]
    pub devices: Devices,
    #[serde(default)]
    pub panel: PanelFile,
    #[serde(default)]
    pub button: ButtonFile,
    pub update: Option<UpdateFile>,
    #[serde(default)]
    pub watch: WatchFile,
    /// The device token `portal-server kiosk add` printed: with it the kiosk shows a
    /// pairing code and obeys its paired laptops.
    pub device_token: Option<String>,
    /// The room "Present" from a paired laptop joins when the kiosk is at home (default:
    /// `room`, else the first of `rooms`, else one named after the kiosk).
    pub own_room: Option<String>,
}

/// The settings in force.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub headless: bool,
    /// Full WebSocket URL, ending in `/ws`; `None` until someone sets it.
    pub server: Option<String>,
    /// The file the settings came from, and where the first-run screen saves the server.
    pub path: PathBuf,
    /// Joined at start.
    pub room: Option<String>,
    /// The rooms the touch screen offers.
    pub rooms: Vec<String>,
    pub name: String,
    pub password: Option<String>,
    pub status_addr: SocketAddr,
    pub files_dir: PathBuf,
    pub file_policy: ReceivePolicy,
    pub max_file_bytes: u64,
    pub board: portal_board::Backend,
    pub snapshot_dir: PathBuf,
    pub status_token_file: PathBuf,
    /// Files here may be offered to peers, as may received ones; nothing else.
    pub shared_dir: Option<PathBuf>,
    /// `ws://` to another machine is allowed.
    pub insecure: bool,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate: portal_engine::BitrateConfig,
    pub udp_ports: Option<(u16, u16)>,
    pub ice_timeouts: Option<portal_net::IceTimeouts>,
    pub devices: Devices,
    /// The status panel, when there is one.
    pub panel: Option<PanelConfig>,
    /// The button, when there is one.
    pub button: Option<ButtonConfig>,
    /// The update agent, when there is one.
    pub update: Option<UpdateConfig>,
    /// How YouTube videos are shown (`[watch]`).
    pub watch: WatchConfig,
    /// The enrolled kiosk's device token: pairing is on with it.
    pub device_token: Option<String>,
    /// The room "Present" joins from home.
    pub own_room: String,
}

impl Config {
    /// Reads the config file (a missing one holds no settings) and lays the command line
    /// over it.
    pub(crate) fn load(cli: Cli) -> anyhow::Result<Config> {
        // A file that does not exist yet is a kiosk powered on for the first time: its
        // first-run screen writes the file.
        let path = cli
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let file = if path.exists() {
            read_file(&path)?
        } else {
            tracing::info!(path = %path.display(), "no config file yet");
            ConfigFile::default()
        };
        Config::merge(cli, file)
    }

    pub(crate) fn merge(cli: Cli, file: ConfigFile) -> anyhow::Result<Config> {
        let room = cli.room.or(file.room);
        let insecure = cli.insecure || file.insecure;
        let server = cli
            .server
            .or(file.server)
            .as_deref()
            .map(|s| server_url(s, insecure))
            .transpose()?;
        if cli.headless {
            if room.is_none() {
                bail!("no room given: pass --room or set `room` in the config file");
            }
            if server.is_none() {
                bail!("no rooms server given: pass --server or set `server` in the config file");
            }
        }
        let path = cli
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let board = cli
            .board
            .or(file.board)
            .unwrap_or_else(|| "sim".to_owned())
            .parse::<portal_board::Backend>()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let bitrate = bitrate(&file.video)?;
        let ice_timeouts = ice_timeouts(&file.net)?;
        if let Some((first, last)) = file.net.udp_ports
            && (first == 0 || last < first)
        {
            bail!("net.udp_ports [{first}, {last}] is not a range of ports");
        }
        let panel = file.panel.resolve()?;
        let button = file.button.resolve()?;
        let update = UpdateFile::resolve(file.update, server.as_deref())?;
        let watch = file.watch.resolve()?;
        let data_home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
        let device_token = device_token(cli.device_token_file.as_deref(), file.device_token)?;
        let name = cli
            .name
            .or(file.name)
            .unwrap_or_else(|| "Portal kiosk".to_owned());
        let own_room = file
            .own_room
            .or_else(|| room.clone())
            .or_else(|| file.rooms.first().cloned())
            .unwrap_or_else(|| room_for(&name));
        portal_proto::validate_room_name(&own_room)
            .map_err(|e| anyhow::anyhow!("own_room {own_room:?}: {e}"))?;
        Ok(Config {
            device_token,
            own_room,
            headless: cli.headless,
            server,
            path,
            room,
            rooms: file.rooms,
            name,
            password: cli.password.or(file.password),
            status_addr: cli
                .status_addr
                .or(file.status_addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8090))),
            files_dir: cli
                .files_dir
                .or(file.files_dir)
                .unwrap_or_else(|| data_home.join("portal-files")),
            file_policy: cli
                .file_policy
                .or(file.file_policy)
                .unwrap_or(Policy::Ask)
                .into(),
            max_file_bytes: cli
                .max_file_mib
                .or(file.max_file_mib)
                .unwrap_or(2048)
                .saturating_mul(1024 * 1024),
            board,
            snapshot_dir: cli
                .snapshot_dir
                .or(file.snapshot_dir)
                .unwrap_or_else(|| crate::access::runtime_dir().join("snapshots")),
            status_token_file: cli
                .status_token_file
                .or(file.status_token_file)
                .unwrap_or_else(|| crate::access::runtime_dir().join("status-token")),
            shared_dir: cli.shared_dir.or(file.shared_dir),
            insecure,
            width: file.video.width.unwrap_or(640),
            height: file.video.height.unwrap_or(480),
            fps: file.video.fps.unwrap_or(30),
            bitrate,
            udp_ports: file.net.udp_ports,
            ice_timeouts,
            devices: Devices {
                camera: cli.camera.or(file.devices.camera),
                microphone: cli.microphone.or(file.devices.microphone),
                speaker: cli.speaker.or(file.devices.speaker),
            },
            panel,
            button,
            update,
            watch,
        })
    }
}

fn bitrate(video: &VideoFile) -> anyhow::Result<portal_engine::BitrateConfig> {
    let defaults = portal_engine::BitrateConfig::default();
    let config = portal_engine::BitrateConfig {
        min_kbps: video.min_kbps.unwrap_or(defaults.min_kbps),
        start_kbps: video.kbps.unwrap_or(defaults.start_kbps),
        max_kbps: video.max_kbps.unwrap_or(defaults.max_kbps),
        ..defaults
    };
    if config.min_kbps == 0 || config.max_kbps < config.min_kbps {
        bail!(
            "video bitrate bounds {}..{} kbit/s are not a range",
            config.min_kbps,
            config.max_kbps
        );
    }
    Ok(config)
}

fn ice_timeouts(net: &NetFile) -> anyhow::Result<Option<portal_net::IceTimeouts>> {
    if net.ice_disconnected_secs.is_none() && net.ice_failed_secs.is_none() {
        return Ok(None);
    }
    let secs = |v: Option<f64>, default: f64, key: &str| -> anyhow::Result<std::time::Duration> {
        let v = v.unwrap_or(default);
        if !(0.2..=600.0).contains(&v) {
            bail!("net.{key} = {v} is outside 0.2..600 seconds");
        }
        Ok(std::time::Duration::from_secs_f64(v))
    };
    let disconnected = secs(net.ice_disconnected_secs, 5.0, "ice_disconnected_secs")?;
    Ok(Some(portal_net::IceTimeouts {
        disconnected,
        failed: secs(net.ice_failed_secs, 25.0, "ice_failed_secs")?,
        keepalive: (disconnected / 3).max(std::time::Duration::from_millis(100)),
    }))
}

fn read_file(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("portal-kiosk").chain(args.iter().copied()))
    }

    #[test]
    fn command_line_overrides_the_file() {
        let file: ConfigFile = toml::from_str(
            "room = \"from-file\"\nname = \"File name\"\nfile_policy = \"deny\"\n[video]\nwidth = 320\n",
        )
        .expect("valid toml");
        let config = Config::merge(
            cli(&["--room", "cli-room", "--server", "ws://h:1", "--insecure"]),
            file,
        )
        .expect("config");
        assert_eq!(config.room.as_deref(), Some("cli-room"));
        assert_eq!(config.name, "File name");
        assert_eq!(config.file_policy, ReceivePolicy::Deny);
        assert_eq!(config.width, 320);
        assert_eq!(config.server.as_deref(), Some("ws://h:1/ws"));
        assert_eq!(config.bitrate, portal_engine::BitrateConfig::default());
        assert_eq!(config.udp_ports, None);
        assert_eq!(config.ice_timeouts, None);
        assert_eq!(config.devices, Devices::default());
    }

    #[test]
    fn devices_come_from_the_file_and_the_command_line() {
        let file: ConfigFile = toml::from_str(
            "room = \"r\"\n[devices]\ncamera = \"/dev/video0\"\nspeaker = \"plughw:1,0\"\n",
        )
        .expect("valid toml");
        let config = Config::merge(cli(&["--camera", "sim:bars"]), file).expect("config");
        assert_eq!(
            config.devices,
            Devices {
                camera: Some("sim:bars".into()),
                microphone: None,
                speaker: Some("plughw:1,0".into()),
            }
        );
        let unknown = toml::from_str::<ConfigFile>("[devices]\nwebcam = \"x\"\n");
        assert!(unknown.is_err(), "unknown device keys are refused");
    }

    #[test]
    fn network_and_bitrate_settings_are_checked() {
        let file: ConfigFile = toml::from_str(
            "[video]\nkbps = 800\nmin_kbps = 200\nmax_kbps = 1200\n[net]\nudp_ports = [50000, 50003]\nice_disconnected_secs = 1.5\nice_failed_secs = 3\n",
        )
        .expect("valid toml");
        let config = Config::merge(cli(&["--room", "r"]), file).expect("config");
        assert_eq!(config.bitrate.start_kbps, 800);
        assert_eq!(config.bitrate.max_kbps, 1200);
        assert_eq!(config.udp_ports, Some((50000, 50003)));
        let t = config.ice_timeouts.expect("timeouts");
        assert_eq!(t.disconnected, std::time::Duration::from_millis(1500));
        assert_eq!(t.failed, std::time::Duration::from_secs(3));
        for bad in [
            "[net]\nudp_ports = [50003, 50000]\n",
            "[net]\nice_failed_secs = 0\n",
            "[video]\nmin_kbps = 900\nmax_kbps = 100\n",
        ] {
            let file: ConfigFile = toml::from_str(bad).expect("valid toml");
            assert!(Config::merge(cli(&["--room", "r"]), file).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_touch_screen_needs_nothing_and_headless_needs_a_room_and_a_server() {
        let bare = Config::merge(cli(&[]), ConfigFile::default()).expect("first power-on");
        assert_eq!(bare.server, None);
        assert!(bare.rooms.is_empty() && bare.room.is_none());
        assert_eq!(bare.path, PathBuf::from(DEFAULT_CONFIG));
        assert!(Config::merge(cli(&["--headless"]), ConfigFile::default()).is_err());
        assert!(Config::merge(cli(&["--headless", "--room", "r"]), ConfigFile::default()).is_err());
        let rooms: ConfigFile = toml::from_str("rooms = [\"a\", \"b\"]").expect("valid toml");
        let config = Config::merge(cli(&[]), rooms).expect("the touch screen offers rooms");
        assert_eq!(config.rooms, ["a", "b"]);
        assert_eq!(config.room, None);
        assert!(toml::from_str::<ConfigFile>("rooom = \"x\"").is_err());
        assert!(
            Config::merge(
                cli(&["--room", "r", "--server", "http://x"]),
                ConfigFile::default()
            )
            .is_err()
        );
    }
}

//! The kiosk's settings: one TOML file (`/etc/portal/kiosk.toml`) and the command line,
//! the command line winning. Every setting has a default that works on a laptop except
//! the room, which must be given somewhere.
//!
//! ```toml
//! server = "ws://127.0.0.1:8080/ws"
//! room = "4-01"
//! name = "Room 4.01"
//! password = "..."           # optional
//! status_addr = "127.0.0.1:8090"
//! files_dir = "/var/lib/portal/files"
//! file_policy = "ask"        # ask | accept | deny
//! max_file_mib = 2048
//! board = "sim"              # sim | linux
//! snapshot_dir = "/tmp/portal-kiosk"
//! [video]
//! width = 640
//! height = 480
//! fps = 30
//! kbps = 1000
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use portal_engine::ReceivePolicy;
use serde::Deserialize;

/// The default config file; a missing default file is not an error.
pub(crate) const DEFAULT_CONFIG: &str = "/etc/portal/kiosk.toml";

/// `portal-kiosk` command line.
#[derive(Debug, Parser)]
#[command(name = "portal-kiosk", version, about = "Portal meeting-room kiosk")]
pub(crate) struct Cli {
    /// Run without a display (the only mode so far; state on the status endpoint).
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
    /// TOML config file.
    #[arg(long)]
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
    /// Where `POST /snapshot` writes PNGs.
    #[arg(long)]
    pub snapshot_dir: Option<PathBuf>,
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
}

/// The TOML file, every key optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    pub server: Option<String>,
    pub room: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    pub status_addr: Option<SocketAddr>,
    pub files_dir: Option<PathBuf>,
    pub file_policy: Option<Policy>,
    pub max_file_mib: Option<u64>,
    pub board: Option<String>,
    pub snapshot_dir: Option<PathBuf>,
    #[serde(default)]
    pub video: VideoFile,
}

/// The settings in force.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Full WebSocket URL, ending in `/ws`.
    pub server: String,
    pub room: String,
    pub name: String,
    pub password: Option<String>,
    pub status_addr: SocketAddr,
    pub files_dir: PathBuf,
    pub file_policy: ReceivePolicy,
    pub max_file_bytes: u64,
    pub board: portal_board::Backend,
    pub snapshot_dir: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
}

impl Config {
    /// Reads the config file (the given one must exist; the default may be missing) and
    /// lays the command line over it.
    pub(crate) fn load(cli: Cli) -> anyhow::Result<Config> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG).is_file() => read_file(Path::new(DEFAULT_CONFIG))?,
            None => ConfigFile::default(),
        };
        Config::merge(cli, file)
    }

    pub(crate) fn merge(cli: Cli, file: ConfigFile) -> anyhow::Result<Config> {
        let Some(room) = cli.room.or(file.room) else {
            bail!("no room given: pass --room or set `room` in the config file");
        };
        let server = ws_url(
            &cli.server
                .or(file.server)
                .unwrap_or_else(|| "ws://127.0.0.1:8080".to_owned()),
        )?;
        let board = cli
            .board
            .or(file.board)
            .unwrap_or_else(|| "sim".to_owned())
            .parse::<portal_board::Backend>()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let data_home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
        Ok(Config {
            server,
            room,
            name: cli
                .name
                .or(file.name)
                .unwrap_or_else(|| "Portal kiosk".to_owned()),
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
                .unwrap_or_else(|| std::env::temp_dir().join("portal-kiosk")),
            width: file.video.width.unwrap_or(640),
            height: file.video.height.unwrap_or(480),
            fps: file.video.fps.unwrap_or(30),
            video_kbps: file.video.kbps.unwrap_or(1000),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// `ws://host:port` → `ws://host:port/ws`; a URL with a path is kept as it is.
fn ws_url(server: &str) -> anyhow::Result<String> {
    let Some((scheme, rest)) = server.split_once("://") else {
        bail!("server {server:?} is not a ws:// or wss:// URL");
    };
    if scheme != "ws" && scheme != "wss" {
        bail!("server {server:?} is not a ws:// or wss:// URL");
    }
    if rest.contains('/') {
        Ok(server.to_owned())
    } else {
        Ok(format!("{server}/ws"))
    }
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
        let config = Config::merge(cli(&["--room", "cli-room"]), file).expect("config");
        assert_eq!(config.room, "cli-room");
        assert_eq!(config.name, "File name");
        assert_eq!(config.file_policy, ReceivePolicy::Deny);
        assert_eq!(config.width, 320);
        assert_eq!(config.server, "ws://127.0.0.1:8080/ws");
    }

    #[test]
    fn a_room_is_required_and_unknown_keys_are_refused() {
        assert!(Config::merge(cli(&[]), ConfigFile::default()).is_err());
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

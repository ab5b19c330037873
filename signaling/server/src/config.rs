//! Server settings: clap flags, each with a `PORTAL_*` variable and a default that works
//! on a laptop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::docs::DocsConfig;
use crate::guard::{GuardConfig, ROOM_CREATE_BURST, ROOM_CREATE_PER_MINUTE};
use crate::hub::HubConfig;
use crate::ice::{IceConfig, TurnConfig};
use crate::pairing::PairingConfig;
use crate::pairing::admin::KioskCommand;

#[derive(Parser, Debug, Clone)]
#[command(name = "portal-server", version, about = "Portal's rooms server")]
pub struct Config {
    /// Without a command the server runs; `kiosk ...` manages enrolled kiosks.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Address and port to listen on.
    #[arg(long, env = "PORTAL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Directory for the SQLite store (created if missing).
    #[arg(
        long,
        env = "PORTAL_DATA_DIR",
        default_value = "portal-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// The server's public base URL (`https://portal.example.com`) for pairing links
    /// (`{url}/p/CODE`). Without it, a link is built from the Host header of the kiosk's
    /// connection and the scheme (https with TLS).
    #[arg(long, env = "PORTAL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Seconds a pairing code lives at most (for tests; it also changes on use).
    #[arg(long, env = "PORTAL_PAIRING_CODE_TTL", default_value_t = portal_proto::pairing::CODE_TTL_SECS, hide = true)]
    pub pairing_code_ttl: u64,
    /// Serve the browser client from this directory instead of the copy built in.
    #[arg(long, env = "PORTAL_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Serve kiosk updates from this directory: `{compatible}/manifest.json` and the
    /// bundle it names, at `/updates/{compatible}/...`.
    #[arg(long, env = "PORTAL_UPDATES_DIR")]
    pub updates_dir: Option<PathBuf>,
    /// PEM certificate chain; with --tls-key, serve https/wss only.
    #[arg(long, env = "PORTAL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "PORTAL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// STUN URLs handed to peers (comma-separated in the variable).
    #[arg(long = "stun-url", env = "PORTAL_STUN_URLS", value_delimiter = ',')]
    pub stun_urls: Vec<String>,
    /// TURN URLs handed to peers with per-connection credentials (needs --turn-secret).
    #[arg(long = "turn-url", env = "PORTAL_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,
    /// coturn `static-auth-secret` for TURN credentials.
    #[arg(long, env = "PORTAL_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// Lifetime of a TURN credential, in seconds.
    #[arg(long, env = "PORTAL_TURN_TTL", default_value_t = 86_400)]
    pub turn_ttl: u64,
    /// Peers a room holds at most.
    #[arg(long, env = "PORTAL_MAX_PEERS", default_value_t = 8)]
    pub max_peers: usize,
    /// Rooms remembered at most.
    #[arg(long, env = "PORTAL_MAX_ROOMS", default_value_t = 100_000)]
    pub max_rooms: usize,
    /// Open connections at most; more get HTTP 503.
    #[arg(long, env = "PORTAL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open connections (HTTP, TLS, WebSocket) one client address may hold; more are
    /// refused at accept (HTTP 429, or closed before the TLS handshake). IPv6 addresses
    /// count by their /64; 0 turns the limit off (behind a reverse proxy every client
    /// shares its address).
    #[arg(long, env = "PORTAL_MAX_CONNS_PER_ADDR", default_value_t = 64)]
    pub max_conns_per_addr: usize,
    /// Largest signaling frame in bytes; larger ones get `tooLarge`.
    #[arg(long, env = "PORTAL_MAX_FRAME", default_value_t = 64 * 1024)]
    pub max_frame: usize,
    /// Messages a second per connection (token bucket rate; 0 turns the limit off).
    #[arg(long, env = "PORTAL_MSG_RATE", default_value_t = 50.0)]
    pub msg_rate: f64,
    /// Messages a connection may send in a burst.
    #[arg(long, env = "PORTAL_MSG_BURST", default_value_t = 200.0)]
    pub msg_burst: f64,
    /// Seconds without any frame from a client before it is dropped (pings every third).
    #[arg(long, env = "PORTAL_IDLE_TIMEOUT", default_value_t = 60)]
    pub idle_timeout: u64,
    /// Rooms one client address may create a minute (token bucket rate; 0 turns the
    /// limit off). IPv6 addresses count by their /64.
    #[arg(long, env = "PORTAL_ROOM_CREATE_RATE", default_value_t = ROOM_CREATE_PER_MINUTE)]
    pub room_create_rate: f64,
    /// Rooms one client address may create at once.
    #[arg(long, env = "PORTAL_ROOM_CREATE_BURST", default_value_t = ROOM_CREATE_BURST)]
    pub room_create_burst: f64,
    /// Seconds a new connection has to send `hello`.
    #[arg(long, env = "PORTAL_HELLO_TIMEOUT", default_value_t = 10)]
    pub hello_timeout: u64,
    /// Seconds a peer whose connection dropped stays in its room, waiting to resume.
    #[arg(long, env = "PORTAL_RESUME_GRACE", default_value_t = 20)]
    pub resume_grace: u64,
    /// Days an unused password-protected room (and its password) is remembered.
    #[arg(long, env = "PORTAL_ROOM_TTL_DAYS", default_value_t = 30)]
    pub room_ttl_days: u32,
    /// Seconds an open room (its watch state and document with it) is kept after the last
    /// person left; 0: it goes at once.
    #[arg(long, env = "PORTAL_OPEN_ROOM_LINGER", default_value_t = 3600)]
    pub open_room_linger: u64,
    /// Largest document update a client may send, in bytes.
    #[arg(long, env = "PORTAL_DOC_MAX_UPDATE", default_value_t = 1024 * 1024)]
    pub doc_max_update: usize,
    /// Largest document a room may hold, in bytes (encoded state).
    #[arg(long, env = "PORTAL_DOC_MAX_SIZE", default_value_t = 16 * 1024 * 1024)]
    pub doc_max_size: usize,
    /// Documents held in memory at most; rooms beyond get a clear close.
    #[arg(long, env = "PORTAL_DOC_MAX_LOADED", default_value_t = 1000)]
    pub doc_max_loaded: usize,
    /// Updates appended before a document's log is compacted into a snapshot.
    #[arg(long, env = "PORTAL_DOC_COMPACT_EVERY", default_value_t = 500)]
    pub doc_compact_every: usize,
}

/// What the binary does instead of serving.
#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Enrolled kiosks: `add NAME` (prints its device token once), `list`, `remove NAME`.
    #[command(subcommand)]
    Kiosk(KioskCommand),
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["portal-server"])
    }
}

impl Config {
    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            max_peers_per_room: self.max_peers.max(1),
            max_rooms: self.max_rooms.max(1),
            room_ttl_ms: f64::from(self.room_ttl_days) * 24.0 * 3600.0 * 1000.0,
            open_linger_ms: self.open_room_linger as f64 * 1000.0,
            resume_grace_ms: self.resume_grace as f64 * 1000.0,
            ice: IceConfig {
                stun_urls: self.stun_urls.clone(),
                turn: self.turn_secret.as_ref().map(|secret| TurnConfig {
                    urls: self.turn_urls.clone(),
                    secret: secret.clone(),
                    ttl_secs: self.turn_ttl,
                }),
            },
        }
    }

    pub fn docs_config(&self) -> DocsConfig {
        DocsConfig {
            max_update: self.doc_max_update.max(1024),
            max_doc: self.doc_max_size.max(1024),
            max_loaded: self.doc_max_loaded.max(1),
            compact_every: self.doc_compact_every.max(1),
        }
    }

    pub fn guard_config(&self) -> GuardConfig {
        GuardConfig {
            create_per_minute: self.room_create_rate.max(0.0),
            create_burst: self.room_create_burst.max(1.0),
            ..GuardConfig::default()
        }
    }

    pub fn pairing_config(&self) -> PairingConfig {
        PairingConfig {
            code_ttl_ms: self.pairing_code_ttl.max(1) as f64 * 1000.0,
            ..PairingConfig::default()
        }
    }

    /// `--public-url` without a trailing slash, if given.
    pub fn public_base(&self) -> Option<String> {
        self.public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned())
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout.max(1))
    }

    pub fn hello_timeout(&self) -> Duration {
        Duration::from_secs(self.hello_timeout.max(1))
    }

    /// Settings that cannot work together.
    pub fn check(&self) -> Result<(), String> {
        if self.turn_secret.is_some() && self.turn_urls.is_empty() {
            return Err("--turn-secret needs at least one --turn-url".into());
        }
        if !self.turn_urls.is_empty() && self.turn_secret.is_none() {
            return Err("--turn-url needs --turn-secret (coturn use-auth-secret)".into());
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err("--public-url must start with https:// or http://".into());
        }
        if self.max_frame < 1024 {
            return Err("--max-frame below 1024 bytes cannot carry an SDP offer".into());
        }
        Ok(())
    }
}

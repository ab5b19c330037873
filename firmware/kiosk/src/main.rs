//! `portal-kiosk`: the meeting-room kiosk. It joins a room on a Portal rooms server like a
//! browser does (calls with audio and video, chat, files) and shows its state on a small
//! HTTP status endpoint.
//!
//! ```text
//! portal-kiosk --headless --server ws://HOST:PORT --room R --name "Room 4.01"
//!              [--password P] [--config /etc/portal/kiosk.toml] [--status-addr 127.0.0.1:8090]
//!              [--files-dir DIR] [--file-policy ask|accept|deny] [--max-file-mib N]
//!              [--board sim|linux] [--snapshot-dir DIR]
//! ```
//!
//! The binary is wiring only; each decision lives in a library crate:
//!
//! - [`config`]: the TOML file and the command line;
//! - [`session`]: the task that owns `portal-engine`'s [`portal_engine::Engine`] and
//!   carries out what it says (signaling, peers, the download directory);
//! - [`link`]: one task per remote peer around a `portal-net` connection, with the media:
//!   the kiosk's single `portal-media` sender (encode once, every peer gets the same
//!   samples) and a receiver per remote track;
//! - [`files`]: the download directory (temp files, no-replace rename);
//! - [`status`]: `GET /status`, `POST /chat`, `POST /snapshot`, `POST /files/...`.
//!
//! On start it prints `status on http://ADDR` on stdout (useful with `--status-addr
//! 127.0.0.1:0`). Logs go to stderr, filtered by `PORTAL_LOG` (default `info`). SIGTERM
//! or SIGINT leaves the room and closes every peer connection before exiting.

mod config;
mod files;
mod link;
mod session;
mod status;

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use portal_engine::EngineConfig;
use portal_media::{Sender, SenderConfig};
use portal_net::signaling::{self, SignalingConfig};
use tokio::sync::mpsc;

use crate::config::{Cli, Config};
use crate::files::FileStore;
use crate::session::{Media, SessionSetup};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    if !cli.headless {
        tracing::info!("no display UI in this build; running headless");
    }
    let config = Config::load(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("portal-kiosk")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(config))
}

/// Our crates at `info`; webrtc-rs's own chatter only when something is wrong.
const DEFAULT_LOG: &str = "info,rtc=warn,rtc_ice=warn,rtc_dtls=error,rtc_sctp=error,webrtc=warn";

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(config: Config) -> anyhow::Result<()> {
    let board = portal_board::open(config.board).context("opening the board")?;
    let facts = board.facts();
    let camera = board.camera(None).context("no camera")?;
    let microphone = board.microphone(None).context("no microphone")?;
    let speaker = board.speaker(None).context("no speaker")?;
    tracing::info!(
        board = %config.board,
        camera = %camera.device.id,
        microphone = %microphone.device.id,
        speaker = %speaker.device.id,
        "board opened"
    );
    let mut sender_config = SenderConfig::new(camera, microphone, facts.clone());
    sender_config.width = config.width;
    sender_config.height = config.height;
    sender_config.fps = config.fps;
    sender_config.video_kbps = config.video_kbps;
    let sender = Sender::new(sender_config).context("starting the media sender")?;
    let files = FileStore::new(config.files_dir.clone())?;

    let mut engine = EngineConfig::new(config.room.clone(), config.name.clone());
    engine.password.clone_from(&config.password);
    engine.files.policy = config.file_policy;
    engine.files.max_size = config.max_file_bytes;
    engine.seed = u64::from(std::process::id());

    let mut signaling_config = SignalingConfig::new(
        config.server.clone(),
        config.name.clone(),
        config.room.clone(),
    );
    signaling_config.password.clone_from(&config.password);
    let (signaling, signaling_events) =
        signaling::connect(signaling_config).context("signaling settings")?;

    let (request_tx, requests) = mpsc::channel(64);
    let (status_addr, serve_status) = status::bind(config.status_addr, request_tx)
        .await
        .with_context(|| format!("binding the status endpoint on {}", config.status_addr))?;
    tokio::spawn(serve_status);
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "status on http://{status_addr}");
        let _ = out.flush();
    }
    tracing::info!(
        server = config.server,
        room = config.room,
        name = config.name,
        status = %status_addr,
        files = %config.files_dir.display(),
        policy = ?config.file_policy,
        "kiosk starting"
    );
    session::run(
        SessionSetup {
            engine,
            signaling,
            signaling_events,
            requests,
            media: Media {
                sender,
                speaker,
                facts,
            },
            files,
            snapshot_dir: config.snapshot_dir.clone(),
        },
        shutdown_signal(),
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => tracing::info!("SIGTERM"),
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                tracing::warn!(error = %e, "no SIGINT handler");
                std::future::pending::<()>().await;
            }
            tracing::info!("SIGINT");
        }
    }
}

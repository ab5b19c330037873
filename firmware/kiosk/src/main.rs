//! `portal-kiosk`: the meeting-room kiosk. It joins a room on a Portal rooms server like a
//! browser does (calls with audio and video, chat, files) and shows its state on a small
//! HTTP status endpoint.
//!
//! ```text
//! portal-kiosk [--headless] --server ws://HOST:PORT [--room R] --name "Room 4.01"
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
//! - [`status`]: `GET /status`, `POST /chat`, `POST /snapshot`, `POST /files/...`;
//! - [`display`]: the touch screen (`portal-ui`): home, joining and leaving, the call's
//!   views and its video.
//!
//! Without `--headless` the Slint window owns the main thread and tokio runs beside it;
//! the home screen lists the configured rooms (`rooms` in the file, and `--room`, which
//! is also joined at once). With `--headless` the kiosk joins `--room` and stays.
//!
//! On start it prints `status on http://ADDR` on stdout (useful with `--status-addr
//! 127.0.0.1:0`). Logs go to stderr, filtered by `PORTAL_LOG` (default `info`). SIGTERM
//! or SIGINT leaves the room and closes every peer connection before exiting.

mod config;
mod display;
mod files;
mod link;
mod session;
mod status;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use clap::Parser;
use portal_engine::EngineConfig;
use portal_media::{Sender, SenderConfig};
use portal_net::signaling::{self, SignalingConfig};
use tokio::sync::mpsc;

use crate::config::{Cli, Config, Devices};
use crate::files::FileStore;
use crate::session::{Gates, Media, NetSettings, Request, SessionSetup};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let config = Config::load(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("portal-kiosk")
        .build()
        .context("starting the runtime")?;
    if config.headless {
        runtime.block_on(run_headless(config))
    } else {
        run_windowed(config, &runtime)
    }
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

/// Loads the media plugins a call needs (see [`portal_media::preload`]), so the first
/// call does not wait for them; returns once they are loaded.
fn preload_media(facts: &portal_board::BoardFacts) {
    let started = std::time::Instant::now();
    let loaded = portal_media::preload(facts);
    tracing::info!(loaded, took = ?started.elapsed(), "media plugins loaded");
}

/// [`preload_media`] on a thread of its own.
fn preload_media_in_background(board: &dyn portal_board::Board) {
    let facts = board.facts();
    let spawned = std::thread::Builder::new()
        .name("media-preload".into())
        .spawn(move || preload_media(&facts));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no thread to preload media plugins");
    }
}

/// Opens the chosen devices (`None`: the board's default) and starts the one sender every
/// peer shares.
fn open_media(
    config: &Config,
    board: &dyn portal_board::Board,
    chosen: &Devices,
) -> anyhow::Result<Media> {
    let facts = board.facts();
    let camera = board
        .camera(chosen.camera.as_deref())
        .context("no camera")?;
    let microphone = board
        .microphone(chosen.microphone.as_deref())
        .context("no microphone")?;
    let speaker = board
        .speaker(chosen.speaker.as_deref())
        .context("no speaker")?;
    tracing::info!(
        board = %config.board,
        camera = %camera.device.id,
        microphone = %microphone.device.id,
        speaker = %speaker.device.id,
        "devices opened"
    );
    let mut sender_config = SenderConfig::new(camera, microphone, facts.clone());
    sender_config.width = config.width;
    sender_config.height = config.height;
    sender_config.fps = config.fps;
    sender_config.video_kbps = config.bitrate.start_kbps;
    sender_config.min_video_kbps = config.bitrate.min_kbps;
    sender_config.max_video_kbps = config.bitrate.max_kbps;
    let sender = Sender::new(sender_config).context("starting the media sender")?;
    Ok(Media {
        sender,
        speaker,
        facts,
        gates: Gates::default(),
    })
}

/// The status endpoint; prints its address on stdout.
async fn serve_status(config: &Config) -> anyhow::Result<mpsc::Receiver<Request>> {
    let (request_tx, requests) = mpsc::channel(64);
    let (status_addr, serve) = status::bind(config.status_addr, request_tx)
        .await
        .with_context(|| format!("binding the status endpoint on {}", config.status_addr))?;
    tokio::spawn(serve);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "status on http://{status_addr}");
    let _ = out.flush();
    Ok(requests)
}

/// Starts a session in `room` that runs until `shutdown` resolves.
fn start_session(
    config: &Config,
    room: &str,
    media: Media,
    requests: mpsc::Receiver<Request>,
    ui: Option<portal_ui::UiHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let files = FileStore::new(config.files_dir.clone())?;
    let mut engine = EngineConfig::new(room, config.name.clone());
    engine.password.clone_from(&config.password);
    engine.files.policy = config.file_policy;
    engine.files.max_size = config.max_file_bytes;
    engine.seed = u64::from(std::process::id());
    engine.bitrate = config.bitrate;
    let mut signaling_config =
        SignalingConfig::new(config.server.clone(), config.name.clone(), room);
    signaling_config.password.clone_from(&config.password);
    let join_started_unix_ms = session::unix_ms();
    let (signaling, signaling_events) =
        signaling::connect(signaling_config).context("signaling settings")?;
    tracing::info!(
        server = config.server,
        room,
        name = config.name,
        files = %config.files_dir.display(),
        policy = ?config.file_policy,
        "joining"
    );
    let setup = SessionSetup {
        engine,
        signaling,
        signaling_events,
        requests,
        media,
        files,
        snapshot_dir: config.snapshot_dir.clone(),
        join_started_unix_ms,
        net: NetSettings {
            udp_ports: config.udp_ports,
            ice_timeouts: config.ice_timeouts,
            bitrate: config.bitrate,
        },
        ui,
    };
    Ok(tokio::spawn(session::run(setup, shutdown)))
}

async fn run_headless(config: Config) -> anyhow::Result<()> {
    let board = portal_board::open(config.board).context("opening the board")?;
    // Before joining: loading the plugins while the call is being set up would take the
    // CPU from it (and the decoder's plugin would be waited for at the first packet).
    let facts = board.facts();
    tokio::task::spawn_blocking(move || preload_media(&facts))
        .await
        .context("preloading media plugins")?;
    let media = open_media(&config, board.as_ref(), &config.devices)?;
    let requests = serve_status(&config).await?;
    let room = config
        .room
        .clone()
        .context("no room given: pass --room or set `room` in the config file")?;
    let session = start_session(&config, &room, media, requests, None, shutdown_signal())?;
    session.await.context("the session task")?;
    tracing::info!("stopped");
    Ok(())
}

/// The window on the main thread, everything else on `runtime`.
fn run_windowed(config: Config, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let (event_tx, events) = mpsc::unbounded_channel();
    let ui = portal_ui::Ui::new(move |event| {
        let _ = event_tx.send(event);
    })
    .context("opening the kiosk window (no display? use --headless)")?;
    let handle = ui.handle();
    let controller = runtime.spawn({
        let handle = handle.clone();
        async move {
            let result = windowed(config, handle.clone(), events).await;
            // Whatever ended the kiosk's side ends the window too.
            handle.quit();
            result
        }
    });
    ui.run().context("the kiosk window")?;
    // The window is closed: its event channel ends, and the controller leaves the call.
    drop(ui);
    let result = runtime
        .block_on(controller)
        .context("the kiosk's controller")?;
    tracing::info!("stopped");
    result
}

async fn windowed(
    config: Config,
    ui: portal_ui::UiHandle,
    events: mpsc::UnboundedReceiver<portal_ui::UiEvent>,
) -> anyhow::Result<()> {
    let board: Arc<dyn portal_board::Board> =
        Arc::from(portal_board::open(config.board).context("opening the board")?);
    // The home screen is up meanwhile; a call tapped in the first second shares the CPU
    // with it.
    preload_media_in_background(board.as_ref());
    let requests = serve_status(&config).await?;
    let devices = board.devices().unwrap_or_default();
    let chosen = Arc::new(Mutex::new(config.devices.clone()));
    ui.apply(portal_ui::Update::Devices(device_lists(
        &devices,
        &config.devices,
    )));
    let device = portal_ui::DeviceInfo {
        name: config.name.clone(),
        address: local_address(&config.server),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let mut rooms = config.rooms.clone();
    if let Some(room) = &config.room
        && !rooms.contains(room)
    {
        rooms.insert(0, room.clone());
    }
    let start: display::StartCall = {
        let config = config.clone();
        let ui = ui.clone();
        let board = Arc::clone(&board);
        let chosen = Arc::clone(&chosen);
        Box::new(move |room, requests, stop| {
            let picked = chosen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let started = open_media(&config, board.as_ref(), &picked).and_then(|media| {
                start_session(
                    &config,
                    &room,
                    media,
                    requests,
                    Some(ui.clone()),
                    async move {
                        let _ = stop.await;
                    },
                )
            });
            match started {
                Ok(task) => task,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "the call could not start");
                    ui.apply(portal_ui::Update::Status(portal_ui::CallStatus::Offline));
                    tokio::spawn(async {})
                }
            }
        })
    };
    let display = display::Display {
        ui: ui.clone(),
        events,
        requests,
        rooms,
        join: config.room.clone(),
    };
    let on_device = {
        let ui = ui.clone();
        move |event: &portal_ui::UiEvent| {
            let mut c = chosen.lock().unwrap_or_else(PoisonError::into_inner);
            match event {
                portal_ui::UiEvent::ChooseCamera(id) => c.camera = Some(id.clone()),
                portal_ui::UiEvent::ChooseMicrophone(id) => c.microphone = Some(id.clone()),
                portal_ui::UiEvent::ChooseSpeaker(id) => c.speaker = Some(id.clone()),
                _ => return false,
            }
            // Devices open when a call starts; a choice made now applies from the next one.
            ui.apply(portal_ui::Update::Devices(device_lists(&devices, &c)));
            true
        }
    };
    display::run(
        display,
        start,
        device,
        Box::new(on_device),
        shutdown_signal(),
    )
    .await;
    Ok(())
}

/// The board's devices as the settings page lists them (ids; the default first).
fn device_lists(devices: &[portal_board::DeviceInfo], chosen: &Devices) -> portal_ui::Devices {
    use portal_board::DeviceKind;
    let ids = |kind: DeviceKind| -> Vec<String> {
        devices
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.id.clone())
            .collect()
    };
    let (cameras, microphones, speakers) = (
        ids(DeviceKind::Camera),
        ids(DeviceKind::Microphone),
        ids(DeviceKind::Speaker),
    );
    let pick = |chosen: &Option<String>, list: &[String]| {
        chosen
            .clone()
            .or_else(|| list.first().cloned())
            .unwrap_or_default()
    };
    portal_ui::Devices {
        camera: pick(&chosen.camera, &cameras),
        microphone: pick(&chosen.microphone, &microphones),
        speaker: pick(&chosen.speaker, &speakers),
        cameras,
        microphones,
        speakers,
    }
}

/// The address this kiosk reaches the rooms server from (no packet is sent).
fn local_address(server: &str) -> String {
    let host = server
        .split_once("://")
        .map_or(server, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let with_port = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(&with_port)?;
            s.local_addr()
        })
        .map_or_else(|_| "unknown".to_owned(), |a| a.ip().to_string())
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

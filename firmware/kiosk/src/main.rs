//! `portal-kiosk`: the meeting-room kiosk. It joins a room on a Portal rooms server like a
//! browser does (calls with audio and video, chat, files) and shows its state on a small
//! local HTTP endpoint.
//!
//! ```text
//! portal-kiosk [--headless] [--server ws://HOST:PORT] [--room R] [--name "Room 4.01"]
//!              [--password P] [--config /etc/portal/kiosk.toml] [--status-addr 127.0.0.1:8090]
//!              [--files-dir DIR] [--file-policy ask|accept|deny] [--max-file-mib N]
//!              [--board sim|linux] [--snapshot-dir DIR]
//! ```
//!
//! The binary wires I/O to the library crates; every room decision is
//! `portal-engine`'s. Its modules, each with one job:
//!
//! - [`config`]: the TOML file and the command line (and saving the server address);
//! - [`session`]: the task that owns a call's `portal_engine::Engine` and carries out what
//!   it says (the signaling transport, peers, the media gates, the download directory);
//! - [`link`]: one task per remote peer around a `portal-net` connection, with the media;
//! - [`media`]: the media side a call's links share (one sender, the speaker, the gates);
//! - [`files`]: the download directory (temp files, no-replace rename);
//! - [`request`]: what the touch screen and the local endpoint ask of a call;
//! - [`endpoint`]: the local HTTP endpoint, [`access`]: who may use it (a per-start token
//!   in a private file); [`status`]: the JSON of `GET /status`;
//! - [`home`]: the touch screen outside a call (first run, rooms, joining and failures);
//!   [`call_view`]: the engine's events as the call's views.
//!
//! Without `--headless` the Slint window owns the main thread and tokio runs beside it;
//! with no settings at all the window opens on the first-run screen. With `--headless` the
//! kiosk joins `--room` (waiting for a seat when it is full) and stays; when the server
//! refuses it for good (wrong password, invalid room, another protocol) it says so on
//! `/status` for a few seconds and exits with status 2.
//!
//! On start it prints `status on http://ADDR` on stdout (useful with `--status-addr
//! 127.0.0.1:0`). Logs go to stderr, filtered by `PORTAL_LOG` (default `info`). SIGTERM
//! or SIGINT leaves the room and closes every peer connection before exiting.

mod access;
mod call_view;
mod config;
mod endpoint;
mod files;
mod home;
mod link;
mod media;
mod request;
mod session;
mod status;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use portal_engine::CallState;
use tokio::sync::mpsc;

use crate::config::{Cli, Config};
use crate::request::Request;
use crate::session::CallPlan;

/// How long a headless kiosk refused for good keeps saying so on `/status` before it
/// exits (a supervisor restarting it then sees the same answer, with its own backoff).
const REFUSED_LINGER: Duration = Duration::from_secs(3);

/// The exit status of a headless kiosk whose room can never be joined as configured.
const EXIT_REFUSED: u8 = 2;

fn main() -> anyhow::Result<ExitCode> {
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
        run_windowed(config, &runtime).map(|()| ExitCode::SUCCESS)
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

/// The local endpoint; prints its address on stdout. Its token goes to the configured
/// file first, so a tool that sees the address can read the token.
async fn serve_endpoint(config: &Config) -> anyhow::Result<mpsc::Receiver<Request>> {
    let token = access::Token::generate();
    token
        .write_to(&config.status_token_file)
        .context("writing the status endpoint's token")?;
    tracing::info!(path = %config.status_token_file.display(), "status endpoint token written");
    let (request_tx, requests) = mpsc::channel(64);
    let (addr, serve) = endpoint::bind(config.status_addr, token, request_tx)
        .await
        .with_context(|| format!("binding the status endpoint on {}", config.status_addr))?;
    tokio::spawn(serve);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "status on http://{addr}");
    let _ = out.flush();
    Ok(requests)
}

async fn run_headless(config: Config) -> anyhow::Result<ExitCode> {
    let board = portal_board::open(config.board).context("opening the board")?;
    // Before joining: loading the plugins while the call is being set up would take the
    // CPU from it (and the decoder's plugin would be waited for at the first packet).
    let facts = board.facts();
    tokio::task::spawn_blocking(move || media::preload(&facts))
        .await
        .context("preloading media plugins")?;
    let media = media::open(&config, board.as_ref(), &config.devices)?;
    let requests = serve_endpoint(&config).await?;
    let (Some(room), Some(server)) = (config.room.clone(), config.server.clone()) else {
        anyhow::bail!("a headless kiosk needs a room and a server");
    };
    let plan = CallPlan {
        config: &config,
        server: &server,
        room: &room,
        password: config.password.clone(),
        wait_for_seat: true,
    };
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut call = session::start(&plan, media, requests, None, async move {
        tokio::select! {
            () = shutdown_signal() => {}
            _ = stop_rx => {}
        }
    })?;
    let refused = async {
        loop {
            if call.state.changed().await.is_err() {
                return None;
            }
            if let CallState::Failed { code, message } = &*call.state.borrow_and_update() {
                return Some((*code, message.clone()));
            }
        }
    };
    let exit = tokio::select! {
        result = &mut call.task => {
            result.context("the session task")??;
            ExitCode::SUCCESS
        }
        Some((code, message)) = refused => {
            tracing::error!(%code, message, room, "the rooms server refused this kiosk for good; exiting");
            tokio::time::sleep(REFUSED_LINGER).await;
            let _ = stop.send(());
            call.task.await.context("the session task")??;
            ExitCode::from(EXIT_REFUSED)
        }
    };
    tracing::info!("stopped");
    Ok(exit)
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
    media::preload_in_background(board.as_ref());
    let requests = serve_endpoint(&config).await?;
    let home = home::Home {
        config,
        ui,
        events,
        requests,
        board,
    };
    home::run(home, shutdown_signal()).await;
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

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
//!   [`call_view`]: the engine's events as the call's views;
//! - [`headless`]: the kiosk without a display (its main loop);
//! - [`status_panel`] and [`button`]: the board's optional status panel and button (a
//!   short press mutes, a long press leaves);
//! - [`notify`]: `READY=1`, `WATCHDOG=1` and `STOPPING=1` to the service manager;
//! - [`update`]: the update agent (`portal-ota`) when `[update]` is configured: told the
//!   call state, driven by `POST /update/check` and `/update/install`, shown in `/status`;
//! - [`remote`]: with a device token, the control connection: the pairing code and the
//!   paired laptops' commands (decided by `portal_engine::remote`);
//! - [`presence`]: what a call is doing, for the update agent and the remote control.
//!
//! Without `--headless` the Slint window owns the main thread and tokio runs beside it;
//! with no settings at all the window opens on the first-run screen. With `--headless` the
//! kiosk joins `--room` (waiting for a seat when it is full) and stays; when the server
//! refuses it for good (wrong password, invalid room, another protocol) it says so on
//! `/status` for a few seconds and exits with status 2.
//!
//! Under systemd (`Type=notify`, `WatchdogSec=`), the main loop — the window's event loop,
//! or the headless loop — pings the watchdog; a loop that hangs is restarted.
//!
//! On start it prints `status on http://ADDR` on stdout (useful with `--status-addr
//! 127.0.0.1:0`). Logs go to stderr, filtered by `PORTAL_LOG` (default `info`). SIGTERM
//! or SIGINT leaves the room and closes every peer connection before exiting.

mod access;
mod button;
mod call_view;
mod config;
mod endpoint;
mod files;
mod headless;
mod home;
mod link;
mod media;
mod notify;
mod player;
mod presence;
mod remote;
mod request;
mod session;
mod status;
mod status_panel;
mod update;
mod watch;
mod webplayer;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use portal_board::sim::SimButtonHandle;
use tokio::sync::mpsc;

use crate::config::{Cli, Config};
use crate::notify::Notifier;
use crate::request::Request;

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    init_tracing();
    let config = Config::load(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("portal-kiosk")
        .build()
        .context("starting the runtime")?;
    let notifier = Notifier::from_env();
    if config.headless {
        runtime.block_on(headless::run(config, notifier))
    } else {
        run_windowed(config, &runtime, &notifier).map(|()| ExitCode::SUCCESS)
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

/// With a device token and a rooms server, the remote control (pairing), else nothing;
/// either way the state calls share with it and with the update agent.
pub(crate) fn start_remote(
    config: &Config,
    ui: Option<portal_ui::UiHandle>,
) -> anyhow::Result<(
    presence::Shared,
    Option<remote::RemoteHandle>,
    mpsc::UnboundedReceiver<portal_engine::remote::Action>,
)> {
    let (actions, action_rx) = mpsc::unbounded_channel();
    let (Some(token), Some(server)) = (&config.device_token, &config.server) else {
        return Ok((presence::Shared::standalone(), None, action_rx));
    };
    let (presenter, presenter_rx) = tokio::sync::watch::channel(None);
    let shared = presence::Shared::new(presenter_rx);
    let handle = remote::spawn(remote::RemoteSetup {
        server: server.clone(),
        name: config.name.clone(),
        token: token.clone(),
        own_room: config.own_room.clone(),
        presence: shared.presence.subscribe(),
        actions,
        presenter,
        ui,
    })?;
    tracing::info!(own_room = config.own_room, "remote control started");
    Ok((shared, Some(handle), action_rx))
}

/// The local endpoint, answering with `requests`' receiver; prints its address on
/// stdout. Its token goes to the configured file first, so a tool that sees the address
/// can read the token. `presser`: the simulated button, pressed by `POST /button`. With
/// `[update]`, the update agent starts here too (the endpoint's `/update/*` drive it),
/// told from `shared` whether a meeting is on.
pub(crate) async fn serve_endpoint(
    config: &Config,
    requests: mpsc::Sender<Request>,
    presser: Option<SimButtonHandle>,
    shared: &presence::Shared,
    remote: Option<remote::RemoteHandle>,
) -> anyhow::Result<Option<update::Updater>> {
    let token = access::Token::generate();
    token
        .write_to(&config.status_token_file)
        .context("writing the status endpoint's token")?;
    tracing::info!(path = %config.status_token_file.display(), "status endpoint token written");
    let updater = config
        .update
        .as_ref()
        .map(|u| update::spawn(u, shared.presence.subscribe()));
    let extras = endpoint::Extras {
        presser,
        updater: updater.clone(),
        remote,
    };
    let (addr, serve) = endpoint::bind(config.status_addr, token, requests, extras)
        .await
        .with_context(|| format!("binding the status endpoint on {}", config.status_addr))?;
    tokio::spawn(serve);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "status on http://{addr}");
    let _ = out.flush();
    Ok(updater)
}

/// The window on the main thread, everything else on `runtime`. The UI thread's event
/// loop is the kiosk's main loop here: a Slint timer on it pings the watchdog.
fn run_windowed(
    config: Config,
    runtime: &tokio::runtime::Runtime,
    notifier: &Notifier,
) -> anyhow::Result<()> {
    let (event_tx, events) = mpsc::unbounded_channel();
    let button_events = event_tx.clone();
    let ui = portal_ui::Ui::new(move |event| {
        let _ = event_tx.send(event);
    })
    .context("opening the kiosk window (no display? use --headless)")?;
    let _watchdog = notifier.watchdog_interval().map(|every| {
        let notifier = notifier.clone();
        let started = std::time::Instant::now();
        let timer = slint::Timer::default();
        timer.start(slint::TimerMode::Repeated, every, move || {
            if notify::stall_due(started) {
                tracing::warn!("test hook: the UI thread stalls now");
                loop {
                    std::thread::park();
                }
            }
            notifier.watchdog();
        });
        timer
    });
    let handle = ui.handle();
    let controller = runtime.spawn({
        let handle = handle.clone();
        let notifier = notifier.clone();
        async move {
            let result = windowed(config, handle.clone(), events, button_events, notifier).await;
            // Whatever ended the kiosk's side ends the window too.
            handle.quit();
            result
        }
    });
    ui.run().context("the kiosk window")?;
    notifier.stopping();
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
    button_events: mpsc::UnboundedSender<portal_ui::UiEvent>,
    notifier: Notifier,
) -> anyhow::Result<()> {
    let board: Arc<dyn portal_board::Board> =
        Arc::from(portal_board::open(config.board).context("opening the board")?);
    // The home screen is up meanwhile; a call tapped in the first second shares the CPU
    // with it.
    media::preload_in_background(board.as_ref());
    let (request_tx, requests) = mpsc::channel(64);
    let (button, presser) = button::open(config.button.as_ref());
    let (shared, remote, actions) = start_remote(&config, Some(ui.clone()))?;
    let updater = serve_endpoint(
        &config,
        request_tx.clone(),
        presser,
        &shared,
        remote.clone(),
    )
    .await?;
    match &updater {
        Some(updater) => updater.show_on(ui.clone()),
        None => ui.apply(portal_ui::Update::Update(None)),
    }
    if let Some(button) = button {
        button::spawn_windowed(button::spawn(button), request_tx.clone(), button_events);
    }
    if let Some(panel) = status_panel::open(config.panel.as_ref()) {
        status_panel::spawn(
            panel,
            config.name.clone(),
            config.server.clone(),
            request_tx,
            updater.clone(),
        );
    }
    let updater_for_home = updater.clone();
    // Ready once the endpoint listens and the window's event loop runs (the UI is up for
    // the update agent's health check then too).
    let ready = notifier.clone();
    if let Err(e) = slint::invoke_from_event_loop(move || {
        ready.ready();
        if let Some(updater) = &updater {
            updater.ui_up();
        }
    }) {
        tracing::warn!(error = %e, "the window's event loop is gone");
    }
    let home = home::Home {
        config,
        ui,
        events,
        requests,
        board,
        shared,
        remote,
        actions,
        updater: updater_for_home,
    };
    home::run(home, async move {
        shutdown_signal().await;
        notifier.stopping();
    })
    .await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
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

//! The kiosk without a display: join the configured room (waiting for a seat when it is
//! full) and stay. This loop is the headless kiosk's *main loop*: it forwards the local
//! endpoint's requests to the call, carries out button presses, and pings the service
//! manager's watchdog ([`crate::notify`]) — so a stuck loop stops the pings.
//!
//! - A refusal for good (wrong password, invalid room, another protocol) is shown on
//!   `/status` for [`REFUSED_LINGER`], then the process exits with [`EXIT_REFUSED`].
//! - A short press of the button mutes or unmutes; a long press leaves the call, and the
//!   kiosk waits (`/status` says `idle`) until the next press joins again.
//! - A paired laptop's commands (with a device token, see [`crate::remote`]): join another
//!   room, leave (then wait as after a long press), mute, camera, volume.
//! - SIGTERM or SIGINT: `STOPPING=1`, leave, exit.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use portal_board::Press;
use portal_engine::CallState;
use tokio::sync::{mpsc, oneshot, watch};

use portal_engine::remote::Action;

use crate::config::Config;
use crate::notify::Notifier;
use crate::presence::Shared;
use crate::request::Request;
use crate::session::{self, CallPlan};

/// How long a headless kiosk refused for good keeps saying so on `/status` before it
/// exits (a supervisor restarting it then sees the same answer, with its own backoff).
const REFUSED_LINGER: Duration = Duration::from_secs(3);

/// The exit status of a headless kiosk whose room can never be joined as configured.
const EXIT_REFUSED: u8 = 2;

/// How a call ended.
enum Ended {
    /// Shut down, or the session ended by itself: exit with this.
    Exit(ExitCode),
    /// Left with the button or by a paired laptop: wait for the next press.
    Left,
    /// A paired laptop asked for another room.
    Switch(String, Option<String>),
}

/// What the loop needs besides the config.
struct Loop {
    requests: mpsc::Receiver<Request>,
    presses: Option<mpsc::Receiver<Press>>,
    /// A paired laptop's commands.
    actions: mpsc::UnboundedReceiver<Action>,
    shared: Shared,
    shutdown: watch::Receiver<bool>,
    notifier: Notifier,
    watchdog: tokio::time::Interval,
    started: Instant,
}

/// The next press, when there is a button.
async fn next_press(presses: &mut Option<mpsc::Receiver<Press>>) -> Option<Press> {
    match presses {
        Some(presses) => presses.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves [`REFUSED_LINGER`] after a refusal; never without one.
async fn linger(refused: Option<Instant>) {
    match refused {
        Some(at) => tokio::time::sleep_until((at + REFUSED_LINGER).into()).await,
        None => std::future::pending().await,
    }
}

/// One watchdog ping (and the test hook's stall).
async fn ping(notifier: &Notifier, started: Instant) {
    if crate::notify::stall_due(started) {
        tracing::warn!("test hook: the main loop stalls now");
        std::future::pending::<()>().await;
    }
    notifier.watchdog();
}

pub(crate) async fn run(config: Config, notifier: Notifier) -> anyhow::Result<ExitCode> {
    let board = portal_board::open(config.board).context("opening the board")?;
    // Before joining: loading the plugins while the call is being set up would take the
    // CPU from it (and the decoder's plugin would be waited for at the first packet).
    let facts = board.facts();
    tokio::task::spawn_blocking(move || crate::media::preload(&facts))
        .await
        .context("preloading media plugins")?;
    let (Some(room), Some(server)) = (config.room.clone(), config.server.clone()) else {
        anyhow::bail!("a headless kiosk needs a room and a server");
    };
    let (request_tx, requests) = mpsc::channel(64);
    let (button, presser) = crate::button::open(config.button.as_ref());
    let (shared, remote, actions) = crate::start_remote(&config, None)?;
    let updater =
        crate::serve_endpoint(&config, request_tx.clone(), presser, &shared, remote).await?;
    // No window: the "UI" is up once the endpoint serves.
    if let Some(updater) = &updater {
        updater.ui_up();
    }
    if let Some(panel) = crate::status_panel::open(config.panel.as_ref()) {
        crate::status_panel::spawn(
            panel,
            config.name.clone(),
            Some(server.clone()),
            request_tx,
            updater,
        );
    } else {
        drop(request_tx);
    }
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn({
        let notifier = notifier.clone();
        async move {
            crate::shutdown_signal().await;
            notifier.stopping();
            let _ = shutdown_tx.send(true);
        }
    });
    let mut watchdog = tokio::time::interval(
        notifier
            .watchdog_interval()
            .unwrap_or(Duration::from_hours(1)),
    );
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut l = Loop {
        requests,
        presses: button.map(crate::button::spawn),
        actions,
        shared,
        shutdown,
        notifier,
        watchdog,
        started: Instant::now(),
    };
    l.notifier.ready();
    let (mut room, mut password) = (room, config.password.clone());
    loop {
        let shared = l.shared.clone();
        let plan = CallPlan {
            config: &config,
            server: &server,
            room: &room,
            password: password.clone(),
            wait_for_seat: true,
            shared: &shared,
        };
        let media = crate::media::open(&config, board.as_ref(), &config.devices)?;
        let ended = call(&mut l, &plan, media).await?;
        let next = match ended {
            Ended::Exit(code) => return Ok(code),
            Ended::Left => idle(&mut l, &config.name, &room, password.as_ref()).await,
            Ended::Switch(r, p) => Some((r, p)),
        };
        let Some(next) = next else {
            tracing::info!("stopped");
            return Ok(ExitCode::SUCCESS);
        };
        (room, password) = next;
    }
}

/// One call, until it ends.
async fn call(
    l: &mut Loop,
    plan: &CallPlan<'_>,
    media: crate::media::Media,
) -> anyhow::Result<Ended> {
    let (call_tx, call_rx) = mpsc::channel(64);
    let (stop, stop_rx) = oneshot::channel::<()>();
    let mut call = session::start(plan, media, call_rx, None, async move {
        let _ = stop_rx.await;
    })?;
    let mut refused: Option<Instant> = None;
    let ended = loop {
        tokio::select! {
            result = &mut call.task => {
                result.context("the session task")??;
                tracing::info!("stopped");
                return Ok(Ended::Exit(ExitCode::SUCCESS));
            }
            _ = l.shutdown.wait_for(|stop| *stop) => break Ended::Exit(ExitCode::SUCCESS),
            Ok(()) = call.state.changed() => {
                if let CallState::Failed { code, message } = &*call.state.borrow_and_update() {
                    tracing::error!(%code, message, room = plan.room, "the rooms server refused this kiosk for good; exiting");
                    refused.get_or_insert_with(Instant::now);
                }
            }
            () = linger(refused) => break Ended::Exit(ExitCode::from(EXIT_REFUSED)),
            Some(request) = l.requests.recv() => {
                let _ = call_tx.send(request).await;
            }
            Some(press) = next_press(&mut l.presses) => match press {
                Press::Long => {
                    tracing::info!(room = plan.room, "button: leaving the call");
                    break Ended::Left;
                }
                _ => crate::button::toggle_mic(&call_tx).await,
            },
            Some(action) = l.actions.recv() => match action {
                Action::JoinRoom { room, password } => {
                    tracing::info!(room, "a paired laptop: joining another room");
                    break Ended::Switch(room, password);
                }
                Action::Leave => {
                    tracing::info!(room = plan.room, "a paired laptop: leaving the call");
                    break Ended::Left;
                }
                other => {
                    let _ = call_tx.send(Request::Ui(crate::remote::as_ui_event(other))).await;
                }
            },
            _ = l.watchdog.tick() => ping(&l.notifier, l.started).await,
        }
    };
    let _ = stop.send(());
    call.task.await.context("the session task")??;
    if matches!(ended, Ended::Exit(_)) {
        tracing::info!("stopped");
    }
    Ok(ended)
}

/// Out of a call after a long press or a laptop's "Leave": answers as idle until the
/// next press (join `room` again), a paired laptop's join, or the shutdown (`None`).
async fn idle(
    l: &mut Loop,
    name: &str,
    room: &str,
    password: Option<&String>,
) -> Option<(String, Option<String>)> {
    let rooms = [(room.to_owned(), None)];
    loop {
        tokio::select! {
            _ = l.shutdown.wait_for(|stop| *stop) => return None,
            Some(request) = l.requests.recv() => {
                request.refuse(|| crate::status::idle(name, None, &rooms));
            }
            Some(_) = next_press(&mut l.presses) => {
                tracing::info!(room, "button: joining again");
                return Some((room.to_owned(), password.cloned()));
            }
            Some(action) = l.actions.recv() => match action {
                Action::JoinRoom { room, password } => {
                    tracing::info!(room, "a paired laptop: joining");
                    return Some((room, password));
                }
                Action::SetVolume(volume) => {
                    let mut next = l.shared.presence.borrow().clone();
                    next.volume = volume.clamp(0.0, 1.0);
                    l.shared.publish(next);
                }
                other => tracing::debug!(?other, "not in a call"),
            },
            _ = l.watchdog.tick() => ping(&l.notifier, l.started).await,
        }
    }
}

//! The kiosk's hardware button ([`portal_board::button`]): a short press mutes or unmutes
//! the microphone, a long press leaves the call. Headless, a press while out of a call
//! joins the room again ([`crate::headless`]).
//!
//! The button blocks while it waits for a press, so it gets a thread of its own; presses
//! come out of [`spawn`] on a channel. What they do goes through the same requests as
//! the touch screen's taps (`SetMicMuted`, `Leave`); the engine decides the rest.

use portal_board::sim::SimButtonHandle;
use portal_board::{Button, Press};
use portal_ui::UiEvent;
use tokio::sync::{mpsc, oneshot};

use crate::config::ButtonConfig;
use crate::request::Request;

/// Opens the configured button; with the simulated one, also the handle that presses it
/// (for `POST /button`). `None` (and a warning) when it cannot be opened.
pub(crate) fn open(
    config: Option<&ButtonConfig>,
) -> (Option<Box<dyn Button>>, Option<SimButtonHandle>) {
    match config {
        None => (None, None),
        Some(ButtonConfig::Sim) => {
            let (button, handle) = portal_board::sim::sim_button();
            tracing::info!("simulated button (POST /button presses it)");
            (Some(Box::new(button)), Some(handle))
        }
        #[cfg(feature = "linux-board")]
        Some(ButtonConfig::Gpio {
            chip,
            line,
            active_low,
        }) => match portal_board::linux::LinuxButton::open(chip, *line, *active_low) {
            Ok(button) => {
                tracing::info!(chip, line, "button");
                (Some(Box::new(button)), None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "no button");
                (None, None)
            }
        },
        #[cfg(not(feature = "linux-board"))]
        Some(ButtonConfig::Gpio { chip, line, .. }) => {
            tracing::warn!(
                chip,
                line,
                "no button: a GPIO button needs a build with the board's linux backend (feature \"linux-board\")"
            );
            (None, None)
        }
    }
}

/// Waits for presses on a thread of its own; they come out of the returned channel,
/// which ends when the button is gone or fails.
pub(crate) fn spawn(mut button: Box<dyn Button>) -> mpsc::Receiver<Press> {
    let (tx, rx) = mpsc::channel(8);
    let spawned = std::thread::Builder::new()
        .name("portal-button".into())
        .spawn(move || {
            loop {
                match button.next_press() {
                    Ok(Some(press)) => {
                        tracing::info!(?press, "button");
                        if tx.blocking_send(press).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "the button failed; going on without it");
                        break;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no thread for the button");
    }
    rx
}

/// Mutes the microphone when it is on and the other way round, through `call` (a
/// running call's requests, or whoever forwards to it). Nothing when not in a call.
pub(crate) async fn toggle_mic(call: &mpsc::Sender<Request>) {
    let (tx, rx) = oneshot::channel();
    if call.send(Request::Status(tx)).await.is_err() {
        return;
    }
    let Ok(status) = rx.await else { return };
    let Some(muted) = status["micMuted"].as_bool() else {
        tracing::debug!("button: not in a call");
        return;
    };
    let _ = call.send(Request::Ui(UiEvent::SetMicMuted(!muted))).await;
}

/// With the touch screen: presses become the taps they stand for.
pub(crate) fn spawn_windowed(
    mut presses: mpsc::Receiver<Press>,
    requests: mpsc::Sender<Request>,
    ui_events: mpsc::UnboundedSender<UiEvent>,
) {
    tokio::spawn(async move {
        while let Some(press) = presses.recv().await {
            match press {
                Press::Long => {
                    let _ = ui_events.send(UiEvent::Leave);
                }
                _ => toggle_mic(&requests).await,
            }
        }
    });
}

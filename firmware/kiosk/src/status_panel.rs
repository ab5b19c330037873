//! The status panel beside the kiosk ([`portal_board::panel`]): what `/status` says,
//! drawn small. A task asks for the status as the local endpoint does (a
//! [`Request::Status`] to whoever runs the kiosk now), turns it into a [`PanelState`]
//! ([`panel_state`], no I/O) and, when that changed, hands the frame to a thread of its
//! own that talks to the device (I2C writes block). The update agent's download or
//! install shows as a percent ([`PanelState::update_percent`]).
//!
//! A panel that cannot be opened, or fails later, is a warning in the log; the kiosk
//! goes on without it.

use std::time::{Duration, Instant};

use portal_board::panel::{Panel, PanelCall, PanelState, render};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::config::PanelConfig;
use crate::request::Request;
use crate::update::Updater;

/// How often the panel asks for the status.
const EVERY: Duration = Duration::from_millis(500);

/// How often the kiosk's own address is looked up again (DHCP may change it).
const ADDRESS_EVERY: Duration = Duration::from_secs(10);

/// Opens the configured panel; `None` (and a warning) when it cannot be.
pub(crate) fn open(config: Option<&PanelConfig>) -> Option<Box<dyn Panel>> {
    let result: Result<Box<dyn Panel>, String> = match config? {
        #[cfg(feature = "linux-board")]
        PanelConfig::I2c { bus, address } => portal_board::linux::LinuxPanel::open(bus, *address)
            .map(|p| Box::new(p) as Box<dyn Panel>)
            .map_err(|e| e.to_string()),
        #[cfg(not(feature = "linux-board"))]
        PanelConfig::I2c { bus, .. } => Err(format!(
            "an I2C panel on {bus} needs a build with the board's linux backend (feature \"linux-board\")"
        )),
        PanelConfig::Png(dir) => std::fs::create_dir_all(dir)
            .map(|()| {
                Box::new(portal_board::sim::SimPanel::new(Some(dir.clone()))) as Box<dyn Panel>
            })
            .map_err(|e| format!("creating {}: {e}", dir.display())),
    };
    match result {
        Ok(panel) => {
            tracing::info!(?panel, "status panel");
            Some(panel)
        }
        Err(e) => {
            tracing::warn!(error = e, "no status panel");
            None
        }
    }
}

/// Keeps `panel` showing the kiosk's state, asked of `requests`, until they end.
/// `server` is the rooms server the kiosk's address is looked up against.
pub(crate) fn spawn(
    panel: Box<dyn Panel>,
    name: String,
    server: Option<String>,
    requests: mpsc::Sender<Request>,
    updater: Option<Updater>,
) {
    let (frames, frame_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("portal-panel".into())
        .spawn(move || show(panel, &frame_rx));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no thread for the status panel");
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut shown: Option<PanelState> = None;
        let mut address: Option<(Instant, Option<String>)> = None;
        loop {
            tick.tick().await;
            let (tx, rx) = oneshot::channel();
            if requests.send(Request::Status(tx)).await.is_err() {
                break;
            }
            let Ok(mut status) = rx.await else { continue };
            crate::status::add_update(&mut status, updater.as_ref());
            if address
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() >= ADDRESS_EVERY)
            {
                let found = server.as_deref().map(crate::home::local_address);
                address = Some((Instant::now(), found));
            }
            let state = panel_state(
                &name,
                &status,
                address.as_ref().and_then(|(_, a)| a.clone()),
            );
            if shown.as_ref() != Some(&state) {
                if frames.send(render(&state)).is_err() {
                    break;
                }
                shown = Some(state);
            }
        }
    });
}

/// The device's side: shows each frame; logs the first failure, then stays quieter.
fn show(mut panel: Box<dyn Panel>, frames: &std::sync::mpsc::Receiver<portal_board::panel::Frame>) {
    let mut failing = false;
    while let Ok(frame) = frames.recv() {
        match panel.show(&frame) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                tracing::warn!(error = %e, "the status panel failed");
                failing = true;
            }
            Err(e) => tracing::debug!(error = %e, "the status panel still fails"),
        }
    }
}

/// What the panel shows for a `/status` answer.
pub(crate) fn panel_state(name: &str, status: &Value, address: Option<String>) -> PanelState {
    let room = status["room"].as_str().unwrap_or_default().to_owned();
    let call = match status["state"].as_str().unwrap_or_default() {
        "connecting" => PanelCall::Connecting { room },
        "joined" => PanelCall::InCall {
            room,
            // The others, and this kiosk.
            people: status["peers"].as_array().map_or(0, Vec::len) as u32 + 1,
            mic_muted: status["micMuted"] == Value::Bool(true),
        },
        "reconnecting" => PanelCall::Reconnecting {
            room,
            attempt: status["attempt"].as_u64().unwrap_or(0) as u32,
        },
        "failed" => PanelCall::Failed {
            message: status["error"]["message"]
                .as_str()
                .unwrap_or("refused")
                .to_owned(),
        },
        _ => PanelCall::Idle,
    };
    PanelState {
        name: name.to_owned(),
        call,
        pairing_code: None,
        address,
        update_percent: update_percent(&status["update"]),
    }
}

/// The download's or the install's percent, while one runs.
fn update_percent(update: &Value) -> Option<u8> {
    matches!(update["state"].as_str(), Some("downloading" | "installing"))
        .then(|| update["progress"].as_u64())
        .flatten()
        .map(|p| p.min(100) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_status_becomes_the_panel_state() {
        let idle = panel_state("Room 4.01", &json!({"state": "idle", "room": null}), None);
        assert_eq!(idle.call, PanelCall::Idle);
        assert_eq!(idle.name, "Room 4.01");
        let call = json!({
            "state": "joined", "room": "4-01", "micMuted": true,
            "peers": [{"id": 1}, {"id": 2}],
        });
        assert_eq!(
            panel_state("R", &call, Some("10.0.0.2".into())),
            PanelState {
                name: "R".into(),
                call: PanelCall::InCall {
                    room: "4-01".into(),
                    people: 3,
                    mic_muted: true
                },
                address: Some("10.0.0.2".into()),
                ..PanelState::default()
            }
        );
        let failed = json!({"state": "failed", "error": {"message": "wrong password"}});
        assert_eq!(
            panel_state("R", &failed, None).call,
            PanelCall::Failed {
                message: "wrong password".into()
            }
        );
        let updating = json!({"state": "idle", "update": {"state": "downloading", "progress": 42}});
        assert_eq!(panel_state("R", &updating, None).update_percent, Some(42));
        let ready = json!({"state": "idle", "update": {"state": "ready", "progress": 100}});
        assert_eq!(panel_state("R", &ready, None).update_percent, None);
        let again = json!({"state": "reconnecting", "room": "r", "attempt": 2});
        assert_eq!(
            panel_state("R", &again, None).call,
            PanelCall::Reconnecting {
                room: "r".into(),
                attempt: 2
            }
        );
    }
}

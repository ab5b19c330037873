//! The update agent (`portal-ota`'s [`runner`]) inside the kiosk, when `[update]` is
//! configured: it runs as a tokio task, told the call state so it never installs during a
//! call (`CallActive`), and "check now" / "install now" from the local endpoint. Its
//! status is `"update"` in `/status` ([`Updater::json`]) and the panel's progress.
//!
//! In a call means: a call with at least one other peer, joined or getting there (a
//! headless kiosk alone in its room is not in a meeting). The call state is read as the
//! status panel reads it, with a [`Request::Status`] once a second.
//!
//! The health check after booting a new slot: the agent reaches the rooms server's
//! `/healthz` itself, and waits for the UI's file ([`UI_READY_FILE`] in the data
//! directory), which the kiosk creates once its window shows (headless: once the local
//! endpoint serves) through [`Updater::ui_up`].

use std::path::PathBuf;
use std::time::Duration;

use portal_ota::download::DownloadOptions;
use portal_ota::rauc::Bus;
use portal_ota::runner::{self, AgentConfig, Control, Outcome};
use portal_ota::{Policy, Status};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::UpdateConfig;
use crate::request::Request;

/// The file that says the UI is up, in the agent's data directory (removed at start).
pub(crate) const UI_READY_FILE: &str = "ui-up";

/// How often the call state is read.
const CALL_EVERY: Duration = Duration::from_secs(1);

/// The running agent, as the endpoint, the panel and the UI see it.
#[derive(Clone, Debug)]
pub(crate) struct Updater {
    control: mpsc::Sender<Control>,
    status: watch::Receiver<Option<Status>>,
    /// Why the agent stopped, when it did.
    stopped: watch::Receiver<Option<Value>>,
    ui_ready_file: PathBuf,
}

/// Starts the agent; `requests` answers [`Request::Status`] (the call state).
pub(crate) fn spawn(config: &UpdateConfig, requests: mpsc::Sender<Request>) -> Updater {
    let ui_ready_file = config.data_dir.join(UI_READY_FILE);
    // Left from the previous boot, it would pass the health check for a UI not up yet.
    let _ = std::fs::remove_file(&ui_ready_file);
    let agent = AgentConfig {
        feed: config.feed.clone(),
        data_dir: config.data_dir.clone(),
        bus: config
            .dbus_address
            .clone()
            .map_or(Bus::System, Bus::Address),
        policy: Policy {
            compatible: config.compatible.clone(),
            check_every_ms: config.check_every_secs.saturating_mul(1000),
            window: config.window,
            health_deadline_ms: config.health_deadline_secs.saturating_mul(1000),
            ..Policy::default()
        },
        current_version: env!("CARGO_PKG_VERSION").parse().expect("a semver"),
        download: DownloadOptions::default(),
        reboot: config.reboot.clone(),
        health_url: Some(config.health_url.clone()),
        ui_ready_file: Some(ui_ready_file.clone()),
    };
    let (control, control_rx) = mpsc::channel(16);
    let (status_tx, status) = watch::channel(None);
    let (stopped_tx, stopped) = watch::channel(None);
    tokio::spawn(async move {
        let outcome = runner::run(agent, control_rx, status_tx).await;
        let why = match outcome {
            Ok(Outcome::Rebooting) => {
                tracing::info!("update agent: the device restarts");
                return;
            }
            Ok(outcome) => {
                tracing::info!(?outcome, "update agent stopped");
                json!({"code": "stopped", "message": "the update agent stopped"})
            }
            Err(e) => {
                tracing::error!(error = %e, code = e.code(), "update agent stopped");
                json!({"code": e.code(), "message": e.to_string()})
            }
        };
        let _ = stopped_tx.send(Some(why));
    });
    tokio::spawn(feed_call_state(requests, control.clone()));
    Updater {
        control,
        status,
        stopped,
        ui_ready_file,
    }
}

/// Tells the agent each change of the call state until either side ends.
async fn feed_call_state(requests: mpsc::Sender<Request>, control: mpsc::Sender<Control>) {
    let mut tick = tokio::time::interval(CALL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut told = None;
    loop {
        tick.tick().await;
        let (tx, rx) = oneshot::channel();
        if requests.send(Request::Status(tx)).await.is_err() {
            return;
        }
        let Ok(status) = rx.await else { continue };
        let on = in_call(&status);
        if told != Some(on) {
            tracing::info!(in_call = on, "update agent told the call state");
            if control.send(Control::CallActive(on)).await.is_err() {
                return;
            }
            told = Some(on);
        }
    }
}

/// Whether a `/status` answer is a call with someone else in it.
fn in_call(status: &Value) -> bool {
    let calling = matches!(
        status["state"].as_str(),
        Some("joined" | "connecting" | "reconnecting")
    );
    calling && status["peers"].as_array().is_some_and(|p| !p.is_empty())
}

impl Updater {
    /// "Check now"; `false`: the agent is gone.
    pub(crate) async fn check_now(&self) -> bool {
        self.control.send(Control::CheckNow).await.is_ok()
    }

    /// "Install now" (still never during a call); `false`: the agent is gone.
    pub(crate) async fn install_now(&self) -> bool {
        self.control.send(Control::InstallNow).await.is_ok()
    }

    /// The UI shows: the health check's second half.
    pub(crate) fn ui_up(&self) {
        if let Err(e) = std::fs::write(&self.ui_ready_file, b"") {
            tracing::warn!(error = %e, path = %self.ui_ready_file.display(), "cannot say the UI is up");
        }
    }

    /// `"update"` of `/status`.
    pub(crate) fn json(&self) -> Value {
        status_json(
            self.status.borrow().as_ref(),
            self.stopped.borrow().as_ref(),
        )
    }
}

fn status_json(status: Option<&Status>, stopped: Option<&Value>) -> Value {
    let Some(s) = status else {
        return json!({
            "state": if stopped.is_some() { "failed" } else { "idle" },
            "current": null, "available": null, "progress": null,
            "error": stopped, "deferredByCall": false,
        });
    };
    let error = match (stopped, &s.error) {
        (Some(why), _) => why.clone(),
        (None, Some(e)) => json!(e),
        (None, None) => Value::Null,
    };
    json!({
        "state": if stopped.is_some() { json!("failed") } else { json!(s.state) },
        "current": s.current.to_string(),
        "available": s.available.as_ref().map(|a| a.version.to_string()),
        "availableSize": s.available.as_ref().map(|a| a.size),
        "notes": s.available.as_ref().map(|a| a.notes.clone()),
        "progress": s.progress,
        "error": error,
        "deferredByCall": s.deferred_by_call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use portal_ota::Phase;

    #[test]
    fn the_call_state_and_the_status_json() {
        assert!(!in_call(&json!({"state": "joined", "peers": []})));
        assert!(in_call(&json!({"state": "joined", "peers": [{"id": 2}]})));
        assert!(in_call(
            &json!({"state": "reconnecting", "peers": [{"id": 2}]})
        ));
        assert!(!in_call(&json!({"state": "idle", "peers": []})));
        assert_eq!(status_json(None, None)["state"], "idle");
        let s = Status {
            state: Phase::Ready,
            current: "1.0.0".parse().unwrap(),
            available: Some(portal_ota::state::Available {
                version: "1.1.0".parse().unwrap(),
                notes: "n".into(),
                size: 3,
            }),
            progress: None,
            error: None,
            deferred_by_call: true,
        };
        let j = status_json(Some(&s), None);
        assert_eq!(j["state"], "ready");
        assert_eq!(j["available"], "1.1.0");
        assert_eq!(j["current"], "1.0.0");
        assert_eq!(j["deferredByCall"], true);
        let gone = json!({"code": "rauc", "message": "no bus"});
        assert_eq!(status_json(Some(&s), Some(&gone))["state"], "failed");
        assert_eq!(status_json(None, Some(&gone))["error"]["code"], "rauc");
    }
}

//! The update agent (`portal-ota`'s [`runner`]) inside the kiosk, when `[update]` is
//! configured: it runs as a tokio task, told the call state so it never installs during a
//! call (`CallActive`), and "check now" / "install now" from the local endpoint. Its
//! status is `"update"` in `/status` ([`Updater::json`]) and the panel's progress.
//!
//! In a call means a meeting as the engine decides it (`Engine::in_meeting`: a call with
//! at least one other peer, joined or getting back to it; a headless kiosk alone in its
//! room is not in a meeting), published by the session in [`Presence`] and passed on at
//! each change.
//!
//! The health check after booting a new slot: the agent reaches the rooms server's
//! `/healthz` itself, and waits for the UI's file ([`UI_READY_FILE`] in the data
//! directory), which the kiosk creates once its window shows (headless: once the local
//! endpoint serves) through [`Updater::ui_up`].

use std::path::PathBuf;

use portal_ota::download::DownloadOptions;
use portal_ota::rauc::Bus;
use portal_ota::runner::{self, AgentConfig, Control, Outcome};
use portal_ota::{Policy, Status};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::config::UpdateConfig;
use crate::presence::Presence;

/// The file that says the UI is up, in the agent's data directory (removed at start).
pub(crate) const UI_READY_FILE: &str = "ui-up";

/// The running agent, as the endpoint, the panel and the UI see it.
#[derive(Clone, Debug)]
pub(crate) struct Updater {
    control: mpsc::Sender<Control>,
    status: watch::Receiver<Option<Status>>,
    /// Why the agent stopped, when it did.
    stopped: watch::Receiver<Option<Value>>,
    ui_ready_file: PathBuf,
}

/// Starts the agent, told whether a meeting is on from `presence`.
pub(crate) fn spawn(config: &UpdateConfig, presence: watch::Receiver<Presence>) -> Updater {
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
    tokio::spawn(feed_call_state(presence, control.clone()));
    Updater {
        control,
        status,
        stopped,
        ui_ready_file,
    }
}

/// Tells the agent each change of the meeting state until either side ends.
async fn feed_call_state(mut presence: watch::Receiver<Presence>, control: mpsc::Sender<Control>) {
    let mut told = None;
    loop {
        let on = presence.borrow_and_update().meeting;
        if told != Some(on) {
            tracing::info!(in_call = on, "update agent told the call state");
            if control.send(Control::CallActive(on)).await.is_err() {
                return;
            }
            told = Some(on);
        }
        if presence.changed().await.is_err() {
            return;
        }
    }
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

    /// Keeps the settings page's update section current until the agent's status ends.
    pub(crate) fn show_on(&self, ui: portal_ui::UiHandle) {
        let mut status = self.status.clone();
        let stopped = self.stopped.clone();
        tokio::spawn(async move {
            loop {
                let view = ui_view(
                    status.borrow_and_update().as_ref(),
                    stopped.borrow().as_ref(),
                );
                ui.apply(portal_ui::Update::Update(Some(view)));
                if status.changed().await.is_err() {
                    return;
                }
            }
        });
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

/// The agent's status as the settings page shows it.
fn ui_view(status: Option<&Status>, stopped: Option<&Value>) -> portal_ui::UpdateView {
    use portal_ota::Phase;
    use portal_ui::UpdatePhase;
    let stopped_text = stopped.map(|v| v["message"].as_str().unwrap_or("stopped").to_owned());
    let Some(s) = status else {
        return portal_ui::UpdateView {
            phase: if stopped.is_some() {
                UpdatePhase::Failed
            } else {
                UpdatePhase::Idle
            },
            current: env!("CARGO_PKG_VERSION").to_owned(),
            error: stopped_text,
            ..portal_ui::UpdateView::default()
        };
    };
    let phase = match s.state {
        _ if stopped.is_some() => UpdatePhase::Failed,
        Phase::Idle => UpdatePhase::Idle,
        Phase::Checking => UpdatePhase::Checking,
        Phase::Downloading => UpdatePhase::Downloading,
        Phase::Ready => UpdatePhase::Ready,
        Phase::Installing => UpdatePhase::Installing,
        Phase::Rebooting => UpdatePhase::Rebooting,
        Phase::Failed => UpdatePhase::Failed,
    };
    portal_ui::UpdateView {
        phase,
        current: s.current.to_string(),
        available: s.available.as_ref().map(|a| a.version.to_string()),
        progress: s.progress.map(|p| f32::from(p) / 100.0),
        deferred_by_call: s.deferred_by_call,
        error: stopped_text.or_else(|| s.error.as_ref().map(|e| e.message.clone())),
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
    fn the_status_json() {
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
        let view = ui_view(Some(&s), None);
        assert_eq!(view.phase, portal_ui::UpdatePhase::Ready);
        assert!(view.deferred_by_call);
        assert_eq!(view.available.as_deref(), Some("1.1.0"));
        assert_eq!(view.status(), "Update 1.1.0 will install after this call");
        let gone = json!({"code": "rauc", "message": "no bus"});
        let failed = ui_view(Some(&s), Some(&gone));
        assert_eq!(failed.phase, portal_ui::UpdatePhase::Failed);
        assert_eq!(failed.status(), "Update failed: no bus");
        assert_eq!(ui_view(None, None).phase, portal_ui::UpdatePhase::Idle);
        assert_eq!(status_json(Some(&s), Some(&gone))["state"], "failed");
        assert_eq!(status_json(None, Some(&gone))["error"]["code"], "rauc");
    }
}

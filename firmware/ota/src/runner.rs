//! The agent's I/O: performs what [`Agent`] asks (manifest, download, RAUC, restart,
//! health probes) on tokio tasks and feeds the answers back, with the call state and
//! "install now" coming from the embedder over a channel.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Timelike as _;
use semver::Version;
use tokio::sync::{mpsc, watch};

use crate::download::{self, DownloadOptions};
use crate::error::OtaError;
use crate::machine::{Action, Agent, Input, Now, Policy};
use crate::rauc::{Bus, Rauc};
use crate::state::{self, Status};

/// The status file beside the state file: the latest [`Status`] as JSON, for whoever
/// shows it without embedding the agent.
pub const STATUS_FILE: &str = "ota-status.json";

/// Everything the agent needs to run.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The rooms server's base URL (`http://HOST:PORT`); the feed is under `/updates/`.
    pub feed: String,
    /// Where the state file and the bundle go.
    pub data_dir: PathBuf,
    pub bus: Bus,
    /// With an empty `compatible`, RAUC's is used.
    pub policy: Policy,
    /// The running version when RAUC does not know it (a slot not installed by RAUC).
    pub current_version: Version,
    pub download: DownloadOptions,
    /// The command that restarts the device (`systemctl reboot`).
    pub reboot: Vec<String>,
    /// Health after booting a new slot: this URL answers 200 (default: the feed's
    /// `/healthz`) ...
    pub health_url: Option<String>,
    /// ... and this file exists (the UI creates it once it shows); `None`: no UI check.
    pub ui_ready_file: Option<PathBuf>,
}

/// What the embedder tells the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    CallActive(bool),
    InstallNow,
    CheckNow,
}

/// Why [`run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The restart command ran; the device is going down.
    Rebooting,
    /// The control channel closed.
    Stopped,
}

/// Runs the agent until it restarts the device or `control` closes.
pub async fn run(
    mut cfg: AgentConfig,
    mut control: mpsc::Receiver<Control>,
    status: watch::Sender<Option<Status>>,
) -> Result<Outcome, OtaError> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    let rauc = Rauc::connect(&cfg.bus).await?;
    if cfg.policy.compatible.is_empty() {
        cfg.policy.compatible = rauc.compatible().await?;
    }
    let booted = rauc.booted().await?;
    let current = booted
        .bundle_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| cfg.current_version.clone());
    let primary = rauc.primary().await.ok();
    tracing::info!(%current, booted = booted.name, ?primary, "update agent started");

    let epoch = Instant::now();
    let now = || {
        let local = chrono::Local::now();
        Now {
            ms: epoch.elapsed().as_millis() as u64,
            minute_of_day: (local.hour() * 60 + local.minute()) as u16,
        }
    };
    let mut agent = Agent::new(cfg.policy.clone(), state::load(&cfg.data_dir));
    let (tx, mut results) = mpsc::channel::<Input>(64);
    agent.handle(
        now(),
        Input::Started {
            current,
            booted_slot: booted.name,
            primary,
        },
    );
    loop {
        while let Some(action) = agent.poll() {
            if let Some(outcome) = perform(action, &cfg, &rauc, &tx, &status).await? {
                return Ok(outcome);
            }
        }
        let wake = agent
            .next_wake()
            .map_or(Duration::from_secs(30), |t| {
                Duration::from_millis(t.saturating_sub(now().ms))
            })
            .min(Duration::from_secs(30));
        let input = tokio::select! {
            Some(input) = results.recv() => input,
            c = control.recv() => match c {
                Some(Control::CallActive(on)) => Input::CallActive(on),
                Some(Control::InstallNow) => Input::InstallNow,
                Some(Control::CheckNow) => Input::CheckNow,
                None => return Ok(Outcome::Stopped),
            },
            () = tokio::time::sleep(wake) => Input::Tick,
        };
        agent.handle(now(), input);
    }
}

/// Performs one action; long ones run on their own task and answer through `tx`.
async fn perform(
    action: Action,
    cfg: &AgentConfig,
    rauc: &Rauc,
    tx: &mpsc::Sender<Input>,
    status: &watch::Sender<Option<Status>>,
) -> Result<Option<Outcome>, OtaError> {
    let tx = tx.clone();
    match action {
        Action::Save(p) => state::save(&cfg.data_dir, &p)?,
        Action::Status(s) => {
            tracing::info!(state = ?s.state, progress = ?s.progress, error = ?s.error, "update status");
            let json = serde_json::to_vec_pretty(&s).expect("serializable");
            let tmp = cfg.data_dir.join(format!("{STATUS_FILE}.tmp"));
            std::fs::write(&tmp, json)?;
            std::fs::rename(&tmp, cfg.data_dir.join(STATUS_FILE))?;
            status.send_replace(Some(s));
        }
        Action::FetchManifest => {
            let (feed, compatible) = (cfg.feed.clone(), cfg.policy.compatible.clone());
            tokio::spawn(async move {
                let input = match download::fetch_manifest(&feed, &compatible).await {
                    Ok(None) => Input::NothingOffered,
                    Ok(Some(m)) => Input::Manifest(Ok(m)),
                    Err(e) => Input::Manifest(Err(e)),
                };
                let _ = tx.send(input).await;
            });
        }
        Action::Download(m) => {
            let cfg = cfg.clone();
            tokio::spawn(async move {
                let progress_tx = tx.clone();
                let mut progress = move |done, total| {
                    let _ = progress_tx.try_send(Input::DownloadProgress { done, total });
                };
                let r = download::download(
                    &cfg.feed,
                    &cfg.policy.compatible,
                    &m,
                    &cfg.data_dir,
                    &cfg.download,
                    &mut progress,
                )
                .await;
                let _ = tx.send(Input::Downloaded(r.map(|_| ()))).await;
            });
        }
        Action::Install(m) => {
            let path = download::bundle_path(&cfg.data_dir, &m);
            let rauc = rauc.clone();
            tokio::spawn(async move {
                let r = if std::fs::metadata(&path).is_ok_and(|md| md.len() == m.size) {
                    let progress_tx = tx.clone();
                    let mut progress = move |pct| {
                        let _ = progress_tx.try_send(Input::InstallProgress(pct));
                    };
                    rauc.install(&path.to_string_lossy(), &mut progress).await
                } else {
                    Err(OtaError::Io(format!("{} is gone", path.display())))
                };
                let _ = tx.send(Input::Installed(r)).await;
            });
        }
        Action::Reboot => {
            tracing::info!(cmd = ?cfg.reboot, "restarting into the other slot");
            if let Some((prog, args)) = cfg.reboot.split_first() {
                let st = tokio::process::Command::new(prog)
                    .args(args)
                    .status()
                    .await?;
                if !st.success() {
                    return Err(OtaError::Io(format!("{prog} failed: {st}")));
                }
            }
            return Ok(Some(Outcome::Rebooting));
        }
        Action::ProbeHealth => {
            let url = cfg
                .health_url
                .clone()
                .unwrap_or_else(|| format!("{}/healthz", cfg.feed.trim_end_matches('/')));
            let ui = cfg.ui_ready_file.clone();
            tokio::spawn(probe_health(url, ui, tx));
        }
        Action::MarkGood | Action::MarkBad => {
            let good = action == Action::MarkGood;
            let r = rauc.mark(if good { "good" } else { "bad" }, "booted").await;
            tracing::info!(good, ok = r.is_ok(), "marked the booted slot");
            let _ = tx.send(Input::Marked(r)).await;
        }
    }
    Ok(None)
}

async fn probe_health(url: String, ui: Option<PathBuf>, tx: mpsc::Sender<Input>) {
    let (mut server, mut ui_up) = (false, false);
    loop {
        if !server
            && download::get(&url, None)
                .await
                .is_ok_and(|r| r.status().is_success())
        {
            server = true;
            let _ = tx.send(Input::ServerReached).await;
        }
        if !ui_up && ui.as_ref().is_none_or(|f| f.exists()) {
            ui_up = true;
            let _ = tx.send(Input::UiUp).await;
        }
        if (server && ui_up) || tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

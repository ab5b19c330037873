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
use crate::manifest::Manifest;
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
    let running = current.clone();
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
            if let Some(outcome) = perform(action, &cfg, &running, &rauc, &tx, &status).await? {
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
    running: &Version,
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
            let (bus, running) = (cfg.bus.clone(), running.clone());
            let compatible = cfg.policy.compatible.clone();
            tokio::spawn(async move {
                let r = if std::fs::metadata(&path).is_ok_and(|md| md.len() == m.size) {
                    let bundle = path.to_string_lossy();
                    match inspect(&bus, &bundle, &m, &running, &compatible).await {
                        Ok(()) => {
                            let progress_tx = tx.clone();
                            let mut progress = move |pct| {
                                let _ = progress_tx.try_send(Input::InstallProgress(pct));
                            };
                            rauc.install(&bundle, &mut progress).await
                        }
                        Err(e) => Err(e),
                    }
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

/// RAUC's `Info` method (RAUC 1.8; later versions add `InspectBundle`): the compatible
/// and version a bundle carries, read once RAUC has checked its signature.
#[zbus::proxy(
    interface = "de.pengutronix.rauc.Installer",
    default_service = "de.pengutronix.rauc",
    default_path = "/"
)]
trait BundleInfo {
    fn info(&self, bundle: &str) -> zbus::Result<(String, String)>;
}

/// The compatible and version of the bundle at `path`, as RAUC reads them once it has
/// checked the bundle's signature.
async fn bundle_info(bus: &Bus, path: &str) -> Result<(String, String), OtaError> {
    let rauc_err = |e: zbus::Error| OtaError::Rauc(e.to_string());
    let conn = match bus {
        Bus::System => zbus::Connection::system().await,
        Bus::Address(addr) => match zbus::connection::Builder::address(addr.as_str()) {
            Ok(b) => b.build().await,
            Err(e) => Err(e),
        },
    }
    .map_err(rauc_err)?;
    let proxy = BundleInfoProxy::new(&conn).await.map_err(rauc_err)?;
    proxy.info(path).await.map_err(rauc_err)
}

/// Reads the bundle's compatible and version through RAUC and checks them against the
/// manifest ([`check_bundle`]).
async fn inspect(
    bus: &Bus,
    bundle: &str,
    m: &Manifest,
    running: &Version,
    compatible: &str,
) -> Result<(), OtaError> {
    match bundle_info(bus, bundle).await {
        Ok((found_compatible, found_version)) => {
            check_bundle(m, running, compatible, found_compatible, &found_version)
        }
        // RAUC 1.8 answers a bundle it cannot read or verify with a bare "rauc info
        // error"; the install refuses it the same way, with the reason (a bad signature,
        // say), before it touches a slot.
        Err(e) => {
            tracing::info!(error = %e, "RAUC could not inspect the bundle");
            Ok(())
        }
    }
}

/// Checks the downloaded bundle against the manifest it was offered under, before it is
/// installed: the version the manifest named, for this device, and not older than the
/// running one unless the manifest allows going back (the manifest's own rules, applied
/// to what the bundle says).
fn check_bundle(
    m: &Manifest,
    running: &Version,
    compatible: &str,
    found_compatible: String,
    found_version: &str,
) -> Result<(), OtaError> {
    let mismatch = || OtaError::VersionMismatch {
        manifest: m.version.to_string(),
        bundle: found_version.to_owned(),
    };
    let version: Version = found_version.trim().parse().map_err(|_| mismatch())?;
    if version != m.version {
        return Err(mismatch());
    }
    let bundle = Manifest {
        compatible: found_compatible,
        version,
        ..m.clone()
    };
    bundle.decide(running, compatible).map(|_| ())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(version: &str, allow_downgrade: bool) -> Manifest {
        Manifest {
            version: version.parse().unwrap(),
            bundle: "b.raucb".into(),
            size: 1,
            sha256: "0".repeat(64),
            notes: String::new(),
            min_version: None,
            allow_downgrade,
            compatible: "pi4".into(),
        }
    }

    #[test]
    fn the_bundle_must_be_what_the_manifest_named() {
        let running: Version = "1.0.0".parse().unwrap();
        let check = |m: &Manifest, c: &str, v: &str| check_bundle(m, &running, "pi4", c.into(), v);
        let m = offered("1.1.0", false);
        assert_eq!(check(&m, "pi4", "1.1.0"), Ok(()));
        for other in ["1.2.0", "1.0.9", "", "garbage"] {
            let e = check(&m, "pi4", other).unwrap_err();
            assert_eq!(e.code(), "versionMismatch", "{other}");
            assert!(e.refuses_bundle());
        }
        assert_eq!(
            check(&m, "pi5", "1.1.0").unwrap_err().code(),
            "wrongCompatible"
        );
        // A manifest that names an older version is held to its own rules.
        let old = offered("0.9.0", false);
        assert_eq!(
            check(&old, "pi4", "0.9.0").unwrap_err().code(),
            "olderVersion"
        );
        assert_eq!(check(&offered("0.9.0", true), "pi4", "0.9.0"), Ok(()));
    }
}

//! `portal-ota`: the update agent on its own (the kiosk can embed the library instead).
//!
//! ```text
//! portal-ota --feed http://rooms.example.org:8080 [--data-dir /data/ota]
//!            [--window 02:00-05:00] [--check-every 21600] [--install-now]
//!            [--reboot-cmd "systemctl reboot"] [--ui-ready-file /run/portal/ui-up]
//! ```
//!
//! Prints `portal-ota started` once running; the state is in `ota-status.json` in the
//! data directory. Exits 0 after asking for the restart, 1 on an error it cannot pass.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use portal_ota::download::DownloadOptions;
use portal_ota::rauc::Bus;
use portal_ota::runner::{self, AgentConfig, Control, Outcome};
use portal_ota::{Policy, Window};

#[derive(Parser, Debug)]
#[command(name = "portal-ota", version, about = "Portal kiosk's update agent")]
struct Args {
    /// The rooms server (its update feed is under /updates/).
    #[arg(long, env = "PORTAL_OTA_FEED")]
    feed: String,
    /// State file and downloaded bundle.
    #[arg(long, env = "PORTAL_OTA_DATA_DIR", default_value = "/data/portal/ota")]
    data_dir: PathBuf,
    /// D-Bus address of RAUC's bus (default: the system bus).
    #[arg(long, env = "PORTAL_OTA_DBUS")]
    dbus_address: Option<String>,
    /// This device's compatible (default: RAUC's).
    #[arg(long)]
    compatible: Option<String>,
    /// The running version when RAUC does not know it.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    current_version: semver::Version,
    /// Seconds between checks.
    #[arg(long, default_value_t = 6 * 3600)]
    check_every: u64,
    /// Local time window for installs, e.g. 02:00-05:00 (default: any time).
    #[arg(long)]
    window: Option<Window>,
    /// Install as soon as the update is here (still never during a call).
    #[arg(long)]
    install_now: bool,
    /// Seconds a new slot has to reach the rooms server with its UI up.
    #[arg(long, default_value_t = 300)]
    health_deadline: u64,
    /// The file the UI creates once it shows (default: no UI check).
    #[arg(long)]
    ui_ready_file: Option<PathBuf>,
    /// A file whose existence means a call runs (until the kiosk embeds the agent).
    #[arg(long)]
    call_file: Option<PathBuf>,
    /// Download rate limit in bytes a second.
    #[arg(long)]
    max_rate: Option<u64>,
    /// Bytes to keep free in the data directory.
    #[arg(long, default_value_t = 16 << 20)]
    keep_free: u64,
    /// The restart command, split on spaces.
    #[arg(long, default_value = "systemctl reboot")]
    reboot_cmd: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTAL_LOG")
                .unwrap_or_else(|_| "portal_ota=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cfg = AgentConfig {
        feed: args.feed,
        data_dir: args.data_dir,
        bus: args.dbus_address.map_or(Bus::System, Bus::Address),
        policy: Policy {
            compatible: args.compatible.unwrap_or_default(),
            check_every_ms: args.check_every.max(1) * 1000,
            window: args.window,
            health_deadline_ms: args.health_deadline * 1000,
            ..Policy::default()
        },
        current_version: args.current_version,
        download: DownloadOptions {
            max_rate: args.max_rate,
            keep_free: args.keep_free,
        },
        reboot: args
            .reboot_cmd
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        health_url: None,
        ui_ready_file: args.ui_ready_file,
    };
    let (control, rx) = tokio::sync::mpsc::channel(8);
    let (status, _) = tokio::sync::watch::channel(None);
    if args.install_now {
        control.send(Control::InstallNow).await?;
    }
    if let Some(file) = args.call_file {
        let control = control.clone();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let on = file.exists();
                if last != Some(on) {
                    last = Some(on);
                    if control.send(Control::CallActive(on)).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
    }
    println!("portal-ota started");
    match runner::run(cfg, rx, status).await {
        Ok(Outcome::Rebooting) => Ok(()),
        Ok(outcome) => {
            tracing::info!(?outcome, "stopped");
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, code = e.code(), "update agent stopped");
            std::process::exit(1);
        }
    }
}

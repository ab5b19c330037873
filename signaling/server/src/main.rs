//! `portal-server`: the rooms server binary.

use anyhow::Context as _;
use clap::Parser as _;
use portal_signaling::config::Command;
use portal_signaling::{Config, Server};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    if let Some(Command::Kiosk(cmd)) = &config.command {
        portal_signaling::pairing::admin::run(&config.data_dir, cmd, &mut std::io::stdout())?;
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("PORTAL_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&config).await?;
        // The first line on stdout is for scripts and tests that start the server.
        println!("listening on {}://{}", server.scheme(), server.local_addr());
        server.run(shutdown_signal()).await;
        anyhow::Ok(())
    })
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

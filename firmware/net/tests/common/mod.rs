//! Shared by portal-net's integration tests: their time limit and their logs. The rooms
//! server, temp dirs, waiting and the Chromium driver come from `portal_testkit`.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

/// How long any one condition may take on a loaded machine.
pub const LONG: Duration = Duration::from_secs(90);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTAL_LOG")
                .unwrap_or_else(|_| "portal_net=info".into()),
        )
        .with_test_writer()
        .try_init();
}

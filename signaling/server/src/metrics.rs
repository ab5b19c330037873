//! Counters for `/metrics`, in Prometheus' text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use portal_proto::ErrorCode;

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections: AtomicI64,
    pub connections_total: AtomicU64,
    pub connections_rejected: AtomicU64,
    /// Connections refused at accept: their address held `--max-conns-per-addr`.
    pub connections_refused_per_addr: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub slow_consumers: AtomicU64,
    /// The update feed (`--updates-dir`): manifests and bundle requests answered, bundle
    /// bytes answered.
    pub update_manifests: AtomicU64,
    pub update_bundle_requests: AtomicU64,
    pub update_bytes: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
}

/// Gauges read from the hub at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct HubGauges {
    pub peers: usize,
    pub active_rooms: usize,
    pub known_rooms: usize,
}

impl Metrics {
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i].fetch_add(1, Relaxed);
        }
    }

    pub fn errors(&self, code: ErrorCode) -> u64 {
        ErrorCode::ALL
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.errors[i].load(Relaxed))
    }

    pub fn render(&self, hub: HubGauges, out: &mut String) {
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "portal_connections",
            "gauge",
            "Open signaling connections.",
            self.connections.load(Relaxed).to_string(),
        );
        metric(
            "portal_connections_total",
            "counter",
            "Signaling connections accepted.",
            self.connections_total.load(Relaxed).to_string(),
        );
        metric(
            "portal_connections_rejected_total",
            "counter",
            "Connections refused at the connection cap.",
            self.connections_rejected.load(Relaxed).to_string(),
        );
        metric(
            "portal_connections_refused_per_addr_total",
            "counter",
            "Connections (HTTP, TLS or WebSocket) refused at accept: their address held its limit.",
            self.connections_refused_per_addr.load(Relaxed).to_string(),
        );
        metric(
            "portal_peers",
            "gauge",
            "Peers known to the hub.",
            hub.peers.to_string(),
        );
        metric(
            "portal_rooms",
            "gauge",
            "Rooms with at least one peer.",
            hub.active_rooms.to_string(),
        );
        metric(
            "portal_rooms_known",
            "gauge",
            "Rooms remembered (with or without peers).",
            hub.known_rooms.to_string(),
        );
        metric(
            "portal_messages_in_total",
            "counter",
            "Signaling messages received.",
            self.messages_in.load(Relaxed).to_string(),
        );
        metric(
            "portal_messages_out_total",
            "counter",
            "Signaling messages sent (one per recipient).",
            self.messages_out.load(Relaxed).to_string(),
        );
        metric(
            "portal_bytes_in_total",
            "counter",
            "Signaling payload bytes received.",
            self.bytes_in.load(Relaxed).to_string(),
        );
        metric(
            "portal_bytes_out_total",
            "counter",
            "Signaling payload bytes sent.",
            self.bytes_out.load(Relaxed).to_string(),
        );
        metric(
            "portal_slow_consumers_total",
            "counter",
            "Connections dropped because they did not read fast enough.",
            self.slow_consumers.load(Relaxed).to_string(),
        );
        metric(
            "portal_update_manifests_total",
            "counter",
            "Update manifests served.",
            self.update_manifests.load(Relaxed).to_string(),
        );
        metric(
            "portal_update_bundle_requests_total",
            "counter",
            "Update bundle requests answered (whole or one range).",
            self.update_bundle_requests.load(Relaxed).to_string(),
        );
        metric(
            "portal_update_bytes_total",
            "counter",
            "Update bundle bytes answered.",
            self.update_bytes.load(Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP portal_errors_total Typed errors sent, by code.\n# TYPE portal_errors_total counter"
        );
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "portal_errors_total{{code=\"{code}\"}} {}",
                self.errors[i].load(Relaxed)
            );
        }
    }
}

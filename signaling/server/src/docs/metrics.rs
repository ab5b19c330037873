//! Counters for the documents' part of `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Why the server refused something a document client sent or asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// One update over `max_update`; the connection was closed.
    UpdateTooLarge,
    /// The document would have grown over `max_doc`; the connection was closed.
    DocTooLarge,
    /// `max_loaded` documents were in memory; the connection was closed.
    TooManyDocuments,
    /// A frame that is not the y-websocket protocol; the connection was closed.
    Malformed,
    /// A document update from a read-only connection; dropped, the connection stays.
    ReadOnly,
    /// A client that did not read its frames (or bytes) in time; the connection was
    /// closed.
    SlowClient,
    /// A connection for a room that does not exist (or no longer does); it was closed.
    NoRoom,
    /// A connection let in before its room was protected; it was closed.
    AccessRevoked,
    /// A new document while the store holds as many documents or bytes as it may; the
    /// connection was closed.
    StorageFull,
    /// A message read late: its connection was over its rate.
    RateLimited,
    /// An awareness entry for a client id another connection holds; dropped.
    AwarenessNotOwned,
    /// A presenter claim from a read-only connection; taken out of its state.
    PresenterStripped,
    /// An awareness message over its size, or more states than a connection may hold;
    /// the connection was closed.
    AwarenessTooLarge,
}

impl Rejection {
    pub const ALL: [Rejection; 13] = [
        Rejection::UpdateTooLarge,
        Rejection::DocTooLarge,
        Rejection::TooManyDocuments,
        Rejection::Malformed,
        Rejection::ReadOnly,
        Rejection::SlowClient,
        Rejection::NoRoom,
        Rejection::AccessRevoked,
        Rejection::StorageFull,
        Rejection::RateLimited,
        Rejection::AwarenessNotOwned,
        Rejection::PresenterStripped,
        Rejection::AwarenessTooLarge,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Rejection::UpdateTooLarge => "update_too_large",
            Rejection::DocTooLarge => "doc_too_large",
            Rejection::TooManyDocuments => "too_many_documents",
            Rejection::Malformed => "malformed",
            Rejection::ReadOnly => "read_only",
            Rejection::SlowClient => "slow_client",
            Rejection::NoRoom => "no_room",
            Rejection::AccessRevoked => "access_revoked",
            Rejection::StorageFull => "storage_full",
            Rejection::RateLimited => "rate_limited",
            Rejection::AwarenessNotOwned => "awareness_not_owned",
            Rejection::PresenterStripped => "presenter_stripped",
            Rejection::AwarenessTooLarge => "awareness_too_large",
        }
    }
}

#[derive(Debug, Default)]
pub struct DocsMetrics {
    pub connections: AtomicI64,
    pub updates: AtomicU64,
    pub bytes_persisted: AtomicU64,
    pub compactions: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
}

impl DocsMetrics {
    pub fn reject(&self, why: Rejection) {
        self.rejected[why as usize].fetch_add(1, Relaxed);
    }

    pub fn rejected(&self, why: Rejection) -> u64 {
        self.rejected[why as usize].load(Relaxed)
    }

    /// Prometheus text; `loaded` is read from the registry at scrape time.
    pub fn render(&self, loaded: usize, out: &mut String) {
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "portal_docs_loaded",
            "gauge",
            "Shared documents held in memory.",
            loaded.to_string(),
        );
        metric(
            "portal_doc_connections",
            "gauge",
            "Open document (/yjs) connections.",
            self.connections.load(Relaxed).to_string(),
        );
        metric(
            "portal_doc_updates_total",
            "counter",
            "Document updates applied, stored and broadcast.",
            self.updates.load(Relaxed).to_string(),
        );
        metric(
            "portal_doc_bytes_persisted_total",
            "counter",
            "Bytes written to the store for documents (updates and snapshots).",
            self.bytes_persisted.load(Relaxed).to_string(),
        );
        metric(
            "portal_doc_compactions_total",
            "counter",
            "Update logs folded into a snapshot.",
            self.compactions.load(Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP portal_doc_rejected_total Document messages or connections refused, by reason.\n# TYPE portal_doc_rejected_total counter"
        );
        for why in Rejection::ALL {
            let _ = writeln!(
                out,
                "portal_doc_rejected_total{{reason=\"{}\"}} {}",
                why.label(),
                self.rejected(why)
            );
        }
    }
}

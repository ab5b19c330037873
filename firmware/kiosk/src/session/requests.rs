//! What people and tools ask of the call: the local endpoint's requests and the touch
//! screen's taps, answered from the engine.

use std::path::PathBuf;

use anyhow::anyhow;
use portal_proto::PeerId;

use super::{Session, wall_ms};
use crate::request::Request;

impl Session {
    pub(super) fn request(&mut self, request: Request) {
        match request {
            Request::Status(reply) => {
                let mut status = crate::status::call(
                    &self.engine,
                    &self.links,
                    &self.media,
                    self.disk.dir(),
                    self.join_started_unix_ms,
                );
                let now_ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
                status["watch"] = self.watching.status(now_ms);
                let _ = reply.send(status);
            }
            Request::Editor(reply) => {
                let _ = reply.send(Ok(self.editor.json()));
            }
            Request::Chat { text, reply } => {
                let result = self
                    .engine
                    .send_chat(wall_ms(), &text)
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            Request::Snapshot { peer, reply } => {
                let _ = reply.send(self.snapshot(peer).map_err(|e| format!("{e:#}")));
            }
            Request::Decide {
                file,
                accept,
                reply,
            } => {
                let result = self
                    .engine
                    .decide_file(file, accept)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            Request::SendFile { peer, path, reply } => {
                let result = self.send_file(peer, &path).map_err(|e| format!("{e:#}"));
                let _ = reply.send(result);
            }
            Request::Ui(event) => self.ui_event(event),
        }
    }

    /// A tap that concerns the call; what it changes comes back as engine events.
    fn ui_event(&mut self, event: portal_ui::UiEvent) {
        use portal_ui::UiEvent;
        let result = match event {
            UiEvent::Pin(peer) => {
                let content = peer.map(|p| self.engine.peer_content(PeerId(p)));
                self.engine.pin(content);
                Ok(())
            }
            UiEvent::PinContent(target) => {
                use portal_engine::StageContent;
                use portal_ui::StageTarget;
                let content = match target {
                    StageTarget::Peer(p) => StageContent::Camera(PeerId(p)),
                    StageTarget::Screen(p) => StageContent::Screen(PeerId(p)),
                    StageTarget::Editor => StageContent::Editor,
                    StageTarget::Watch => StageContent::Watch,
                    other => {
                        tracing::debug!(?other, "not something the stage shows");
                        return;
                    }
                };
                self.engine.tap(content);
                Ok(())
            }
            UiEvent::SendChat(text) => self
                .engine
                .send_chat(wall_ms(), &text)
                .map_err(|e| e.to_string()),
            UiEvent::AcceptFile(id) => self.decide_listed(&id, true),
            UiEvent::DeclineFile(id) => self.decide_listed(&id, false),
            UiEvent::SetMicMuted(muted) => {
                self.engine.set_mic_muted(muted);
                Ok(())
            }
            UiEvent::SetCameraOff(off) => {
                self.engine.set_camera_off(off);
                Ok(())
            }
            UiEvent::SetVolume(volume) => {
                self.set_volume(volume);
                Ok(())
            }
            UiEvent::OpenFile(id) => {
                self.open_file(&id);
                Ok(())
            }
            other => {
                tracing::debug!(?other, "not a call event");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = e, "touch action failed");
        }
    }

    fn decide_listed(&mut self, id: &str, accept: bool) -> Result<(), String> {
        let file = id.parse().map_err(|e| format!("{e}"))?;
        self.engine
            .decide_file(file, accept)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn snapshot(&mut self, peer: Option<PeerId>) -> anyhow::Result<PathBuf> {
        let peer = self.engine.snapshot_peer(peer)?;
        let link = self
            .links
            .get(&peer)
            .ok_or_else(|| anyhow!("no connection to peer {peer} yet"))?;
        let png = link.shared.snapshot_png()?;
        self.snapshots += 1;
        let path = self.snapshot_dir.join(format!(
            "peer-{peer}-{}-{}.png",
            self.join_started_unix_ms, self.snapshots
        ));
        crate::access::write_private(&path, &png)?;
        Ok(path)
    }
}

//! What the room display shows large: the commands and facts the stage rule
//! ([`crate::stage`]) needs from outside the call (taps, the presenting laptop, the
//! editor's presenter) and its current choice.

use portal_proto::PeerId;

use super::Engine;
use crate::stage::{StageChoice, StageContent};

impl Engine {
    /// What fills the stage, and why.
    pub fn stage(&self) -> StageChoice {
        self.stage.current()
    }

    /// What a person pinned, while the pin holds.
    pub fn pinned(&self) -> Option<StageContent> {
        self.stage.pinned()
    }

    /// Pins `content` on stage (or unpins with `None`) until the rule changes. Pinning
    /// what is not there does nothing.
    pub fn pin(&mut self, content: Option<StageContent>) {
        self.stage.pin(content);
        self.update_stage();
    }

    /// A tap on `content`: pins it, or unpins it when it is the pin already.
    pub fn tap(&mut self, content: StageContent) {
        self.stage.tap(content);
        self.update_stage();
    }

    /// What shows `peer` on stage: its screen share while it shares, else its camera.
    pub fn peer_content(&self, peer: PeerId) -> StageContent {
        if self.peer_media(peer).is_some_and(|m| m.screen) {
            StageContent::Screen(peer)
        } else {
            StageContent::Camera(peer)
        }
    }

    /// The presenting laptop (from the remote control), or nobody: its screen share
    /// takes the stage.
    pub fn set_presenter(&mut self, peer: Option<PeerId>) {
        self.stage.set_presenter(peer);
        self.update_stage();
    }

    /// Who presents in the room's code editor, by name (`None`: nobody), as the document
    /// client reads it from the editor's awareness: the editor takes the stage below a
    /// screen share.
    pub fn set_editor_presenter(&mut self, name: Option<String>) {
        self.stage.set_editor_presenter(name);
        self.update_stage();
    }
}

//! The session's side of file transfers: the engine's [`FileAction`]s become frames for a
//! link or [`Job`]s for the file worker, and what the worker has done ([`Done`]) goes back
//! to the engine. No file is read or written here: the worker does that on its own thread
//! (see [`crate::files`]), so the session task stays free for signaling and the links.
//!
//! A received chunk carries its [`Credit`] (the bytes its link took from the peer's
//! [`Budget`]) into the write job; a chunk the engine does not write (a stray, a late one,
//! one past the offered size) gives its credit back at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow};
use portal_engine::{FileAction, FileKey, Input};
use portal_proto::PeerId;
use portal_proto::channel::TransferSide;

use super::Session;
use crate::files::{Credit, Done, Job};
use crate::link::Command;

impl Session {
    /// A binary frame from `peer`'s file channel, for which its link took `frame.len()`
    /// bytes of the peer's budget.
    pub(super) fn file_binary(&mut self, peer: PeerId, frame: Vec<u8>) {
        let bytes = frame.len();
        self.credit = self.budgets.get(&peer).map(|budget| Credit {
            budget: Arc::clone(budget),
            bytes,
        });
        self.engine
            .handle(Instant::now(), Input::FileBinary { peer, frame });
        // The write this chunk became (if any) takes the credit; else it goes back now.
        self.flush();
        self.credit = None;
    }

    pub(super) fn file_action(&mut self, peer: PeerId, action: FileAction) {
        match action {
            FileAction::SendText(text) => self.to_link(peer, Command::FileText(text)),
            FileAction::SendBinary(frame) => self.to_link(peer, Command::FileBinary(frame)),
            FileAction::Read { id, offset, len } => self.disk.send(Job::Read {
                peer,
                id,
                offset,
                len,
            }),
            FileAction::Create { id, temp } => self.disk.send(Job::Create { peer, id, temp }),
            FileAction::Write { id, offset, bytes } => self.disk.send(Job::Write {
                peer,
                id,
                offset,
                bytes,
                credit: self.credit.take(),
            }),
            FileAction::Commit { id, temp, name } => self.disk.send(Job::Commit {
                peer,
                id,
                temp,
                name,
            }),
            FileAction::Discard { id, temp } => self.disk.send(Job::Discard { peer, id, temp }),
            FileAction::Changed { side, id } => {
                if side == TransferSide::Sender
                    && self
                        .engine
                        .transfer(peer, side, id)
                        .is_none_or(|t| t.state.is_final())
                {
                    self.disk.send(Job::ForgetOutgoing { peer, id });
                }
            }
            FileAction::Ask { id } => {
                let key = FileKey::new(peer, id);
                tracing::info!(%key, "a file offer waits for a decision (touch screen, or POST /files/{key}/accept)");
            }
        }
    }

    /// What the file worker has done, told to the engine.
    pub(super) fn disk_done(&mut self, done: Done) {
        let input = match done {
            Done::Stored { peer, id, path } => {
                tracing::info!(%peer, id, path = %path.display(), "file received");
                Input::FileStored { peer, id }
            }
            Done::StoreFailed { peer, id, error } => {
                tracing::warn!(%peer, id, error, "storing a received file failed");
                Input::FileStoreFailed {
                    peer,
                    id,
                    reason: "storing the file failed".to_owned(),
                }
            }
            Done::Data { peer, id, bytes } => Input::FileData { peer, id, bytes },
            Done::ReadFailed { peer, id, error } => Input::FileReadFailed {
                peer,
                id,
                reason: error,
            },
            Done::FreeBytes(free) => {
                self.engine.set_free_bytes(free);
                return;
            }
        };
        self.engine.handle(Instant::now(), input);
    }

    /// Offers a file to `peer`: only a received file or one in the shared folder, never an
    /// arbitrary path (links are resolved before the check).
    pub(super) fn send_file(&mut self, peer: PeerId, path: &Path) -> anyhow::Result<u32> {
        let path = std::fs::canonicalize(path).with_context(|| format!("{}", path.display()))?;
        let allowed = std::iter::once(self.disk.dir())
            .chain(self.shared_dir.as_deref())
            .filter_map(|d| std::fs::canonicalize(d).ok())
            .any(|d| path.starts_with(d));
        if !allowed {
            return Err(anyhow!(
                "only received files and files in the shared folder can be offered"
            ));
        }
        let meta = std::fs::metadata(&path).with_context(|| format!("{}", path.display()))?;
        if !meta.is_file() {
            return Err(anyhow!("{} is not a file", path.display()));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("{} has no usable file name", path.display()))?
            .to_owned();
        let id = self
            .engine
            .send_file(peer, &name, meta.len(), "application/octet-stream")?;
        // Queued before the engine's first read of it can be.
        self.disk.send(Job::AddOutgoing { peer, id, path });
        Ok(id)
    }

    /// Shows a received image full screen.
    pub(super) fn open_file(&mut self, id: &str) {
        let Ok(key) = id.parse::<FileKey>() else {
            return;
        };
        let Some(name) = self
            .engine
            .transfer(key.peer, TransferSide::Receiver, key.id)
            .and_then(|t| t.stored_name.clone())
        else {
            return;
        };
        let path = self.disk.dir().join(name);
        if let Some(view) = &mut self.view {
            view.open_image(&path);
        }
    }
}

//! Sending: offers, paced reads, `end` with the digest of what was sent.

use portal_proto::channel::{Chunk, FileMessage, MAX_FILE_NAME, TransferSide};
use sha2::{Digest, Sha256};

use super::{FileAction, FileChannel, Outgoing, Transfer, TransferError, TransferState, hex};

impl FileChannel {
    // ---- sending ----

    /// Offers a file to the peer; returns the transfer id.
    pub fn offer(&mut self, name: &str, size: u64, mime: &str) -> Result<u32, TransferError> {
        if !self.open {
            return Err(TransferError::ChannelClosed);
        }
        if name.is_empty() || name.len() > MAX_FILE_NAME {
            return Err(TransferError::InvalidName);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.outgoing.insert(
            id,
            Outgoing {
                info: Transfer {
                    id,
                    side: TransferSide::Sender,
                    offered_name: name.to_owned(),
                    stored_name: None,
                    size,
                    mime: mime.to_owned(),
                    transferred: 0,
                    sha256: None,
                    state: TransferState::Offered,
                },
                hasher: Some(Sha256::new()),
                pending_read: None,
            },
        );
        self.send(&FileMessage::Offer {
            id,
            name: name.to_owned(),
            size,
            mime: mime.to_owned(),
        });
        self.changed(TransferSide::Sender, id);
        Ok(id)
    }

    /// Bytes read for the outstanding [`FileAction::Read`] of transfer `id`.
    pub fn provide(&mut self, id: u32, bytes: &[u8]) -> Result<(), TransferError> {
        let out = self
            .outgoing
            .get_mut(&id)
            .ok_or(TransferError::UnknownTransfer {
                side: TransferSide::Sender,
                id,
            })?;
        if out.info.state.is_final() {
            // Cancelled while the read was in flight: drop the bytes.
            out.pending_read = None;
            return Ok(());
        }
        let Some((offset, len)) = out.pending_read else {
            return Err(TransferError::WrongState { id });
        };
        if bytes.len() != len {
            let err = TransferError::ShortRead {
                expected: len,
                got: bytes.len(),
            };
            self.read_failed(id, &err.to_string())?;
            return Err(err);
        }
        debug_assert_eq!(offset, out.info.transferred);
        out.pending_read = None;
        if let Some(h) = out.hasher.as_mut() {
            h.update(bytes);
        }
        out.info.transferred += len as u64;
        let frame = Chunk::encode(id, bytes);
        self.buffered += frame.len();
        self.actions.push(FileAction::SendBinary(frame));
        self.maybe_end(id);
        self.pump();
        Ok(())
    }

    /// Reading the outgoing file failed: the transfer is cancelled.
    pub fn read_failed(&mut self, id: u32, reason: &str) -> Result<(), TransferError> {
        if !self.outgoing.contains_key(&id) {
            return Err(TransferError::UnknownTransfer {
                side: TransferSide::Sender,
                id,
            });
        }
        tracing::warn!(id, reason, "reading an outgoing file failed");
        self.cancel(TransferSide::Sender, id, reason)
    }

    /// Sends `end` once every byte of `id` has been sent.
    pub(super) fn maybe_end(&mut self, id: u32) {
        let Some(out) = self.outgoing.get_mut(&id) else {
            return;
        };
        if out.info.state != TransferState::Transferring || out.info.transferred < out.info.size {
            return;
        }
        let digest = out
            .hasher
            .take()
            .map(|h| hex(&h.finalize()))
            .unwrap_or_default();
        out.info.sha256 = Some(digest.clone());
        out.info.state = TransferState::Finishing;
        self.send(&FileMessage::End { id, sha256: digest });
        self.changed(TransferSide::Sender, id);
    }

    /// Asks for the next chunk while the channel has room. One transfer at a time, oldest
    /// first, so a second file does not slow the first one down.
    pub(super) fn pump(&mut self) {
        if !self.open || self.buffered >= self.config.high_water {
            return;
        }
        let chunk = self.config.chunk_size;
        let Some(out) = self
            .outgoing
            .values_mut()
            .find(|o| o.info.state == TransferState::Transferring)
        else {
            return;
        };
        if out.pending_read.is_some() || out.info.transferred >= out.info.size {
            return;
        }
        let offset = out.info.transferred;
        let len = (out.info.size - offset).min(chunk as u64) as usize;
        out.pending_read = Some((offset, len));
        self.actions.push(FileAction::Read {
            id: out.info.id,
            offset,
            len,
        });
    }

    pub(super) fn on_accept(&mut self, id: u32) {
        if !self.outgoing_in(id, &[TransferState::Offered]) {
            tracing::debug!(id, "accept for no offered transfer");
            return;
        }
        if let Some(out) = self.outgoing.get_mut(&id) {
            out.info.state = TransferState::Transferring;
        }
        self.changed(TransferSide::Sender, id);
        self.maybe_end(id); // an empty file ends at once
        self.pump();
    }
}

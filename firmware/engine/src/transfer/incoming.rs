//! Receiving: offers checked and decided, chunks written, `end` verified, commit.
//!
//! Everything a remote sender can make the kiosk hold is bounded here: offers in flight
//! (per peer and, through [`Receiving`], over the call), the lengths of what an offer
//! carries, the bytes accepted against the free disk space, and which chunks count
//! (only those of an accepted, running transfer, never past its offered size).

use std::time::{Duration, Instant};

use portal_proto::channel::{
    Chunk, DeclineReason, FileMessage, MAX_FILE_MIME, MAX_FILE_NAME, TransferSide,
};
use sha2::{Digest, Sha256};

use super::{
    FileAction, FileChannel, Incoming, ReceivePolicy, Transfer, TransferError, TransferState, hex,
};
use crate::names;

/// What the rest of the kiosk knows when this channel decides on an offer: facts in,
/// decisions out. The engine builds it from the other peers' channels and the free space
/// the I/O layer measured.
#[derive(Clone, Copy)]
pub struct Receiving<'a> {
    /// Whether a file name is taken (in the download directory, or reserved by another
    /// peer's transfer); this channel adds its own reservations.
    pub taken: &'a dyn Fn(&str) -> bool,
    /// Incoming offers and transfers in flight with the other peers.
    pub in_flight_elsewhere: usize,
    /// Bytes the other peers' accepted transfers have still to write.
    pub pending_elsewhere: u64,
    /// Free bytes on the download directory's file system as last measured; `None` when
    /// unknown (no check).
    pub free_bytes: Option<u64>,
}

impl Receiving<'_> {
    /// Nothing taken, nothing elsewhere, space unknown: a channel on its own (tests).
    pub const ALONE: Receiving<'static> = Receiving {
        taken: &|_| false,
        in_flight_elsewhere: 0,
        pending_elsewhere: 0,
        free_bytes: None,
    };
}

impl std::fmt::Debug for Receiving<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiving")
            .field("in_flight_elsewhere", &self.in_flight_elsewhere)
            .field("pending_elsewhere", &self.pending_elsewhere)
            .field("free_bytes", &self.free_bytes)
            .finish_non_exhaustive()
    }
}

impl FileChannel {
    /// A person accepts the offer `id`. When the disk has no room for it any more, the
    /// offer is declined as [`DeclineReason::NoSpace`] and the error says so.
    pub fn accept(&mut self, id: u32, ctx: &Receiving<'_>) -> Result<(), TransferError> {
        let size = self.incoming_in(id, &TransferState::Offered)?.info.size;
        if !self.has_room(size, ctx) {
            self.stats.declined_no_space += 1;
            self.send(&FileMessage::Decline {
                id,
                reason: DeclineReason::NoSpace,
            });
            self.finish_incoming(id, TransferState::Declined(DeclineReason::NoSpace));
            return Err(TransferError::NoSpace);
        }
        self.start_receiving(id, ctx);
        Ok(())
    }

    /// A person declines the offer `id`.
    pub fn decline(&mut self, id: u32) -> Result<(), TransferError> {
        self.incoming_in(id, &TransferState::Offered)?;
        self.send(&FileMessage::Decline {
            id,
            reason: DeclineReason::Declined,
        });
        self.finish_incoming(id, TransferState::Declined(DeclineReason::Declined));
        Ok(())
    }

    /// The I/O layer stored (renamed) the verified file of incoming transfer `id`.
    pub fn stored(&mut self, id: u32) -> Result<(), TransferError> {
        self.incoming_in(id, &TransferState::Finishing)?;
        let inc = self.incoming.get_mut(&id).expect("checked above");
        inc.info.state = TransferState::Complete;
        inc.created = false;
        tracing::info!(id, name = ?inc.info.stored_name, size = inc.info.size, "file received");
        self.send(&FileMessage::Complete { id });
        self.changed(TransferSide::Receiver, id);
        self.ended(TransferSide::Receiver, id);
        Ok(())
    }

    /// Incoming transfer `id`, when it is in `state`.
    fn incoming_in(&self, id: u32, state: &TransferState) -> Result<&Incoming, TransferError> {
        let inc = self
            .incoming
            .get(&id)
            .ok_or(TransferError::UnknownTransfer {
                side: TransferSide::Receiver,
                id,
            })?;
        if inc.info.state != *state {
            return Err(TransferError::WrongState { id });
        }
        Ok(inc)
    }

    /// Writing or storing incoming transfer `id` failed: the file is dropped.
    pub fn store_failed(&mut self, id: u32, reason: &str) -> Result<(), TransferError> {
        let state = self
            .transfer(TransferSide::Receiver, id)
            .map(|t| t.state.clone())
            .ok_or(TransferError::UnknownTransfer {
                side: TransferSide::Receiver,
                id,
            })?;
        tracing::warn!(id, reason, "storing an incoming file failed");
        match state {
            TransferState::Transferring => self.cancel(TransferSide::Receiver, id, reason),
            TransferState::Finishing => {
                self.send(&FileMessage::Failed {
                    id,
                    reason: reason.to_owned(),
                });
                self.finish_incoming(id, TransferState::Failed(reason.to_owned()));
                Ok(())
            }
            _ => Err(TransferError::WrongState { id }),
        }
    }

    /// Whether `size` more bytes fit on the disk next to every accepted transfer still
    /// writing, with [`super::FileConfig::min_free_bytes`] to spare.
    fn has_room(&self, size: u64, ctx: &Receiving<'_>) -> bool {
        let Some(free) = ctx.free_bytes else {
            return true;
        };
        let needed = size
            .saturating_add(self.incoming_pending_bytes())
            .saturating_add(ctx.pending_elsewhere)
            .saturating_add(self.config.min_free_bytes);
        needed <= free
    }

    pub(super) fn start_receiving(&mut self, id: u32, ctx: &Receiving<'_>) {
        let own: Vec<String> = self.reserved_names().map(str::to_owned).collect();
        let taken = |name: &str| (ctx.taken)(name) || own.iter().any(|n| n == name);
        let temp = self.temp_prefix.clone();
        let Some(inc) = self.incoming.get_mut(&id) else {
            return;
        };
        let name = names::unique(&names::sanitize(&inc.info.offered_name), taken);
        inc.info.stored_name = Some(name);
        inc.info.state = TransferState::Transferring;
        inc.ask_until = None;
        inc.temp = format!("{temp}-{id}");
        inc.created = true;
        let create = FileAction::Create {
            id,
            temp: inc.temp.clone(),
        };
        self.actions.push(create);
        self.send(&FileMessage::Accept { id });
        self.changed(TransferSide::Receiver, id);
    }

    /// Why an offer is declined before anyone is asked, if it is.
    fn check_offer(
        &self,
        id: u32,
        name: &str,
        size: u64,
        mime: &str,
        ctx: &Receiving<'_>,
    ) -> Option<DeclineReason> {
        let in_flight = self.incoming_in_flight();
        if self.incoming.contains_key(&id)
            || name.is_empty()
            || name.len() > MAX_FILE_NAME
            || mime.len() > MAX_FILE_MIME
        {
            Some(DeclineReason::Invalid)
        } else if in_flight >= self.config.max_incoming_per_peer
            || in_flight + ctx.in_flight_elsewhere >= self.config.max_incoming_total
        {
            Some(DeclineReason::Busy)
        } else if self.config.policy == ReceivePolicy::Deny {
            Some(DeclineReason::Policy)
        } else if size > self.config.max_size {
            Some(DeclineReason::TooLarge)
        } else if !self.has_room(size, ctx) {
            Some(DeclineReason::NoSpace)
        } else {
            None
        }
    }

    pub(super) fn on_offer(
        &mut self,
        now: Instant,
        id: u32,
        name: &str,
        size: u64,
        mime: &str,
        ctx: &Receiving<'_>,
    ) {
        let decision = self.check_offer(id, name, size, mime, ctx);
        if let Some(reason) = decision {
            tracing::debug!(id, ?reason, size, "declining a file offer");
            if self.may_answer(now) {
                self.send(&FileMessage::Decline { id, reason });
            } else {
                self.stats.unanswered += 1;
            }
            match reason {
                // Not kept: the id may be another transfer's, and a flood of these must
                // not fill the table (only the counters say they happened).
                DeclineReason::Invalid | DeclineReason::Busy => {
                    if reason == DeclineReason::Busy {
                        self.stats.declined_busy += 1;
                    } else {
                        self.stats.declined_invalid += 1;
                    }
                    return;
                }
                DeclineReason::NoSpace => self.stats.declined_no_space += 1,
                _ => {}
            }
        } else {
            tracing::info!(id, size, "file offered");
        }
        self.incoming.insert(
            id,
            Incoming {
                info: Transfer {
                    id,
                    side: TransferSide::Receiver,
                    // Shown to people: without controls or bidi overrides.
                    offered_name: names::displayable(name),
                    stored_name: None,
                    size,
                    mime: names::displayable(mime),
                    transferred: 0,
                    sha256: None,
                    state: match decision {
                        Some(reason) => TransferState::Declined(reason),
                        None => TransferState::Offered,
                    },
                },
                hasher: Some(Sha256::new()),
                temp: String::new(),
                created: false,
                ask_until: None,
            },
        );
        self.changed(TransferSide::Receiver, id);
        if decision.is_some() {
            self.ended(TransferSide::Receiver, id);
            return;
        }
        match self.config.policy {
            ReceivePolicy::Accept => self.start_receiving(id, ctx),
            ReceivePolicy::Ask => {
                if let Some(inc) = self.incoming.get_mut(&id) {
                    inc.ask_until = Some(now + self.config.ask_timeout);
                }
                self.actions.push(FileAction::Ask { id });
            }
            ReceivePolicy::Deny => {}
        }
    }

    /// Whether one more decline fits this second's share ([`super::DECLINES_PER_SECOND`]).
    fn may_answer(&mut self, now: Instant) -> bool {
        let (start, count) = &mut self.declines;
        match start {
            Some(at) if now.saturating_duration_since(*at) < Duration::from_secs(1) => {
                *count = count.saturating_add(1);
                *count <= super::DECLINES_PER_SECOND
            }
            _ => {
                *start = Some(now);
                *count = 1;
                true
            }
        }
    }

    /// A binary frame arrived on the file channel. Only chunks of an accepted transfer
    /// that is still receiving count; a chunk before the receiver accepted is a sender
    /// that does not wait for consent, and ends that transfer.
    pub fn on_binary(&mut self, frame: &[u8]) {
        let chunk = match Chunk::parse(frame) {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring a malformed file chunk");
                self.stats.ignored_frames += 1;
                return;
            }
        };
        let id = chunk.id;
        let Some(inc) = self.incoming.get_mut(&id) else {
            tracing::debug!(id, "chunk for no incoming transfer");
            self.stats.ignored_frames += 1;
            return;
        };
        match inc.info.state {
            TransferState::Transferring => {}
            TransferState::Offered => {
                tracing::info!(id, "chunk before the offer was accepted; cancelling it");
                self.stats.ignored_frames += 1;
                let _ = self.cancel(TransferSide::Receiver, id, "bytes before accept");
                return;
            }
            ref state => {
                // Late chunks after a cancel are normal; after `end` they are ignored.
                tracing::debug!(id, ?state, "chunk outside a running transfer");
                self.stats.ignored_frames += 1;
                return;
            }
        }
        if chunk.payload.is_empty() {
            self.stats.ignored_frames += 1;
            return;
        }
        let offset = inc.info.transferred;
        let new_total = offset + chunk.payload.len() as u64;
        if new_total > inc.info.size {
            let reason = format!("more than the offered {} bytes", inc.info.size);
            self.send(&FileMessage::Failed {
                id,
                reason: reason.clone(),
            });
            self.finish_incoming(id, TransferState::Failed(reason));
            return;
        }
        if let Some(h) = inc.hasher.as_mut() {
            h.update(chunk.payload);
        }
        inc.info.transferred = new_total;
        self.actions.push(FileAction::Write {
            id,
            offset,
            bytes: chunk.payload.to_vec(),
        });
    }

    pub(super) fn on_end(&mut self, id: u32, sha256: &str) {
        let Some(inc) = self.incoming.get_mut(&id) else {
            self.stats.ignored_frames += 1;
            return;
        };
        if inc.info.state != TransferState::Transferring {
            self.stats.ignored_frames += 1;
            return;
        }
        let digest = inc
            .hasher
            .take()
            .map(|h| hex(&h.finalize()))
            .unwrap_or_default();
        let problem = if inc.info.transferred != inc.info.size {
            Some(format!(
                "received {} of {} bytes",
                inc.info.transferred, inc.info.size
            ))
        } else if !digest.eq_ignore_ascii_case(sha256) {
            Some("sha256 mismatch".to_owned())
        } else {
            None
        };
        if let Some(reason) = problem {
            tracing::warn!(id, reason, "incoming file does not check out; dropping it");
            self.send(&FileMessage::Failed {
                id,
                reason: reason.clone(),
            });
            self.finish_incoming(id, TransferState::Failed(reason));
            return;
        }
        inc.info.sha256 = Some(digest);
        inc.info.state = TransferState::Finishing;
        let commit = FileAction::Commit {
            id,
            temp: inc.temp.clone(),
            name: inc.info.stored_name.clone().unwrap_or_default(),
        };
        self.actions.push(commit);
        self.changed(TransferSide::Receiver, id);
    }
}

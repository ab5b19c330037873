//! File transfers on one peer's `file` data channel, both directions, following the
//! protocol in [`portal_proto::channel`] (the browser implements the same one).
//!
//! [`FileChannel`] is sans-IO: it never touches a file or a socket. It tells the I/O layer
//! what to do through [`FileAction`]s and learns what happened through method calls:
//!
//! - Sending: [`FileChannel::offer`] sends `offer`; after the remote's `accept` the channel
//!   asks for bytes with [`FileAction::Read`] while the data channel's buffered amount
//!   (reported with [`FileChannel::set_buffered`]) is below the high-water mark; each
//!   [`FileChannel::provide`] becomes one binary chunk; after the last chunk it sends `end`
//!   with the SHA-256 it computed over exactly the bytes it sent.
//! - Receiving: an `offer` is checked (name, size cap, id reuse) and then decided by the
//!   [`ReceivePolicy`]: `accept` at once, `decline`, or ask a person
//!   ([`FileChannel::accept`] / [`FileChannel::decline`], declined by itself after the ask
//!   timeout). Bytes go to a temporary hidden file ([`FileAction::Create`],
//!   [`FileAction::Write`]); at `end` the size and digest are checked, and only then does
//!   [`FileAction::Commit`] ask the I/O layer to rename the temp file to its final name.
//!   The remote hears `complete` only after the I/O layer reports the rename with
//!   [`FileChannel::stored`], so an incomplete or corrupt file never counts as complete;
//!   every failure path ends in [`FileAction::Discard`].
//!
//! Final names come from [`crate::names`]: sanitized, and never one already taken (the
//! caller passes the set of names in the download directory and those reserved by
//! transfers in flight). The I/O layer should still rename without replacing
//! (`renameat2(RENAME_NOREPLACE)` or link + unlink) and report a clash as a failure.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use portal_proto::channel::{
    Chunk, DeclineReason, FILE_CHUNK_PAYLOAD, FileMessage, MAX_FILE_NAME, TransferSide,
};
use sha2::{Digest, Sha256};

use crate::names;

/// What the kiosk does with an offered file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReceivePolicy {
    /// Ask a person (the UI shows the offer); declined after the ask timeout.
    #[default]
    Ask,
    /// Accept every offer within the size cap.
    Accept,
    /// Decline every offer.
    Deny,
}

/// Settings of the file channel.
#[derive(Clone, Debug)]
pub struct FileConfig {
    pub policy: ReceivePolicy,
    /// Largest file accepted, in bytes.
    pub max_size: u64,
    /// How long an offer waits for a person before it is declined.
    pub ask_timeout: Duration,
    /// Stop reading while the data channel buffers at least this many bytes.
    pub high_water: usize,
    /// File bytes per binary frame (at most [`FILE_CHUNK_PAYLOAD`]).
    pub chunk_size: usize,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            policy: ReceivePolicy::Ask,
            max_size: 2 * 1024 * 1024 * 1024,
            ask_timeout: Duration::from_secs(120),
            high_water: 1024 * 1024,
            chunk_size: FILE_CHUNK_PAYLOAD,
        }
    }
}

/// Where a transfer is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferState {
    /// Offered; waiting for the receiver (or, receiving, for a person to decide).
    Offered,
    /// Bytes are flowing.
    Transferring,
    /// Sender: every byte sent, waiting for `complete`. Receiver: verified, being stored.
    Finishing,
    /// The receiver has the file, checked.
    Complete,
    /// The receiver declined.
    Declined(DeclineReason),
    /// One side cancelled (`by`), or the channel closed.
    Cancelled { by: TransferSide, reason: String },
    /// The bytes did not check out, or storing them failed; nothing was kept.
    Failed(String),
}

impl TransferState {
    /// Whether the transfer is over, one way or another.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TransferState::Complete
                | TransferState::Declined(_)
                | TransferState::Cancelled { .. }
                | TransferState::Failed(_)
        )
    }
}

/// One transfer as the UI and the status endpoint show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub id: u32,
    /// Which side of the transfer this kiosk is.
    pub side: TransferSide,
    /// The name as offered (shown to people; never used as a path).
    pub offered_name: String,
    /// Receiving: the name the file gets in the download directory.
    pub stored_name: Option<String>,
    pub size: u64,
    pub mime: String,
    /// Bytes sent or received so far.
    pub transferred: u64,
    /// Lowercase hex SHA-256: sender once all bytes are sent, receiver once verified.
    pub sha256: Option<String>,
    pub state: TransferState,
}

/// What the I/O layer must do for the file channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileAction {
    /// Send a JSON text frame.
    SendText(String),
    /// Send a binary frame (header and payload).
    SendBinary(Vec<u8>),
    /// Sending: read `len` bytes at `offset` of the outgoing file `id` and call
    /// [`FileChannel::provide`] (or [`FileChannel::read_failed`]).
    Read { id: u32, offset: u64, len: usize },
    /// Receiving: create the empty temporary file `temp` for incoming transfer `id`.
    Create { id: u32, temp: String },
    /// Receiving: append `bytes` (they start at `offset`) to the temporary file.
    Write {
        id: u32,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// Receiving: the bytes check out; flush, rename `temp` to `name` without replacing,
    /// then call [`FileChannel::stored`].
    Commit { id: u32, temp: String, name: String },
    /// Receiving: delete the temporary file, if it exists.
    Discard { id: u32, temp: String },
    /// The transfer's state changed (see [`FileChannel::transfer`]).
    Changed { side: TransferSide, id: u32 },
    /// Receiving with policy `ask`: a person should accept or decline this offer.
    Ask { id: u32 },
}

/// Errors of commands given to the file channel.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    #[error("the file channel is not open")]
    ChannelClosed,
    #[error("no {side:?} transfer with id {id}")]
    UnknownTransfer { side: TransferSide, id: u32 },
    #[error("transfer {id} is not waiting for that")]
    WrongState { id: u32 },
    #[error("file name is empty or longer than {MAX_FILE_NAME} bytes")]
    InvalidName,
    #[error("read of {got} bytes where {expected} were asked for")]
    ShortRead { expected: usize, got: usize },
}

#[derive(Debug)]
struct Outgoing {
    info: Transfer,
    hasher: Option<Sha256>,
    /// An outstanding [`FileAction::Read`]: (offset, len).
    pending_read: Option<(u64, usize)>,
}

#[derive(Debug)]
struct Incoming {
    info: Transfer,
    hasher: Option<Sha256>,
    temp: String,
    /// Whether the temp file was asked for (so a discard is needed).
    created: bool,
    /// Ask deadline while a person decides.
    ask_until: Option<Instant>,
}

/// Both directions of file transfer with one peer.
#[derive(Debug)]
pub struct FileChannel {
    config: FileConfig,
    open: bool,
    buffered: usize,
    next_id: u32,
    /// Prefix for temp file names, unique per channel in this process.
    temp_prefix: String,
    outgoing: BTreeMap<u32, Outgoing>,
    incoming: BTreeMap<u32, Incoming>,
    actions: Vec<FileAction>,
}

impl FileChannel {
    /// A channel with one peer; `tag` makes temp file names unique (e.g. the peer id and
    /// a connection counter).
    pub fn new(config: FileConfig, tag: &str) -> Self {
        let mut config = config;
        config.chunk_size = config.chunk_size.clamp(1, FILE_CHUNK_PAYLOAD);
        FileChannel {
            config,
            open: false,
            buffered: 0,
            next_id: 1,
            temp_prefix: format!(".portal-partial-{tag}"),
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            actions: Vec::new(),
        }
    }

    pub fn config(&self) -> &FileConfig {
        &self.config
    }

    pub fn set_policy(&mut self, policy: ReceivePolicy) {
        self.config.policy = policy;
    }

    /// Takes what the I/O layer must do now, in order.
    pub fn drain_actions(&mut self) -> std::vec::Drain<'_, FileAction> {
        self.actions.drain(..)
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The data channel opened.
    pub fn opened(&mut self) {
        self.open = true;
        self.buffered = 0;
    }

    /// The data channel closed: every unfinished transfer is cancelled, partial files go.
    pub fn closed(&mut self) {
        self.open = false;
        let reason = "channel closed".to_owned();
        let ids: Vec<u32> = self.outgoing.keys().copied().collect();
        for id in ids {
            self.finish_outgoing(
                id,
                TransferState::Cancelled {
                    by: TransferSide::Sender,
                    reason: reason.clone(),
                },
            );
        }
        // A verified file being renamed finishes locally even without the channel.
        let ids: Vec<u32> = self
            .incoming
            .iter()
            .filter(|(_, i)| i.info.state != TransferState::Finishing)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.finish_incoming(
                id,
                TransferState::Cancelled {
                    by: TransferSide::Receiver,
                    reason: reason.clone(),
                },
            );
        }
    }

    /// Every transfer, outgoing then incoming, by id.
    pub fn transfers(&self) -> impl Iterator<Item = &Transfer> {
        self.outgoing
            .values()
            .map(|o| &o.info)
            .chain(self.incoming.values().map(|i| &i.info))
    }

    pub fn transfer(&self, side: TransferSide, id: u32) -> Option<&Transfer> {
        match side {
            TransferSide::Sender => self.outgoing.get(&id).map(|o| &o.info),
            TransferSide::Receiver => self.incoming.get(&id).map(|i| &i.info),
        }
    }

    /// Names that unfinished incoming transfers have reserved.
    pub fn reserved_names(&self) -> impl Iterator<Item = &str> {
        self.incoming
            .values()
            .filter(|i| !i.info.state.is_final())
            .filter_map(|i| i.info.stored_name.as_deref())
    }

    /// The next deadline (an offer waiting for a person).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.incoming.values().filter_map(|i| i.ask_until).min()
    }

    /// Declines offers whose ask timeout has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<u32> = self
            .incoming
            .iter()
            .filter(|(_, i)| i.ask_until.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            tracing::info!(id, "file offer not answered in time; declining");
            self.send(&FileMessage::Decline {
                id,
                reason: DeclineReason::Declined,
            });
            self.finish_incoming(id, TransferState::Declined(DeclineReason::Declined));
        }
    }

    /// The data channel's buffered amount, as the I/O layer last saw it.
    pub fn set_buffered(&mut self, amount: usize) {
        self.buffered = amount;
        self.pump();
    }

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

    /// Stops a transfer from this side (`side` is which side of it this kiosk is).
    pub fn cancel(
        &mut self,
        side: TransferSide,
        id: u32,
        reason: &str,
    ) -> Result<(), TransferError> {
        let state = self
            .transfer(side, id)
            .map(|t| t.state.clone())
            .ok_or(TransferError::UnknownTransfer { side, id })?;
        if state.is_final() {
            return Err(TransferError::WrongState { id });
        }
        self.send(&FileMessage::Cancel {
            id,
            by: side,
            reason: reason.to_owned(),
        });
        let cancelled = TransferState::Cancelled {
            by: side,
            reason: reason.to_owned(),
        };
        match side {
            TransferSide::Sender => self.finish_outgoing(id, cancelled),
            TransferSide::Receiver => self.finish_incoming(id, cancelled),
        }
        Ok(())
    }

    /// Sends `end` once every byte of `id` has been sent.
    fn maybe_end(&mut self, id: u32) {
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
    fn pump(&mut self) {
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

    // ---- receiving ----

    /// A person accepts the offer `id`.
    pub fn accept(&mut self, id: u32, taken: &HashSet<String>) -> Result<(), TransferError> {
        let inc = self
            .incoming
            .get(&id)
            .ok_or(TransferError::UnknownTransfer {
                side: TransferSide::Receiver,
                id,
            })?;
        if inc.info.state != TransferState::Offered {
            return Err(TransferError::WrongState { id });
        }
        self.start_receiving(id, taken);
        Ok(())
    }

    /// A person declines the offer `id`.
    pub fn decline(&mut self, id: u32) -> Result<(), TransferError> {
        let inc = self
            .incoming
            .get(&id)
            .ok_or(TransferError::UnknownTransfer {
                side: TransferSide::Receiver,
                id,
            })?;
        if inc.info.state != TransferState::Offered {
            return Err(TransferError::WrongState { id });
        }
        self.send(&FileMessage::Decline {
            id,
            reason: DeclineReason::Declined,
        });
        self.finish_incoming(id, TransferState::Declined(DeclineReason::Declined));
        Ok(())
    }

    /// The I/O layer stored (renamed) the verified file of incoming transfer `id`.
    pub fn stored(&mut self, id: u32) -> Result<(), TransferError> {
        let inc = self
            .incoming
            .get_mut(&id)
            .ok_or(TransferError::UnknownTransfer {
                side: TransferSide::Receiver,
                id,
            })?;
        if inc.info.state != TransferState::Finishing {
            return Err(TransferError::WrongState { id });
        }
        inc.info.state = TransferState::Complete;
        inc.created = false;
        tracing::info!(id, name = ?inc.info.stored_name, size = inc.info.size, "file received");
        self.send(&FileMessage::Complete { id });
        self.changed(TransferSide::Receiver, id);
        Ok(())
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

    fn start_receiving(&mut self, id: u32, taken: &HashSet<String>) {
        let mut taken = taken.clone();
        taken.extend(self.reserved_names().map(str::to_owned));
        let temp = self.temp_prefix.clone();
        let Some(inc) = self.incoming.get_mut(&id) else {
            return;
        };
        let name = names::unique(&names::sanitize(&inc.info.offered_name), &taken);
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

    /// A JSON text frame arrived on the file channel. `taken` are the names in the download
    /// directory (used when an offer is accepted by policy).
    pub fn on_text(&mut self, now: Instant, text: &str, taken: &HashSet<String>) {
        let msg = match FileMessage::parse(text) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring an unknown file channel message");
                return;
            }
        };
        match msg {
            FileMessage::Offer {
                id,
                name,
                size,
                mime,
            } => self.on_offer(now, id, name, size, mime, taken),
            FileMessage::Accept { id } => self.on_accept(id),
            FileMessage::Decline { id, reason } => {
                if self.outgoing_in(id, &[TransferState::Offered]) {
                    self.finish_outgoing(id, TransferState::Declined(reason));
                }
            }
            FileMessage::End { id, sha256 } => self.on_end(id, &sha256),
            FileMessage::Complete { id } => {
                if self.outgoing_in(id, &[TransferState::Finishing]) {
                    tracing::info!(id, "file delivered");
                    self.finish_outgoing(id, TransferState::Complete);
                }
            }
            FileMessage::Failed { id, reason } => {
                if self.outgoing_in(id, &[TransferState::Finishing, TransferState::Transferring]) {
                    self.finish_outgoing(id, TransferState::Failed(reason));
                }
            }
            FileMessage::Cancel { id, by, reason } => {
                let cancelled = TransferState::Cancelled {
                    by,
                    reason: reason.clone(),
                };
                match by {
                    // The remote sends: it is the sender of one of our incoming transfers.
                    TransferSide::Sender => {
                        if self
                            .incoming
                            .get(&id)
                            .is_some_and(|i| !i.info.state.is_final())
                        {
                            tracing::info!(id, reason, "sender cancelled a transfer");
                            self.finish_incoming(id, cancelled);
                        }
                    }
                    TransferSide::Receiver => {
                        if self
                            .outgoing
                            .get(&id)
                            .is_some_and(|o| !o.info.state.is_final())
                        {
                            tracing::info!(id, reason, "receiver cancelled a transfer");
                            self.finish_outgoing(id, cancelled);
                        }
                    }
                }
            }
        }
    }

    fn on_offer(
        &mut self,
        now: Instant,
        id: u32,
        name: String,
        size: u64,
        mime: String,
        taken: &HashSet<String>,
    ) {
        let reuse = self.incoming.contains_key(&id);
        let invalid = reuse || name.is_empty() || name.len() > MAX_FILE_NAME;
        let decision = if invalid {
            Some(DeclineReason::Invalid)
        } else if self.config.policy == ReceivePolicy::Deny {
            Some(DeclineReason::Policy)
        } else if size > self.config.max_size {
            Some(DeclineReason::TooLarge)
        } else {
            None
        };
        if let Some(reason) = decision {
            tracing::info!(id, ?reason, size, "declining a file offer");
            self.send(&FileMessage::Decline { id, reason });
            if reuse {
                // Keep the existing transfer under this id untouched.
                return;
            }
        }
        self.incoming.insert(
            id,
            Incoming {
                info: Transfer {
                    id,
                    side: TransferSide::Receiver,
                    offered_name: name,
                    stored_name: None,
                    size,
                    mime,
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
            return;
        }
        match self.config.policy {
            ReceivePolicy::Accept => self.start_receiving(id, taken),
            ReceivePolicy::Ask => {
                if let Some(inc) = self.incoming.get_mut(&id) {
                    inc.ask_until = Some(now + self.config.ask_timeout);
                }
                self.actions.push(FileAction::Ask { id });
            }
            ReceivePolicy::Deny => {}
        }
    }

    fn on_accept(&mut self, id: u32) {
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

    /// A binary frame arrived on the file channel.
    pub fn on_binary(&mut self, frame: &[u8]) {
        let chunk = match Chunk::parse(frame) {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring a malformed file chunk");
                return;
            }
        };
        let id = chunk.id;
        let Some(inc) = self.incoming.get_mut(&id) else {
            tracing::debug!(id, "chunk for no incoming transfer");
            return;
        };
        if inc.info.state != TransferState::Transferring {
            // Late chunks after a cancel are normal; before accept they are a protocol error.
            tracing::debug!(id, state = ?inc.info.state, "chunk outside a running transfer");
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

    fn on_end(&mut self, id: u32, sha256: &str) {
        let Some(inc) = self.incoming.get_mut(&id) else {
            return;
        };
        if inc.info.state != TransferState::Transferring {
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

    // ---- helpers ----

    fn outgoing_in(&self, id: u32, states: &[TransferState]) -> bool {
        self.outgoing
            .get(&id)
            .is_some_and(|o| states.contains(&o.info.state))
    }

    fn finish_outgoing(&mut self, id: u32, state: TransferState) {
        let Some(out) = self.outgoing.get_mut(&id) else {
            return;
        };
        if out.info.state.is_final() {
            return;
        }
        out.info.state = state;
        out.hasher = None;
        self.changed(TransferSide::Sender, id);
        self.pump();
    }

    fn finish_incoming(&mut self, id: u32, state: TransferState) {
        let Some(inc) = self.incoming.get_mut(&id) else {
            return;
        };
        if inc.info.state.is_final() {
            return;
        }
        inc.info.state = state;
        inc.ask_until = None;
        inc.hasher = None;
        if std::mem::take(&mut inc.created) {
            let discard = FileAction::Discard {
                id,
                temp: inc.temp.clone(),
            };
            self.actions.push(discard);
        }
        self.changed(TransferSide::Receiver, id);
    }

    fn send(&mut self, msg: &FileMessage) {
        self.actions.push(FileAction::SendText(msg.to_json()));
    }

    fn changed(&mut self, side: TransferSide, id: u32) {
        self.actions.push(FileAction::Changed { side, id });
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug)]
    enum Op {
        Offer { id: u32, size: u64 },
        Chunk { id: u32, len: usize, byte: u8 },
        End { id: u32, honest: bool },
        Cancel { id: u32 },
        Garbage,
        Decide { id: u32, accept: bool },
        Tick,
        Close,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..3, 0u64..300).prop_map(|(id, size)| Op::Offer { id, size }),
            (0u32..3, 0usize..120, any::<u8>()).prop_map(|(id, len, byte)| Op::Chunk {
                id,
                len,
                byte
            }),
            (0u32..3, any::<bool>()).prop_map(|(id, honest)| Op::End { id, honest }),
            (0u32..3).prop_map(|id| Op::Cancel { id }),
            Just(Op::Garbage),
            (0u32..3, any::<bool>()).prop_map(|(id, accept)| Op::Decide { id, accept }),
            Just(Op::Tick),
            Just(Op::Close),
        ]
    }

    proptest! {
        /// Whatever a remote sender says, in any order, the receiver writes only into
        /// files it created for an accepted transfer, and commits only files whose bytes
        /// have exactly the offered size and the digest of what was received.
        #[test]
        fn a_receiver_never_commits_what_does_not_check_out(
            ask in any::<bool>(),
            ops in proptest::collection::vec(op(), 0..80),
        ) {
            let config = FileConfig {
                policy: if ask { ReceivePolicy::Ask } else { ReceivePolicy::Accept },
                max_size: 250,
                ask_timeout: Duration::from_secs(1),
                ..FileConfig::default()
            };
            let mut ch = FileChannel::new(config, "t");
            ch.opened();
            let t0 = Instant::now();
            let mut now = t0;
            let taken = HashSet::new();
            // What the remote sent per id (to build honest digests).
            let mut sent: HashMap<u32, Vec<u8>> = HashMap::new();
            // The "disk": temp name -> bytes, and committed names.
            let mut temps: HashMap<String, Vec<u8>> = HashMap::new();
            let mut temp_of: HashMap<u32, String> = HashMap::new();
            let mut committed: HashSet<String> = HashSet::new();
            for op in ops {
                match op {
                    Op::Offer { id, size } => {
                        sent.insert(id, Vec::new());
                        let msg = FileMessage::Offer { id, name: format!("f{id}.bin"), size, mime: String::new() };
                        ch.on_text(now, &msg.to_json(), &taken);
                    }
                    Op::Chunk { id, len, byte } => {
                        let payload = vec![byte; len];
                        sent.entry(id).or_default().extend_from_slice(&payload);
                        ch.on_binary(&Chunk::encode(id, &payload));
                    }
                    Op::End { id, honest } => {
                        let digest = if honest {
                            hex(&Sha256::digest(sent.get(&id).map_or(&[][..], Vec::as_slice)))
                        } else {
                            "00".repeat(32)
                        };
                        ch.on_text(now, &FileMessage::End { id, sha256: digest }.to_json(), &taken);
                    }
                    Op::Cancel { id } => {
                        let msg = FileMessage::Cancel { id, by: TransferSide::Sender, reason: String::new() };
                        ch.on_text(now, &msg.to_json(), &taken);
                    }
                    Op::Garbage => ch.on_text(now, r#"{"type":"surprise","id":1}"#, &taken),
                    Op::Decide { id, accept } => {
                        let _ = if accept { ch.accept(id, &taken) } else { ch.decline(id) };
                    }
                    Op::Tick => {
                        now += Duration::from_millis(400);
                        ch.handle_timeout(now);
                    }
                    Op::Close => {
                        ch.closed();
                        ch.opened();
                    }
                }
                let actions: Vec<FileAction> = ch.drain_actions().collect();
                for action in actions {
                    match action {
                        FileAction::Create { id, temp } => {
                            prop_assert!(temp.starts_with('.'));
                            prop_assert!(temps.insert(temp.clone(), Vec::new()).is_none());
                            temp_of.insert(id, temp);
                        }
                        FileAction::Write { id, offset, bytes } => {
                            let temp = temp_of.get(&id);
                            prop_assert!(temp.is_some(), "write before create");
                            let file = temps.get_mut(temp.unwrap());
                            prop_assert!(file.is_some(), "write after discard/commit");
                            let file = file.unwrap();
                            prop_assert_eq!(file.len() as u64, offset);
                            file.extend_from_slice(&bytes);
                        }
                        FileAction::Commit { id, temp, name } => {
                            let bytes = temps.remove(&temp);
                            prop_assert!(bytes.is_some());
                            let bytes = bytes.unwrap();
                            let t = ch.transfer(TransferSide::Receiver, id).unwrap();
                            prop_assert_eq!(bytes.len() as u64, t.size);
                            prop_assert!(t.size <= 250);
                            prop_assert_eq!(Some(hex(&Sha256::digest(&bytes))), t.sha256.clone());
                            prop_assert!(committed.insert(name));
                            ch.stored(id).unwrap();
                        }
                        FileAction::Discard { temp, .. } => {
                            temps.remove(&temp);
                        }
                        FileAction::SendText(text) => {
                            prop_assert!(FileMessage::parse(&text).is_ok());
                        }
                        FileAction::SendBinary(_) => prop_assert!(false, "a receiver sends no chunks"),
                        FileAction::Read { .. } => prop_assert!(false, "a receiver reads nothing"),
                        FileAction::Changed { .. } | FileAction::Ask { .. } => {}
                    }
                }
                // Only unfinished transfers hold temp files.
                for (id, temp) in &temp_of {
                    if temps.contains_key(temp) {
                        let state = &ch.transfer(TransferSide::Receiver, *id).unwrap().state;
                        prop_assert!(!state.is_final(), "{id}: {state:?} keeps its temp file");
                    }
                }
            }
        }
    }

    #[test]
    fn sender_paces_reads_by_the_buffered_amount() {
        let config = FileConfig {
            high_water: 100_000,
            ..FileConfig::default()
        };
        let mut ch = FileChannel::new(config, "t");
        ch.opened();
        let id = ch.offer("a.bin", 1_000_000, "").unwrap();
        ch.drain_actions().for_each(drop);
        ch.on_text(
            Instant::now(),
            &FileMessage::Accept { id }.to_json(),
            &HashSet::new(),
        );
        let mut reads = 0;
        loop {
            let actions: Vec<_> = ch.drain_actions().collect();
            let Some(FileAction::Read { offset, len, .. }) = actions
                .iter()
                .find(|a| matches!(a, FileAction::Read { .. }))
                .cloned()
            else {
                break;
            };
            reads += 1;
            assert_eq!(offset, (reads - 1) * FILE_CHUNK_PAYLOAD as u64);
            ch.provide(id, &vec![0; len]).unwrap();
        }
        // 100 000 bytes of high water allow two 64 KiB frames before the channel waits.
        assert_eq!(reads, 2);
        ch.set_buffered(0);
        assert!(
            ch.drain_actions()
                .any(|a| matches!(a, FileAction::Read { .. }))
        );
        assert_eq!(
            ch.provide(id, &[1, 2, 3]),
            Err(TransferError::ShortRead {
                expected: FILE_CHUNK_PAYLOAD,
                got: 3
            })
        );
        assert!(matches!(
            ch.transfer(TransferSide::Sender, id).unwrap().state,
            TransferState::Cancelled {
                by: TransferSide::Sender,
                ..
            }
        ));
    }
}

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
//! - Receiving: an `offer` is checked (name and mime length, id reuse, offers in flight,
//!   size cap, free disk space; see [`Receiving`] and `incoming.rs`) and then decided by the
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
//! caller says which names the download directory holds and which other transfers in
//! flight reserved). The I/O layer should still rename without replacing
//! (`renameat2(RENAME_NOREPLACE)` or link + unlink) and report a clash as a failure.
//!
//! What a remote peer can make the channel hold is bounded: offers in flight per peer and
//! in all ([`FileConfig::max_incoming_per_peer`], [`FileConfig::max_incoming_total`],
//! declined as `busy`), ended transfers kept ([`FileConfig::keep_finished`]), the length of
//! every field and text frame ([`portal_proto::channel::FILE_TEXT_MAX`]), and the bytes
//! accepted against the free space ([`FileConfig::min_free_bytes`], declined as `noSpace`).
//! Declines themselves are answered up to [`DECLINES_PER_SECOND`], so a flood's replies do
//! not pile up in the kiosk's send queue.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use portal_proto::channel::{
    DeclineReason, FILE_CHUNK_PAYLOAD, FileMessage, MAX_FILE_NAME, TransferSide,
};
use sha2::Sha256;

mod incoming;
pub use incoming::Receiving;
mod outgoing;
mod table;

/// Offers declined on arrival that are answered in one second; beyond, a flood's offers
/// are declined without a reply (a well-behaved sender never comes near it).
pub const DECLINES_PER_SECOND: u32 = 64;

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
    /// Incoming offers and transfers in flight (offered, transferring, finishing) one peer
    /// may have; more are declined as [`DeclineReason::Busy`].
    pub max_incoming_per_peer: usize,
    /// The same over every peer of the call (the engine counts the others).
    pub max_incoming_total: usize,
    /// Ended transfers kept per direction for the UI and the status endpoint; beyond it
    /// the oldest go, unsuccessful ones before received files.
    pub keep_finished: usize,
    /// Disk space left free: an offer is accepted only if, after every accepted transfer
    /// still writing, this much stays free ([`DeclineReason::NoSpace`] otherwise).
    pub min_free_bytes: u64,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            policy: ReceivePolicy::Ask,
            max_size: 2 * 1024 * 1024 * 1024,
            ask_timeout: Duration::from_secs(120),
            high_water: 1024 * 1024,
            chunk_size: FILE_CHUNK_PAYLOAD,
            max_incoming_per_peer: 4,
            max_incoming_total: 16,
            keep_finished: 32,
            min_free_bytes: 64 * 1024 * 1024,
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
    #[error("not enough free disk space for the file")]
    NoSpace,
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
    /// Ended transfers, oldest first, so the tables stay within `keep_finished`.
    ended_out: VecDeque<u32>,
    ended_in: VecDeque<u32>,
    stats: FileStats,
    /// Declines sent in the current second (start, count): a flood of offers is answered
    /// only up to [`DECLINES_PER_SECOND`], so the replies cannot pile up either.
    declines: (Option<Instant>, u32),
    actions: Vec<FileAction>,
}

/// What the file channel refused or ignored, for the status endpoint and abuse tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Offers declined because too many were in flight.
    pub declined_busy: u64,
    /// Offers declined for an unusable name, mime type or id.
    pub declined_invalid: u64,
    /// Offers declined for want of disk space.
    pub declined_no_space: u64,
    /// Frames that were not JSON messages or chunks of a running transfer.
    pub ignored_frames: u64,
    /// Ended transfers dropped from the table.
    pub forgotten: u64,
    /// Declines not sent because a flood had used up the second's share.
    pub unanswered: u64,
}

impl std::ops::AddAssign for FileStats {
    fn add_assign(&mut self, other: FileStats) {
        self.declined_busy += other.declined_busy;
        self.declined_invalid += other.declined_invalid;
        self.declined_no_space += other.declined_no_space;
        self.ignored_frames += other.ignored_frames;
        self.forgotten += other.forgotten;
        self.unanswered += other.unanswered;
    }
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
            ended_out: VecDeque::new(),
            ended_in: VecDeque::new(),
            stats: FileStats::default(),
            declines: (None, 0),
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

    /// What this channel refused or ignored so far.
    pub fn stats(&self) -> FileStats {
        self.stats
    }

    /// Incoming offers and transfers not yet ended.
    pub fn incoming_in_flight(&self) -> usize {
        self.incoming
            .values()
            .filter(|i| !i.info.state.is_final())
            .count()
    }

    /// Bytes that accepted incoming transfers have still to write.
    pub fn incoming_pending_bytes(&self) -> u64 {
        self.incoming
            .values()
            .filter(|i| i.created)
            .map(|i| i.info.size.saturating_sub(i.info.transferred))
            .sum()
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

    /// A JSON text frame arrived on the file channel; `ctx` is what an offer is decided
    /// against.
    pub fn on_text(&mut self, now: Instant, text: &str, ctx: &Receiving<'_>) {
        let msg = match FileMessage::parse(text) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring an unknown file channel message");
                self.stats.ignored_frames += 1;
                return;
            }
        };
        match msg {
            FileMessage::Offer {
                id,
                name,
                size,
                mime,
            } => self.on_offer(now, id, &name, size, &mime, ctx),
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

    // ---- helpers ----

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
mod tests;

//! What flows on the data channels, and our own media: chat lines, file transfers, the
//! microphone and camera state the peers are told about.

use std::time::Instant;

use portal_proto::PeerId;
use portal_proto::channel::{ChatChannelMessage, TransferSide};

use super::{Engine, EngineError, Event, Input, MediaState, Output};
use crate::chat::{ChatEntry, validate_text};
use crate::file_key::{FileKey, FileRef};
use crate::transfer::{FileAction, FileChannel, FileStats, Receiving, TransferState};

/// The longest chat line id kept (browsers send `PEER-N`).
const MAX_CHAT_ID: usize = 64;

impl Engine {
    /// Sends a chat line to every peer whose chat channel is open, and logs it.
    /// `wall_ms` is the wall clock (ms since the Unix epoch) shown to the others.
    pub fn send_chat(&mut self, wall_ms: f64, text: &str) -> Result<(), EngineError> {
        validate_text(text)?;
        let me = self.me.ok_or(EngineError::NotJoined)?;
        self.chat_serial += 1;
        let id = format!("{me}-{}", self.chat_serial);
        let msg = ChatChannelMessage::Chat {
            id: id.clone(),
            from: self.config.name.clone(),
            time: wall_ms,
            text: text.to_owned(),
        };
        let json = msg.to_json();
        for (peer, s) in &self.sessions {
            if s.chat_open {
                self.out.push_back(Output::Chat {
                    peer: *peer,
                    text: json.clone(),
                });
            }
        }
        let entry = ChatEntry {
            peer: None,
            id,
            from: self.config.name.clone(),
            time: wall_ms,
            text: text.to_owned(),
        };
        if self.chat.push(entry.clone()) {
            self.out.push_back(Output::Event(Event::Chat(entry)));
        }
        Ok(())
    }

    /// Offers a file to `peer`; the returned id names the transfer in later
    /// [`FileAction::Read`]s.
    pub fn send_file(
        &mut self,
        peer: PeerId,
        name: &str,
        size: u64,
        mime: &str,
    ) -> Result<u32, EngineError> {
        let s = self
            .sessions
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        let id = s.file.offer(name, size, mime)?;
        self.flush_file(peer);
        Ok(id)
    }

    /// A person accepts an offered file.
    pub fn accept_file(&mut self, peer: PeerId, id: u32) -> Result<(), EngineError> {
        let result = self
            .with_receiving(peer, |file, ctx| file.accept(id, ctx))
            .ok_or(EngineError::UnknownPeer(peer))?;
        self.flush_file(peer);
        Ok(result?)
    }

    /// A person declines an offered file.
    pub fn decline_file(&mut self, peer: PeerId, id: u32) -> Result<(), EngineError> {
        let s = self
            .sessions
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        let result = s.file.decline(id);
        self.flush_file(peer);
        Ok(result?)
    }

    /// Stops a transfer; `side` is this kiosk's side of it.
    pub fn cancel_transfer(
        &mut self,
        peer: PeerId,
        side: TransferSide,
        id: u32,
        reason: &str,
    ) -> Result<(), EngineError> {
        let s = self
            .sessions
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        let result = s.file.cancel(side, id, reason);
        self.flush_file(peer);
        Ok(result?)
    }

    /// Names already in the download directory (never overwritten). Call at start and
    /// whenever the directory changes behind the engine's back.
    pub fn set_existing_files<I: IntoIterator<Item = String>>(&mut self, names: I) {
        self.existing_files = names.into_iter().collect();
    }

    /// Free bytes on the download directory's file system, as the I/O layer last measured
    /// them (`None`: unknown, offers are not checked against it). Offers are accepted only
    /// while they fit next to the transfers still writing.
    pub fn set_free_bytes(&mut self, bytes: Option<u64>) {
        self.free_bytes = bytes;
    }

    /// What the file channels refused or ignored, over every peer of the call.
    pub fn file_stats(&self) -> FileStats {
        let mut total = FileStats::default();
        for s in self.sessions.values() {
            total += s.file.stats();
        }
        total
    }

    /// Our own media state, sent to every peer on its chat channel.
    pub fn set_media_state(&mut self, state: MediaState) {
        if state == self.media {
            return;
        }
        self.media = state;
        self.out.push_back(Output::LocalMedia(state));
        self.out.push_back(Output::Event(Event::LocalMedia(state)));
        let json = self.state_json();
        for (peer, s) in &self.sessions {
            if s.chat_open {
                self.out.push_back(Output::Chat {
                    peer: *peer,
                    text: json.clone(),
                });
            }
        }
    }

    pub(super) fn chat_text(&mut self, now: Instant, peer: PeerId, text: &str) {
        let Ok(msg) = ChatChannelMessage::parse(text) else {
            tracing::debug!(%peer, "ignoring an unknown chat channel message");
            return;
        };
        match &msg {
            ChatChannelMessage::Chat { id, time, text, .. } => {
                // The line is shown under the name the server admitted this peer with,
                // not the `from` it claims (which could be anyone's, of any length).
                let Some(name) = self
                    .room
                    .as_ref()
                    .and_then(|r| r.get(peer))
                    .map(|p| p.name.clone())
                else {
                    return;
                };
                if validate_text(text).is_err() || id.chars().count() > MAX_CHAT_ID {
                    tracing::debug!(%peer, "ignoring a chat line that is empty or too long");
                    return;
                }
                let line = ChatChannelMessage::Chat {
                    id: id.clone(),
                    from: name,
                    time: *time,
                    text: text.clone(),
                };
                if let Some(entry) = self.chat.push_remote(peer, &line) {
                    self.out
                        .push_back(Output::Event(Event::Chat(entry.clone())));
                }
            }
            ChatChannelMessage::State {
                audio,
                video,
                screen,
                recording,
            } => {
                let state = MediaState {
                    audio: *audio,
                    video: *video,
                    screen: *screen,
                    recording: *recording,
                };
                if let Some(s) = self.sessions.get_mut(&peer)
                    && s.media != state
                {
                    s.media = state;
                    self.out
                        .push_back(Output::Event(Event::PeerMedia { peer, state }));
                }
                self.stage.set_screen(now, peer, state.screen);
                self.update_stage();
            }
        }
    }
    pub(super) fn flush_file(&mut self, peer: PeerId) {
        if let Some(s) = self.sessions.get_mut(&peer) {
            for action in s.file.drain_actions() {
                if let FileAction::Changed { side, id } = action {
                    self.out.push_back(Output::Event(Event::Transfer {
                        key: FileKey::new(peer, id),
                        side,
                    }));
                }
                self.out.push_back(Output::File { peer, action });
            }
        }
    }

    /// The file channel's inputs.
    pub(super) fn file_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::FileText { peer, text } => {
                self.with_receiving(peer, |file, ctx| file.on_text(now, &text, ctx));
                self.flush_file(peer);
            }
            Input::FileBinary { peer, frame } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    s.file.on_binary(&frame);
                }
                self.flush_file(peer);
            }
            Input::FileBuffered { peer, amount } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    s.file.set_buffered(amount);
                }
                self.flush_file(peer);
            }
            Input::FileData { peer, id, bytes } => {
                if let Some(s) = self.sessions.get_mut(&peer)
                    && let Err(e) = s.file.provide(id, &bytes)
                {
                    tracing::debug!(%peer, id, error = %e, "file data not used");
                }
                self.flush_file(peer);
            }
            Input::FileReadFailed { peer, id, reason } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    let _ = s.file.read_failed(id, &reason);
                }
                self.flush_file(peer);
            }
            Input::FileStored { peer, id } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    if let Some(name) = s
                        .file
                        .transfer(TransferSide::Receiver, id)
                        .and_then(|t| t.stored_name.clone())
                    {
                        self.existing_files.insert(name);
                    }
                    if let Err(e) = s.file.stored(id) {
                        tracing::warn!(%peer, id, error = %e, "stored file for no finishing transfer");
                    }
                }
                self.flush_file(peer);
            }
            Input::FileStoreFailed { peer, id, reason } => {
                if let Some(s) = self.sessions.get_mut(&peer) {
                    let _ = s.file.store_failed(id, &reason);
                }
                self.flush_file(peer);
            }
            _ => {}
        }
    }

    /// Runs `f` on `peer`'s file channel with what the rest of the call says about
    /// receiving: names taken, transfers in flight with the other peers, the free space.
    /// The channel leaves the table meanwhile, so nothing is copied for a frame.
    fn with_receiving<R>(
        &mut self,
        peer: PeerId,
        f: impl FnOnce(&mut FileChannel, &Receiving<'_>) -> R,
    ) -> Option<R> {
        let mut session = self.sessions.remove(&peer)?;
        let existing = &self.existing_files;
        let others = &self.sessions;
        let taken = |name: &str| {
            existing.contains(name)
                || others
                    .values()
                    .any(|o| o.file.reserved_names().any(|n| n == name))
        };
        let ctx = Receiving {
            taken: &taken,
            in_flight_elsewhere: others.values().map(|o| o.file.incoming_in_flight()).sum(),
            pending_elsewhere: others
                .values()
                .map(|o| o.file.incoming_pending_bytes())
                .sum(),
            free_bytes: self.free_bytes,
        };
        let result = f(&mut session.file, &ctx);
        self.sessions.insert(peer, session);
        Some(result)
    }

    pub(super) fn state_json(&self) -> String {
        ChatChannelMessage::State {
            audio: self.media.audio,
            video: self.media.video,
            screen: self.media.screen,
            recording: self.media.recording,
        }
        .to_json()
    }

    /// The transfer a person means: `PEER-ID` as it is, a bare id when exactly one
    /// offer waiting for consent has it.
    pub fn resolve_offer(&self, file: FileRef) -> Result<FileKey, EngineError> {
        if let Some(peer) = file.peer {
            return Ok(FileKey::new(peer, file.id));
        }
        let waiting: Vec<PeerId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.file
                    .transfer(TransferSide::Receiver, file.id)
                    .is_some_and(|t| t.state == TransferState::Offered)
            })
            .map(|(peer, _)| *peer)
            .collect();
        match waiting.as_slice() {
            [one] => Ok(FileKey::new(*one, file.id)),
            [] => Err(EngineError::NoOffer(file.id)),
            _ => Err(EngineError::AmbiguousOffer(file.id)),
        }
    }

    /// A person accepts (`true`) or declines an offered file.
    pub fn decide_file(&mut self, file: FileRef, accept: bool) -> Result<FileKey, EngineError> {
        let key = self.resolve_offer(file)?;
        if accept {
            self.accept_file(key.peer, key.id)?;
        } else {
            self.decline_file(key.peer, key.id)?;
        }
        Ok(key)
    }

    /// Mutes (`true`) or unmutes our microphone.
    pub fn set_mic_muted(&mut self, muted: bool) {
        let state = MediaState {
            audio: !muted,
            ..self.media
        };
        self.set_media_state(state);
    }

    /// Turns our camera off (`true`) or on. Back on, every video encoder starts with a
    /// keyframe so the peers' decoders pick the picture up at once.
    pub fn set_camera_off(&mut self, off: bool) {
        let was_off = !self.media.video;
        let state = MediaState {
            video: !off,
            ..self.media
        };
        self.set_media_state(state);
        if was_off && !off {
            self.out.push_back(Output::Keyframe);
        }
    }

    /// Our own microphone and camera as the peers are told.
    pub fn local_media(&self) -> MediaState {
        self.media
    }

    /// Whose picture a snapshot takes: the asked peer, else the one on stage, else the
    /// first in the room.
    pub fn snapshot_peer(&self, asked: Option<PeerId>) -> Result<PeerId, EngineError> {
        match asked {
            Some(peer) if self.sessions.contains_key(&peer) => Ok(peer),
            Some(peer) => Err(EngineError::UnknownPeer(peer)),
            None => self
                .stage()
                .content
                .peer()
                .or_else(|| self.peers().first().map(|p| p.id))
                .ok_or(EngineError::NoPeer),
        }
    }
}

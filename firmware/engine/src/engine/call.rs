//! The call's lifecycle with the rooms server: connect, `hello`, `join`, resume, back
//! off, and what is final.
//!
//! The engine is the one owner of these decisions; the transport (portal-net) only opens
//! the WebSocket when told ([`Output::Connect`]), carries [`Output::Send`] and reports
//! [`Input::SignalingOpened`], [`Input::Server`] and [`Input::SignalingClosed`].
//!
//! What is final: a server that speaks another protocol (`unsupportedProtocol`), a name
//! or room name it refuses (`invalidName`, `invalidRoomName`), a wrong password
//! (`wrongPassword`), a room whose protection is not what we were given
//! (`passwordMismatch`: an open room when we have a password, refused by the server or,
//! with an older server, by us when `joined` says the room is open), and a full room (`roomFull`) when a person is choosing (they are
//! told and choose again). Then the engine closes the connection, stops every peer and
//! reports [`Event::JoinFailed`] with `retrying: false`; nothing is retried. A full
//! room is retried with backoff when [`EngineConfig::wait_for_seat`] is set (a headless
//! kiosk) or when we were in the room before (our seat may be held by the connection we
//! lost); `rateLimited` and `tooManyRooms` are retried too. A dropped connection is
//! retried with a growing, jittered delay, and the next `hello` carries the resume token.

use std::collections::HashSet;
use std::time::Instant;

use portal_proto::pairing::DeviceHello;
use portal_proto::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, ServerMessage, WatchSnapshot,
};

use super::{CallState, ConnectionState, Engine, EngineConfig, Event, Input, Output};
use crate::room::Room;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signaling {
    /// Waiting for the connection (first attempt, or after the backoff delay).
    Connecting,
    /// Said hello, waiting for welcome.
    Hello,
    /// Said join, waiting for joined.
    Joining,
    /// In the room.
    Joined,
    /// Refused by the server for good.
    Refused,
    /// Waiting until `reconnect_at`.
    Waiting,
    /// Left on purpose.
    Left,
}

impl Engine {
    /// Leaves the room: the server hears `leave` (the others see us go at once), the
    /// connection closes and every peer connection stops. Nothing is retried after.
    pub fn leave(&mut self) {
        if self.state == Signaling::Left {
            return;
        }
        if self.state == Signaling::Joined {
            self.out.push_back(Output::Send(ClientMessage::Leave));
        }
        self.stop_calling(Signaling::Left);
        tracing::info!(room = %self.config.room, "left");
        self.out.push_back(Output::Event(Event::Left));
        self.settle();
    }

    /// Whether a meeting is on: in the room (or getting back to it) with at least one
    /// other peer. A kiosk alone in its room is not in a meeting; an update may install.
    pub fn in_meeting(&self) -> bool {
        matches!(
            self.call_state(),
            CallState::Joined | CallState::Connecting | CallState::Reconnecting { .. }
        ) && !self.peers().is_empty()
    }

    /// Where the call stands.
    pub fn call_state(&self) -> CallState {
        match self.state {
            Signaling::Joined => CallState::Joined,
            Signaling::Left => CallState::Left,
            Signaling::Refused => {
                let (code, message) = self
                    .failure
                    .clone()
                    .unwrap_or((ErrorCode::Internal, String::new()));
                CallState::Failed { code, message }
            }
            Signaling::Connecting | Signaling::Hello | Signaling::Joining | Signaling::Waiting
                if !self.was_joined && self.backoff.attempt() == 0 =>
            {
                CallState::Connecting
            }
            Signaling::Connecting | Signaling::Hello | Signaling::Joining | Signaling::Waiting => {
                CallState::Reconnecting {
                    attempt: self.backoff.attempt().max(1),
                }
            }
        }
    }

    /// Reports the call state when it changed; called at the end of every entry point.
    pub(super) fn settle(&mut self) {
        let now = self.call_state();
        if self.shown_call.as_ref() != Some(&now) {
            self.shown_call = Some(now.clone());
            self.out.push_back(Output::Event(Event::Call(now)));
        }
    }

    pub(super) fn signaling_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::SignalingOpened => self.signaling_opened(),
            Input::SignalingClosed => self.signaling_closed(now),
            Input::Server(msg) => self.server_message(now, msg),
            _ => {}
        }
    }

    /// The reconnect and rejoin timers.
    pub(super) fn call_timers(&mut self, now: Instant) {
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.state = Signaling::Connecting;
            tracing::info!(
                attempt = self.backoff.attempt(),
                "reconnecting to the server"
            );
            self.out.push_back(Output::Connect);
        }
        if self.rejoin_at.is_some_and(|t| t <= now) {
            self.rejoin_at = None;
            if self.state == Signaling::Joining {
                self.send_join();
            }
        }
    }

    fn signaling_opened(&mut self) {
        if !matches!(self.state, Signaling::Connecting | Signaling::Waiting) {
            tracing::debug!(state = ?self.state, "a connection opened that was not asked for");
            return;
        }
        self.reconnect_at = None;
        self.state = Signaling::Hello;
        self.out.push_back(Output::Send(ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            name: self.config.name.clone(),
            role: self.config.role,
            resume: self.resume_token.clone(),
            device: self.config.device_token.clone().map(|token| DeviceHello {
                token,
                control: false,
            }),
        }));
    }

    fn signaling_closed(&mut self, now: Instant) {
        if matches!(
            self.state,
            Signaling::Waiting | Signaling::Refused | Signaling::Left
        ) {
            return;
        }
        let delay = self.backoff.next_delay();
        let attempt = self.backoff.attempt();
        tracing::info!(?delay, attempt, "signaling connection lost");
        self.state = Signaling::Waiting;
        self.rejoin_at = None;
        self.reconnect_at = Some(now + delay);
        self.out.push_back(Output::Event(Event::Disconnected {
            retry_in: delay,
            attempt,
        }));
    }

    /// Ends the call for good (`Refused` or `Left`): no timers, no peers, no connection.
    fn stop_calling(&mut self, state: Signaling) {
        self.state = state;
        self.reconnect_at = None;
        self.rejoin_at = None;
        self.unconfirmed.clear();
        // The room's shared things end with the call; the next room says its own.
        self.set_watch(None, false);
        self.stage.set_editor_presenter(None);
        self.stage.pin(None);
        let gone = self.room.as_mut().map(Room::clear).unwrap_or_default();
        self.apply_changes(gone);
        self.room = None;
        self.out.push_back(Output::Disconnect);
    }

    pub(super) fn refuse(&mut self, code: ErrorCode, message: String) {
        tracing::warn!(%code, message, room = %self.config.room, "the server refused us for good");
        self.failure = Some((code, message.clone()));
        self.stop_calling(Signaling::Refused);
        self.out.push_back(Output::Event(Event::JoinFailed {
            code,
            message,
            retrying: false,
        }));
    }

    fn retry_join(&mut self, now: Instant, code: ErrorCode, message: String) {
        let delay = self.backoff.next_delay();
        tracing::info!(%code, ?delay, attempt = self.backoff.attempt(), "join refused for now; trying again");
        self.rejoin_at = Some(now + delay);
        self.out.push_back(Output::Event(Event::JoinFailed {
            code,
            message,
            retrying: true,
        }));
    }

    fn send_join(&mut self) {
        self.out.push_back(Output::Send(ClientMessage::Join {
            room: self.config.room.clone(),
            password: self.config.password.clone(),
        }));
    }

    fn server_message(&mut self, now: Instant, msg: ServerMessage) {
        match msg {
            ServerMessage::Welcome {
                peer_id,
                resume_token,
                resumed,
                ice_servers,
                ..
            } => {
                self.ice_servers = ice_servers;
                if !resumed && self.me.is_some_and(|old| old != peer_id) {
                    tracing::info!(old = ?self.me, new = %peer_id, "new peer id: restarting every peer connection");
                    let gone = self.room.as_mut().map(Room::clear).unwrap_or_default();
                    self.apply_changes(gone);
                    self.room = None;
                    self.unconfirmed.clear();
                }
                self.me = Some(peer_id);
                self.resume_token = Some(resume_token);
                self.state = Signaling::Joining;
                self.send_join();
            }
            ServerMessage::Joined {
                peer_id,
                peers,
                doc_token,
                protected,
                watch,
                ..
            } => {
                if self.config.password.is_some() && !protected {
                    // Someone made the room open before us: our camera would be in a room
                    // anyone can enter. (A current server refuses the join itself.)
                    self.out.push_back(Output::Send(ClientMessage::Leave));
                    self.refuse(
                        ErrorCode::PasswordMismatch,
                        "the room is open, but this kiosk has a password for it".to_owned(),
                    );
                    return;
                }
                self.doc_token = Some(doc_token);
                if self.room.as_ref().is_some_and(|r| r.me() != peer_id) {
                    let gone = self.room.as_mut().map(Room::clear).unwrap_or_default();
                    self.apply_changes(gone);
                    self.room = None;
                }
                self.me = Some(peer_id);
                let room = self
                    .room
                    .get_or_insert_with(|| Room::new(peer_id, self.config.role));
                // Known peers with a live connection that the server does not list may be
                // reconnecting themselves: keep them for the resume grace.
                let live: HashSet<PeerId> = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.connection != ConnectionState::Closed)
                    .map(|(id, _)| *id)
                    .collect();
                let changes = room.joined_keeping(&peers, |id| live.contains(&id));
                let listed: HashSet<PeerId> = peers.iter().map(|p| p.id).collect();
                for p in room.peers() {
                    if listed.contains(&p.id) {
                        self.unconfirmed.remove(&p.id);
                    } else {
                        self.unconfirmed
                            .entry(p.id)
                            .or_insert(now + self.config.resume_grace);
                    }
                }
                self.state = Signaling::Joined;
                self.was_joined = true;
                self.backoff.reset();
                tracing::info!(me = %peer_id, room = %self.config.room, peers = peers.len(), "joined");
                self.out
                    .push_back(Output::Event(Event::Joined { me: peer_id }));
                self.set_watch(watch, true);
                self.apply_changes(changes);
            }
            ServerMessage::PeerJoined { peer } => {
                // The same peer back under its id (it resumed): its connection goes on, as
                // the browser client keeps its own.
                let keep = self
                    .sessions
                    .get(&peer.id)
                    .is_some_and(|s| s.connection != ConnectionState::Closed);
                self.unconfirmed.remove(&peer.id);
                if let Some(room) = self.room.as_mut() {
                    let changes = room.peer_joined_keeping(&peer, keep);
                    self.apply_changes(changes);
                }
            }
            ServerMessage::PeerLeft { peer_id } => {
                self.unconfirmed.remove(&peer_id);
                if let Some(change) = self.room.as_mut().and_then(|r| r.peer_left(peer_id)) {
                    self.apply_changes(vec![change]);
                }
            }
            ServerMessage::Left { .. } => {
                self.unconfirmed.clear();
                self.set_watch(None, false);
                let gone = self.room.as_mut().map(Room::clear).unwrap_or_default();
                self.apply_changes(gone);
            }
            ServerMessage::Signal { from, data } => self.remote_signal(from, data),
            ServerMessage::Error { code, message } => self.server_error(now, code, message),
            // TURN credentials, sent with a join only; peers made from here on use them.
            ServerMessage::IceServers { ice_servers } => self.ice_servers = ice_servers,
            ServerMessage::Watch {
                state, server_time, ..
            } => {
                self.set_watch(Some(WatchSnapshot { state, server_time }), false);
                self.update_stage();
            }
            // The server's clock is the transport's to measure (`portal_net::signaling`).
            ServerMessage::Pong { .. }
            | ServerMessage::Rooms { .. }
            // Pairing goes to the control connection ([`crate::remote`]), never to a call.
            | ServerMessage::PairingCode { .. }
            | ServerMessage::Paired { .. }
            | ServerMessage::PairAccepted { .. }
            | ServerMessage::Unpaired { .. }
            | ServerMessage::Command { .. }
            | ServerMessage::CommandResult { .. }
            | ServerMessage::KioskState { .. } => {}
        }
    }

    fn server_error(&mut self, now: Instant, code: ErrorCode, message: String) {
        tracing::warn!(%code, message, state = ?self.state, "server error");
        match (self.state, code) {
            (_, ErrorCode::UnsupportedProtocol)
            | (
                Signaling::Hello | Signaling::Joining,
                ErrorCode::InvalidName
                | ErrorCode::InvalidRoomName
                | ErrorCode::WrongPassword
                | ErrorCode::PasswordMismatch,
            ) => self.refuse(code, message),
            (Signaling::Joining, ErrorCode::RoomFull) => {
                if self.config.wait_for_seat || self.was_joined {
                    self.retry_join(now, code, message);
                } else {
                    self.refuse(code, message);
                }
            }
            (Signaling::Joining, ErrorCode::RateLimited | ErrorCode::TooManyRooms) => {
                self.retry_join(now, code, message);
            }
            _ => {}
        }
    }
}

/// Whether `config` can ever be joined as it is: a check before connecting, so a name the
/// server would refuse fails at once with the same code.
pub(super) fn precheck(config: &EngineConfig) -> Option<(ErrorCode, String)> {
    if let Err(e) = portal_proto::validate_display_name(&config.name) {
        return Some((ErrorCode::InvalidName, e.to_string()));
    }
    if let Err(e) = portal_proto::validate_room_name(&config.room) {
        return Some((ErrorCode::InvalidRoomName, e.to_string()));
    }
    None
}

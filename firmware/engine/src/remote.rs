//! The kiosk's remote control: its control connection to the rooms server, the pairing
//! code it shows, the laptops paired with it, and what their commands mean.
//!
//! Sans-IO like [`crate::Engine`]: the kiosk opens the connection when told
//! ([`RemoteOutput::Connect`]), feeds [`RemoteInput`]s with the time, carries out
//! [`RemoteOutput`]s, and reports its own state ([`Remote::set_state`]) so the laptops see
//! it and pending commands can be answered.
//!
//! Decisions made here, not in the kiosk binary:
//! - only a paired laptop is obeyed (the server relays only theirs; a command from anyone
//!   else is answered `notPaired` anyway);
//! - a command's values are checked ([`RemoteCommand::validate`]) before anything runs;
//! - `present` at home joins the kiosk's own room first and answers with the room once
//!   joined; in a call it answers at once; the presenting laptop's screen share takes the
//!   stage ([`RemoteEvent::Presenter`]) until it stops, unpairs or leaves;
//! - `joinRoom` is answered once the kiosk is in that room, or with the reason it is not;
//!   `leave`, mute, camera and volume need a call (`notInCall`) except volume;
//! - a command not answered in [`COMMAND_TIMEOUT`] is answered `timeout`;
//! - a device token the server refuses, or a newer control connection of the same kiosk,
//!   is final: no reconnect ([`RemoteEvent::Refused`]); a dropped connection is retried
//!   with backoff.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use portal_proto::pairing::{
    CommandError, CommandErrorCode, DeviceHello, KioskState, RemoteCommand, UnpairReason,
};
use portal_proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, Role, ServerMessage};

use crate::backoff::{Backoff, BackoffConfig};

/// How long the kiosk may take to carry out a command before the laptop hears `timeout`.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Who the kiosk is.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// The kiosk's name (the server uses the enrolled one).
    pub name: String,
    /// The device token from `portal-server kiosk add`.
    pub token: String,
    /// The room `present` joins when the kiosk is at home.
    pub own_room: String,
    pub backoff: BackoffConfig,
    pub seed: u64,
}

/// What happened on the control connection.
#[derive(Clone, Debug)]
pub enum RemoteInput {
    Opened,
    /// The connection ended (or could not open).
    Closed,
    /// A message from the server, with the wall clock (ms since the epoch) at its arrival.
    Server {
        msg: ServerMessage,
        wall_ms: f64,
    },
}

/// What the kiosk must do.
#[derive(Clone, Debug, PartialEq)]
pub enum RemoteOutput {
    Connect,
    Disconnect,
    Send(ClientMessage),
    Event(RemoteEvent),
}

/// The code to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairingCode {
    pub code: String,
    pub url: String,
    /// When it stops working, on the kiosk's clock.
    pub expires: Instant,
}

/// A laptop paired with the kiosk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Laptop {
    pub peer: PeerId,
    pub name: String,
}

/// What a paired laptop asked, for the kiosk to carry out.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Join this room (leaving the current call first).
    JoinRoom {
        room: String,
        password: Option<String>,
    },
    Leave,
    SetMicMuted(bool),
    SetCameraOff(bool),
    /// 0 to 1.
    SetVolume(f32),
}

/// What changed.
#[derive(Clone, Debug, PartialEq)]
pub enum RemoteEvent {
    /// The code to show now, or none (offline).
    Code(Option<PairingCode>),
    /// The paired laptops now.
    Paired(Vec<Laptop>),
    /// Carry this out; the answer comes from the state the kiosk reports next
    /// ([`Remote::set_state`]) or [`Remote::join_failed`].
    Do(Action),
    /// The laptop whose screen share belongs on the stage, or nobody.
    Presenter(Option<PeerId>),
    /// The server refused this kiosk for good; the control connection stays closed.
    Refused { code: ErrorCode, message: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Connecting,
    Hello,
    Up,
    Waiting,
    Refused,
}

/// A command waiting for the kiosk's state to answer it.
#[derive(Clone, Debug)]
struct Pending {
    laptop: PeerId,
    id: u32,
    /// Answered once the kiosk is in this room (`None`: once it is out of any).
    room: Option<String>,
    /// Makes `laptop` the presenter once answered.
    present: bool,
    deadline: Instant,
}

/// The remote control's state.
#[derive(Debug)]
pub struct Remote {
    config: RemoteConfig,
    link: Link,
    backoff: Backoff,
    reconnect_at: Option<Instant>,
    /// Server clock minus the kiosk's wall clock, ms.
    offset_ms: f64,
    code: Option<PairingCode>,
    laptops: BTreeMap<PeerId, String>,
    presenter: Option<PeerId>,
    state: KioskState,
    /// The state last sent to the server.
    sent: Option<KioskState>,
    pending: Vec<Pending>,
    out: std::collections::VecDeque<RemoteOutput>,
}

impl Remote {
    /// A remote control that connects at once.
    pub fn new(config: RemoteConfig) -> Remote {
        let backoff = Backoff::new(config.backoff, config.seed);
        let mut out = std::collections::VecDeque::new();
        out.push_back(RemoteOutput::Connect);
        Remote {
            config,
            link: Link::Connecting,
            backoff,
            reconnect_at: None,
            offset_ms: 0.0,
            code: None,
            laptops: BTreeMap::new(),
            presenter: None,
            state: KioskState {
                volume: 0.8,
                ..KioskState::default()
            },
            sent: None,
            pending: Vec::new(),
            out,
        }
    }

    pub fn poll_output(&mut self) -> Option<RemoteOutput> {
        self.out.pop_front()
    }

    /// When [`Remote::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.iter().map(|p| p.deadline).min();
        match (self.reconnect_at, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.reconnect_at.is_some_and(|at| at <= now) {
            self.reconnect_at = None;
            self.link = Link::Connecting;
            self.out.push_back(RemoteOutput::Connect);
        }
        let (late, keep): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|p| p.deadline <= now);
        self.pending = keep;
        for p in late {
            self.answer_err(
                p.laptop,
                p.id,
                CommandErrorCode::Timeout,
                "the room display did not finish in time",
            );
        }
    }

    /// The code on show, if any.
    pub fn code(&self) -> Option<&PairingCode> {
        self.code.as_ref()
    }

    /// The paired laptops.
    pub fn laptops(&self) -> Vec<Laptop> {
        self.laptops
            .iter()
            .map(|(peer, name)| Laptop {
                peer: *peer,
                name: name.clone(),
            })
            .collect()
    }

    /// The presenting laptop.
    pub fn presenter(&self) -> Option<PeerId> {
        self.presenter
    }

    /// Whether the control connection is up.
    pub fn is_online(&self) -> bool {
        self.link == Link::Up
    }

    pub fn handle(&mut self, now: Instant, input: RemoteInput) {
        match input {
            RemoteInput::Opened => {
                if self.link != Link::Connecting {
                    return;
                }
                self.link = Link::Hello;
                self.out.push_back(RemoteOutput::Send(ClientMessage::Hello {
                    protocol: PROTOCOL_VERSION,
                    name: self.config.name.clone(),
                    role: Role::Kiosk,
                    resume: None,
                    device: Some(DeviceHello {
                        token: self.config.token.clone(),
                        control: true,
                    }),
                }));
            }
            RemoteInput::Closed => self.closed(now),
            RemoteInput::Server { msg, wall_ms } => self.server(now, wall_ms, msg),
        }
    }

    /// The user tapped "Unpair" on the kiosk.
    pub fn unpair(&mut self, laptop: PeerId) {
        if self.laptops.remove(&laptop).is_some() {
            if self.link == Link::Up {
                self.out
                    .push_back(RemoteOutput::Send(ClientMessage::Unpair {
                        peer: Some(laptop),
                    }));
            }
            self.laptop_gone(laptop);
        }
    }

    /// The kiosk's state changed: tell the laptops, answer what it settles.
    pub fn set_state(&mut self, state: KioskState) {
        self.state = KioskState {
            presenting: self.presenter,
            ..state
        };
        let (done, keep): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|p| match &p.room {
            Some(room) => self.state.in_call && self.state.room.as_deref() == Some(room),
            None => self.state.room.is_none(),
        });
        self.pending = keep;
        for p in done {
            if p.present && self.laptops.contains_key(&p.laptop) {
                self.set_presenter(Some(p.laptop));
            }
            let room = self.state.room.clone();
            self.answer(p.laptop, p.id, room, None);
        }
        self.send_state();
    }

    /// The kiosk could not join `room` (for good): the commands waiting for it fail.
    pub fn join_failed(&mut self, room: &str, message: &str) {
        let (failed, keep): (Vec<_>, Vec<_>) = self
            .pending
            .drain(..)
            .partition(|p| p.room.as_deref() == Some(room));
        self.pending = keep;
        for p in failed {
            self.answer_err(p.laptop, p.id, CommandErrorCode::JoinFailed, message);
        }
    }

    /// The presenting laptop's share ended or it left the call.
    pub fn presenter_left_call(&mut self, peer: PeerId) {
        if self.presenter == Some(peer) {
            self.set_presenter(None);
        }
    }

    fn closed(&mut self, now: Instant) {
        if matches!(self.link, Link::Refused | Link::Waiting) {
            return;
        }
        if self.link == Link::Up {
            tracing::info!("remote control: connection lost");
        }
        self.link = Link::Waiting;
        self.reconnect_at = Some(now + self.backoff.next_delay());
        self.went_offline();
    }

    fn went_offline(&mut self) {
        if self.code.take().is_some() {
            self.out
                .push_back(RemoteOutput::Event(RemoteEvent::Code(None)));
        }
        // The server ends every pairing when the control connection goes.
        if !self.laptops.is_empty() {
            self.laptops.clear();
            self.out
                .push_back(RemoteOutput::Event(RemoteEvent::Paired(Vec::new())));
        }
        self.set_presenter(None);
        self.pending.clear();
        self.sent = None;
    }

    fn server(&mut self, now: Instant, wall_ms: f64, msg: ServerMessage) {
        match msg {
            ServerMessage::Welcome { server_time, .. } => {
                self.offset_ms = server_time - wall_ms;
                self.link = Link::Up;
                self.backoff.reset();
                tracing::info!("remote control: connected");
                self.send_state();
            }
            ServerMessage::PairingCode {
                code,
                url,
                expires_at,
            } => {
                let left_ms = (expires_at - (wall_ms + self.offset_ms)).clamp(0.0, 86_400_000.0);
                let code = PairingCode {
                    code,
                    url,
                    expires: now + Duration::from_millis(left_ms as u64),
                };
                self.code = Some(code.clone());
                self.out
                    .push_back(RemoteOutput::Event(RemoteEvent::Code(Some(code))));
            }
            ServerMessage::Paired { peer, name } => {
                tracing::info!(%peer, name, "remote control: a laptop paired");
                self.laptops.insert(peer, name);
                self.out
                    .push_back(RemoteOutput::Event(RemoteEvent::Paired(self.laptops())));
            }
            ServerMessage::Unpaired { peer, reason } => {
                tracing::info!(%peer, ?reason, "remote control: a pairing ended");
                if self.laptops.remove(&peer).is_some() {
                    self.laptop_gone(peer);
                }
                if reason == UnpairReason::Removed {
                    self.refused(ErrorCode::InvalidDeviceToken, "this kiosk was removed");
                }
            }
            ServerMessage::Command { from, id, command } => self.command(now, from, id, command),
            ServerMessage::Error { code, message } => {
                if matches!(code, ErrorCode::InvalidDeviceToken | ErrorCode::Replaced) {
                    self.refused(code, &message);
                } else {
                    tracing::warn!(%code, message, "remote control: the server refused a message");
                }
            }
            _ => {}
        }
    }

    fn refused(&mut self, code: ErrorCode, message: &str) {
        tracing::error!(%code, message, "remote control: refused by the rooms server for good");
        self.link = Link::Refused;
        self.reconnect_at = None;
        self.out.push_back(RemoteOutput::Disconnect);
        self.went_offline();
        self.out
            .push_back(RemoteOutput::Event(RemoteEvent::Refused {
                code,
                message: message.to_owned(),
            }));
    }

    fn laptop_gone(&mut self, peer: PeerId) {
        self.pending.retain(|p| p.laptop != peer);
        if self.presenter == Some(peer) {
            self.set_presenter(None);
        }
        self.out
            .push_back(RemoteOutput::Event(RemoteEvent::Paired(self.laptops())));
    }

    fn set_presenter(&mut self, peer: Option<PeerId>) {
        if self.presenter != peer {
            self.presenter = peer;
            self.state.presenting = peer;
            self.out
                .push_back(RemoteOutput::Event(RemoteEvent::Presenter(peer)));
            self.send_state();
        }
    }

    fn send_state(&mut self) {
        if self.link == Link::Up && self.sent.as_ref() != Some(&self.state) {
            self.sent = Some(self.state.clone());
            self.out
                .push_back(RemoteOutput::Send(ClientMessage::KioskState {
                    state: self.state.clone(),
                }));
        }
    }

    fn command(&mut self, now: Instant, from: PeerId, id: u32, command: RemoteCommand) {
        if !self.laptops.contains_key(&from) {
            tracing::warn!(%from, "remote control: a command from a laptop that is not paired");
            return self.answer_err(
                from,
                id,
                CommandErrorCode::NotPaired,
                "this laptop is not paired with the room display",
            );
        }
        if let Err(e) = command.validate() {
            return self.answer_err(from, id, CommandErrorCode::BadRequest, &e.to_string());
        }
        tracing::info!(%from, id, ?command, "remote control: command");
        let in_call = self.state.room.is_some();
        let wait = |room: Option<String>, present: bool| Pending {
            laptop: from,
            id,
            room,
            present,
            deadline: now + COMMAND_TIMEOUT,
        };
        match command {
            RemoteCommand::Present => {
                if self.state.in_call {
                    self.set_presenter(Some(from));
                    let room = self.state.room.clone();
                    self.answer(from, id, room, None);
                } else {
                    let room = self
                        .state
                        .room
                        .clone()
                        .unwrap_or_else(|| self.config.own_room.clone());
                    if !in_call {
                        self.act(Action::JoinRoom {
                            room: room.clone(),
                            password: None,
                        });
                    }
                    self.pending.push(wait(Some(room), true));
                }
            }
            RemoteCommand::StopPresenting => {
                if self.presenter == Some(from) {
                    self.set_presenter(None);
                }
                self.answer(from, id, None, None);
            }
            RemoteCommand::JoinRoom { room, password } => {
                if self.state.in_call && self.state.room.as_deref() == Some(room.as_str()) {
                    return self.answer(from, id, Some(room), None);
                }
                self.act(Action::JoinRoom {
                    room: room.clone(),
                    password,
                });
                self.pending.push(wait(Some(room), false));
            }
            RemoteCommand::Leave => {
                if !in_call {
                    return self.not_in_call(from, id);
                }
                self.act(Action::Leave);
                self.pending.push(wait(None, false));
            }
            RemoteCommand::SetMicMuted { muted } => {
                if !in_call {
                    return self.not_in_call(from, id);
                }
                self.act(Action::SetMicMuted(muted));
                self.answer(from, id, None, None);
            }
            RemoteCommand::SetCameraOff { off } => {
                if !in_call {
                    return self.not_in_call(from, id);
                }
                self.act(Action::SetCameraOff(off));
                self.answer(from, id, None, None);
            }
            RemoteCommand::SetVolume { volume } => {
                self.act(Action::SetVolume(volume as f32));
                self.answer(from, id, None, None);
            }
        }
    }

    fn act(&mut self, action: Action) {
        self.out
            .push_back(RemoteOutput::Event(RemoteEvent::Do(action)));
    }

    fn not_in_call(&mut self, laptop: PeerId, id: u32) {
        self.answer_err(
            laptop,
            id,
            CommandErrorCode::NotInCall,
            "the room display is not in a call",
        );
    }

    fn answer_err(&mut self, laptop: PeerId, id: u32, code: CommandErrorCode, message: &str) {
        let error = CommandError {
            code,
            message: message.to_owned(),
        };
        self.answer(laptop, id, None, Some(error));
    }

    fn answer(&mut self, to: PeerId, id: u32, room: Option<String>, error: Option<CommandError>) {
        if self.link == Link::Up {
            self.out
                .push_back(RemoteOutput::Send(ClientMessage::CommandResult {
                    to,
                    id,
                    room,
                    error,
                }));
        }
    }
}

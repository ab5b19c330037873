//! The hub: room membership and message routing, with no sockets, no clock and no
//! threads. The server feeds it `(peer, now, message)` and carries out the [`Action`]s it
//! returns; the tests drive it with plain function calls.
//!
//! Passwords are checked outside (argon2 is slow and must not hold the hub): the server
//! asks [`Hub::room_access`], verifies or hashes through its limiter
//! ([`crate::guard`]), and hands the outcome to [`Hub::join`] as a [`Credential`]. The
//! hub compares hashes as opaque strings.
//!
//! A room's protection is decided when it is created and never changes: a `join` that
//! brings a password to an open room is refused with `passwordMismatch` (it neither
//! protects the room nor enters it believing it protected), and `joined` says
//! `protected`.
//!
//! How long rooms are kept: an open room goes `open_linger_ms` (an hour) after nobody is
//! in it any more (a peer inside its resume grace still counts as in it), watch state and
//! document with it, so people who step out find their room, and joining and leaving
//! cannot fill `max_rooms`; rooms loaded from the store at start get the same time for
//! their peers to come back. A protected room keeps its password for `room_ttl_ms` after
//! it was last used, so that nobody can take its name over while its owners are away;
//! those rooms count against `max_rooms`, and how fast an address can create them is
//! limited outside (see [`crate::guard`]).

use std::collections::HashMap;

use portal_proto::names::clean_display_name;
use portal_proto::{
    ClientMessage, ErrorCode, IceServer, PROTOCOL_VERSION, PeerId, Role, ServerMessage,
    WatchSnapshot, WatchState, validate_room_name,
};

use crate::ice::IceConfig;
use crate::token::DocTokens;

/// Server time in milliseconds since the Unix epoch.
pub type Millis = f64;

#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Peers a room holds at most (the mesh limit).
    pub max_peers_per_room: usize,
    /// Rooms the server keeps at most (active or remembered).
    pub max_rooms: usize,
    /// Protected rooms unused for this long are forgotten, password and all (open rooms
    /// go [`HubConfig::open_linger_ms`] after they empty).
    pub room_ttl_ms: Millis,
    /// How long an open room that emptied is kept, watch state and document with it, so
    /// the people who step out and back find their room as they left it (0: it goes at
    /// once; rooms loaded at start wait at least this long for their peers). Bounded, so
    /// joining and leaving cannot fill `max_rooms`: an address creates at most
    /// `room_create_rate` rooms a minute, each gone this long after it empties.
    pub open_linger_ms: Millis,
    /// How long a peer whose connection dropped (without a close) stays in its room,
    /// so it can come back with `hello.resume` and nobody's calls are torn down.
    pub resume_grace_ms: Millis,
    pub ice: IceConfig,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_peers_per_room: 8,
            max_rooms: 100_000,
            room_ttl_ms: 30.0 * 24.0 * 3600.0 * 1000.0,
            open_linger_ms: 3600.0 * 1000.0,
            resume_grace_ms: 20_000.0,
            ice: IceConfig::default(),
        }
    }
}

/// What the server must do after a hub call, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send `msg` to every peer in `to` (serialize once).
    Send { to: Vec<PeerId>, msg: ServerMessage },
    /// Send `code` to the peer, then close its connection.
    Close { peer: PeerId, code: ErrorCode },
    /// Persist a change.
    Store(StoreOp),
    /// The connection known as `from` resumed the peer `to`: route `to`'s messages to it.
    Rekey { from: PeerId, to: PeerId },
}

/// Changes the store must make so that a restart changes nothing for users.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreOp {
    CreateRoom {
        room: String,
        password_hash: Option<String>,
        now: Millis,
    },
    TouchRoom {
        room: String,
        now: Millis,
    },
    SaveWatch {
        room: String,
        snapshot: WatchSnapshot,
    },
    DeleteRoom {
        room: String,
    },
}

/// A room as the store remembers it, loaded at start.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRoom {
    pub name: String,
    pub password_hash: Option<String>,
    pub last_active: Millis,
    pub watch: Option<WatchSnapshot>,
}

/// How a room may be entered, for the password check done outside the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomAccess {
    /// The room does not exist yet: a join creates it.
    New,
    Open,
    /// The room is protected by this argon2 PHC hash.
    Protected(String),
}

/// The outcome of the password check done outside the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// No password was given.
    None,
    /// The password matched this hash.
    Verified(String),
    /// The password did not match, or was given for a room that turned out protected by
    /// another hash.
    Rejected,
    /// The room is new and this is the hash of the password that will protect it.
    NewHash(String),
    /// A password was given but not checked: the room was open.
    Unchecked,
}

#[derive(Debug)]
struct Peer {
    name: String,
    role: Role,
    hello: bool,
    room: Option<String>,
    /// Set while the connection is gone but the peer may still resume.
    away_since: Option<Millis>,
}

#[derive(Debug)]
struct Room {
    /// Members in join order.
    members: Vec<PeerId>,
    password_hash: Option<String>,
    last_active: Millis,
    watch: Option<WatchSnapshot>,
    /// For an open room loaded at start that nobody is in yet: since when the hub has
    /// seen it empty. It goes after the resume grace.
    vacant_since: Option<Millis>,
}

/// The fields of a `hello`, borrowed.
#[derive(Clone, Copy, Debug)]
struct Hello<'a> {
    protocol: u32,
    name: &'a str,
    role: Role,
    resume: Option<&'a str>,
}

/// Room state and routing. See the module docs.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    tokens: DocTokens,
    peers: HashMap<PeerId, Peer>,
    rooms: HashMap<String, Room>,
    /// Open rooms nobody is in (loaded at start, or emptied since), gone after
    /// [`HubConfig::open_linger_ms`] unless someone comes back (see [`Hub::expire_away`]).
    loaded_open: Vec<String>,
}

impl Hub {
    pub fn new(config: HubConfig, tokens: DocTokens, stored: Vec<StoredRoom>) -> Self {
        let loaded_open = stored
            .iter()
            .filter(|r| r.password_hash.is_none())
            .map(|r| r.name.clone())
            .collect();
        let rooms = stored
            .into_iter()
            .map(|r| {
                (
                    r.name,
                    Room {
                        members: Vec::new(),
                        password_hash: r.password_hash,
                        last_active: r.last_active,
                        watch: r.watch,
                        vacant_since: None,
                    },
                )
            })
            .collect();
        Self {
            config,
            tokens,
            peers: HashMap::new(),
            rooms,
            loaded_open,
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Rooms with at least one member.
    pub fn active_rooms(&self) -> usize {
        self.rooms
            .values()
            .filter(|r| !r.members.is_empty())
            .count()
    }

    /// Rooms remembered, with or without members.
    pub fn known_rooms(&self) -> usize {
        self.rooms.len()
    }

    pub fn room_members(&self, room: &str) -> &[PeerId] {
        self.rooms.get(room).map_or(&[], |r| r.members.as_slice())
    }

    /// Whether `peer` has said a valid `hello`.
    pub fn has_hello(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.hello)
    }

    /// The display name `peer` said hello with.
    pub fn peer_name(&self, peer: PeerId) -> Option<&str> {
        self.peers.get(&peer).map(|p| p.name.as_str())
    }

    pub fn room_of(&self, peer: PeerId) -> Option<&str> {
        self.peers.get(&peer).and_then(|p| p.room.as_deref())
    }

    /// A new connection. Its peer id is chosen by the server and unique for the process.
    pub fn connect(&mut self, peer: PeerId) {
        self.peers.insert(
            peer,
            Peer {
                name: String::new(),
                role: Role::Browser,
                hello: false,
                room: None,
                away_since: None,
            },
        );
    }

    /// The connection is gone. `clean` means the client closed it on purpose (a close
    /// frame): the peer leaves at once. Otherwise a peer in a room stays there, away,
    /// for the resume grace period (see [`Hub::expire_away`]).
    pub fn disconnect(&mut self, peer: PeerId, now: Millis, clean: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(state) = self.peers.get_mut(&peer)
            && !clean
            && state.room.is_some()
            && self.config.resume_grace_ms > 0.0
        {
            state.away_since = Some(now);
            return out;
        }
        self.leave_room(peer, now, &mut out);
        self.peers.remove(&peer);
        out
    }

    /// Peers away for longer than the grace period leave their rooms for good; open rooms
    /// loaded at start that nobody came back to within the grace go. Call every second
    /// or so.
    pub fn expire_away(&mut self, now: Millis) -> Vec<Action> {
        let grace = self.config.resume_grace_ms;
        let linger = self.config.open_linger_ms;
        let gone: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.away_since.is_some_and(|t| now - t >= grace))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for peer in gone {
            self.leave_room(peer, now, &mut out);
            self.peers.remove(&peer);
        }
        let rooms = &mut self.rooms;
        self.loaded_open.retain(|name| {
            // Gone, or made again (and protected) since.
            let Some(room) = rooms.get_mut(name).filter(|r| r.password_hash.is_none()) else {
                return false;
            };
            if !room.members.is_empty() {
                // Someone came back: from now on the room goes when it empties.
                room.vacant_since = None;
                return false;
            }
            let since = *room.vacant_since.get_or_insert(now);
            if now - since < linger {
                return true;
            }
            rooms.remove(name);
            out.push(Action::Store(StoreOp::DeleteRoom { room: name.clone() }));
            false
        });
        out
    }

    /// Whether `peer` is away (connection dropped, may resume).
    pub fn is_away(&self, peer: PeerId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.away_since.is_some())
    }

    /// How `room` may be entered; `Err` when the name is invalid.
    pub fn room_access(&self, room: &str) -> Result<RoomAccess, ErrorCode> {
        validate_room_name(room).map_err(|e| e.code())?;
        Ok(match self.rooms.get(room) {
            None => RoomAccess::New,
            Some(Room {
                password_hash: None,
                ..
            }) => RoomAccess::Open,
            Some(Room {
                password_hash: Some(h),
                ..
            }) => RoomAccess::Protected(h.clone()),
        })
    }

    /// Handles every message but `join`, whose password check happens outside; a `join`
    /// passed here is treated as one without a password.
    pub fn handle(&mut self, peer: PeerId, now: Millis, msg: ClientMessage) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(state) = self.peers.get(&peer) else {
            return out;
        };
        match msg {
            // A device token was checked by the server before (see `crate::pairing`).
            ClientMessage::Hello {
                protocol,
                name,
                role,
                resume,
                device: _,
            } => {
                let hello = Hello {
                    protocol,
                    name: &name,
                    role,
                    resume: resume.as_deref(),
                };
                self.hello(peer, now, &hello, &mut out);
            }
            _ if !state.hello => {
                error(&mut out, peer, ErrorCode::HelloRequired, "send hello first");
            }
            ClientMessage::Join { room, .. } => {
                self.join_inner(peer, now, room, &Credential::None, &mut out);
            }
            ClientMessage::Leave => {
                if state.room.is_none() {
                    error(&mut out, peer, ErrorCode::NotInRoom, "not in a room");
                } else if let Some(room) = self.leave_room(peer, now, &mut out) {
                    out.push(Action::Send {
                        to: vec![peer],
                        msg: ServerMessage::Left { room },
                    });
                }
            }
            ClientMessage::Signal { to, data } => {
                let Some(room) = state.room.as_deref() else {
                    error(&mut out, peer, ErrorCode::NotInRoom, "join a room first");
                    return out;
                };
                let same_room = to != peer
                    && self
                        .peers
                        .get(&to)
                        .is_some_and(|p| p.room.as_deref() == Some(room));
                if same_room {
                    out.push(Action::Send {
                        to: vec![to],
                        msg: ServerMessage::Signal { from: peer, data },
                    });
                } else {
                    error(
                        &mut out,
                        peer,
                        ErrorCode::UnknownPeer,
                        format!("no peer {to} in this room"),
                    );
                }
            }
            ClientMessage::Watch { state: watch } => {
                self.watch(peer, now, watch, &mut out);
            }
            ClientMessage::Ping { id, client_time } => out.push(Action::Send {
                to: vec![peer],
                msg: ServerMessage::Pong {
                    id,
                    client_time,
                    server_time: now,
                },
            }),
            ClientMessage::Rooms { rooms } => self.occupancy(peer, rooms, &mut out),
            ClientMessage::Pair { .. }
            | ClientMessage::Unpair { .. }
            | ClientMessage::Command { .. }
            | ClientMessage::CommandResult { .. }
            | ClientMessage::KioskState { .. } => error(
                &mut out,
                peer,
                ErrorCode::BadRequest,
                "pairing is not handled here",
            ),
        }
        out
    }

    /// `join` after the password check (see [`Credential`]).
    pub fn join(
        &mut self,
        peer: PeerId,
        now: Millis,
        room: String,
        credential: &Credential,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match self.peers.get(&peer) {
            None => {}
            Some(p) if !p.hello => {
                error(&mut out, peer, ErrorCode::HelloRequired, "send hello first");
            }
            Some(_) => self.join_inner(peer, now, room, credential, &mut out),
        }
        out
    }

    /// Forgets protected rooms nobody has used for the configured time (open rooms go
    /// when they empty). Call now and then.
    pub fn expire(&mut self, now: Millis) -> Vec<Action> {
        let ttl = self.config.room_ttl_ms;
        let mut out = Vec::new();
        self.rooms.retain(|name, room| {
            let keep = !room.members.is_empty() || now - room.last_active < ttl;
            if !keep {
                out.push(Action::Store(StoreOp::DeleteRoom { room: name.clone() }));
            }
            keep
        });
        out
    }

    fn hello(&mut self, peer: PeerId, now: Millis, hello: &Hello<'_>, out: &mut Vec<Action>) {
        let Hello {
            protocol,
            name,
            role,
            resume,
        } = *hello;
        if protocol != PROTOCOL_VERSION {
            out.push(Action::Send {
                to: vec![peer],
                msg: ServerMessage::error(
                    ErrorCode::UnsupportedProtocol,
                    format!("this server speaks protocol {PROTOCOL_VERSION}, not {protocol}"),
                ),
            });
            out.push(Action::Close {
                peer,
                code: ErrorCode::UnsupportedProtocol,
            });
            return;
        }
        let state = self.peers.get_mut(&peer).expect("checked by caller");
        if state.hello {
            error(out, peer, ErrorCode::AlreadyHello, "hello was already sent");
            return;
        }
        let name = match clean_display_name(name) {
            Ok(name) => name,
            Err(e) => {
                error(out, peer, e.code(), e.to_string());
                return;
            }
        };
        state.hello = true;
        state.name = name;
        state.role = role;
        let id = match resume.and_then(|t| self.tokens.verify_resume(t, now).ok()) {
            Some(old) if old != peer => self.resume(peer, old).unwrap_or(peer),
            _ => peer,
        };
        if id != peer {
            out.push(Action::Rekey { from: peer, to: id });
        }
        // STUN only: TURN credentials come with a join (see `relay_servers`).
        let ice_servers: Vec<IceServer> = self.config.ice.public_servers();
        out.push(Action::Send {
            to: vec![id],
            msg: ServerMessage::Welcome {
                protocol: PROTOCOL_VERSION,
                peer_id: id,
                server_time: now,
                ice_servers,
                resume_token: self.tokens.issue_resume(id, now),
                resumed: id != peer,
            },
        });
    }

    /// Gives the connection `conn` the identity of `old`, if `old` is away or unknown
    /// (its grace ran out, or the server restarted). A peer connected elsewhere keeps
    /// its id and `conn` stays what it is.
    fn resume(&mut self, conn: PeerId, old: PeerId) -> Option<PeerId> {
        let fresh = self.peers.remove(&conn)?;
        match self.peers.get_mut(&old) {
            Some(existing) if existing.away_since.is_some() => {
                existing.away_since = None;
                existing.name = fresh.name;
                existing.role = fresh.role;
                existing.hello = true;
            }
            Some(_) => {
                self.peers.insert(conn, fresh);
                return None;
            }
            None => {
                self.peers.insert(old, fresh);
            }
        }
        Some(old)
    }

    fn watch(&mut self, peer: PeerId, now: Millis, state: WatchState, out: &mut Vec<Action>) {
        let Some(name) = self.peers[&peer].room.clone() else {
            error(out, peer, ErrorCode::NotInRoom, "join a room first");
            return;
        };
        if let Err(e) = state.validate() {
            error(out, peer, e.code(), e.to_string());
            return;
        }
        let room = self.rooms.get_mut(&name).expect("a member's room exists");
        let snapshot = WatchSnapshot {
            state: state.clone(),
            server_time: now,
        };
        room.watch = Some(snapshot.clone());
        out.push(Action::Send {
            to: room.members.clone(),
            msg: ServerMessage::Watch {
                state,
                server_time: now,
                by: Some(peer),
            },
        });
        out.push(Action::Store(StoreOp::SaveWatch {
            room: name,
            snapshot,
        }));
    }
}

fn error(out: &mut Vec<Action>, peer: PeerId, code: ErrorCode, message: impl Into<String>) {
    out.push(Action::Send {
        to: vec![peer],
        msg: ServerMessage::error(code, message),
    });
}

mod membership;
#[cfg(test)]
mod tests;

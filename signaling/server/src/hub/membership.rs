//! Entering and leaving rooms: the checks a `join` passes (name, password, protection,
//! room size, room count), what the joiner and the others are told, and what a room left
//! empty becomes; and how many are in a room, as `rooms` answers it.

use std::collections::hash_map::Entry;

use portal_proto::{
    ErrorCode, MAX_ROOMS_QUERY, PeerId, PeerInfo, RoomOccupancy, ServerMessage, validate_room_name,
};

use super::{Action, Credential, Hub, Millis, Room, StoreOp, error};

impl Hub {
    pub(super) fn join_inner(
        &mut self,
        peer: PeerId,
        now: Millis,
        room_name: String,
        credential: &Credential,
        out: &mut Vec<Action>,
    ) {
        if let Err(e) = validate_room_name(&room_name) {
            error(out, peer, e.code(), e.to_string());
            return;
        }
        let state = &self.peers[&peer];
        if state.room.as_deref() == Some(room_name.as_str()) {
            // Back from a dropped connection: the others never saw us leave.
            self.admit(peer, room_name, now, out);
            return;
        }
        if let Some(current) = &state.room {
            error(
                out,
                peer,
                ErrorCode::AlreadyInRoom,
                format!("already in room {current}; leave first"),
            );
            return;
        }
        let info = PeerInfo {
            id: peer,
            name: state.name.clone(),
            role: state.role,
        };
        let room_count = self.rooms.len();
        let max_peers = self.config.max_peers_per_room;
        let room = match self.rooms.entry(room_name.clone()) {
            Entry::Occupied(entry) => {
                let room = entry.into_mut();
                if let Some(hash) = &room.password_hash {
                    let ok = matches!(credential, Credential::Verified(h) if h == hash);
                    if !ok {
                        let message = match credential {
                            Credential::None => "this room needs a password",
                            Credential::Rejected => "wrong password",
                            // Checked against what the room was a moment ago.
                            _ => "the room changed; retry",
                        };
                        error(out, peer, ErrorCode::WrongPassword, message);
                        return;
                    }
                } else if !matches!(credential, Credential::None) {
                    // Protection is decided at creation: a password cannot protect an
                    // open room afterwards, nor may the joiner believe it protected.
                    error(
                        out,
                        peer,
                        ErrorCode::PasswordMismatch,
                        format!(
                            "room {room_name} exists and is not password-protected; join it without a password or choose another name"
                        ),
                    );
                    return;
                }
                if room.members.len() >= max_peers {
                    error(
                        out,
                        peer,
                        ErrorCode::RoomFull,
                        format!("room {room_name} is full ({max_peers} peers)"),
                    );
                    return;
                }
                room
            }
            Entry::Vacant(entry) => {
                if matches!(
                    credential,
                    Credential::Rejected | Credential::Verified(_) | Credential::Unchecked
                ) {
                    // Checked against a room that has since been forgotten: ask again.
                    error(
                        out,
                        peer,
                        ErrorCode::WrongPassword,
                        "the room changed; retry",
                    );
                    return;
                }
                if room_count >= self.config.max_rooms {
                    error(
                        out,
                        peer,
                        ErrorCode::TooManyRooms,
                        "the server holds too many rooms",
                    );
                    return;
                }
                let password_hash = match credential {
                    Credential::NewHash(h) => Some(h.clone()),
                    _ => None,
                };
                out.push(Action::Store(StoreOp::CreateRoom {
                    room: room_name.clone(),
                    password_hash: password_hash.clone(),
                    now,
                }));
                entry.insert(Room {
                    members: Vec::new(),
                    password_hash,
                    last_active: now,
                    watch: None,
                    vacant_since: None,
                })
            }
        };
        if !room.members.is_empty() {
            out.push(Action::Send {
                to: room.members.clone(),
                msg: ServerMessage::PeerJoined { peer: info },
            });
        }
        room.members.push(peer);
        room.last_active = now;
        room.vacant_since = None;
        out.push(Action::Store(StoreOp::TouchRoom {
            room: room_name.clone(),
            now,
        }));
        self.peers.get_mut(&peer).expect("present").room = Some(room_name.clone());
        self.admit(peer, room_name, now, out);
    }

    /// Takes `peer` out of its room, telling the others. Returns the room it was in. An
    /// open room left empty goes (see the module docs).
    pub(super) fn leave_room(
        &mut self,
        peer: PeerId,
        now: Millis,
        out: &mut Vec<Action>,
    ) -> Option<String> {
        let name = self.peers.get_mut(&peer)?.room.take()?;
        let room = self.rooms.get_mut(&name)?;
        room.members.retain(|m| *m != peer);
        room.last_active = now;
        if !room.members.is_empty() {
            out.push(Action::Send {
                to: room.members.clone(),
                msg: ServerMessage::PeerLeft { peer_id: peer },
            });
        } else if room.password_hash.is_none() && self.config.open_linger_ms <= 0.0 {
            self.rooms.remove(&name);
            out.push(Action::Store(StoreOp::DeleteRoom { room: name.clone() }));
            return Some(name);
        } else if room.password_hash.is_none() {
            room.vacant_since = Some(now);
            if !self.loaded_open.contains(&name) {
                self.loaded_open.push(name.clone());
            }
        }
        out.push(Action::Store(StoreOp::TouchRoom {
            room: name.clone(),
            now,
        }));
        Some(name)
    }

    /// `peer` is (again) in `room_name`: its TURN credentials, then `joined` with the
    /// others in the room in join order, the watch state and a document token bound to
    /// the room's protection. The same for a first join and a resume.
    fn admit(&self, peer: PeerId, room_name: String, now: Millis, out: &mut Vec<Action>) {
        let peers = self
            .room_members(&room_name)
            .iter()
            .filter(|id| **id != peer)
            .map(|id| {
                let p = &self.peers[id];
                PeerInfo {
                    id: *id,
                    name: p.name.clone(),
                    role: p.role,
                }
            })
            .collect();
        let room = self.rooms.get(&room_name);
        let watch = room.and_then(|r| r.watch.clone());
        let protection = room.and_then(|r| r.password_hash.as_deref());
        let doc_token = self.tokens.issue_doc(&room_name, protection, peer, now);
        self.relay_servers(peer, now, out);
        out.push(Action::Send {
            to: vec![peer],
            msg: ServerMessage::Joined {
                room: room_name,
                peer_id: peer,
                peers,
                watch,
                protected: protection.is_some(),
                doc_token,
            },
        });
    }

    /// The ICE servers with TURN credentials for `peer`, who is joining: sent before
    /// `joined` (so the room's connections are made with them) and never before a join.
    fn relay_servers(&self, peer: PeerId, now: Millis, out: &mut Vec<Action>) {
        if self.config.ice.has_turn() {
            out.push(Action::Send {
                to: vec![peer],
                msg: ServerMessage::IceServers {
                    ice_servers: self.config.ice.servers_for(peer, now),
                },
            });
        }
    }

    /// How many peers `room` holds for `asker`, as `rooms` answers it: the members
    /// connected now (a peer inside its resume grace is not counted; it is back in the
    /// count when it resumes). A room that does not exist reads 0, and so does a
    /// password-protected room unless `asker` is in it: the query reveals no more about
    /// a protected room than a `join` without its password does.
    pub(super) fn occupancy_of(&self, asker: PeerId, room: &str) -> usize {
        let Some(state) = self.rooms.get(room) else {
            return 0;
        };
        if state.password_hash.is_some() && self.room_of(asker) != Some(room) {
            return 0;
        }
        state
            .members
            .iter()
            .filter(|id| self.peers.get(id).is_some_and(|p| p.away_since.is_none()))
            .count()
    }

    /// `rooms`: the occupancy of each named room, in the order asked. The whole query is
    /// refused when it names more than [`MAX_ROOMS_QUERY`] rooms (`badRequest`: a field
    /// out of range) or any invalid name (`invalidRoomName`). Nothing is created or
    /// stored.
    pub(super) fn occupancy(&self, peer: PeerId, names: Vec<String>, out: &mut Vec<Action>) {
        if names.len() > MAX_ROOMS_QUERY {
            error(
                out,
                peer,
                ErrorCode::BadRequest,
                format!(
                    "a rooms query names at most {MAX_ROOMS_QUERY} rooms, not {}",
                    names.len()
                ),
            );
            return;
        }
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = validate_room_name(name) {
                error(out, peer, e.code(), format!("rooms[{i}]: {e}"));
                return;
            }
        }
        let rooms = names
            .into_iter()
            .map(|room| {
                let peers = self.occupancy_of(peer, &room);
                RoomOccupancy {
                    room,
                    peers: u32::try_from(peers).unwrap_or(u32::MAX),
                }
            })
            .collect();
        out.push(Action::Send {
            to: vec![peer],
            msg: ServerMessage::Rooms { rooms },
        });
    }
}

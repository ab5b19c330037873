//! Who is in the room, and who offers to whom.
//!
//! The peer table follows the server's `joined`, `peerJoined` and `peerLeft` messages. A
//! `joined` after a reconnect is reconciled with the table: peers still there keep their
//! connections (the server gave our id back), peers gone are removed, new ones added.
//!
//! The offer rule (ARCHITECTURE.md): a browser always offers to a kiosk; between kiosks the
//! lower peer id offers; between browsers the newcomer offers. The answerer never
//! re-offers, because webrtc-rs does not keep its DTLS role across a re-offer and Chromium
//! rejects a role flip; so only the offerer restarts ICE.

use std::collections::BTreeMap;

use portal_proto::{PeerId, PeerInfo, Role};

/// Which side of a peer connection this peer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OfferRole {
    /// We create the offer (and any ICE-restart re-offer).
    Offerer,
    /// We answer, and never re-offer.
    Answerer,
}

/// Applies the offer rule for `me` facing `other`. `other_is_newcomer` says whether
/// `other` joined after us (only matters between browsers).
pub fn offer_role(me: (PeerId, Role), other: (PeerId, Role), other_is_newcomer: bool) -> OfferRole {
    match (me.1, other.1) {
        (Role::Kiosk, Role::Browser) => OfferRole::Answerer,
        (Role::Browser, Role::Kiosk) => OfferRole::Offerer,
        (Role::Kiosk, Role::Kiosk) => {
            if me.0 < other.0 {
                OfferRole::Offerer
            } else {
                OfferRole::Answerer
            }
        }
        (Role::Browser, Role::Browser) => {
            if other_is_newcomer {
                OfferRole::Answerer
            } else {
                OfferRole::Offerer
            }
        }
    }
}

/// Another peer in the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub id: PeerId,
    pub name: String,
    pub role: Role,
    /// Our side of the connection with this peer.
    pub offer: OfferRole,
    /// Order of arrival in the table (for "first peer" on stage).
    pub seq: u64,
}

/// A change to the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomChange {
    Added(Peer),
    Removed(PeerId),
}

/// The peer table of one room.
#[derive(Clone, Debug)]
pub struct Room {
    me: (PeerId, Role),
    peers: BTreeMap<PeerId, Peer>,
    seq: u64,
}

impl Room {
    pub fn new(me: PeerId, role: Role) -> Self {
        Room {
            me: (me, role),
            peers: BTreeMap::new(),
            seq: 0,
        }
    }

    pub fn me(&self) -> PeerId {
        self.me.0
    }

    pub fn get(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(&id)
    }

    /// Peers in order of arrival.
    pub fn peers(&self) -> Vec<&Peer> {
        let mut peers: Vec<&Peer> = self.peers.values().collect();
        peers.sort_by_key(|p| p.seq);
        peers
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// `joined`: the peers already there (we are the newcomer to each of them).
    pub fn joined(&mut self, peers: &[PeerInfo]) -> Vec<RoomChange> {
        self.joined_keeping(peers, |_| false)
    }

    /// `joined` after a reconnect: known peers the server does not list but for which
    /// `keep` holds stay in the table (after a server restart they may still be
    /// reconnecting themselves); the caller removes them with [`Room::peer_left`] if they
    /// do not come back.
    pub fn joined_keeping(
        &mut self,
        peers: &[PeerInfo],
        keep: impl Fn(PeerId) -> bool,
    ) -> Vec<RoomChange> {
        let mut changes = Vec::new();
        let gone: Vec<PeerId> = self
            .peers
            .keys()
            .filter(|id| !peers.iter().any(|p| p.id == **id) && !keep(**id))
            .copied()
            .collect();
        for id in gone {
            self.peers.remove(&id);
            changes.push(RoomChange::Removed(id));
        }
        for info in peers {
            match self.peers.get(&info.id) {
                Some(known) if known.role == info.role => {}
                Some(_) => {
                    // Same id, other kind of client: a different peer.
                    self.peers.remove(&info.id);
                    changes.push(RoomChange::Removed(info.id));
                    changes.extend(self.add(info, false));
                }
                None => changes.extend(self.add(info, false)),
            }
        }
        changes
    }

    /// `peerJoined`.
    pub fn peer_joined(&mut self, info: &PeerInfo) -> Vec<RoomChange> {
        self.peer_joined_keeping(info, false)
    }

    /// `peerJoined`; with `keep`, a known peer of the same role back under its id (it
    /// resumed after a server restart) keeps its entry, so its connection goes on.
    pub fn peer_joined_keeping(&mut self, info: &PeerInfo, keep: bool) -> Vec<RoomChange> {
        if keep
            && let Some(known) = self.peers.get_mut(&info.id)
            && known.role == info.role
        {
            known.name.clone_from(&info.name);
            return Vec::new();
        }
        let mut changes = Vec::new();
        if self.peers.remove(&info.id).is_some() {
            // A peer came back under the same id with a fresh connection.
            changes.push(RoomChange::Removed(info.id));
        }
        changes.extend(self.add(info, true));
        changes
    }

    /// `peerLeft`.
    pub fn peer_left(&mut self, id: PeerId) -> Option<RoomChange> {
        self.peers.remove(&id).map(|_| RoomChange::Removed(id))
    }

    /// We left (or lost our id): everyone goes.
    pub fn clear(&mut self) -> Vec<RoomChange> {
        std::mem::take(&mut self.peers)
            .into_keys()
            .map(RoomChange::Removed)
            .collect()
    }

    fn add(&mut self, info: &PeerInfo, newcomer: bool) -> Option<RoomChange> {
        if info.id == self.me.0 {
            return None;
        }
        self.seq += 1;
        let peer = Peer {
            id: info.id,
            name: info.name.clone(),
            role: info.role,
            offer: offer_role(self.me, (info.id, info.role), newcomer),
            seq: self.seq,
        };
        self.peers.insert(info.id, peer.clone());
        Some(RoomChange::Added(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u64, role: Role) -> PeerInfo {
        PeerInfo {
            id: PeerId(id),
            name: format!("p{id}"),
            role,
        }
    }

    #[test]
    fn offer_rule() {
        let k = |id| (PeerId(id), Role::Kiosk);
        let b = |id| (PeerId(id), Role::Browser);
        assert_eq!(offer_role(k(5), b(1), true), OfferRole::Answerer);
        assert_eq!(offer_role(k(5), b(9), false), OfferRole::Answerer);
        assert_eq!(offer_role(b(9), k(5), false), OfferRole::Offerer);
        assert_eq!(offer_role(k(2), k(3), false), OfferRole::Offerer);
        assert_eq!(offer_role(k(3), k(2), true), OfferRole::Answerer);
        assert_eq!(offer_role(b(1), b(2), true), OfferRole::Answerer);
        assert_eq!(offer_role(b(2), b(1), false), OfferRole::Offerer);
    }

    #[test]
    fn exactly_one_side_offers_between_any_two_peers() {
        for (a, b) in [
            (Role::Kiosk, Role::Kiosk),
            (Role::Kiosk, Role::Browser),
            (Role::Browser, Role::Browser),
        ] {
            let x = (PeerId(1), a);
            let y = (PeerId(2), b);
            // y joined after x.
            let xs = offer_role(x, y, true);
            let ys = offer_role(y, x, false);
            assert_ne!(xs, ys, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn table_follows_the_server_and_reconciles_on_rejoin() {
        let mut room = Room::new(PeerId(10), Role::Kiosk);
        let ch = room.joined(&[info(3, Role::Browser), info(12, Role::Kiosk)]);
        assert_eq!(ch.len(), 2);
        assert_eq!(room.get(PeerId(12)).unwrap().offer, OfferRole::Offerer);
        assert_eq!(room.get(PeerId(3)).unwrap().offer, OfferRole::Answerer);
        room.peer_joined(&info(4, Role::Kiosk));
        assert_eq!(room.get(PeerId(4)).unwrap().offer, OfferRole::Answerer);
        assert_eq!(
            room.peer_left(PeerId(3)),
            Some(RoomChange::Removed(PeerId(3)))
        );
        assert_eq!(room.peer_left(PeerId(3)), None);
        // Reconnect: 12 is still there, 4 left meanwhile, 20 is new.
        let ch = room.joined(&[info(12, Role::Kiosk), info(20, Role::Browser)]);
        assert_eq!(ch.len(), 2);
        assert!(ch.contains(&RoomChange::Removed(PeerId(4))));
        assert!(matches!(&ch[1], RoomChange::Added(p) if p.id == PeerId(20)));
        let order: Vec<u64> = room.peers().iter().map(|p| p.id.0).collect();
        assert_eq!(order, [12, 20]);
        // After a server restart: 20 is not listed yet but kept; back, it stays as it was.
        let ch = room.joined_keeping(&[info(12, Role::Kiosk)], |id| id == PeerId(20));
        assert!(ch.is_empty(), "{ch:?}");
        assert!(
            room.peer_joined_keeping(&info(20, Role::Browser), true)
                .is_empty()
        );
        assert_eq!(room.get(PeerId(20)).unwrap().offer, OfferRole::Answerer);
        assert_eq!(
            room.peer_joined_keeping(&info(20, Role::Browser), false)
                .len(),
            2
        );
    }
}

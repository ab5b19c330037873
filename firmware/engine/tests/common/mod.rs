//! Shared by the engine's tests: server messages as a test writes them, and draining.
#![allow(dead_code)] // each test file uses its own part

use portal_engine::{Engine, Event, Input, OfferRole, Output};
use portal_proto::{PeerId, PeerInfo, Role, ServerMessage};

pub(crate) fn info(id: u64, role: Role) -> PeerInfo {
    PeerInfo {
        id: PeerId(id),
        name: format!("peer {id}"),
        role,
    }
}

pub(crate) fn welcome(id: u64, resumed: bool) -> Input {
    Input::Server(ServerMessage::Welcome {
        protocol: 1,
        peer_id: PeerId(id),
        server_time: 0.0,
        ice_servers: vec![],
        resume_token: format!("token-{id}"),
        resumed,
    })
}

pub(crate) fn joined(me: u64, peers: Vec<PeerInfo>) -> Input {
    Input::Server(ServerMessage::Joined {
        protected: false,
        room: "r".into(),
        peer_id: PeerId(me),
        peers,
        watch: None,
        doc_token: String::new(),
    })
}

/// Every pending output but the call-state reports (the call tests look at those).
pub(crate) fn drain(e: &mut Engine) -> Vec<Output> {
    drain_all(e)
        .into_iter()
        .filter(|o| !matches!(o, Output::Event(Event::Call(_))))
        .collect()
}

/// Every pending output.
pub(crate) fn drain_all(e: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| e.poll_output()).collect()
}

pub(crate) fn started(outs: &[Output]) -> Vec<(u64, OfferRole)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::StartPeer { peer, role, .. } => Some((peer.0, *role)),
            _ => None,
        })
        .collect()
}

pub(crate) fn stopped(outs: &[Output]) -> Vec<u64> {
    outs.iter()
        .filter_map(|o| match o {
            Output::StopPeer { peer } => Some(peer.0),
            _ => None,
        })
        .collect()
}

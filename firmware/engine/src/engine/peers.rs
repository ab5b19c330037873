//! The peer connections: one session per peer in the room, the offer rule applied to
//! relayed descriptions, ICE restarts and rebuilds with backoff, the shared encoder's
//! bitrate, and the stage.

use std::time::{Duration, Instant};

use portal_proto::{ClientMessage, PeerId, SdpType, SignalData};

use super::{Channel, ConnectionState, Engine, EngineError, Event, MediaState, Output};
use crate::backoff::Backoff;
use crate::room::{OfferRole, RoomChange};
use crate::transfer::{FileAction, FileChannel};

#[derive(Debug)]
pub(super) struct PeerSession {
    pub(super) chat_open: bool,
    pub(super) file: FileChannel,
    pub(super) media: MediaState,
    pub(super) connection: ConnectionState,
    pub(super) ice_backoff: Backoff,
    pub(super) ice_restart_at: Option<Instant>,
    /// The peer connection ended by itself (or could not be built); build it again then.
    pub(super) rebuild_at: Option<Instant>,
    pub(super) name: String,
    pub(super) role: OfferRole,
    /// The remote's last offer and the candidates since, replayed to a rebuilt answerer.
    pub(super) last_offer: Option<SignalData>,
    pub(super) candidates: Vec<SignalData>,
    /// The latest send estimate towards this peer, kbit/s.
    pub(super) estimate_kbps: Option<u32>,
    /// Our offer that has no answer yet. Another ICE restart while it is on its way would
    /// make the remote answer twice, and the first answer would be applied to the second
    /// offer; so a restart waits for the answer, up to [`ANSWER_TIMEOUT`].
    pub(super) offer_sent_at: Option<Instant>,
}

/// An offer without an answer for this long is taken as lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Remote candidates kept for a replay; a browser sends a handful.
const KEPT_CANDIDATES: usize = 64;

impl Engine {
    /// Sends our description or candidate to `peer` through the server. An offer to a
    /// peer we answer is refused: the answerer never (re-)offers.
    pub fn send_signal(
        &mut self,
        now: Instant,
        peer: PeerId,
        data: SignalData,
    ) -> Result<(), EngineError> {
        let role = self
            .room
            .as_ref()
            .and_then(|r| r.get(peer))
            .map(|p| p.offer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        if let SignalData::Sdp(sdp) = &data
            && sdp.kind == SdpType::Offer
            && role == OfferRole::Answerer
        {
            return Err(EngineError::AnswererOffer(peer));
        }
        if let SignalData::Sdp(sdp) = &data
            && sdp.kind == SdpType::Offer
            && let Some(s) = self.sessions.get_mut(&peer)
        {
            s.offer_sent_at = Some(now);
        }
        self.out
            .push_back(Output::Send(ClientMessage::Signal { to: peer, data }));
        Ok(())
    }

    pub(super) fn remote_signal(&mut self, from: PeerId, data: SignalData) {
        let Some(peer) = self.room.as_ref().and_then(|r| r.get(from)) else {
            tracing::debug!(%from, "signal from a peer not in the room");
            return;
        };
        if let SignalData::Sdp(sdp) = &data
            && sdp.kind == SdpType::Offer
            && peer.offer == OfferRole::Offerer
        {
            // We are this peer's offerer; its offer breaks the offer rule. Applying it would
            // flip DTLS roles, which Chromium rejects.
            tracing::warn!(%from, "ignoring an offer from a peer we offer to");
            return;
        }
        if let Some(s) = self.sessions.get_mut(&from) {
            match &data {
                SignalData::Sdp(sdp) if sdp.kind == SdpType::Offer => {
                    s.last_offer = Some(data.clone());
                    s.candidates.clear();
                }
                SignalData::Sdp(sdp) if sdp.kind == SdpType::Answer => s.offer_sent_at = None,
                SignalData::Candidate(_) if s.candidates.len() < KEPT_CANDIDATES => {
                    s.candidates.push(data.clone());
                }
                _ => {}
            }
        }
        self.out.push_back(Output::Signal { from, data });
    }

    pub(super) fn connection_state(&mut self, now: Instant, peer: PeerId, state: ConnectionState) {
        let offerer = self
            .room
            .as_ref()
            .and_then(|r| r.get(peer))
            .is_some_and(|p| p.offer == OfferRole::Offerer);
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        if s.rebuild_at.is_some() {
            // Last words of the connection that ended; the rebuilt one reports afresh.
            return;
        }
        s.connection = state;
        match state {
            ConnectionState::Connected => {
                s.ice_backoff.reset();
                s.ice_restart_at = None;
            }
            ConnectionState::Failed if offerer && s.ice_restart_at.is_none() => {
                // The first restart goes out at once; later ones back off.
                s.ice_restart_at = Some(now);
                self.handle_timeout(now);
            }
            ConnectionState::Closed => {
                // We did not stop it (a stopped peer has no session): it ended by itself
                // or could not be built. The peer is still in the room, so build it again.
                let delay = s.ice_backoff.next_delay();
                tracing::info!(%peer, ?delay, "peer connection ended; building it again");
                s.ice_restart_at = None;
                s.offer_sent_at = None;
                s.rebuild_at = Some(now + delay);
                s.chat_open = false;
                s.file.closed();
                s.estimate_kbps = None;
                self.flush_file(peer);
                self.update_bitrate(false);
            }
            _ => {}
        }
    }

    pub(super) fn channel_opened(&mut self, peer: PeerId, channel: Channel) {
        let json = self.state_json();
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        match channel {
            Channel::Chat => {
                s.chat_open = true;
                self.out.push_back(Output::Chat { peer, text: json });
            }
            Channel::File => s.file.opened(),
        }
        self.flush_file(peer);
    }

    pub(super) fn apply_changes(&mut self, changes: Vec<RoomChange>) {
        for change in changes {
            match change {
                RoomChange::Added(peer) => {
                    self.session_serial += 1;
                    let tag = format!("{}-{}", peer.id, self.session_serial);
                    let seed = self.config.seed ^ peer.id.0.rotate_left(17);
                    self.sessions.insert(
                        peer.id,
                        PeerSession {
                            chat_open: false,
                            file: FileChannel::new(self.config.files.clone(), &tag),
                            // Until its first `state` message a peer counts as sending
                            // both (the browser's own default for a missing field).
                            media: MediaState {
                                audio: true,
                                video: true,
                                screen: false,
                                recording: false,
                            },
                            connection: ConnectionState::Connecting,
                            ice_backoff: Backoff::new(self.config.ice_restart, seed),
                            ice_restart_at: None,
                            rebuild_at: None,
                            name: peer.name.clone(),
                            role: peer.offer,
                            last_offer: None,
                            candidates: Vec::new(),
                            estimate_kbps: None,
                            offer_sent_at: None,
                        },
                    );
                    self.stage.add(peer.id);
                    tracing::info!(peer = %peer.id, name = peer.name, role = ?peer.role, offer = ?peer.offer, "peer added");
                    self.out.push_back(Output::StartPeer {
                        peer: peer.id,
                        name: peer.name,
                        role: peer.offer,
                    });
                    self.out.push_back(Output::Event(Event::PeerAdded(peer.id)));
                }
                RoomChange::Removed(id) => {
                    if let Some(mut s) = self.sessions.remove(&id) {
                        s.file.closed();
                        let actions: Vec<FileAction> = s.file.drain_actions().collect();
                        for action in actions {
                            // Nothing can be sent to a peer that is gone; local file work
                            // (discarding partial files) still has to happen.
                            if !matches!(
                                action,
                                FileAction::SendText(_) | FileAction::SendBinary(_)
                            ) {
                                self.out.push_back(Output::File { peer: id, action });
                            }
                        }
                    }
                    self.stage.remove(id);
                    self.update_bitrate(true);
                    tracing::info!(peer = %id, "peer removed");
                    self.out.push_back(Output::StopPeer { peer: id });
                    self.out.push_back(Output::Event(Event::PeerRemoved(id)));
                }
            }
        }
        self.update_stage();
    }

    /// Follows the lowest send estimate of the peers that have one; `force` applies even a
    /// small change (a peer left, so the estimate that held the rate down may be gone).
    pub(super) fn update_bitrate(&mut self, force: bool) {
        let config = self.config.bitrate;
        let lowest = self.sessions.values().filter_map(|s| s.estimate_kbps).min();
        let target = config.clamp(lowest.unwrap_or(config.start_kbps));
        let current = self.bitrate_kbps.max(1);
        let change = u64::from(target.abs_diff(current)) * 100;
        let step = u64::from(current) * u64::from(config.hysteresis_percent);
        if target != current && (force || change >= step) {
            self.bitrate_kbps = target;
            self.out.push_back(Output::VideoBitrate { kbps: target });
        }
    }

    /// The video bitrate the engine last asked for, kbit/s.
    pub fn video_bitrate(&self) -> u32 {
        self.bitrate_kbps
    }

    pub(super) fn update_stage(&mut self) {
        if let Some(now_on) = self.stage.update() {
            self.out.push_back(Output::Event(Event::Stage(now_on)));
        }
    }

    /// ICE restarts and rebuilds that are due, and the file channels' timers.
    pub(super) fn peer_timers(&mut self, now: Instant) {
        let peers: Vec<PeerId> = self.sessions.keys().copied().collect();
        for peer in peers {
            let Some(s) = self.sessions.get_mut(&peer) else {
                continue;
            };
            if s.ice_restart_at.is_some_and(|t| t <= now) {
                s.ice_restart_at = None;
                let waiting = s
                    .offer_sent_at
                    .map(|t| t + ANSWER_TIMEOUT)
                    .filter(|t| *t > now);
                if let Some(until) = waiting.filter(|_| s.connection == ConnectionState::Failed) {
                    tracing::debug!(%peer, "ICE restart waits for the answer to our last offer");
                    s.ice_restart_at = Some(until);
                } else if s.connection == ConnectionState::Failed {
                    tracing::info!(%peer, "restarting ICE");
                    self.out.push_back(Output::RestartIce { peer });
                    let delay = s.ice_backoff.next_delay();
                    s.ice_restart_at = Some(now + delay);
                }
            }
            if s.rebuild_at.is_some_and(|t| t <= now) {
                s.rebuild_at = None;
                s.connection = ConnectionState::Connecting;
                tracing::info!(%peer, attempt = s.ice_backoff.attempt(), "building the peer connection again");
                self.out.push_back(Output::StartPeer {
                    peer,
                    name: s.name.clone(),
                    role: s.role,
                });
                if s.role == OfferRole::Answerer {
                    // The remote's offer went to the connection that ended; the new one
                    // answers it (a remote that restarts ICE later sends a fresh one).
                    for data in s.last_offer.iter().chain(&s.candidates) {
                        self.out.push_back(Output::Signal {
                            from: peer,
                            data: data.clone(),
                        });
                    }
                }
            }
            s.file.handle_timeout(now);
            self.flush_file(peer);
        }
    }
}

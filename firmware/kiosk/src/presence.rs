//! What the kiosk is doing, for the parts that live outside a call: the update agent
//! (never installs during a meeting), the remote control (tells paired laptops, answers
//! their commands once they are done) and the status panel.
//!
//! A call's session publishes it after every change ([`Presence::from_engine`]); the
//! decisions in it — what counts as a meeting, which room — are the engine's. Back home
//! it goes to [`Presence::home`], keeping the volume and the last refusal.

use portal_engine::{CallState, Engine};
use portal_proto::PeerId;
use portal_proto::pairing::KioskState;
use tokio::sync::watch;

/// The kiosk's state as the world outside the call sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Presence {
    /// The call's room while a call runs (connecting, joined, reconnecting).
    pub room: Option<String>,
    pub call: Option<CallState>,
    /// In a call with somebody else ([`Engine::in_meeting`]).
    pub meeting: bool,
    pub mic_muted: bool,
    pub camera_off: bool,
    /// The speaker's volume, 0 to 1.
    pub volume: f32,
    /// The last room that refused the kiosk for good, and why; cleared by the next call.
    pub refused: Option<(String, String)>,
}

impl Default for Presence {
    fn default() -> Self {
        Presence {
            room: None,
            call: None,
            meeting: false,
            mic_muted: false,
            camera_off: false,
            volume: 0.8,
            refused: None,
        }
    }
}

impl Presence {
    /// The presence of a running call.
    pub(crate) fn from_engine(engine: &Engine, volume: f32) -> Presence {
        let call = engine.call_state();
        let local = engine.local_media();
        let refused = match &call {
            CallState::Failed { message, .. } => {
                Some((engine.config().room.clone(), message.clone()))
            }
            _ => None,
        };
        Presence {
            room: (!matches!(call, CallState::Failed { .. } | CallState::Left))
                .then(|| engine.config().room.clone()),
            meeting: engine.in_meeting(),
            mic_muted: !local.audio,
            camera_off: !local.video,
            volume,
            call: Some(call),
            refused,
        }
    }

    /// Back home: no call, the volume and the last refusal kept.
    pub(crate) fn home(&self) -> Presence {
        Presence {
            volume: self.volume,
            refused: self.refused.clone(),
            ..Presence::default()
        }
    }

    /// What paired laptops are told.
    pub(crate) fn kiosk_state(&self) -> KioskState {
        KioskState {
            room: self.room.clone(),
            in_call: self.call == Some(CallState::Joined),
            mic_muted: self.mic_muted,
            camera_off: self.camera_off,
            volume: f64::from(self.volume),
            presenting: None,
        }
    }
}

/// What a call's session shares with the rest of the kiosk.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub presence: watch::Sender<Presence>,
    /// The presenting laptop, from the remote control ([`crate::remote`]).
    pub presenter: watch::Receiver<Option<PeerId>>,
}

impl Shared {
    /// Shared state with nobody presenting until `presenter` says so.
    pub(crate) fn new(presenter: watch::Receiver<Option<PeerId>>) -> Shared {
        Shared {
            presence: watch::channel(Presence::default()).0,
            presenter,
        }
    }

    /// Without a remote control: nobody ever presents.
    pub(crate) fn standalone() -> Shared {
        Shared::new(watch::channel(None).1)
    }

    /// Publishes `next` when it differs.
    pub(crate) fn publish(&self, next: Presence) {
        self.presence.send_if_modified(|p| {
            let changed = *p != next;
            *p = next;
            changed
        });
    }
}

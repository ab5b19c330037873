//! What people and tools ask of a running call: the touch screen's taps and the local
//! endpoint's requests, each with the channel its answer goes back on. The session
//! answers them from the engine ([`crate::session`]); at home, with no call, the home
//! controller answers ([`crate::home`]).

use std::path::PathBuf;

use portal_engine::FileRef;
use portal_proto::PeerId;
use serde_json::Value;
use tokio::sync::oneshot;

/// One request; the answer goes back on its `reply`.
#[derive(Debug)]
pub(crate) enum Request {
    /// `GET /status`: the call as JSON.
    Status(oneshot::Sender<Value>),
    /// Send a chat line to everyone.
    Chat {
        text: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A PNG of a peer's latest frame (`None`: the engine picks whose).
    Snapshot {
        peer: Option<PeerId>,
        reply: oneshot::Sender<Result<PathBuf, String>>,
    },
    /// Accept or decline an offered file (policy `ask`).
    Decide {
        file: FileRef,
        accept: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Offer a file on disk to a peer.
    SendFile {
        peer: PeerId,
        path: PathBuf,
        reply: oneshot::Sender<Result<u32, String>>,
    },
    /// `GET /editor`: the room's code editor as the kiosk reads it along.
    Editor(oneshot::Sender<Result<Value, String>>),
    /// A tap on the touch screen that concerns the call.
    Ui(portal_ui::UiEvent),
}

impl Request {
    /// Answers with "not in a call" (the status as `idle`, or `home`'s own JSON).
    pub(crate) fn refuse(self, status: impl FnOnce() -> Value) {
        let not_in_call = || "not in a call".to_owned();
        match self {
            Request::Status(reply) => {
                let _ = reply.send(status());
            }
            Request::Chat { reply, .. } | Request::Decide { reply, .. } => {
                let _ = reply.send(Err(not_in_call()));
            }
            Request::Editor(reply) => {
                let _ = reply.send(Err(not_in_call()));
            }
            Request::Snapshot { reply, .. } => {
                let _ = reply.send(Err(not_in_call()));
            }
            Request::SendFile { reply, .. } => {
                let _ = reply.send(Err(not_in_call()));
            }
            Request::Ui(_) => {}
        }
    }
}

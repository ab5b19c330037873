//! The remote control's I/O: the control connection to the rooms server, around
//! `portal_engine::remote::Remote`, which decides everything (whom to obey, what a
//! command means, when it is answered).
//!
//! It runs when the kiosk has a device token. It reads the kiosk's [`Presence`] (and
//! tells paired laptops), publishes the code and the paired laptops ([`RemoteView`]: on
//! `/status`, on the touch screen), the presenting laptop (to the call's stage), and
//! hands the commands to carry out ([`Action`]) to whoever owns calls: the home
//! controller (windowed) or the headless loop.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use portal_engine::backoff::BackoffConfig;
use portal_engine::remote::{
    Action, Laptop, PairingCode, Remote, RemoteConfig, RemoteEvent, RemoteInput, RemoteOutput,
};
use portal_net::signaling::{self, TransportConfig, TransportEvent};
use portal_proto::{ErrorCode, PeerId};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::presence::Presence;

/// The remote control as the rest of the kiosk sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RemoteView {
    pub code: Option<PairingCode>,
    pub laptops: Vec<Laptop>,
    pub presenter: Option<PeerId>,
    pub online: bool,
    /// The server refused the device token for good.
    pub refused: Option<(ErrorCode, String)>,
}

/// A handle on the running remote control.
#[derive(Clone, Debug)]
pub(crate) struct RemoteHandle {
    view: watch::Receiver<RemoteView>,
    unpair: mpsc::Sender<PeerId>,
}

/// What [`spawn`] needs.
pub(crate) struct RemoteSetup {
    pub server: String,
    pub name: String,
    pub token: String,
    pub own_room: String,
    pub presence: watch::Receiver<Presence>,
    /// The commands to carry out.
    pub actions: mpsc::UnboundedSender<Action>,
    /// The presenting laptop, for the call's stage.
    pub presenter: watch::Sender<Option<PeerId>>,
    /// The touch screen, when there is one.
    pub ui: Option<portal_ui::UiHandle>,
}

/// Starts the remote control on the current runtime.
pub(crate) fn spawn(setup: RemoteSetup) -> anyhow::Result<RemoteHandle> {
    let (transport, events) = signaling::start(TransportConfig::new(&setup.server))
        .context("the remote control's connection settings")?;
    let (view_tx, view) = watch::channel(RemoteView::default());
    let (unpair, unpair_rx) = mpsc::channel(8);
    let remote = Remote::new(RemoteConfig {
        name: setup.name.clone(),
        token: setup.token.clone(),
        own_room: setup.own_room.clone(),
        backoff: BackoffConfig {
            max: Duration::from_secs(15),
            ..BackoffConfig::default()
        },
        seed: u64::from(std::process::id()),
    });
    tokio::spawn(run(
        Task {
            remote,
            transport,
            view: view_tx,
            setup,
            refused_room: None,
        },
        events,
        unpair_rx,
    ));
    Ok(RemoteHandle { view, unpair })
}

impl RemoteHandle {
    pub(crate) fn view(&self) -> RemoteView {
        self.view.borrow().clone()
    }

    /// "Unpair" on the touch screen.
    pub(crate) fn unpair(&self, laptop: PeerId) {
        if self.unpair.try_send(laptop).is_err() {
            tracing::warn!(%laptop, "the remote control is busy or gone: not unpaired");
        }
    }

    /// `"pairing"` and `"paired"` of `/status`.
    pub(crate) fn add_to_status(&self, status: &mut Value) {
        let view = self.view();
        let now = Instant::now();
        status["pairing"] = view.code.as_ref().map_or(Value::Null, |c| {
            json!({
                "code": c.code,
                "url": c.url,
                "expiresIn": c.expires.saturating_duration_since(now).as_secs(),
            })
        });
        status["paired"] = view
            .laptops
            .iter()
            .map(|l| {
                json!({
                    "peer": l.peer.0,
                    "name": l.name,
                    "presenting": view.presenter == Some(l.peer),
                })
            })
            .collect();
        status["remote"] = json!({
            "online": view.online,
            "refused": view.refused.as_ref().map(|(code, message)| json!({"code": code, "message": message})),
        });
    }
}

struct Task {
    remote: Remote,
    transport: signaling::SignalingTransport,
    view: watch::Sender<RemoteView>,
    setup: RemoteSetup,
    /// The last refusal seen (passed on when a new one appears).
    refused_room: Option<(String, String)>,
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

async fn run(
    mut t: Task,
    mut events: mpsc::Receiver<TransportEvent>,
    mut unpair: mpsc::Receiver<PeerId>,
) {
    let mut presence = t.setup.presence.clone();
    t.presence_changed(&presence.borrow_and_update().clone());
    loop {
        t.flush();
        let wake = t.remote.poll_timeout();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                let input = match event {
                    TransportEvent::Opened => RemoteInput::Opened,
                    TransportEvent::Message(msg) => RemoteInput::Server { msg, wall_ms: wall_ms() },
                    TransportEvent::Closed { reason } => {
                        tracing::debug!(%reason, "remote control: connection closed");
                        RemoteInput::Closed
                    }
                    _ => continue,
                };
                t.remote.handle(Instant::now(), input);
            }
            changed = presence.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = presence.borrow_and_update().clone();
                t.presence_changed(&now);
            }
            Some(laptop) = unpair.recv() => t.remote.unpair(laptop),
            () = sleep => t.remote.handle_timeout(Instant::now()),
        }
    }
    t.transport.shutdown().await;
}

impl Task {
    fn presence_changed(&mut self, presence: &Presence) {
        if presence.refused != self.refused_room
            && let Some((room, message)) = &presence.refused
        {
            self.remote.join_failed(room, message);
        }
        self.refused_room.clone_from(&presence.refused);
        self.remote.set_state(presence.kiosk_state());
    }

    fn flush(&mut self) {
        while let Some(out) = self.remote.poll_output() {
            match out {
                RemoteOutput::Connect => self.transport.connect(),
                RemoteOutput::Disconnect => self.transport.disconnect(),
                RemoteOutput::Send(msg) => {
                    if let Err(e) = self.transport.send(msg) {
                        tracing::debug!(error = %e, "remote control: not sent");
                    }
                }
                RemoteOutput::Event(event) => self.event(event),
            }
        }
        let online = self.remote.is_online();
        self.view.send_if_modified(|v| {
            let changed = v.online != online;
            v.online = online;
            changed
        });
    }

    fn event(&mut self, event: RemoteEvent) {
        match event {
            RemoteEvent::Code(code) => {
                if let Some(ui) = &self.setup.ui {
                    ui.apply(portal_ui::Update::Pairing(code.as_ref().map(|c| {
                        portal_ui::PairingView {
                            code: c.code.clone(),
                            url: c.url.clone(),
                            expires_in_secs: c
                                .expires
                                .saturating_duration_since(Instant::now())
                                .as_secs() as u32,
                        }
                    })));
                }
                self.view.send_modify(|v| v.code = code);
            }
            RemoteEvent::Paired(laptops) => {
                self.view.send_modify(|v| v.laptops = laptops);
                self.show_paired();
            }
            RemoteEvent::Presenter(peer) => {
                self.setup.presenter.send_replace(peer);
                self.view.send_modify(|v| v.presenter = peer);
                self.show_paired();
            }
            RemoteEvent::Do(action) => {
                if self.setup.actions.send(action).is_err() {
                    tracing::warn!("remote control: nobody carries out commands");
                }
            }
            RemoteEvent::Refused { code, message } => {
                self.view.send_modify(|v| v.refused = Some((code, message)));
            }
        }
    }

    fn show_paired(&self) {
        let Some(ui) = &self.setup.ui else { return };
        let view = self.view.borrow();
        ui.apply(portal_ui::Update::Paired(
            view.laptops
                .iter()
                .map(|l| portal_ui::PairedLaptop {
                    id: l.peer.0.to_string(),
                    name: l.name.clone(),
                    presenting: view.presenter == Some(l.peer),
                })
                .collect(),
        ));
    }
}

/// A command as the touch screen's own event, for the windowed kiosk's home controller
/// (which already joins, leaves and forwards call taps).
pub(crate) fn as_ui_event(action: Action) -> portal_ui::UiEvent {
    use portal_ui::UiEvent;
    match action {
        Action::JoinRoom {
            room,
            password: Some(password),
        } => UiEvent::JoinWithPassword { room, password },
        Action::JoinRoom {
            room,
            password: None,
        } => UiEvent::JoinRoom(room),
        Action::Leave => UiEvent::Leave,
        Action::SetMicMuted(muted) => UiEvent::SetMicMuted(muted),
        Action::SetCameraOff(off) => UiEvent::SetCameraOff(off),
        Action::SetVolume(volume) => UiEvent::SetVolume(volume),
    }
}

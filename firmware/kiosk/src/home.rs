//! The touch screen's home: the controller that runs while the window is open.
//!
//! It owns what a person does outside a call and starts and ends calls:
//!
//! - **First power-on**: with no rooms server set, the first-run screen asks for its
//!   address, checks it and saves it to the config file; the kiosk never exits for want
//!   of settings.
//! - **Home**: the configured rooms, each with how many people are in it (asked of the
//!   server every [`OCCUPANCY_EVERY`] while nobody is in a call here, see
//!   [`portal_engine::lobby`]), a keypad to join by code, the clock, the settings.
//! - **Calls**: a tap starts a [`crate::session`]; its call state is watched, and a
//!   refusal for good ends it and brings the person back home with what went wrong (a
//!   wrong password asks for the password again). Leave ends it. Taps that concern the
//!   call and the local endpoint's requests go to the running session; at home the
//!   endpoint is answered here ([`crate::status::idle`]).
//! - **Paired laptops** ([`crate::remote`]): their joins and leaves are carried out here
//!   like taps; mute, camera and volume go to the call; "Unpair" goes to the remote.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use portal_engine::CallState;
use portal_engine::lobby::{QueryStep, RoomsQuery};
use portal_net::signaling::{self, TransportConfig, TransportEvent};
use portal_proto::{ErrorCode, RoomOccupancy};
use portal_ui::{CallStatus, JoinFailure, Page, RoomView, ServerSetup, UiEvent, UiHandle, Update};
use tokio::sync::{mpsc, oneshot};

use portal_engine::remote::Action;
use portal_proto::PeerId;

use crate::config::{Config, Devices};
use crate::presence::Shared;
use crate::remote::RemoteHandle;
use crate::request::Request;
use crate::session::{self, CallPlan};
use crate::update::Updater;

/// How often home asks how many people are in its rooms.
pub(crate) const OCCUPANCY_EVERY: Duration = Duration::from_secs(10);

/// What [`run`] needs.
pub(crate) struct Home {
    pub config: Config,
    pub ui: UiHandle,
    pub events: mpsc::UnboundedReceiver<UiEvent>,
    /// Requests of the local endpoint (forwarded to the call, answered at home).
    pub requests: mpsc::Receiver<Request>,
    pub board: Arc<dyn portal_board::Board>,
    pub shared: Shared,
    pub remote: Option<RemoteHandle>,
    /// A paired laptop's commands.
    pub actions: mpsc::UnboundedReceiver<Action>,
    /// The update agent, for "Check for updates" and "Install update now".
    pub updater: Option<Updater>,
}

/// A running call.
struct Running {
    room: String,
    requests: mpsc::Sender<Request>,
    stop: oneshot::Sender<()>,
    call: session::Call,
}

/// The last refusal, shown on `/status` until the next join.
struct Failure {
    room: String,
    code: ErrorCode,
    message: String,
}

struct Controller {
    config: Config,
    ui: UiHandle,
    board: Arc<dyn portal_board::Board>,
    devices: Vec<portal_board::DeviceInfo>,
    chosen: Devices,
    rooms: Vec<String>,
    call: Option<Running>,
    failure: Option<Failure>,
    /// The people in each room as last heard.
    occupancy: Vec<RoomOccupancy>,
    occupancy_tx: mpsc::Sender<Vec<RoomOccupancy>>,
    shared: Shared,
    remote: Option<RemoteHandle>,
    updater: Option<Updater>,
}

/// Runs until the window closes (its event channel ends) or `shutdown` resolves, and
/// leaves the call then.
pub(crate) async fn run(home: Home, shutdown: impl Future<Output = ()>) {
    let Home {
        config,
        ui,
        mut events,
        mut requests,
        board,
        shared,
        remote,
        mut actions,
        updater,
    } = home;
    tokio::pin!(shutdown);
    let (occupancy_tx, mut occupancy_rx) = mpsc::channel(4);
    let mut rooms = config.rooms.clone();
    if let Some(room) = &config.room
        && !rooms.contains(room)
    {
        rooms.insert(0, room.clone());
    }
    let devices = board.devices().unwrap_or_default();
    let mut c = Controller {
        chosen: config.devices.clone(),
        config,
        ui,
        board,
        devices,
        rooms,
        call: None,
        failure: None,
        occupancy: Vec::new(),
        occupancy_tx,
        shared,
        remote,
        updater,
    };
    c.show_home();
    if c.config.server.is_none() {
        c.ui.apply(Update::ServerSetup(Some(ServerSetup {
            address: "wss://".to_owned(),
            error: String::new(),
        })));
    } else if let Some(room) = c.config.room.clone() {
        c.begin(room, c.config.password.clone());
    }
    let mut occupancy = tokio::time::interval(OCCUPANCY_EVERY);
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    let mut shown_clock = String::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = events.recv() => {
                let Some(event) = event else { break };
                c.ui_event(event).await;
            }
            Some(request) = requests.recv() => c.request(request).await,
            Some(action) = actions.recv() => c.action(action).await,
            changed = async {
                match c.call.as_mut() {
                    Some(r) => r.call.state.changed().await.map(|()| r.call.state.borrow_and_update().clone()),
                    None => std::future::pending().await,
                }
            } => match changed {
                Ok(CallState::Failed { code, message }) => c.refused(code, message).await,
                Ok(_) => {}
                // The session ended by itself (it could not start).
                Err(_) => c.end().await,
            },
            Some(counts) = occupancy_rx.recv() => {
                c.occupancy = counts;
                c.show_rooms();
            }
            _ = occupancy.tick() => c.ask_occupancy(),
            _ = clock.tick() => {
                let now = chrono::Local::now().format("%H:%M").to_string();
                if now != shown_clock {
                    c.ui.apply(Update::Clock(now.clone()));
                    shown_clock = now;
                }
            }
        }
    }
    c.end().await;
}

impl Controller {
    fn show_home(&self) {
        self.ui.apply(Update::Device(portal_ui::DeviceInfo {
            name: self.config.name.clone(),
            address: self
                .config
                .server
                .as_deref()
                .map_or_else(|| "not connected".to_owned(), local_address),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }));
        self.ui
            .apply(Update::Devices(device_lists(&self.devices, &self.chosen)));
        self.show_rooms();
        self.ui.apply(Update::Status(CallStatus::Idle));
    }

    async fn ui_event(&mut self, event: UiEvent) {
        match event {
            UiEvent::SetServer(address) => self.set_server(&address),
            UiEvent::JoinRoom(room) | UiEvent::JoinByCode(room) => {
                self.begin(room, self.config.password.clone());
            }
            UiEvent::JoinWithPassword { room, password } => self.begin(room, Some(password)),
            UiEvent::DismissJoinFailure => self.ui.apply(Update::JoinFailed(None)),
            UiEvent::Leave => {
                self.end().await;
                self.ask_occupancy();
            }
            UiEvent::CloseImage => self.ui.apply(Update::Image(None)),
            UiEvent::CheckForUpdates => {
                if let Some(u) = &self.updater
                    && !u.check_now().await
                {
                    tracing::warn!("the update agent has stopped");
                }
            }
            UiEvent::InstallUpdateNow => {
                if let Some(u) = &self.updater
                    && !u.install_now().await
                {
                    tracing::warn!("the update agent has stopped");
                }
            }
            UiEvent::Unpair(id) => {
                if let (Some(remote), Ok(peer)) = (&self.remote, id.parse::<u64>()) {
                    remote.unpair(PeerId(peer));
                } else {
                    tracing::warn!(id, "unpair: no such laptop");
                }
            }
            UiEvent::ChooseCamera(id) => self.choose(|c| c.camera = Some(id)),
            UiEvent::ChooseMicrophone(id) => self.choose(|c| c.microphone = Some(id)),
            UiEvent::ChooseSpeaker(id) => self.choose(|c| c.speaker = Some(id)),
            other => {
                if let Some(r) = &self.call {
                    if r.requests.send(Request::Ui(other)).await.is_err() {
                        tracing::debug!("the call has ended");
                    }
                } else {
                    tracing::debug!(?other, "not in a call");
                }
            }
        }
    }

    /// A paired laptop's command: joins and leaves as if tapped, the rest to the call.
    async fn action(&mut self, action: Action) {
        match action {
            Action::JoinRoom { room, password } => {
                tracing::info!(room, "a paired laptop: joining");
                self.begin(room, password);
            }
            Action::Leave => {
                tracing::info!("a paired laptop: leaving");
                self.end().await;
                self.ask_occupancy();
            }
            Action::SetVolume(volume) if self.call.is_none() => {
                let mut next = self.shared.presence.borrow().clone();
                next.volume = volume.clamp(0.0, 1.0);
                self.shared.publish(next);
                self.ui.apply(Update::Volume(volume));
            }
            other => {
                if let Some(r) = &self.call {
                    let event = crate::remote::as_ui_event(other);
                    let _ = r.requests.send(Request::Ui(event)).await;
                }
            }
        }
    }

    async fn request(&mut self, request: Request) {
        if let Some(r) = &self.call {
            let _ = r.requests.send(request).await;
        } else {
            let failure = self
                .failure
                .as_ref()
                .map(|f| (f.room.as_str(), f.code, f.message.as_str()));
            let rooms: Vec<(String, Option<u32>)> = self
                .rooms
                .iter()
                .map(|r| (r.clone(), self.peers_in(r)))
                .collect();
            request.refuse(|| crate::status::idle(&self.config.name, failure, &rooms));
        }
    }

    /// The first-run screen's answer: checked, saved, used.
    fn set_server(&mut self, address: &str) {
        let url = match crate::config::server_url(address, self.config.insecure) {
            Ok(url) => url,
            Err(e) => {
                self.ui.apply(Update::ServerSetup(Some(ServerSetup {
                    address: address.to_owned(),
                    error: format!("{e}. Example: wss://rooms.example.org"),
                })));
                return;
            }
        };
        if let Err(e) = crate::config::save_server(&self.config.path, &url) {
            // Used for now all the same; the next start asks again.
            tracing::warn!(error = %format!("{e:#}"), "the server address could not be saved");
        } else {
            tracing::info!(server = url, path = %self.config.path.display(), "server address saved");
        }
        self.config.server = Some(url);
        self.ui.apply(Update::ServerSetup(None));
        self.show_home();
        self.ask_occupancy();
    }

    fn choose(&mut self, pick: impl FnOnce(&mut Devices)) {
        pick(&mut self.chosen);
        // Devices open when a call starts; a choice made now applies from the next one.
        self.ui
            .apply(Update::Devices(device_lists(&self.devices, &self.chosen)));
    }

    fn begin(&mut self, room: String, password: Option<String>) {
        let Some(server) = self.config.server.clone() else {
            tracing::warn!(room, "no rooms server set: not joining");
            return;
        };
        if let Some(old) = self.call.take() {
            // A join while in a call replaces it; the old one leaves in the background.
            let _ = old.stop.send(());
        }
        self.failure = None;
        tracing::info!(room, "joining from the touch screen");
        let (requests, request_rx) = mpsc::channel(64);
        let (stop, stop_rx) = oneshot::channel();
        let plan = CallPlan {
            config: &self.config,
            server: &server,
            room: &room,
            password,
            wait_for_seat: false,
            shared: &self.shared,
        };
        let started =
            crate::media::open(&self.config, self.board.as_ref(), &self.chosen).and_then(|media| {
                session::start(
                    &plan,
                    media,
                    request_rx,
                    Some(self.ui.clone()),
                    async move {
                        let _ = stop_rx.await;
                    },
                )
            });
        match started.context("the call could not start") {
            Ok(call) => {
                self.ui.apply(Update::Call(Some(room.clone())));
                self.ui.apply(Update::Status(CallStatus::Connecting));
                self.ui.apply(Update::ShowPage(Page::Call));
                self.call = Some(Running {
                    room,
                    requests,
                    stop,
                    call,
                });
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "no call");
                self.ui.apply(Update::JoinFailed(Some(JoinFailure {
                    room,
                    message: format!("{e:#}"),
                    ask_password: false,
                })));
            }
        }
    }

    /// Ends the running call and goes home.
    async fn end(&mut self) {
        if let Some(old) = self.call.take() {
            tracing::info!(room = old.room, "leaving");
            let _ = old.stop.send(());
            match old.call.task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "the call ended badly"),
                Err(e) => tracing::warn!(error = %e, "the call's task failed"),
            }
            self.ui.apply(Update::Call(None));
            self.ui.apply(Update::Status(CallStatus::Idle));
            self.ui.apply(Update::Peers(Vec::new()));
            self.ui.apply(Update::ShowPage(Page::Home));
        }
    }

    /// The server refused the call for good: home, and say why.
    async fn refused(&mut self, code: ErrorCode, message: String) {
        let room = self
            .call
            .as_ref()
            .map(|r| r.room.clone())
            .unwrap_or_default();
        let had_password = self.config.password.is_some();
        self.end().await;
        self.ui.apply(Update::JoinFailed(Some(JoinFailure {
            room: room.clone(),
            message: failure_text(code, &message, had_password),
            ask_password: code == ErrorCode::WrongPassword,
        })));
        self.failure = Some(Failure {
            room,
            code,
            message,
        });
    }

    fn ask_occupancy(&self) {
        let (Some(server), None) = (self.config.server.clone(), &self.call) else {
            return;
        };
        if self.rooms.is_empty() {
            return;
        }
        let query = RoomsQuery::new(self.config.name.clone(), &self.rooms)
            .with_device_token(self.config.device_token.clone());
        let tx = self.occupancy_tx.clone();
        tokio::spawn(async move {
            match occupancy(&server, &query).await {
                Ok(counts) => {
                    let _ = tx.send(counts).await;
                }
                Err(e) => tracing::debug!(error = %format!("{e:#}"), "no room occupancy"),
            }
        });
    }

    fn peers_in(&self, room: &str) -> Option<u32> {
        self.occupancy
            .iter()
            .find(|c| c.room == room)
            .map(|c| c.peers)
    }

    fn show_rooms(&self) {
        let rooms = self
            .rooms
            .iter()
            .map(|r| RoomView {
                id: r.clone(),
                name: r.clone(),
                detail: self
                    .peers_in(r)
                    .map(portal_ui::occupancy)
                    .unwrap_or_default(),
            })
            .collect();
        self.ui.apply(Update::Rooms(rooms));
    }
}

/// What a person reads when a room cannot be joined.
fn failure_text(code: ErrorCode, message: &str, had_password: bool) -> String {
    match code {
        ErrorCode::WrongPassword if had_password => "Wrong password for this room".to_owned(),
        ErrorCode::WrongPassword => "This room needs a password".to_owned(),
        ErrorCode::RoomFull => "The room is full".to_owned(),
        ErrorCode::PasswordMismatch => {
            "This room is open to anyone, but this kiosk has a password for it".to_owned()
        }
        ErrorCode::InvalidRoomName => "This room name is not valid".to_owned(),
        ErrorCode::InvalidName => "The rooms server does not accept this kiosk's name".to_owned(),
        ErrorCode::UnsupportedProtocol => {
            "The rooms server speaks another version than this kiosk: update one of them".to_owned()
        }
        _ => message.to_owned(),
    }
}

/// One occupancy question over a short connection of its own.
async fn occupancy(server: &str, query: &RoomsQuery) -> anyhow::Result<Vec<RoomOccupancy>> {
    let mut config = TransportConfig::new(server);
    config.connect_timeout = Duration::from_secs(5);
    let (transport, mut events) = signaling::start(config)?;
    transport.connect();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = events.recv().await {
            match event {
                TransportEvent::Opened => transport.send(query.opened())?,
                TransportEvent::Message(msg) => match query.on_message(msg) {
                    QueryStep::Send(reply) => transport.send(reply)?,
                    QueryStep::Done(counts) => return Ok(counts),
                    QueryStep::Failed { code, message } => {
                        anyhow::bail!("the server refused: {code} {message}")
                    }
                    _ => {}
                },
                TransportEvent::Closed { reason } => anyhow::bail!("{reason}"),
                _ => {}
            }
        }
        anyhow::bail!("the transport stopped")
    })
    .await;
    transport.shutdown().await;
    answer.context("no answer in time")?
}

/// The board's devices as the settings page lists them (ids; the default first).
fn device_lists(devices: &[portal_board::DeviceInfo], chosen: &Devices) -> portal_ui::Devices {
    use portal_board::DeviceKind;
    let ids = |kind: DeviceKind| -> Vec<String> {
        devices
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.id.clone())
            .collect()
    };
    let (cameras, microphones, speakers) = (
        ids(DeviceKind::Camera),
        ids(DeviceKind::Microphone),
        ids(DeviceKind::Speaker),
    );
    let pick = |chosen: &Option<String>, list: &[String]| {
        chosen
            .clone()
            .or_else(|| list.first().cloned())
            .unwrap_or_default()
    };
    portal_ui::Devices {
        camera: pick(&chosen.camera, &cameras),
        microphone: pick(&chosen.microphone, &microphones),
        speaker: pick(&chosen.speaker, &speakers),
        cameras,
        microphones,
        speakers,
    }
}

/// The address this kiosk reaches the rooms server from (no packet is sent).
pub(crate) fn local_address(server: &str) -> String {
    let host = server
        .split_once("://")
        .map_or(server, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let with_port = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(&with_port)?;
            s.local_addr()
        })
        .map_or_else(|_| "unknown".to_owned(), |a| a.ip().to_string())
}

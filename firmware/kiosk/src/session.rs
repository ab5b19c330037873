//! The session task: the one owner of the [`Engine`], and the I/O it asks for.
//!
//! Inputs arrive on three channels and a timer: signaling events (from
//! `portal_net::signaling`), link events (one [`crate::link`] task per peer), requests of
//! the status endpoint, and the engine's own wake-up time. After each, every pending
//! [`Output`] is carried out: messages to the server, commands to links, file I/O in the
//! download directory. Decisions (who offers, what a transfer needs, when to restart
//! ICE) are the engine's; this file only translates.
//!
//! The signaling client already says `hello`/`join` and reconnects with backoff by
//! itself, so the engine's `Connect` and its `hello`/`join` messages are not sent again;
//! the client's events are fed to the engine as the server messages they stand for.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use portal_board::{BoardFacts, Sink};
use portal_engine::{
    Engine, EngineConfig, Event, FileAction, Input, OfferRole, Output, TransferState,
};
use portal_media::{Codec as MediaCodec, Sender};
use portal_net::signaling::{SignalingEvent, SignalingHandle};
use portal_net::{Codec, Negotiation, Slot};
use portal_proto::channel::TransferSide;
use portal_proto::{ClientMessage, PROTOCOL_VERSION, PeerId, ServerMessage};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::files::FileStore;
use crate::link::{self, Command, Link, LinkEvent, LinkSetup};

/// What the status endpoint asks of the session.
#[derive(Debug)]
pub(crate) enum Request {
    Status(oneshot::Sender<Value>),
    Chat {
        text: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Snapshot {
        peer: Option<PeerId>,
        reply: oneshot::Sender<Result<PathBuf, String>>,
    },
    /// Accept or decline an offered file (policy `ask`).
    Decide {
        peer: Option<PeerId>,
        id: u32,
        accept: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Offer a file on disk to a peer.
    SendFile {
        peer: PeerId,
        path: PathBuf,
        reply: oneshot::Sender<Result<u32, String>>,
    },
    /// A tap on the touch screen that concerns the call.
    Ui(portal_ui::UiEvent),
}

/// The media side every link shares.
#[derive(Clone, Debug)]
pub(crate) struct Media {
    pub sender: Sender,
    pub speaker: Sink,
    pub facts: BoardFacts,
    /// Whether the microphone and the camera go out (mute and camera off).
    pub gates: Gates,
}

/// Mute and camera-off: samples of a closed gate are not handed to any peer.
#[derive(Clone, Debug)]
pub(crate) struct Gates {
    pub audio: Arc<AtomicBool>,
    pub video: Arc<AtomicBool>,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            audio: Arc::new(AtomicBool::new(true)),
            video: Arc::new(AtomicBool::new(true)),
        }
    }
}

/// How links build their peer connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NetSettings {
    pub udp_ports: Option<(u16, u16)>,
    pub ice_timeouts: Option<portal_net::IceTimeouts>,
    /// The congestion controller's bounds (the encoder's too).
    pub bitrate: portal_engine::BitrateConfig,
}

/// Where the session finds what it needs.
pub(crate) struct SessionSetup {
    pub engine: EngineConfig,
    pub signaling: SignalingHandle,
    pub signaling_events: mpsc::Receiver<SignalingEvent>,
    pub requests: mpsc::Receiver<Request>,
    pub media: Media,
    pub files: FileStore,
    pub snapshot_dir: PathBuf,
    /// When the kiosk started connecting to the room (join-to-first-frame figures).
    pub join_started_unix_ms: u64,
    pub net: NetSettings,
    /// The touch screen, when there is one.
    pub ui: Option<portal_ui::UiHandle>,
}

struct Session {
    engine: Engine,
    signaling: SignalingHandle,
    media: Media,
    files: FileStore,
    snapshot_dir: PathBuf,
    join_started_unix_ms: u64,
    net: NetSettings,
    ui: Option<crate::display::CallView>,
    links: HashMap<PeerId, Link>,
    link_tx: mpsc::Sender<(PeerId, u64, LinkEvent)>,
    serial: u64,
    snapshots: u64,
    connected: bool,
    /// Where each received file landed, by `(peer, id)`.
    stored: HashMap<(PeerId, u32), PathBuf>,
}

/// Wall-clock ms since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Runs until `shutdown` resolves, then leaves the room and closes every peer.
pub(crate) async fn run(setup: SessionSetup, shutdown: impl Future<Output = ()>) {
    let SessionSetup {
        engine,
        signaling,
        mut signaling_events,
        mut requests,
        media,
        files,
        snapshot_dir,
        join_started_unix_ms,
        net,
        ui,
    } = setup;
    let (link_tx, mut link_rx) = mpsc::channel(1024);
    let mut engine = Engine::new(engine);
    engine.set_existing_files(files.existing());
    let mut s = Session {
        engine,
        signaling,
        media,
        files,
        snapshot_dir,
        join_started_unix_ms,
        net,
        ui: ui.map(crate::display::CallView::new),
        links: HashMap::new(),
        link_tx,
        serial: 0,
        snapshots: 0,
        connected: false,
        stored: HashMap::new(),
    };
    tokio::pin!(shutdown);
    let mut signaling_open = true;
    let mut ui_tick = tokio::time::interval(std::time::Duration::from_millis(200));
    ui_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        s.flush();
        let wake = s.engine.poll_timeout();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            event = signaling_events.recv(), if signaling_open => {
                if let Some(event) = event {
                    s.signaling_event(event);
                } else {
                    // The client has stopped for good; keep serving the status endpoint.
                    signaling_open = false;
                    s.connected = false;
                }
            }
            Some((peer, serial, event)) = link_rx.recv() => s.link_event(peer, serial, event),
            Some(request) = requests.recv() => s.request(request),
            () = sleep => s.engine.handle_timeout(Instant::now()),
            _ = ui_tick.tick(), if s.ui.is_some() => s.show(),
        }
    }
    tracing::info!("leaving the room");
    s.signaling.leave().await;
    let mut open = s.links.len();
    for (_, link) in s.links.drain() {
        link.send(Command::Stop);
    }
    // Give the links a moment to close their connections (the browsers then see them go).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while open > 0 {
        match tokio::time::timeout_at(deadline, link_rx.recv()).await {
            Ok(Some((_, _, LinkEvent::Ended))) => open -= 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

impl Session {
    fn signaling_event(&mut self, event: SignalingEvent) {
        let now = Instant::now();
        let server = |msg| Input::Server(msg);
        match event {
            SignalingEvent::Welcome {
                peer_id,
                resumed,
                ice_servers,
                server_time,
                ..
            } => {
                self.engine.handle(now, Input::SignalingOpened);
                self.engine.handle(
                    now,
                    server(ServerMessage::Welcome {
                        protocol: PROTOCOL_VERSION,
                        peer_id,
                        server_time,
                        ice_servers,
                        resume_token: String::new(),
                        resumed,
                    }),
                );
            }
            SignalingEvent::Joined {
                room,
                peer_id,
                peers,
                watch,
                doc_token,
            } => {
                self.connected = true;
                self.engine.handle(
                    now,
                    server(ServerMessage::Joined {
                        room,
                        peer_id,
                        peers,
                        watch,
                        doc_token,
                    }),
                );
            }
            SignalingEvent::PeerJoined(peer) => {
                self.engine
                    .handle(now, server(ServerMessage::PeerJoined { peer }));
            }
            SignalingEvent::PeerLeft(peer_id) => {
                self.engine
                    .handle(now, server(ServerMessage::PeerLeft { peer_id }));
            }
            SignalingEvent::Signal { from, data } => {
                self.engine
                    .handle(now, server(ServerMessage::Signal { from, data }));
            }
            SignalingEvent::ServerError { code, message } => {
                self.engine
                    .handle(now, server(ServerMessage::Error { code, message }));
            }
            SignalingEvent::Disconnected { reason, retry_in } => {
                tracing::info!(%reason, ?retry_in, "signaling dropped");
                self.connected = false;
                self.engine.handle(now, Input::SignalingClosed);
            }
            SignalingEvent::Stopped(error) => {
                self.connected = false;
                if let Some(e) = error {
                    tracing::error!(error = %e, "signaling stopped for good");
                } else {
                    tracing::info!("signaling stopped");
                }
            }
            _ => {}
        }
    }

    fn link_event(&mut self, peer: PeerId, serial: u64, event: LinkEvent) {
        if self.links.get(&peer).is_none_or(|l| l.serial != serial) {
            return;
        }
        let now = Instant::now();
        let input = match event {
            LinkEvent::Signal(data) => {
                if let Err(e) = self.engine.send_signal(now, peer, data) {
                    tracing::warn!(%peer, error = %e, "signal not relayed");
                }
                return;
            }
            LinkEvent::State(state) => Input::Connection { peer, state },
            LinkEvent::ChannelOpened(channel) => Input::ChannelOpened { peer, channel },
            LinkEvent::ChannelClosed(channel) => Input::ChannelClosed { peer, channel },
            LinkEvent::ChatText(text) => Input::ChatText { peer, text },
            LinkEvent::FileText(text) => Input::FileText { peer, text },
            LinkEvent::FileBinary(frame) => Input::FileBinary { peer, frame },
            LinkEvent::FileBuffered(amount) => Input::FileBuffered { peer, amount },
            LinkEvent::AudioLevel(level) => Input::AudioLevel { peer, level },
            LinkEvent::SendEstimate(bits_per_second) => Input::SendEstimate {
                peer,
                bits_per_second,
            },
            LinkEvent::Ended => {
                self.links.remove(&peer);
                Input::Connection {
                    peer,
                    state: portal_engine::ConnectionState::Closed,
                }
            }
        };
        self.engine.handle(now, input);
    }

    /// Carries out every pending engine output.
    fn flush(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            self.output(output);
        }
    }

    fn output(&mut self, output: Output) {
        match output {
            Output::Send(msg) => self.send(msg),
            Output::StartPeer { peer, name, role } => self.start_peer(peer, &name, role),
            Output::StopPeer { peer } => {
                if let Some(link) = self.links.remove(&peer) {
                    link.send(Command::Stop);
                }
            }
            Output::RestartIce { peer } => self.to_link(peer, Command::RestartIce),
            Output::VideoBitrate { kbps } => {
                let applied = self.media.sender.set_bitrate(kbps);
                tracing::info!(kbps = applied, "video bitrate");
            }
            Output::Signal { from, data } => self.to_link(from, Command::Signal(data)),
            Output::Chat { peer, text } => self.to_link(peer, Command::Chat(text)),
            Output::File { peer, action } => self.file_action(peer, action),
            Output::Event(event) => log_event(&event),
            // `Connect`: the signaling client connects and reconnects by itself.
            _ => {}
        }
    }

    fn send(&self, msg: ClientMessage) {
        match msg {
            ClientMessage::Signal { to, data } => {
                let signaling = self.signaling.clone();
                tokio::spawn(async move {
                    if let Err(e) = signaling.signal(to, data).await {
                        tracing::debug!(%to, error = %e, "signal not sent");
                    }
                });
            }
            // hello, join, leave and pings are the signaling client's own business.
            other => tracing::trace!(?other, "left to the signaling client"),
        }
    }

    fn to_link(&self, peer: PeerId, command: Command) {
        if let Some(link) = self.links.get(&peer) {
            link.send(command);
        } else {
            tracing::debug!(%peer, "no link for this peer");
        }
    }

    fn start_peer(&mut self, peer: PeerId, name: &str, role: OfferRole) {
        if let Some(old) = self.links.remove(&peer) {
            old.send(Command::Stop);
        }
        self.serial += 1;
        let negotiation = match role {
            OfferRole::Offerer => Negotiation::Offer,
            OfferRole::Answerer => Negotiation::Answer,
        };
        tracing::info!(%peer, name, ?negotiation, "starting a peer connection");
        let link = link::start(LinkSetup {
            remote: peer,
            negotiation,
            ice_servers: self.engine.ice_servers().to_vec(),
            sender: self.media.sender.clone(),
            speaker: self.media.speaker.clone(),
            facts: self.media.facts.clone(),
            events: self.link_tx.clone(),
            serial: self.serial,
            net: self.net,
            gates: self.media.gates.clone(),
            frames: self.ui.as_ref().map(|ui| ui.frame_route(peer)),
        });
        self.links.insert(peer, link);
    }

    fn file_action(&mut self, peer: PeerId, action: FileAction) {
        let now = Instant::now();
        match action {
            FileAction::SendText(text) => self.to_link(peer, Command::FileText(text)),
            FileAction::SendBinary(frame) => self.to_link(peer, Command::FileBinary(frame)),
            FileAction::Read { id, offset, len } => {
                let input = match self.files.read(peer, id, offset, len) {
                    Ok(bytes) => Input::FileData { peer, id, bytes },
                    Err(e) => Input::FileReadFailed {
                        peer,
                        id,
                        reason: format!("{e:#}"),
                    },
                };
                self.engine.handle(now, input);
            }
            FileAction::Create { id, temp } => {
                if let Err(e) = self.files.create(peer, id, &temp) {
                    self.store_failed(peer, id, &e);
                }
            }
            FileAction::Write { id, offset, bytes } => {
                if let Err(e) = self.files.write(peer, id, offset, &bytes) {
                    self.store_failed(peer, id, &e);
                }
            }
            FileAction::Commit { id, temp, name } => {
                match self.files.commit(peer, id, &temp, &name) {
                    Ok(path) => {
                        tracing::info!(%peer, id, path = %path.display(), "file received");
                        self.stored.insert((peer, id), path);
                        self.engine.handle(now, Input::FileStored { peer, id });
                    }
                    Err(e) => self.store_failed(peer, id, &e),
                }
            }
            FileAction::Discard { id, temp } => self.files.discard(peer, id, &temp),
            FileAction::Changed { side, id } => {
                if side == TransferSide::Sender
                    && self
                        .engine
                        .transfer(peer, side, id)
                        .is_none_or(|t| t.state.is_final())
                {
                    self.files.forget_outgoing(peer, id);
                }
            }
            FileAction::Ask { id } => {
                tracing::info!(%peer, id, "a file offer waits for POST /files/{peer}-{id}/accept or /decline");
            }
        }
    }

    fn store_failed(&mut self, peer: PeerId, id: u32, error: &anyhow::Error) {
        tracing::warn!(%peer, id, error = %format!("{error:#}"), "storing a received file failed");
        self.engine.handle(
            Instant::now(),
            Input::FileStoreFailed {
                peer,
                id,
                reason: "storing the file failed".to_owned(),
            },
        );
    }

    fn request(&mut self, request: Request) {
        match request {
            Request::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Request::Chat { text, reply } => {
                let result = self
                    .engine
                    .send_chat(wall_ms(), &text)
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            Request::Snapshot { peer, reply } => {
                let _ = reply.send(self.snapshot(peer).map_err(|e| format!("{e:#}")));
            }
            Request::Decide {
                peer,
                id,
                accept,
                reply,
            } => {
                let result = self.decide(peer, id, accept);
                let _ = reply.send(result);
            }
            Request::SendFile { peer, path, reply } => {
                let result = self.send_file(peer, path).map_err(|e| format!("{e:#}"));
                let _ = reply.send(result);
            }
            Request::Ui(event) => self.ui_event(event),
        }
    }

    /// A tap that concerns the call; state the UI mirrors is reported back by `show`.
    fn ui_event(&mut self, event: portal_ui::UiEvent) {
        use portal_ui::UiEvent;
        let result = match event {
            UiEvent::Pin(peer) => {
                self.engine.pin(peer.map(PeerId));
                Ok(())
            }
            UiEvent::SendChat(text) => self
                .engine
                .send_chat(wall_ms(), &text)
                .map_err(|e| e.to_string()),
            UiEvent::AcceptFile(id) => self.decide_listed(&id, true),
            UiEvent::DeclineFile(id) => self.decide_listed(&id, false),
            UiEvent::SetMicMuted(muted) => {
                self.media.gates.audio.store(!muted, Ordering::Relaxed);
                self.media_state_changed();
                Ok(())
            }
            UiEvent::SetCameraOff(off) => {
                self.media.gates.video.store(!off, Ordering::Relaxed);
                if !off {
                    // The peers' decoders start again from a keyframe.
                    for codec in [MediaCodec::H264, MediaCodec::Vp8] {
                        self.media.sender.force_keyframe(codec);
                    }
                }
                self.media_state_changed();
                Ok(())
            }
            UiEvent::OpenFile(id) => {
                if let Some(ui) = &mut self.ui {
                    ui.open_file(&id, &self.stored);
                }
                Ok(())
            }
            other => {
                tracing::debug!(?other, "not a call event");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = e, "touch action failed");
        }
        self.show();
    }

    /// Accepts or declines the file listed as `PEER-ID`.
    fn decide_listed(&mut self, id: &str, accept: bool) -> Result<(), String> {
        let (peer, n) = crate::status::parse_file_id(id).ok_or_else(|| format!("no file {id}"))?;
        self.decide(peer, n, accept)
    }

    fn media_state_changed(&mut self) {
        let state = portal_engine::MediaState {
            audio: self.media.gates.audio.load(Ordering::Relaxed),
            video: self.media.gates.video.load(Ordering::Relaxed),
            screen: false,
            recording: false,
        };
        self.engine.set_media_state(state);
    }

    /// Brings the touch screen up to date (only what changed is sent).
    fn show(&mut self) {
        let Some(ui) = &mut self.ui else { return };
        let status = if self.connected && self.engine.is_joined() {
            portal_ui::CallStatus::Connected
        } else if self.engine.me().is_some() {
            portal_ui::CallStatus::Reconnecting
        } else {
            portal_ui::CallStatus::Connecting
        };
        let links = &self.links;
        ui.show(
            &self.engine,
            status,
            |peer| links.get(&peer).map(|l| Arc::clone(&l.shared)),
            &self.media.gates,
        );
    }

    fn decide(&mut self, peer: Option<PeerId>, id: u32, accept: bool) -> Result<(), String> {
        let peer = if let Some(peer) = peer {
            peer
        } else {
            let waiting: Vec<PeerId> = self
                .engine
                .transfers()
                .into_iter()
                .filter(|(_, t)| {
                    t.id == id
                        && t.side == TransferSide::Receiver
                        && t.state == TransferState::Offered
                })
                .map(|(p, _)| p)
                .collect();
            match waiting.as_slice() {
                [one] => *one,
                [] => return Err(format!("no offered file {id}")),
                _ => return Err(format!("several offers have id {id}: use PEER-{id}")),
            }
        };
        let result = if accept {
            self.engine.accept_file(peer, id)
        } else {
            self.engine.decline_file(peer, id)
        };
        result.map_err(|e| e.to_string())
    }

    fn send_file(&mut self, peer: PeerId, path: PathBuf) -> anyhow::Result<u32> {
        let meta = std::fs::metadata(&path).with_context(|| format!("{}", path.display()))?;
        if !meta.is_file() {
            return Err(anyhow!("{} is not a file", path.display()));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("{} has no usable file name", path.display()))?
            .to_owned();
        let id = self
            .engine
            .send_file(peer, &name, meta.len(), "application/octet-stream")?;
        self.files.add_outgoing(peer, id, path);
        Ok(id)
    }

    fn snapshot(&mut self, peer: Option<PeerId>) -> anyhow::Result<PathBuf> {
        let peer = peer
            .or_else(|| self.engine.stage().map(|(p, _)| p))
            .or_else(|| self.engine.peers().first().map(|p| p.id))
            .ok_or_else(|| anyhow!("no peer in the room"))?;
        let link = self
            .links
            .get(&peer)
            .ok_or_else(|| anyhow!("no peer {peer}"))?;
        let png = link.shared.snapshot_png()?;
        std::fs::create_dir_all(&self.snapshot_dir)
            .with_context(|| format!("creating {}", self.snapshot_dir.display()))?;
        self.snapshots += 1;
        let path = self
            .snapshot_dir
            .join(format!("peer-{peer}-{}.png", self.snapshots));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    fn status(&self) -> Value {
        let peers: Vec<Value> = self
            .engine
            .peers()
            .into_iter()
            .map(|p| {
                let link = self.links.get(&p.id);
                let stats = |slot| link.and_then(|l| l.shared.receiver_stats(slot));
                let video = stats(Slot::Camera);
                let audio = stats(Slot::Audio);
                let screen = stats(Slot::Screen);
                let state = self
                    .engine
                    .peer_connection(p.id)
                    .map_or("none".to_owned(), |s| format!("{s:?}").to_lowercase());
                let sending = link.and_then(|l| {
                    *l.shared
                        .send_video
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                });
                json!({
                    "id": p.id.0,
                    "name": p.name,
                    "role": format!("{:?}", p.role).to_lowercase(),
                    "offer": format!("{:?}", p.offer).to_lowercase(),
                    "state": state,
                    "sendingVideo": sending.map(|c| c.to_string()),
                    "media": self.engine.peer_media(p.id).map(|m| json!({"audio": m.audio, "video": m.video, "screen": m.screen})),
                    "iceRestarts": link.map_or(0, |l| l.shared.ice_restarts.load(std::sync::atomic::Ordering::Relaxed)),
                    "sendEstimateKbps": link.map(|l| l.shared.send_estimate.load(std::sync::atomic::Ordering::Relaxed) / 1000),
                    "video": {
                        "codec": video.map(|(c, _)| codec_name(c)),
                        "framesDecoded": video.map_or(0, |(_, s)| s.frames_decoded),
                        "width": video.map_or(0, |(_, s)| s.width),
                        "height": video.map_or(0, |(_, s)| s.height),
                        "packets": video.map_or(0, |(_, s)| s.packets_in),
                        "firstFrameUnixMs": video.map(|(_, s)| s.first_frame_unix_ms).filter(|t| *t > 0),
                    },
                    "audio": {
                        "codec": audio.map(|(c, _)| codec_name(c)),
                        "packetsDecoded": audio.map_or(0, |(_, s)| s.audio_decoded),
                        "packets": audio.map_or(0, |(_, s)| s.packets_in),
                    },
                    "screen": {
                        "codec": screen.map(|(c, _)| codec_name(c)),
                        "framesDecoded": screen.map_or(0, |(_, s)| s.frames_decoded),
                    },
                })
            })
            .collect();
        let sender = &self.media.sender;
        let video_codecs = [MediaCodec::H264, MediaCodec::Vp8];
        let running: Vec<MediaCodec> = video_codecs
            .into_iter()
            .filter(|c| sender.stats(*c).running)
            .collect();
        let frames: u64 = video_codecs.iter().map(|c| sender.stats(*c).samples).sum();
        let chat: Vec<Value> = self
            .engine
            .chat()
            .map(|c| json!({"from": c.from, "text": c.text, "mine": c.peer.is_none()}))
            .collect();
        let files: Vec<Value> = self
            .engine
            .transfers()
            .into_iter()
            .map(|(peer, t)| {
                json!({
                    "id": format!("{peer}-{}", t.id),
                    "peer": peer.0,
                    "direction": match t.side { TransferSide::Sender => "out", TransferSide::Receiver => "in" },
                    "offeredName": t.offered_name,
                    "name": t.stored_name.clone().unwrap_or_else(|| t.offered_name.clone()),
                    "path": self.stored.get(&(peer, t.id)).map(|p| p.display().to_string()),
                    "size": t.size,
                    "transferred": t.transferred,
                    "sha256": t.sha256,
                    "state": transfer_state(&t.state),
                })
            })
            .collect();
        json!({
            "room": self.engine.config().room,
            "name": self.engine.config().name,
            "me": self.engine.me().map(|p| p.0),
            "connected": self.connected && self.engine.is_joined(),
            "joinStartedUnixMs": self.join_started_unix_ms,
            "stage": self.engine.stage().map(|(p, _)| p.0),
            "peers": peers,
            "sending": {
                "videoCodec": running.first().map(|c| codec_name(*c)),
                "framesEncoded": frames,
                "bitrate": sender.bitrate(),
                "encoders": running.len(),
                "encoderElements": running.iter().filter_map(|c| sender.encoder_element(*c)).collect::<Vec<_>>(),
                "audioFrames": sender.stats(MediaCodec::Opus).samples,
            },
            "chat": chat,
            "files": files,
            "filesDir": self.files.dir().display().to_string(),
        })
    }
}

fn codec_name(codec: MediaCodec) -> &'static str {
    match codec {
        MediaCodec::H264 => Codec::H264.mime_type(),
        MediaCodec::Vp8 => Codec::Vp8.mime_type(),
        _ => Codec::Opus.mime_type(),
    }
}

fn transfer_state(state: &TransferState) -> String {
    match state {
        TransferState::Offered => "offered".into(),
        TransferState::Transferring => "transferring".into(),
        TransferState::Finishing => "finishing".into(),
        TransferState::Complete => "complete".into(),
        TransferState::Declined(_) => "declined".into(),
        TransferState::Cancelled { .. } => "cancelled".into(),
        TransferState::Failed(_) => "failed".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Joined { me } => tracing::info!(%me, "in the room"),
        Event::Disconnected { retry_in } => tracing::info!(?retry_in, "disconnected"),
        Event::JoinFailed {
            code,
            message,
            retrying,
        } => tracing::warn!(%code, message, retrying, "join failed"),
        Event::PeerAdded(peer) => tracing::info!(%peer, "peer joined"),
        Event::PeerRemoved(peer) => tracing::info!(%peer, "peer left"),
        Event::Chat(entry) => tracing::info!(from = entry.from, text = entry.text, "chat"),
        Event::Stage(now) => tracing::debug!(?now, "stage"),
        other => tracing::debug!(?other, "engine event"),
    }
}

//! The session task: the one owner of a call's [`Engine`], and the I/O it asks for.
//!
//! Inputs arrive from the signaling transport (`portal_net::signaling`), the links (one
//! [`crate::link`] task per peer), the requests of the touch screen and the local endpoint
//! ([`Request`]), and the engine's own wake-up time. After each, every pending
//! [`Output`] is carried out: connecting and messages to the server, commands to links,
//! the media gates, file I/O in the download directory, and the engine's events to the
//! touch screen ([`CallView`]) and to whoever watches the call state. Decisions (hello and
//! join, what is final, who offers, which offer a bare id means, whose picture a snapshot
//! takes, what muting does) are the engine's; this file only translates. File transfers'
//! glue is in [`transfers`]; their disk I/O runs on the file worker's thread.

mod editor;
mod requests;
mod transfers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use portal_engine::{CallState, Engine, EngineConfig, Event, Input, Output};
use portal_net::Negotiation;
use portal_net::signaling::{self, SignalingTransport, TransportConfig, TransportEvent};
use portal_proto::PeerId;
use portal_proto::media::{Codec, ConnectionState};
use tokio::sync::{mpsc, watch};

use crate::call_view::CallView;
use crate::config::Config;
use crate::files::{Budget, Credit, FileStore, FileWorker};
use crate::link::{self, Command, Link, LinkEvent, LinkSetup};
use crate::media::{Media, NetSettings};
use crate::presence::{Presence, Shared};
use crate::request::Request;
use crate::watch::{PlayerSetup, Watching};

use self::editor::Editor;

/// A call to start: which room, as whom, with what.
pub(crate) struct CallPlan<'a> {
    pub config: &'a Config,
    pub server: &'a str,
    pub room: &'a str,
    pub password: Option<String>,
    /// Retry a full room instead of giving up (headless: yes; a person choosing: no).
    pub wait_for_seat: bool,
    /// Where the call publishes what it is doing, and learns who presents.
    pub shared: &'a Shared,
}

/// A running call: its task and its state as the engine reports it.
pub(crate) struct Call {
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub state: watch::Receiver<CallState>,
}

/// Starts a session for `plan` on the current runtime; it runs until `shutdown` resolves.
pub(crate) fn start(
    plan: &CallPlan<'_>,
    media: Media,
    requests: mpsc::Receiver<Request>,
    ui: Option<portal_ui::UiHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Call> {
    let config = plan.config;
    let files = FileStore::new(config.files_dir.clone())?;
    let mut engine = EngineConfig::new(plan.room, config.name.clone());
    engine.password.clone_from(&plan.password);
    engine.files.policy = config.file_policy;
    engine.files.max_size = config.max_file_bytes;
    engine.seed = u64::from(std::process::id());
    engine.bitrate = config.bitrate;
    engine.wait_for_seat = plan.wait_for_seat;
    engine.device_token.clone_from(&config.device_token);
    tracing::info!(
        server = plan.server,
        room = plan.room,
        name = config.name,
        files = %config.files_dir.display(),
        policy = ?config.file_policy,
        "joining"
    );
    let (state, state_rx) = watch::channel(CallState::Connecting);
    let watch = PlayerSetup {
        speaker: media.speaker.clone(),
        facts: media.facts.clone(),
        frames: ui.clone().map(|ui| {
            Box::new(move || crate::call_view::watch_frames(ui.clone()))
                as Box<dyn Fn() -> portal_media::FrameSink + Send>
        }),
        web: config.watch.clone(),
    };
    let setup = SessionSetup {
        editor: Editor::new(plan.server, plan.room),
        watch,
        engine,
        transport: TransportConfig::new(plan.server),
        requests,
        media,
        files,
        snapshot_dir: config.snapshot_dir.clone(),
        shared_dir: config.shared_dir.clone(),
        join_started_unix_ms: unix_ms(),
        net: NetSettings::from_config(config),
        ui,
        state,
        shared: plan.shared.clone(),
    };
    Ok(Call {
        task: tokio::spawn(run(setup, shutdown)),
        state: state_rx,
    })
}

/// Where the session finds what it needs.
pub(crate) struct SessionSetup {
    pub engine: EngineConfig,
    /// The room's code editor, read along.
    pub editor: Editor,
    /// How the room's watch-together video is played.
    pub watch: PlayerSetup,
    pub transport: TransportConfig,
    pub requests: mpsc::Receiver<Request>,
    pub media: Media,
    pub files: FileStore,
    pub snapshot_dir: PathBuf,
    /// Besides received files, the folder whose files may be offered to peers.
    pub shared_dir: Option<PathBuf>,
    /// When the kiosk started connecting to the room (join-to-first-frame figures).
    pub join_started_unix_ms: u64,
    pub net: NetSettings,
    /// The touch screen, when there is one.
    pub ui: Option<portal_ui::UiHandle>,
    /// Told every change of the call state (the home screen and headless mode watch it).
    pub state: watch::Sender<CallState>,
    pub shared: Shared,
}

struct Session {
    engine: Engine,
    transport: SignalingTransport,
    media: Media,
    /// The download directory's I/O, on its own thread.
    disk: FileWorker,
    /// Per peer link, the received bytes it may still hand on before the disk catches up.
    budgets: HashMap<PeerId, Budget>,
    /// The budget the chunk being handled holds, until its write job takes it.
    credit: Option<Credit>,
    snapshot_dir: PathBuf,
    shared_dir: Option<PathBuf>,
    join_started_unix_ms: u64,
    net: NetSettings,
    view: Option<CallView>,
    state: watch::Sender<CallState>,
    shared: Shared,
    /// The speaker's volume, 0 to 1.
    volume: f32,
    editor: Editor,
    /// The document client's views, once it runs.
    doc_views: Option<watch::Receiver<portal_net::docs::DocView>>,
    watching: Watching,
    /// The origin of the local clock the watch players' samples use.
    epoch: Instant,
    links: HashMap<PeerId, Link>,
    link_tx: mpsc::Sender<(PeerId, u64, LinkEvent)>,
    serial: u64,
    snapshots: u64,
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

/// How often counters without events (link quality, transfer progress) are shown.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);

/// Runs the call until `shutdown` resolves, then leaves the room and closes every peer.
/// A refusal for good does not end it: the engine stays refused (and says so to the
/// endpoint) until the owner stops it.
pub(crate) async fn run(
    setup: SessionSetup,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let SessionSetup {
        engine,
        editor,
        watch: player_setup,
        transport,
        mut requests,
        media,
        files,
        snapshot_dir,
        shared_dir,
        join_started_unix_ms,
        net,
        ui,
        state,
        shared,
    } = setup;
    let mut presenter = shared.presenter.clone();
    let volume = shared.presence.borrow().volume;
    media.set_volume(volume);
    let (transport, mut transport_events) =
        signaling::start(transport).context("the signaling settings")?;
    let (link_tx, mut link_rx) = mpsc::channel(1024);
    let mut engine = Engine::new(engine);
    engine.set_existing_files(files.existing());
    engine.set_presenter(*presenter.borrow_and_update());
    let (disk, mut disk_done) = FileWorker::start(files)?;
    let mut s = Session {
        engine,
        transport,
        media,
        disk,
        budgets: HashMap::new(),
        credit: None,
        snapshot_dir,
        shared_dir,
        join_started_unix_ms,
        net,
        view: ui.map(CallView::new),
        state,
        shared,
        volume,
        editor,
        doc_views: None,
        watching: Watching::new(player_setup, volume),
        epoch: Instant::now(),
        links: HashMap::new(),
        link_tx,
        serial: 0,
        snapshots: 0,
    };
    tokio::pin!(shutdown);
    let mut watch_tick = tokio::time::interval(crate::watch::TICK);
    watch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut counters = tokio::time::interval(COUNTERS_EVERY);
    counters.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        s.flush();
        s.publish();
        let wake = s.engine.poll_timeout();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            Some(event) = transport_events.recv() => {
                let input = match event {
                    TransportEvent::Opened => Input::SignalingOpened,
                    TransportEvent::Message(msg) => Input::Server(msg),
                    TransportEvent::Closed { reason } => {
                        tracing::info!(%reason, "signaling connection closed");
                        Input::SignalingClosed
                    }
                    other => {
                        tracing::debug!(?other, "transport event");
                        continue;
                    }
                };
                s.engine.handle(Instant::now(), input);
            }
            Some((peer, serial, event)) = link_rx.recv() => s.link_event(peer, serial, event),
            Some(done) = disk_done.recv() => s.disk_done(done),
            Some(request) = requests.recv() => s.request(request),
            Ok(()) = presenter.changed() => {
                let peer = *presenter.borrow_and_update();
                s.engine.set_presenter(peer);
            }
            () = sleep => s.engine.handle_timeout(Instant::now()),
            Some(view) = editor::next_view(&mut s.doc_views) => s.doc_view(view),
            _ = watch_tick.tick() => s.watch_tick(),
            _ = counters.tick(), if s.view.is_some() => {
                if let Some(view) = &mut s.view {
                    view.refresh_counters(&s.engine, &s.links);
                }
            }
        }
    }
    tracing::info!("leaving the room");
    // Closing takes a moment (the document, the server, the peers, the disk); whoever
    // asks meanwhile (a status poll) hears "leaving" rather than a dropped answer.
    let closing = close(s, link_rx);
    tokio::pin!(closing);
    loop {
        tokio::select! {
            () = &mut closing => break,
            Some(request) = requests.recv() => {
                request.refuse(|| serde_json::json!({ "state": "leaving" }));
            }
        }
    }
    Ok(())
}

/// Leaves the room and closes everything the call opened.
async fn close(mut s: Session, mut link_rx: mpsc::Receiver<(PeerId, u64, LinkEvent)>) {
    s.engine.leave();
    s.editor.shutdown().await;
    s.flush();
    s.transport.shutdown().await;
    // Give the links a moment to close their connections (the browsers then see them go).
    let mut open = s.links.len();
    for (_, link) in s.links.drain() {
        link.send(Command::Stop);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while open > 0 {
        match tokio::time::timeout_at(deadline, link_rx.recv()).await {
            Ok(Some((_, _, LinkEvent::Ended))) => open -= 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    // The discards of unfinished transfers are queued; let the worker do them.
    s.disk.finish(Duration::from_secs(3)).await;
    let home = s.shared.presence.borrow().home();
    s.shared.publish(home);
}

impl Session {
    /// The call as the rest of the kiosk sees it.
    fn publish(&self) {
        self.shared
            .publish(Presence::from_engine(&self.engine, self.volume));
    }

    /// The speaker's volume, for every peer's audio now and later.
    fn set_volume(&mut self, volume: f32) {
        let volume = volume.clamp(0.0, 1.0);
        self.volume = volume;
        self.media.set_volume(volume);
        self.watching.set_volume(volume);
        for link in self.links.values() {
            link.send(Command::Volume(volume));
        }
        if let Some(view) = &self.view {
            view.volume(volume);
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
            LinkEvent::FileBinary(frame) => {
                self.file_binary(peer, frame);
                return;
            }
            LinkEvent::FileBuffered(amount) => Input::FileBuffered { peer, amount },
            LinkEvent::AudioLevel(level) => Input::AudioLevel { peer, level },
            LinkEvent::SendEstimate(bits_per_second) => Input::SendEstimate {
                peer,
                bits_per_second,
            },
            LinkEvent::Ended => {
                self.links.remove(&peer);
                self.budgets.remove(&peer);
                Input::Connection {
                    peer,
                    state: ConnectionState::Closed,
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
            Output::Connect => self.transport.connect(),
            Output::Disconnect => self.transport.disconnect(),
            Output::Send(msg) => {
                if let Err(e) = self.transport.send(msg) {
                    tracing::debug!(error = %e, "message not sent");
                }
            }
            Output::StartPeer { peer, name, role } => self.start_peer(peer, &name, role),
            Output::StopPeer { peer } => {
                self.budgets.remove(&peer);
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
            Output::LocalMedia(state) => self.media.gates.set(state),
            Output::Keyframe => {
                for codec in [Codec::H264, Codec::Vp8] {
                    self.media.sender.force_keyframe(codec);
                }
            }
            Output::Event(event) => self.event(&event),
            other => tracing::debug!(?other, "engine output not handled"),
        }
    }

    fn event(&mut self, event: &Event) {
        log_event(event);
        if let Event::Call(state) = event {
            self.state.send_replace(state.clone());
        }
        if let Event::Joined { .. } = event
            && let Some(views) = self.editor.joined(self.engine.doc_token())
        {
            self.doc_views = Some(views);
        }
        if let Some(view) = &mut self.view {
            view.on_event(&self.engine, &self.links, event);
        }
    }

    /// A new view of the room's document: the stage rule learns who presents, the touch
    /// screen what to show.
    fn doc_view(&mut self, view: portal_net::docs::DocView) {
        if !self.editor.update(view) {
            return;
        }
        self.engine.set_editor_presenter(self.editor.presenter());
        if let Some(view) = &mut self.view {
            view.editor(self.editor.ui_view());
        }
    }

    /// Samples the watch-together player and keeps it on the room's timeline.
    fn watch_tick(&mut self) {
        let now_ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
        let target = self.engine.watch_target(self.transport.server_now_ms());
        let was = self.watching.active();
        self.watching.tick(self.engine.watch(), target, now_ms);
        if was != self.watching.active()
            && let Some(view) = &mut self.view
        {
            view.watch_available(self.watching.active());
        }
    }

    fn to_link(&self, peer: PeerId, command: Command) {
        if let Some(link) = self.links.get(&peer) {
            link.send(command);
        } else {
            tracing::debug!(%peer, "no link for this peer");
        }
    }

    fn start_peer(&mut self, peer: PeerId, name: &str, role: portal_engine::OfferRole) {
        if let Some(old) = self.links.remove(&peer) {
            old.send(Command::Stop);
        }
        self.serial += 1;
        let negotiation = match role {
            portal_engine::OfferRole::Offerer => Negotiation::Offer,
            portal_engine::OfferRole::Answerer => Negotiation::Answer,
        };
        tracing::info!(%peer, name, ?negotiation, "starting a peer connection");
        let file_budget = crate::files::budget();
        self.budgets.insert(peer, file_budget.clone());
        let link = link::start(LinkSetup {
            file_budget,
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
            frames: self.view.as_ref().map(|v| v.frame_route(peer)),
        });
        self.links.insert(peer, link);
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Joined { me } => tracing::info!(%me, "in the room"),
        Event::Disconnected { retry_in, attempt } => {
            tracing::info!(?retry_in, attempt, "disconnected");
        }
        Event::JoinFailed {
            code,
            message,
            retrying,
        } => tracing::warn!(%code, message, retrying, "join failed"),
        Event::PeerAdded(peer) => tracing::info!(%peer, "peer joined"),
        Event::PeerRemoved(peer) => tracing::info!(%peer, "peer left"),
        Event::Chat(entry) => tracing::info!(from = entry.from, text = entry.text, "chat"),
        other => tracing::debug!(?other, "engine event"),
    }
}

//! A room member for portal-net's tests, made the way the kiosk makes one: the real
//! `portal_engine::Engine` decides (hello, join, reconnects, the offer rule), the real
//! signaling transport carries its messages. The tests build their own peer connections
//! from what it reports, in the shape they read best:
//!
//! - `Welcome` once in the room (our id and the ICE servers), then `PeerJoined` for each
//!   peer to build a connection to (the engine's `StartPeer`: offer when `offer`),
//!   `PeerLeft` for one to drop, `Signal` for descriptions and candidates to apply;
//! - `Disconnected` when the connection drops, `Stopped` when the room was left
//!   (`None`) or refused for good (`Some(code)`).

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use portal_engine::{CallState, Engine, EngineConfig, Event, Input, OfferRole, Output};
use portal_net::signaling::{self, SignalingTransport, TransportConfig, TransportEvent};
use portal_proto::{ErrorCode, IceServer, PeerId, PeerInfo, SignalData};
use tokio::sync::{mpsc, oneshot};

/// What the room reports, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum RoomEvent {
    Welcome {
        peer_id: PeerId,
        ice_servers: Vec<IceServer>,
    },
    /// A peer to connect to; `offer` says whether we offer.
    PeerJoined(PeerInfo, bool),
    PeerLeft(PeerId),
    Signal {
        from: PeerId,
        data: SignalData,
    },
    Disconnected,
    Stopped(Option<ErrorCode>),
}

#[derive(Debug)]
enum Command {
    Signal(PeerId, SignalData, oneshot::Sender<Result<(), String>>),
    Leave,
}

#[derive(Debug, Default)]
struct State {
    me: Option<PeerId>,
    joined: bool,
    stopped: bool,
}

/// The handle a test keeps; cheap to clone.
#[derive(Clone, Debug)]
pub struct Room {
    commands: mpsc::UnboundedSender<Command>,
    state: Arc<Mutex<State>>,
    transport: SignalingTransport,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// Joins `room` on the server at `url` (`ws://.../ws`) as kiosk `name`.
pub fn join(
    url: impl Into<String>,
    name: &str,
    room: &str,
    password: Option<&str>,
) -> (Room, mpsc::Receiver<RoomEvent>) {
    let mut config = EngineConfig::new(room, name);
    config.password = password.map(str::to_owned);
    let (transport, transport_events) =
        signaling::start(TransportConfig::new(url)).expect("a ws:// URL");
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, event_rx) = mpsc::channel(1024);
    let state = Arc::new(Mutex::new(State::default()));
    let task = tokio::spawn(run(
        Engine::new(config),
        transport.clone(),
        transport_events,
        command_rx,
        events,
        Arc::clone(&state),
    ));
    (
        Room {
            commands,
            state,
            transport,
            task: Arc::new(Mutex::new(Some(task))),
        },
        event_rx,
    )
}

impl Room {
    /// Relays our description or candidate to `to` (the engine checks the offer rule).
    pub async fn signal(&self, to: PeerId, data: SignalData) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Signal(to, data, tx))
            .map_err(|_| "the room has stopped".to_owned())?;
        rx.await.map_err(|_| "the room has stopped".to_owned())?
    }

    pub fn peer_id(&self) -> Option<PeerId> {
        self.with(|s| s.me)
    }

    pub fn is_joined(&self) -> bool {
        self.with(|s| s.joined)
    }

    pub fn clock_samples(&self) -> usize {
        self.transport.clock_samples()
    }

    pub fn clock_offset_ms(&self) -> f64 {
        self.transport.clock_offset_ms()
    }

    pub fn server_now_ms(&self) -> f64 {
        self.transport.server_now_ms()
    }

    /// Leaves (the others see `peerLeft` at once) and waits for the end.
    pub async fn leave(&self) {
        let _ = self.commands.send(Command::Leave);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

async fn run(
    mut engine: Engine,
    transport: SignalingTransport,
    mut transport_events: mpsc::Receiver<TransportEvent>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<RoomEvent>,
    state: Arc<Mutex<State>>,
) {
    let set = |f: &dyn Fn(&mut State)| f(&mut state.lock().unwrap_or_else(PoisonError::into_inner));
    loop {
        let mut stop = false;
        while let Some(output) = engine.poll_output() {
            let event = match output {
                Output::Connect => {
                    transport.connect();
                    None
                }
                Output::Disconnect => {
                    transport.disconnect();
                    None
                }
                Output::Send(msg) => {
                    let _ = transport.send(msg);
                    None
                }
                Output::StartPeer { peer, role, .. } => {
                    engine.peers().into_iter().find(|p| p.id == peer).map(|p| {
                        let info = PeerInfo {
                            id: p.id,
                            name: p.name.clone(),
                            role: p.role,
                        };
                        RoomEvent::PeerJoined(info, role == OfferRole::Offerer)
                    })
                }
                Output::StopPeer { peer } => Some(RoomEvent::PeerLeft(peer)),
                Output::Signal { from, data } => Some(RoomEvent::Signal { from, data }),
                Output::Event(Event::Joined { me }) => {
                    set(&|s| {
                        s.me = Some(me);
                        s.joined = true;
                    });
                    Some(RoomEvent::Welcome {
                        peer_id: me,
                        ice_servers: engine.ice_servers().to_vec(),
                    })
                }
                Output::Event(Event::Disconnected { .. }) => {
                    set(&|s| s.joined = false);
                    Some(RoomEvent::Disconnected)
                }
                Output::Event(Event::Call(CallState::Failed { code, .. })) => {
                    stop = true;
                    Some(RoomEvent::Stopped(Some(code)))
                }
                Output::Event(Event::Left) => {
                    stop = true;
                    Some(RoomEvent::Stopped(None))
                }
                _ => None,
            };
            if let Some(event) = event {
                let _ = events.send(event).await;
            }
        }
        if stop {
            set(&|s| {
                s.joined = false;
                s.stopped = true;
            });
            transport.shutdown().await;
            return;
        }
        let wake = engine.poll_timeout();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(event) = transport_events.recv() => {
                let input = match event {
                    TransportEvent::Opened => Input::SignalingOpened,
                    TransportEvent::Message(msg) => Input::Server(msg),
                    _ => Input::SignalingClosed,
                };
                engine.handle(Instant::now(), input);
            }
            command = commands.recv() => match command {
                Some(Command::Signal(to, data, reply)) => {
                    let result = if transport.is_open() {
                        engine
                            .send_signal(Instant::now(), to, data)
                            .map_err(|e| e.to_string())
                    } else {
                        Err("not connected".to_owned())
                    };
                    let _ = reply.send(result);
                }
                None | Some(Command::Leave) => engine.leave(),
            },
            () = sleep => engine.handle_timeout(Instant::now()),
        }
    }
}

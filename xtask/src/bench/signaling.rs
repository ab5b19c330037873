//! `cargo xtask bench signaling`: the signaling relay, Portal against a Socket.IO relay
//! (`xtask/peers/socketio-relay`, Node.js) with identical traffic in the same run.
//!
//! 500 WebSocket clients in 50 rooms of 10 say hello and join, then send ICE-candidate
//! signals to random peers in their own room. Each candidate string ends with the phase,
//! the sender and the send time (nanoseconds since the run began), so the receiving
//! client measures relay latency without any clock sync and gives the sender its
//! in-flight credit back.
//!
//! For each server, one after the other:
//! 1. RSS when idle, then once all clients are connected and joined;
//! 2. fixed load: 5,000 messages a second in total, open loop, spread evenly over the
//!    clients (p50 and p99 relay latency);
//! 3. saturation: closed loop, every client keeps at most 16 of its own messages in
//!    flight (delivered messages a second, p99).
//!
//! After each load phase the generator waits until everything sent has arrived (or a
//! time limit passes) and counts the rest as lost. The load generator is this process:
//! a multi-threaded runtime, one task per connection, frames built from pre-serialized
//! templates, and receivers that find the stamp without parsing the JSON.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use portal_proto::{ClientMessage, PROTOCOL_VERSION, Role, ServerMessage};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::server::{Server, cpu_ticks, status_kib};

const ROOMS: usize = 50;
const PER_ROOM: usize = 10;
const CLIENTS: usize = ROOMS * PER_ROOM;
/// Messages a second offered in the fixed-load phase, all clients together.
const FIXED_RATE: u32 = 5_000;
/// Own messages a client keeps in flight at most in the saturation phase.
const WINDOW: u64 = 16;
/// Handshakes under way at once while connecting.
const CONNECT_CONCURRENCY: usize = 50;
/// Other processes' CPU (% of one core) above which the report flags a run as noisy.
const NOISY_CPU_PCT: f64 = 15.0;
/// Open files the run needs: the clients' sockets plus some slack.
const FD_NEEDED: u64 = CLIENTS as u64 + 100;

/// Marks the stamp at the end of each candidate string.
const STAMP: &str = " x-stamp ";
/// A server-reflexive candidate as browsers send them; the stamp follows.
const CANDIDATE: &str = "candidate:842163049 1 udp 1677729535 192.0.2.7 54321 typ srflx \
                         raddr 10.0.0.2 rport 54321 generation 0 ufrag EEtu network-cost 999";

/// Phase indices in stamps and statistics.
const FIXED: usize = 0;
const SATURATE: usize = 1;

#[derive(Debug)]
struct Plan {
    /// Load before the measuring window opens (connections warm, queues settled).
    warmup: Duration,
    fixed: Duration,
    saturate: Duration,
    /// Longest wait for the messages still in flight after a phase.
    drain: Duration,
    /// Quiet time before each RSS reading.
    settle: Duration,
}

const FULL: Plan = Plan {
    warmup: Duration::from_secs(2),
    fixed: Duration::from_secs(10),
    saturate: Duration::from_secs(10),
    drain: Duration::from_secs(10),
    settle: Duration::from_secs(1),
};

const QUICK: Plan = Plan {
    warmup: Duration::from_millis(500),
    fixed: Duration::from_secs(2),
    saturate: Duration::from_secs(2),
    drain: Duration::from_secs(5),
    settle: Duration::from_millis(500),
};

/// Runs the signaling benchmark against Portal and a Socket.IO relay in the same run and
/// returns a Markdown table (also suitable for printing) plus a one-line verdict per
/// target.
pub(crate) fn signaling(server_bin: &Path, repo_root: &Path, quick: bool) -> Result<String> {
    check_fd_limit()?;
    if !server_bin.is_file() {
        bail!(
            "{} is missing: build portal-server first",
            server_bin.display()
        );
    }
    let relay_dir = repo_root.join("xtask/peers/socketio-relay");
    crate::setup::npm_ci(&relay_dir)?;
    let plan = if quick { &QUICK } else { &FULL };
    // One worker per core, like the server's runtime: the generator must keep up with
    // whichever server is faster.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
        .enable_all()
        .build()
        .context("load generator runtime")?;

    let portal = {
        let args = [
            "--max-peers",
            "16",
            "--msg-rate",
            "0",
            "--max-frame",
            "65536",
        ];
        let server = Server::portal(server_bin, &args, "info")?;
        eprintln!("signaling bench: {} on {}", server.name, server.addr);
        rt.block_on(measure(&server, Kind::Portal, plan))
            .context("signaling bench against Portal")?
    };
    let socketio = {
        let env = [("NODE_ENV", "production")];
        let server = Server::node("Socket.IO", &relay_dir, Path::new("server.js"), &env)?;
        eprintln!("signaling bench: {} on {}", server.name, server.addr);
        rt.block_on(measure(&server, Kind::SocketIo, plan))
            .context("signaling bench against the Socket.IO relay")?
    };
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(report(&portal, &socketio, plan))
}

/// Which wire protocol a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Portal's `/ws`: JSON objects tagged by `type`.
    Portal,
    /// Socket.IO 4 over Engine.IO 4, websocket transport: `42["event",payload]`.
    SocketIo,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Portal => "/ws",
            Kind::SocketIo => "/socket.io/?EIO=4&transport=websocket",
        }
    }

    /// The frame up to the candidate string, for a peer id already in JSON.
    fn signal_prefix(self, to: &str) -> String {
        match self {
            Kind::Portal => {
                format!(r#"{{"type":"signal","to":{to},"data":{{"candidate":{{"candidate":""#)
            }
            Kind::SocketIo => {
                format!(r#"42["signal",{{"to":{to},"data":{{"candidate":{{"candidate":""#)
            }
        }
    }

    /// The frame after the candidate string.
    fn signal_suffix(self) -> &'static str {
        match self {
            Kind::Portal => r#"","sdpMid":"0","sdpMLineIndex":0}}}"#,
            Kind::SocketIo => r#"","sdpMid":"0","sdpMLineIndex":0}}}]"#,
        }
    }

    /// Whether a frame that carries no stamp reports an error.
    fn is_error(self, text: &str) -> bool {
        match self {
            Kind::Portal => text.starts_with(r#"{"type":"error""#),
            Kind::SocketIo => text.starts_with(r#"42["failure""#) || text.starts_with("44"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The open-file limit

/// The clients' sockets live in this process and the servers inherit its limit, so the
/// soft open-file limit must cover them.
fn check_fd_limit() -> Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").context("read /proc/self/limits")?;
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .context("no open-file limit in /proc/self/limits")?;
    if soft == "unlimited" {
        return Ok(());
    }
    let soft: u64 = soft.parse().context("open-file limit")?;
    if soft < FD_NEEDED {
        bail!(
            "the open-file limit is {soft}, the signaling benchmark needs {FD_NEEDED}: \
             run `ulimit -n 4096` in this shell and try again"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// One server's measurement

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the clients are asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Idle,
    Fixed,
    Saturate,
    Stop,
}

#[derive(Debug, Default)]
struct PhaseStats {
    /// Measuring window, nanoseconds since `Shared::t0`: latency is recorded for
    /// messages sent in it, throughput counts messages delivered in it.
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    sent_in_window: AtomicU64,
    delivered_in_window: AtomicU64,
}

/// State every client task sees.
#[derive(Debug)]
struct Shared {
    t0: Instant,
    kind: Kind,
    /// Own messages in flight, by sender (saturation phase).
    inflight: Vec<AtomicU64>,
    /// Woken when a sender's message arrives somewhere.
    wake: Vec<Notify>,
    phases: [PhaseStats; 2],
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Connections that closed or failed before the end.
    dropped: AtomicU64,
}

impl Shared {
    fn new(kind: Kind) -> Shared {
        Shared {
            t0: Instant::now(),
            kind,
            inflight: (0..CLIENTS).map(|_| AtomicU64::new(0)).collect(),
            wake: (0..CLIENTS).map(|_| Notify::new()).collect(),
            phases: Default::default(),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            dropped: AtomicU64::new(0),
        }
    }

    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    fn error(&self, text: &str) {
        self.errors.fetch_add(1, Relaxed);
        if let Ok(mut first) = self.first_error.lock()
            && first.is_none()
        {
            *first = Some(text.chars().take(200).collect());
        }
    }

    /// Handles one text frame; true when it is an Engine.IO ping to answer.
    fn on_text(&self, text: &str, samples: &mut [Vec<u32>; 2]) -> bool {
        if let Some(at) = text.rfind(STAMP) {
            let stamp = &text[at + STAMP.len()..];
            let stamp = stamp.split('"').next().unwrap_or_default();
            let mut parts = stamp.split(':').map(str::parse::<u64>);
            if let (Some(Ok(phase)), Some(Ok(sender)), Some(Ok(ts))) =
                (parts.next(), parts.next(), parts.next())
                && (phase as usize) < self.phases.len()
                && (sender as usize) < CLIENTS
            {
                self.on_stamp(phase as usize, sender as usize, ts, samples);
            } else {
                self.error(text);
            }
            return false;
        }
        if self.kind == Kind::SocketIo && text == "2" {
            return true;
        }
        if self.kind.is_error(text) {
            self.error(text);
        }
        false
    }

    fn on_stamp(&self, phase: usize, sender: usize, ts: u64, samples: &mut [Vec<u32>; 2]) {
        let now = self.now_ns();
        let stats = &self.phases[phase];
        stats.received.fetch_add(1, Relaxed);
        if phase == SATURATE {
            self.inflight[sender].fetch_sub(1, Relaxed);
            self.wake[sender].notify_one();
        }
        let window = stats.start_ns.load(Relaxed)..stats.end_ns.load(Relaxed);
        if window.contains(&ts) {
            let us = now.saturating_sub(ts) / 1000;
            samples[phase].push(u32::try_from(us).unwrap_or(u32::MAX));
        }
        if window.contains(&now) {
            stats.delivered_in_window.fetch_add(1, Relaxed);
        }
    }

    fn count_sent(&self, phase: usize, ts: u64) {
        let stats = &self.phases[phase];
        stats.sent.fetch_add(1, Relaxed);
        if (stats.start_ns.load(Relaxed)..stats.end_ns.load(Relaxed)).contains(&ts) {
            stats.sent_in_window.fetch_add(1, Relaxed);
        }
    }
}

/// What one load phase measured.
#[derive(Debug, Clone, Default)]
struct PhaseResult {
    /// Messages a second sent in the window (the offered rate actually achieved).
    sent_per_s: f64,
    /// Messages a second delivered in the window.
    delivered_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    samples: usize,
    lost: u64,
    /// Server CPU in the window, % of one core.
    server_cpu_pct: f64,
    /// This process's CPU in the window, % of one core.
    gen_cpu_pct: f64,
    /// Server CPU time per delivered message, microseconds.
    server_us_per_msg: f64,
    /// CPU used by everything else on the machine in the window, % of one core.
    other_cpu_pct: f64,
}

/// Everything measured against one server.
#[derive(Debug, Clone, Default)]
struct Measured {
    kind: Option<Kind>,
    rss_idle_kib: u64,
    rss_joined_kib: u64,
    rss_after_kib: u64,
    hwm_kib: u64,
    connect_s: f64,
    fixed: PhaseResult,
    saturate: PhaseResult,
    errors: u64,
    first_error: Option<String>,
    dropped: u64,
}

impl Measured {
    fn rss_per_conn_kib(&self) -> f64 {
        (self.rss_joined_kib as f64 - self.rss_idle_kib as f64) / CLIENTS as f64
    }

    fn lost(&self) -> u64 {
        self.fixed.lost + self.saturate.lost
    }
}

async fn measure(server: &Server, kind: Kind, plan: &Plan) -> Result<Measured> {
    let pid = server.pid();
    let mut out = Measured {
        kind: Some(kind),
        ..Measured::default()
    };
    tokio::time::sleep(plan.settle).await;
    out.rss_idle_kib = status_kib(pid, "VmRSS:")?;

    let started = Instant::now();
    let conns = connect_all(kind, server.addr).await?;
    out.connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(plan.settle).await;
    out.rss_joined_kib = status_kib(pid, "VmRSS:")?;

    let shared = Arc::new(Shared::new(kind));
    let (mode_tx, mode_rx) = watch::channel(Mode::Idle);
    let ids: Vec<String> = conns.iter().map(|(_, id)| id.clone()).collect();
    let mut tasks = Vec::with_capacity(CLIENTS);
    for (me, (ws, _)) in conns.into_iter().enumerate() {
        let room = me / PER_ROOM;
        let targets = (room * PER_ROOM..(room + 1) * PER_ROOM)
            .filter(|&other| other != me)
            .map(|other| kind.signal_prefix(&ids[other]))
            .collect();
        tasks.push(tokio::spawn(client(
            ws,
            me,
            targets,
            Arc::clone(&shared),
            mode_rx.clone(),
        )));
    }

    out.fixed = phase(&shared, &mode_tx, Mode::Fixed, plan.fixed, plan, pid).await?;
    out.saturate = phase(&shared, &mode_tx, Mode::Saturate, plan.saturate, plan, pid).await?;
    out.rss_after_kib = status_kib(pid, "VmRSS:")?;
    out.hwm_kib = status_kib(pid, "VmHWM:")?;

    mode_tx.send_replace(Mode::Stop);
    let mut samples: [Vec<u32>; 2] = Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(mut own)) => {
                for (all, own) in samples.iter_mut().zip(&mut own) {
                    all.append(own);
                }
            }
            Ok(Err(e)) => bail!("a client task failed: {e}"),
            Err(_) => abort.abort(),
        }
    }
    for (result, samples) in [&mut out.fixed, &mut out.saturate]
        .into_iter()
        .zip(&mut samples)
    {
        samples.sort_unstable();
        result.samples = samples.len();
        result.p50_ms = percentile_ms(samples, 50.0);
        result.p99_ms = percentile_ms(samples, 99.0);
    }
    out.errors = shared.errors.load(Relaxed);
    out.first_error = shared.first_error.lock().ok().and_then(|e| e.clone());
    out.dropped = shared.dropped.load(Relaxed);
    Ok(out)
}

/// Runs one load phase: warm-up, the measuring window, then the drain.
async fn phase(
    shared: &Shared,
    mode_tx: &watch::Sender<Mode>,
    mode: Mode,
    length: Duration,
    plan: &Plan,
    pid: u32,
) -> Result<PhaseResult> {
    let idx = if mode == Mode::Fixed { FIXED } else { SATURATE };
    let stats = &shared.phases[idx];
    let start = shared.now_ns() + plan.warmup.as_nanos() as u64;
    stats.start_ns.store(start, Relaxed);
    stats
        .end_ns
        .store(start + length.as_nanos() as u64, Relaxed);
    mode_tx.send_replace(mode);

    tokio::time::sleep(plan.warmup).await;
    let server0 = cpu_ticks(pid)?;
    let gen0 = cpu_ticks(std::process::id())?;
    let machine0 = machine_busy_ticks()?;
    let t = Instant::now();
    tokio::time::sleep(length).await;
    let server1 = cpu_ticks(pid)?;
    let gen1 = cpu_ticks(std::process::id())?;
    let machine1 = machine_busy_ticks()?;
    let elapsed = t.elapsed().as_secs_f64();
    mode_tx.send_replace(Mode::Idle);

    // Drain: everything sent should arrive; what has not by the deadline is lost.
    let deadline = Instant::now() + plan.drain;
    let mut settled = 0;
    while Instant::now() < deadline && settled < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if stats.received.load(Relaxed) >= stats.sent.load(Relaxed) {
            settled += 1;
        } else {
            settled = 0;
        }
    }

    let window = length.as_secs_f64();
    let delivered = stats.delivered_in_window.load(Relaxed);
    let server_s = (server1 - server0) as f64 / CLK_TCK;
    let gen_s = (gen1 - gen0) as f64 / CLK_TCK;
    let machine_s = machine1.saturating_sub(machine0) as f64 / CLK_TCK;
    Ok(PhaseResult {
        sent_per_s: stats.sent_in_window.load(Relaxed) as f64 / window,
        delivered_per_s: delivered as f64 / window,
        lost: stats
            .sent
            .load(Relaxed)
            .saturating_sub(stats.received.load(Relaxed)),
        server_cpu_pct: 100.0 * server_s / elapsed,
        gen_cpu_pct: 100.0 * gen_s / elapsed,
        other_cpu_pct: (100.0 * (machine_s - server_s - gen_s) / elapsed).max(0.0),
        server_us_per_msg: if delivered == 0 {
            f64::NAN
        } else {
            1e6 * server_s / (delivered as f64 * elapsed / window)
        },
        ..PhaseResult::default()
    })
}

fn percentile_ms(sorted_us: &[u32], pct: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted_us.len() as f64 * pct / 100.0).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

/// Connects every client, says hello and joins its room; returns the sockets with each
/// client's peer id as JSON (a number for Portal, a string for Socket.IO).
async fn connect_all(kind: Kind, addr: SocketAddr) -> Result<Vec<(Ws, String)>> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut handles = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let gate = Arc::clone(&gate);
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            tokio::time::timeout(Duration::from_secs(20), connect_one(kind, addr, i))
                .await
                .context("no welcome or joined within 20 s")?
        }));
    }
    let mut out = Vec::with_capacity(CLIENTS);
    for (i, handle) in handles.into_iter().enumerate() {
        out.push(
            handle
                .await?
                .with_context(|| format!("client {i} of {CLIENTS}"))?,
        );
    }
    Ok(out)
}

async fn connect_one(kind: Kind, addr: SocketAddr, i: usize) -> Result<(Ws, String)> {
    let url = format!("ws://{addr}{}", kind.path());
    // Before every read tungstenite zero-fills up to `read_buffer_size` bytes (128 KiB
    // by default); with 500 sockets and small frames that memset dominated the
    // generator's profile.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
            .await
            .with_context(|| format!("connect {url}"))?;
    let name = format!("b{i}");
    let room = format!("bench-{}", i / PER_ROOM);
    match kind {
        Kind::Portal => {
            let hello = ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                name,
                role: Role::Browser,
                resume: None,
                device: None,
            };
            ws.send(Message::text(hello.to_json())).await?;
            let id = loop {
                match ServerMessage::parse(&next_text(&mut ws).await?)? {
                    ServerMessage::Welcome { peer_id, .. } => break peer_id,
                    ServerMessage::Error { code, message } => bail!("hello: {code}: {message}"),
                    _ => {}
                }
            };
            let join = ClientMessage::Join {
                room,
                password: None,
            };
            ws.send(Message::text(join.to_json())).await?;
            loop {
                match ServerMessage::parse(&next_text(&mut ws).await?)? {
                    ServerMessage::Joined { .. } => break,
                    ServerMessage::Error { code, message } => bail!("join: {code}: {message}"),
                    _ => {}
                }
            }
            Ok((ws, id.to_string()))
        }
        Kind::SocketIo => {
            let open = next_text(&mut ws).await?;
            if !open.starts_with('0') {
                bail!("expected an Engine.IO open packet, got {open:?}");
            }
            ws.send(Message::text("40")).await?;
            loop {
                let text = next_text(&mut ws).await?;
                if text.starts_with("40") {
                    break;
                }
                if text.starts_with("44") {
                    bail!("Socket.IO refused the connection: {text}");
                }
            }
            let hello = serde_json::json!(["hello", {"name": name, "role": "browser"}]);
            ws.send(Message::text(format!("42{hello}"))).await?;
            let welcome = sio_event(&mut ws, "welcome").await?;
            let id = welcome
                .get("peerId")
                .and_then(serde_json::Value::as_str)
                .context("welcome without a peerId")?
                .to_owned();
            let join = serde_json::json!(["join", {"room": room}]);
            ws.send(Message::text(format!("42{join}"))).await?;
            sio_event(&mut ws, "joined").await?;
            Ok((ws, serde_json::to_string(&id)?))
        }
    }
}

/// The next text frame (WebSocket pings are answered by tungstenite).
async fn next_text(ws: &mut Ws) -> Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => bail!("the server closed the connection: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the connection ended"),
        }
    }
}

/// Waits for Socket.IO event `name` and returns its payload, answering pings meanwhile.
async fn sio_event(ws: &mut Ws, name: &str) -> Result<serde_json::Value> {
    loop {
        let text = next_text(ws).await?;
        if text == "2" {
            ws.send(Message::text("3")).await?;
            continue;
        }
        let Some(body) = text.strip_prefix("42") else {
            continue;
        };
        let (event, payload): (String, serde_json::Value) =
            serde_json::from_str(body).with_context(|| format!("Socket.IO event {text:?}"))?;
        if event == name {
            return Ok(payload);
        }
        if event == "failure" {
            bail!("waiting for {name}: {payload}");
        }
    }
}

/// One connection's task for the whole run: sends as the mode says, receives, measures.
/// Returns the latency samples (microseconds) of the messages it received, by phase.
async fn client(
    mut ws: Ws,
    me: usize,
    targets: Vec<String>,
    shared: Arc<Shared>,
    mut mode_rx: watch::Receiver<Mode>,
) -> [Vec<u32>; 2] {
    let mut samples: [Vec<u32>; 2] = Default::default();
    let mut rng = SmallRng::seed_from_u64(me as u64);
    let mut mode = Mode::Idle;
    let mut ticks: Option<tokio::time::Interval> = None;
    let period = Duration::from_secs_f64(CLIENTS as f64 / f64::from(FIXED_RATE));
    let suffix = shared.kind.signal_suffix();
    let inflight = &shared.inflight[me];
    let wake = &shared.wake[me];
    let fail = |shared: &Shared| {
        shared.dropped.fetch_add(1, Relaxed);
    };
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if shared.on_text(text.as_str(), &mut samples)
                        && ws.send(Message::text("3")).await.is_err()
                    {
                        fail(&shared);
                        break;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    fail(&shared);
                    break;
                }
                Some(Ok(_)) => {}
            },
            changed = mode_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                mode = *mode_rx.borrow_and_update();
                ticks = None;
                match mode {
                    Mode::Stop => break,
                    Mode::Fixed => {
                        // Spread the clients over the period so they do not send in
                        // lockstep; a late tick is caught up so a busy machine does not
                        // quietly lower the offered rate.
                        let offset = period.mul_f64(rng.random::<f64>());
                        let mut interval = tokio::time::interval_at(
                            tokio::time::Instant::now() + offset,
                            period,
                        );
                        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                        ticks = Some(interval);
                    }
                    Mode::Idle | Mode::Saturate => {}
                }
            },
            n = ready(mode, &mut ticks, wake, inflight) => {
                let phase = if mode == Mode::Fixed { FIXED } else { SATURATE };
                let mut ok = true;
                for _ in 0..n {
                    let to = &targets[rng.random_range(0..targets.len())];
                    if phase == SATURATE {
                        inflight.fetch_add(1, Relaxed);
                    }
                    let ts = shared.now_ns();
                    let mut frame = String::with_capacity(to.len() + CANDIDATE.len() + 64);
                    frame.push_str(to);
                    frame.push_str(CANDIDATE);
                    let _ = write!(frame, "{STAMP}{phase}:{me}:{ts}");
                    frame.push_str(suffix);
                    if ws.feed(Message::text(frame)).await.is_err() {
                        ok = false;
                        break;
                    }
                    shared.count_sent(phase, ts);
                }
                if !ok || ws.flush().await.is_err() {
                    fail(&shared);
                    break;
                }
            },
        }
    }
    samples
}

/// Resolves with how many messages the client may send now.
async fn ready(
    mode: Mode,
    ticks: &mut Option<tokio::time::Interval>,
    wake: &Notify,
    inflight: &AtomicU64,
) -> u64 {
    match (mode, ticks) {
        (Mode::Fixed, Some(ticks)) => {
            ticks.tick().await;
            1
        }
        (Mode::Saturate, _) => loop {
            let used = inflight.load(Relaxed);
            if used < WINDOW {
                return WINDOW - used;
            }
            wake.notified().await;
        },
        _ => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------
// /proc

/// `getconf CLK_TCK` on Linux.
const CLK_TCK: f64 = 100.0;

/// Busy time of all CPUs together (everything but idle and iowait), in clock ticks.
fn machine_busy_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("/proc/stat format")?;
    // user nice system idle iowait irq softirq steal
    Ok(ticks
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 3 && i != 4)
        .map(|(_, t)| t)
        .sum())
}

// ---------------------------------------------------------------------------------------
// Report

fn report(portal: &Measured, sio: &Measured, plan: &Plan) -> String {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Signaling relay: {CLIENTS} WebSocket clients in {ROOMS} rooms of {PER_ROOM}\n"
    );
    let _ = writeln!(
        out,
        "Each message is an ICE-candidate `signal` to a random peer in the sender's room. \
         Fixed load: {FIXED_RATE} msg/s in total, open loop, {:.0} s window. Saturation: \
         closed loop, at most {WINDOW} messages in flight per client, {:.0} s window. \
         Latency is send to receipt at the other client. CPU is % of one core, of {} \
         available; the load generator runs on the same machine, and so does whatever else \
         is running (\"other processes\").\n",
        plan.fixed.as_secs_f64(),
        plan.saturate.as_secs_f64(),
        cores * 100,
    );
    let _ = writeln!(
        out,
        "| metric | Portal | Socket.IO | ratio (Portal / Socket.IO) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    // (metric, Portal, Socket.IO, decimals, whether a ratio means anything)
    let (p, s) = (portal, sio);
    let rows = [
        (
            "throughput at saturation (msg/s)".to_owned(),
            p.saturate.delivered_per_s,
            s.saturate.delivered_per_s,
            0,
            true,
        ),
        (
            "p99 at saturation (ms)".to_owned(),
            p.saturate.p99_ms,
            s.saturate.p99_ms,
            2,
            true,
        ),
        (
            format!("p50 at {FIXED_RATE} msg/s (ms)"),
            p.fixed.p50_ms,
            s.fixed.p50_ms,
            3,
            true,
        ),
        (
            format!("p99 at {FIXED_RATE} msg/s (ms)"),
            p.fixed.p99_ms,
            s.fixed.p99_ms,
            3,
            true,
        ),
        (
            "RSS per connection (KiB)".to_owned(),
            p.rss_per_conn_kib(),
            s.rss_per_conn_kib(),
            1,
            true,
        ),
        (
            format!("total RSS, {CLIENTS} joined (MiB)"),
            mib(p.rss_joined_kib),
            mib(s.rss_joined_kib),
            1,
            true,
        ),
        (
            "lost messages".to_owned(),
            p.lost() as f64,
            s.lost() as f64,
            0,
            false,
        ),
        (
            "idle RSS (MiB)".to_owned(),
            mib(p.rss_idle_kib),
            mib(s.rss_idle_kib),
            1,
            true,
        ),
        (
            "peak RSS (MiB)".to_owned(),
            mib(p.hwm_kib),
            mib(s.hwm_kib),
            1,
            true,
        ),
        (
            "server CPU per message at saturation (µs)".to_owned(),
            p.saturate.server_us_per_msg,
            s.saturate.server_us_per_msg,
            1,
            true,
        ),
        (
            "server CPU at saturation (%)".to_owned(),
            p.saturate.server_cpu_pct,
            s.saturate.server_cpu_pct,
            0,
            false,
        ),
        (
            "load generator CPU at saturation (%)".to_owned(),
            p.saturate.gen_cpu_pct,
            s.saturate.gen_cpu_pct,
            0,
            false,
        ),
        (
            "other processes' CPU at saturation (%)".to_owned(),
            p.saturate.other_cpu_pct,
            s.saturate.other_cpu_pct,
            0,
            false,
        ),
        (
            format!("server CPU at {FIXED_RATE} msg/s (%)"),
            p.fixed.server_cpu_pct,
            s.fixed.server_cpu_pct,
            0,
            true,
        ),
        (
            format!("other processes' CPU at {FIXED_RATE} msg/s (%)"),
            p.fixed.other_cpu_pct,
            s.fixed.other_cpu_pct,
            0,
            false,
        ),
        (
            format!("offered rate achieved at {FIXED_RATE} msg/s"),
            p.fixed.sent_per_s,
            s.fixed.sent_per_s,
            0,
            false,
        ),
        (
            format!("connect + hello + join, {CLIENTS} clients (s)"),
            p.connect_s,
            s.connect_s,
            2,
            true,
        ),
    ];
    for (name, pv, sv, digits, with_ratio) in rows {
        let r = if with_ratio {
            times(pv / sv)
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {r} |",
            num(pv, digits),
            num(sv, digits)
        );
    }
    out.push('\n');

    // What bounded the saturation throughput.
    for (name, m) in [("Portal", portal), ("Socket.IO", sio)] {
        let sat = &m.saturate;
        let busy = sat.server_cpu_pct + sat.gen_cpu_pct + sat.other_cpu_pct;
        let limit = if sat.server_cpu_pct >= 90.0 && m.kind == Some(Kind::SocketIo) {
            "Node's one JavaScript thread was the limit".to_owned()
        } else if busy >= 0.9 * (cores * 100) as f64 {
            format!("all {cores} CPUs were busy, so the machine was the limit")
        } else {
            "the CPUs were not saturated".to_owned()
        };
        let _ = writeln!(
            out,
            "{name} at saturation: server {:.0}%, load generator {:.0}%, others {:.0}% of \
             {}%: {limit}.\n",
            sat.server_cpu_pct,
            sat.gen_cpu_pct,
            sat.other_cpu_pct,
            cores * 100
        );
    }

    for (name, m) in [("Portal", portal), ("Socket.IO", sio)] {
        if m.errors > 0 || m.dropped > 0 {
            let _ = writeln!(
                out,
                "{name}: {} error replies, {} connections dropped{}\n",
                m.errors,
                m.dropped,
                m.first_error
                    .as_deref()
                    .map(|e| format!("; first: `{e}`"))
                    .unwrap_or_default()
            );
        }
    }
    for (name, m) in [("Portal", portal), ("Socket.IO", sio)] {
        let other = m.fixed.other_cpu_pct.max(m.saturate.other_cpu_pct);
        if other > NOISY_CPU_PCT {
            let _ = writeln!(
                out,
                "**Noisy:** other processes used up to {other:.0}% CPU while {name} was \
                 measured; rerun on a quiet machine before trusting these figures.\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "Latency samples: Portal {} + {}, Socket.IO {} + {} (fixed + saturation).\n",
        portal.fixed.samples, portal.saturate.samples, sio.fixed.samples, sio.saturate.samples
    );

    let tput = portal.saturate.delivered_per_s / sio.saturate.delivered_per_s;
    let _ = writeln!(
        out,
        "- throughput >= 3x Socket.IO: {} ({} vs {} msg/s, {})",
        verdict(tput >= 3.0),
        num(portal.saturate.delivered_per_s, 0),
        num(sio.saturate.delivered_per_s, 0),
        times(tput)
    );
    let _ = writeln!(
        out,
        "- p99 lower than Socket.IO at {FIXED_RATE} msg/s: {} ({} vs {} ms)",
        verdict(portal.fixed.p99_ms < sio.fixed.p99_ms),
        num(portal.fixed.p99_ms, 3),
        num(sio.fixed.p99_ms, 3)
    );
    let per_conn = portal.rss_per_conn_kib() / sio.rss_per_conn_kib();
    let _ = writeln!(
        out,
        "- RSS per connection <= 1/3 of Socket.IO's: {} ({} vs {} KiB, {})",
        verdict(per_conn <= 1.0 / 3.0),
        num(portal.rss_per_conn_kib(), 1),
        num(sio.rss_per_conn_kib(), 1),
        times(per_conn)
    );
    let _ = writeln!(
        out,
        "- no lost messages on Portal: {} ({} lost)",
        verdict(portal.lost() == 0),
        portal.lost()
    );
    out
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "n/a".to_owned()
    }
}

fn times(r: f64) -> String {
    if !r.is_finite() {
        "n/a".to_owned()
    } else if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 0.1 {
        format!("{r:.2}x")
    } else {
        format!("{r:.3}x")
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_through_both_frame_shapes() {
        for (kind, to) in [(Kind::Portal, "17"), (Kind::SocketIo, "\"abc\"")] {
            let shared = Shared::new(kind);
            for stats in &shared.phases {
                stats.end_ns.store(u64::MAX, Relaxed);
            }
            shared.inflight[3].store(1, Relaxed);
            let frame = format!(
                "{}{CANDIDATE}{STAMP}1:3:0{}",
                kind.signal_prefix(to),
                kind.signal_suffix()
            );
            // The frame is valid JSON in both protocols.
            let json = match kind {
                Kind::Portal => frame.as_str(),
                Kind::SocketIo => &frame[2..],
            };
            serde_json::from_str::<serde_json::Value>(json).unwrap();
            let mut samples: [Vec<u32>; 2] = Default::default();
            assert!(!shared.on_text(&frame, &mut samples));
            assert_eq!(samples[SATURATE].len(), 1);
            assert_eq!(shared.inflight[3].load(Relaxed), 0);
            assert_eq!(shared.phases[SATURATE].received.load(Relaxed), 1);
            assert_eq!(shared.errors.load(Relaxed), 0);
        }
    }

    #[test]
    fn portal_frames_parse_as_client_messages() {
        let frame = format!(
            "{}{CANDIDATE}{STAMP}0:1:2{}",
            Kind::Portal.signal_prefix("5"),
            Kind::Portal.signal_suffix()
        );
        let ClientMessage::Signal { to, .. } = ClientMessage::parse(&frame).unwrap() else {
            panic!("not a signal: {frame}");
        };
        assert_eq!(to.0, 5);
    }

    #[test]
    fn engine_io_pings_and_errors() {
        let shared = Shared::new(Kind::SocketIo);
        let mut samples: [Vec<u32>; 2] = Default::default();
        assert!(shared.on_text("2", &mut samples));
        assert!(!shared.on_text(r#"42["failure",{"code":"unknownPeer"}]"#, &mut samples));
        assert_eq!(shared.errors.load(Relaxed), 1);
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert!((percentile_ms(&v, 50.0) - 50.0).abs() < 1e-9);
        assert!((percentile_ms(&v, 99.0) - 99.0).abs() < 1e-9);
        assert!(percentile_ms(&[], 99.0).is_nan());
    }
}

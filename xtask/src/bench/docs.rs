//! `cargo xtask bench docs`: shared-document fan-out, Portal against the official Yjs
//! Node server (`@y/websocket-server`), with identical traffic in the same run.
//!
//! 200 clients in 20 rooms type into one Y.Text: each update inserts five characters
//! that carry the send time (microseconds since the run began), so receivers measure
//! fan-out latency without any clock sync. The per-client rate steps up (10, 20, 40, ...
//! a second) until p99 passes 100 ms or delivery falls behind; each step records
//! latency, delivery, the server's CPU (utime+stime from /proc) and RSS.
//!
//! The load generator is this process: update messages are built byte by byte with yrs'
//! lib0 writer (checked against yrs' own encoding in the tests), and receivers read the
//! time stamp from the message's last bytes without decoding the update.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use yrs::encoding::write::Write as _;

use super::server::{Server, cpu_ticks, status_kib};

const ROOMS: usize = 20;
const PER_ROOM: usize = 10;
const P99_LIMIT_MS: f64 = 100.0;
/// A step falls behind when fewer than this share of its updates reached everyone.
const MIN_DELIVERED: f64 = 0.99;
/// ... or when less than this share of the asked-for rate could be sent (the server
/// pushing back, or the machine out of CPU for the load generator).
const MIN_SENT: f64 = 0.9;
/// The shared text the editor uses.
const TEXT: &str = "code";

struct Plan {
    rates: &'static [u32],
    step: Duration,
    settle: Duration,
    warmup: Duration,
}

const FULL: Plan = Plan {
    rates: &[10, 20, 40, 80, 160, 320, 640],
    step: Duration::from_secs(6),
    settle: Duration::from_secs(2),
    warmup: Duration::from_secs(2),
};

const QUICK: Plan = Plan {
    rates: &[10, 40, 160],
    step: Duration::from_millis(2500),
    settle: Duration::from_secs(1),
    warmup: Duration::from_secs(1),
};

/// Runs the benchmark; returns a Markdown report.
pub(crate) fn docs(server_bin: &Path, repo_root: &Path, quick: bool) -> Result<String> {
    let peer_dir = repo_root.join("xtask/peers/yjs-node");
    crate::setup::npm_ci(&peer_dir)?;
    let node_server = peer_dir.join("node_modules/@y/websocket-server/src/server.js");
    if !node_server.is_file() {
        bail!("{} is missing after npm ci", node_server.display());
    }
    let plan = if quick { &QUICK } else { &FULL };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("load generator runtime")?;

    let portal = {
        let server = Server::portal(server_bin, &[], "warn")?;
        eprintln!("docs bench: Portal on {}", server.addr);
        rt.block_on(measure(&server, "/yjs/", plan))?
    };
    let node = {
        let server = Server::node("Node", &peer_dir, &node_server, &[])?;
        eprintln!("docs bench: Node on {}", server.addr);
        rt.block_on(measure(&server, "/", plan))?
    };
    Ok(report(&portal, &node, plan))
}

/// Joins and leaves `room` on Portal's signaling socket, so the room (and with it its
/// document) exists.
async fn make_room(server: &Server, room: &str) -> Result<()> {
    let url = format!("ws://{}/ws", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    let hello = r#"{"type":"hello","protocol":1,"name":"bench","role":"browser"}"#;
    let join = format!(r#"{{"type":"join","room":"{room}"}}"#);
    for (msg, want) in [(hello.to_owned(), "welcome"), (join, "joined")] {
        ws.send(Message::Text(msg.into())).await?;
        loop {
            let Some(frame) = ws.next().await else {
                bail!("the server closed while making {room}");
            };
            if let Message::Text(text) = frame? {
                if text.contains(&format!(r#""type":"{want}""#)) {
                    break;
                }
                if text.contains(r#""type":"error""#) {
                    bail!("making {room}: {text}");
                }
            }
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// What one step measured.
#[derive(Debug, Clone)]
struct Step {
    rate: u32,
    sent_per_s: f64,
    delivered_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    delivered: f64,
    sent_share: f64,
    cpu_pct: f64,
    rss_mib: f64,
    gen_cpu_pct: f64,
    dropped: u64,
}

impl Step {
    fn ok(&self) -> bool {
        self.p99_ms <= P99_LIMIT_MS
            && self.delivered >= MIN_DELIVERED
            && self.sent_share >= MIN_SENT
            && self.dropped == 0
    }

    fn why_not(&self) -> String {
        let mut why = Vec::new();
        if self.p99_ms > P99_LIMIT_MS {
            why.push(format!("p99 > {P99_LIMIT_MS} ms"));
        }
        if self.delivered < MIN_DELIVERED {
            why.push(format!("{:.1} % delivered", self.delivered * 100.0));
        }
        if self.sent_share < MIN_SENT {
            why.push(format!(
                "only {:.0} % of the rate was sent",
                self.sent_share * 100.0
            ));
        }
        if self.dropped > 0 {
            why.push(format!("{} connections dropped", self.dropped));
        }
        why.join(", ")
    }
}

struct Series {
    name: &'static str,
    steps: Vec<Step>,
    peak_rss_mib: f64,
}

impl Series {
    /// The step with the highest update rate that held.
    fn sustained(&self) -> Option<&Step> {
        self.steps
            .iter()
            .take_while(|s| s.ok())
            .max_by(|a, b| a.sent_per_s.total_cmp(&b.sent_per_s))
    }
}

/// Latencies in 50 µs buckets up to 5 s (the last bucket takes the rest).
struct Histogram {
    buckets: Vec<AtomicU64>,
}

const BUCKET_US: u64 = 50;

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: (0..100_001).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, us: u64) {
        let i = usize::try_from(us / BUCKET_US)
            .unwrap_or(usize::MAX)
            .min(self.buckets.len() - 1);
        self.buckets[i].fetch_add(1, Relaxed);
    }

    fn clear(&self) {
        for b in &self.buckets {
            b.store(0, Relaxed);
        }
    }

    /// The `q` quantile in milliseconds (upper edge of its bucket).
    fn quantile_ms(&self, q: f64) -> f64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return f64::NAN;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        f64::INFINITY
    }
}

/// State shared by the generator's tasks.
struct Shared {
    epoch: Instant,
    /// Updates a second per client; 0 pauses.
    rate: AtomicU32,
    stop: AtomicBool,
    /// Updates stamped in `[start, end)` µs count for the current step.
    window_start: AtomicU64,
    window_end: AtomicU64,
    sent: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    latency: Histogram,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn in_window(&self, ts: u64) -> bool {
        ts >= self.window_start.load(Relaxed) && ts < self.window_end.load(Relaxed)
    }
}

/// Measures `server`, whose documents are at `ws://ADDR{path}{room}`.
async fn measure(server: &Server, path: &str, plan: &Plan) -> Result<Series> {
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        rate: AtomicU32::new(0),
        stop: AtomicBool::new(false),
        window_start: AtomicU64::new(u64::MAX),
        window_end: AtomicU64::new(u64::MAX),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        latency: Histogram::new(),
    });
    if path == "/yjs/" {
        // Portal keeps documents only for rooms that exist: make each room first (an
        // emptied open room lingers, its document with it).
        for room in 0..ROOMS {
            make_room(server, &format!("bench-docs-{room}")).await?;
        }
    }
    let mut tasks = Vec::new();
    for room in 0..ROOMS {
        for _ in 0..PER_ROOM {
            let url = format!("ws://{}{path}bench-docs-{room}", server.addr);
            let (ws, _) = tokio_tungstenite::connect_async(&url)
                .await
                .with_context(|| format!("connect to {url}"))?;
            let (sink, stream) = ws.split();
            let typist = Typist::new();
            tasks.push(tokio::spawn(read(stream, typist.client, shared.clone())));
            tasks.push(tokio::spawn(write(sink, typist, shared.clone())));
        }
    }
    let result = steps(server, plan, &shared).await;
    shared.stop.store(true, Relaxed);
    for t in tasks {
        t.abort();
    }
    result
}

async fn steps(server: &Server, plan: &Plan, shared: &Shared) -> Result<Series> {
    let pid = server.pid();
    shared.rate.store(plan.rates[0], Relaxed);
    tokio::time::sleep(plan.warmup).await;
    let mut steps = Vec::new();
    for &rate in plan.rates {
        shared.rate.store(rate, Relaxed);
        // Let every client's timer pick up the new rate.
        tokio::time::sleep(Duration::from_millis(300)).await;
        shared.latency.clear();
        shared.sent.store(0, Relaxed);
        shared.delivered.store(0, Relaxed);
        let dropped_before = shared.dropped.load(Relaxed);
        let cpu_before = cpu_ticks(pid)?;
        let gen_before = cpu_ticks(std::process::id())?;
        let started = Instant::now();
        shared.window_end.store(u64::MAX, Relaxed);
        shared.window_start.store(shared.now_us(), Relaxed);
        tokio::time::sleep(plan.step).await;
        shared.window_end.store(shared.now_us(), Relaxed);
        let wall = started.elapsed().as_secs_f64();
        let cpu = (cpu_ticks(pid)? - cpu_before) as f64 / CLK_TCK / wall * 100.0;
        let gen_cpu = (cpu_ticks(std::process::id())? - gen_before) as f64 / CLK_TCK / wall * 100.0;
        let rss_mib = status_kib(pid, "VmRSS:")? as f64 / 1024.0;
        // Late deliveries of this step's updates still count (and show in p99).
        let sent = shared.sent.load(Relaxed);
        let expected = sent * (PER_ROOM as u64 - 1);
        let settle_until = Instant::now() + plan.settle;
        while shared.delivered.load(Relaxed) < expected && Instant::now() < settle_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delivered = shared.delivered.load(Relaxed);
        let target = f64::from(rate) * (ROOMS * PER_ROOM) as f64 * wall;
        let step = Step {
            rate,
            sent_per_s: sent as f64 / wall,
            delivered_per_s: delivered as f64 / wall,
            p50_ms: shared.latency.quantile_ms(0.50),
            p99_ms: shared.latency.quantile_ms(0.99),
            delivered: if expected == 0 {
                0.0
            } else {
                delivered as f64 / expected as f64
            },
            sent_share: sent as f64 / target,
            cpu_pct: cpu,
            rss_mib,
            gen_cpu_pct: gen_cpu,
            dropped: shared.dropped.load(Relaxed) - dropped_before,
        };
        eprintln!(
            "docs bench: {} {:>3}/s per client: p50 {:.2} ms, p99 {:.2} ms, delivered {:.1} %, CPU {:.0} %",
            server.name,
            rate,
            step.p50_ms,
            step.p99_ms,
            step.delivered * 100.0,
            step.cpu_pct
        );
        let ok = step.ok();
        steps.push(step);
        if !ok {
            break;
        }
    }
    shared.rate.store(0, Relaxed);
    Ok(Series {
        name: server.name,
        steps,
        peak_rss_mib: status_kib(pid, "VmHWM:")? as f64 / 1024.0,
    })
}

/// One client's edits: five characters at the end of its own previous insert.
struct Typist {
    client: u32,
    clock: u32,
}

impl Typist {
    fn new() -> Self {
        // Yjs client ids are 32-bit; zero is avoided so it never looks unset.
        Typist {
            client: rand::random::<u32>().max(1),
            clock: 0,
        }
    }

    /// `messageSync, update, [update]`: one item of string content, then an empty
    /// delete set. Its last six bytes are the stamp and the delete set's zero.
    fn next(&mut self, ts_us: u64) -> Vec<u8> {
        let stamp = encode_stamp(ts_us);
        let mut update = Vec::with_capacity(32);
        update.write_var(1u32); // clients
        update.write_var(1u32); // structs
        update.write_var(self.client);
        update.write_var(self.clock);
        if self.clock == 0 {
            update.write_u8(4); // string content, parent by name
            update.write_var(1u32);
            update.write_string(TEXT);
        } else {
            update.write_u8(0x80 | 4); // string content after its left origin
            update.write_var(self.client);
            update.write_var(self.clock - 1);
        }
        update.write_buf(stamp);
        update.write_var(0u32); // delete set: no clients
        self.clock += stamp.len() as u32;
        let mut msg = Vec::with_capacity(update.len() + 4);
        msg.write_var(0u32); // messageSync
        msg.write_var(2u32); // update
        msg.write_buf(&update);
        msg
    }
}

const STAMP_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// 30 bits of microseconds (about 18 minutes) as five URL-safe base64 characters.
fn encode_stamp(ts_us: u64) -> [u8; 5] {
    let mut out = [0u8; 5];
    for (i, c) in out.iter_mut().enumerate() {
        *c = STAMP_ALPHABET[((ts_us >> (6 * (4 - i))) & 63) as usize];
    }
    out
}

fn decode_stamp(chars: &[u8]) -> Option<u64> {
    chars.iter().try_fold(0u64, |acc, &c| {
        let v = STAMP_ALPHABET.iter().position(|&a| a == c)? as u64;
        Some((acc << 6) | v)
    })
}

/// The stamps in a document update, except `own`'s (the Node server echoes updates to
/// their sender). Portal may merge several updates into one: each client's run of
/// string content then holds several stamps, five characters each.
fn stamps_of(frame: &[u8], own: u32, out: &mut Vec<u64>) -> Option<()> {
    let mut cur = frame.strip_prefix(&[0, 2])?;
    let len = read_var(&mut cur)?;
    if cur.len() as u64 != len {
        return None;
    }
    for _ in 0..read_var(&mut cur)? {
        let structs = read_var(&mut cur)?;
        let client = read_var(&mut cur)?;
        read_var(&mut cur)?; // clock
        for _ in 0..structs {
            let info = take(&mut cur, 1)?[0];
            if info & 0x80 != 0 {
                read_var(&mut cur)?;
                read_var(&mut cur)?;
            }
            if info & 0x40 != 0 {
                read_var(&mut cur)?;
                read_var(&mut cur)?;
            }
            if info & 0xc0 == 0 {
                if read_var(&mut cur)? == 1 {
                    let n = read_var(&mut cur)?;
                    take(&mut cur, n)?;
                } else {
                    read_var(&mut cur)?;
                    read_var(&mut cur)?;
                }
            }
            if info & 0x1f != 4 {
                return None; // the benchmark only ever sends strings
            }
            let n = read_var(&mut cur)?;
            let text = take(&mut cur, n)?;
            if client != u64::from(own) {
                for stamp in text.chunks_exact(5) {
                    out.push(decode_stamp(stamp)?);
                }
            }
        }
    }
    Some(())
}

fn take<'a>(cur: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    let n = usize::try_from(n).ok()?;
    if cur.len() < n {
        return None;
    }
    let (head, rest) = cur.split_at(n);
    *cur = rest;
    Some(head)
}

fn read_var(cur: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = cur.split_first()?;
        *cur = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;
type Stream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

async fn write(mut sink: Sink, mut typist: Typist, shared: Arc<Shared>) {
    while !shared.stop.load(Relaxed) {
        let rate = shared.rate.load(Relaxed);
        if rate == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let period = Duration::from_secs_f64(1.0 / f64::from(rate));
        // Spread the clients over the period so they do not send in lockstep.
        let phase = period.mul_f64(rand::random::<f64>());
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
        // A late tick is caught up, so a busy machine does not quietly lower the rate;
        // the stamp is the real send time.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        while shared.rate.load(Relaxed) == rate && !shared.stop.load(Relaxed) {
            ticks.tick().await;
            let ts = shared.now_us();
            let msg = typist.next(ts);
            if sink.send(Message::Binary(msg.into())).await.is_err() {
                shared.dropped.fetch_add(1, Relaxed);
                return;
            }
            if shared.in_window(ts) {
                shared.sent.fetch_add(1, Relaxed);
            }
        }
    }
}

async fn read(mut stream: Stream, own: u32, shared: Arc<Shared>) {
    let mut stamps = Vec::new();
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(Message::Binary(frame)) => {
                stamps.clear();
                if stamps_of(&frame, own, &mut stamps).is_none() {
                    continue;
                }
                let now = shared.now_us();
                for &ts in &stamps {
                    if shared.in_window(ts) {
                        shared.latency.record(now.saturating_sub(ts));
                        shared.delivered.fetch_add(1, Relaxed);
                    }
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if !shared.stop.load(Relaxed) {
        shared.dropped.fetch_add(1, Relaxed);
    }
}

/// `getconf CLK_TCK` on Linux.
const CLK_TCK: f64 = 100.0;

fn report(portal: &Series, node: &Series, plan: &Plan) -> String {
    let clients = ROOMS * PER_ROOM;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Shared documents: {clients} clients in {ROOMS} rooms, 5-character updates\n"
    );
    let _ = writeln!(
        out,
        "Each step runs {:.1} s; latency is send to receipt at every other client in the room \
         (fan-out {}), late deliveries included. CPU is % of one core.\n",
        plan.step.as_secs_f64(),
        PER_ROOM - 1
    );
    let _ = writeln!(
        out,
        "| server | rate/client | updates/s | deliveries/s | p50 ms | p99 ms | delivered | server CPU | server RSS MiB | generator CPU | held |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for series in [portal, node] {
        for s in &series.steps {
            let held = if s.ok() {
                "yes".to_owned()
            } else {
                format!("no: {}", s.why_not())
            };
            let _ = writeln!(
                out,
                "| {} | {}/s | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} % | {:.0} % | {:.1} | {:.0} % | {} |",
                series.name,
                s.rate,
                s.sent_per_s,
                s.delivered_per_s,
                s.p50_ms,
                s.p99_ms,
                s.delivered * 100.0,
                s.cpu_pct,
                s.rss_mib,
                s.gen_cpu_pct,
                held
            );
        }
    }
    let _ = writeln!(out);
    let (Some(p0), Some(n0)) = (portal.steps.first(), node.steps.first()) else {
        let _ = writeln!(out, "No step completed.");
        return out;
    };
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    let p99_ratio = p0.p99_ms / n0.p99_ms;
    let _ = writeln!(
        out,
        "- p99 at equal load ({}/s per client): Portal {:.2} ms, Node {:.2} ms, ratio {} (target <= 0.33): {}",
        p0.rate,
        p0.p99_ms,
        n0.p99_ms,
        ratio(p99_ratio),
        verdict(p99_ratio <= 1.0 / 3.0)
    );
    let by_load: Vec<String> = portal
        .steps
        .iter()
        .zip(&node.steps)
        .map(|(p, n)| {
            format!(
                "{}/s {:.2} vs {:.2} ms ({})",
                p.rate,
                p.p99_ms,
                n.p99_ms,
                ratio(p.p99_ms / n.p99_ms)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "- p99 Portal vs Node at each load both ran: {}",
        by_load.join(", ")
    );
    let max_rate = *plan.rates.last().unwrap_or(&0);
    match (portal.sustained(), node.sustained()) {
        (Some(p), Some(n)) => {
            let r = p.sent_per_s / n.sent_per_s;
            let capped = if p.rate == max_rate {
                " (Portal held the highest step; the true ratio is at least this)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "- sustained rate (p99 <= {P99_LIMIT_MS} ms, >= {:.0} % delivered): Portal {:.0} updates/s ({}/s per client), Node {:.0} updates/s ({}/s per client), ratio {}x{capped} (target >= 5x): {}",
                MIN_DELIVERED * 100.0,
                p.sent_per_s,
                p.rate,
                n.sent_per_s,
                n.rate,
                ratio(r),
                if r < 5.0 && p.rate == max_rate {
                    "NOT SHOWN (Portal held every step; the full run goes higher)"
                } else {
                    verdict(r >= 5.0)
                }
            );
        }
        (p, n) => {
            let _ = writeln!(
                out,
                "- sustained rate: Portal {}, Node {} (no ratio: a server did not hold the first step): NOT MET",
                p.map_or("none".to_owned(), |s| format!(
                    "{:.0} updates/s",
                    s.sent_per_s
                )),
                n.map_or("none".to_owned(), |s| format!(
                    "{:.0} updates/s",
                    s.sent_per_s
                )),
            );
        }
    }
    let mem_ratio = p0.rss_mib / n0.rss_mib;
    let _ = writeln!(
        out,
        "- memory at equal load: Portal {:.1} MiB, Node {:.1} MiB, ratio {} (target <= 0.5): {}; peak RSS over the run: Portal {:.1} MiB, Node {:.1} MiB",
        p0.rss_mib,
        n0.rss_mib,
        ratio(mem_ratio),
        verdict(mem_ratio <= 0.5),
        portal.peak_rss_mib,
        node.peak_rss_mib
    );
    let _ = writeln!(
        out,
        "- server and load generator share this machine's {} cores; Portal stores every update (fsync before broadcast) and sends the updates of one commit merged into one frame (deliveries count updates, not frames); the Node server keeps documents in memory only and sends one frame per update.",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    out
}

/// Two significant digits.
fn ratio(r: f64) -> String {
    if r >= 10.0 || r == 0.0 || !r.is_finite() {
        format!("{r:.0}")
    } else {
        let digits = (1 - r.abs().log10().floor() as i32).max(0) as usize;
        format!("{r:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Text, Transact};

    #[test]
    fn typed_updates_are_what_yrs_encodes() {
        let mut typist = Typist::new();
        let doc = Doc::with_client_id(u64::from(typist.client));
        let text = doc.get_or_insert_text(TEXT);
        for ts in [0u64, 1, 123_456, (1 << 30) - 1] {
            let msg = typist.next(ts);
            let stamp = encode_stamp(ts);
            let expected = {
                let mut txn = doc.transact_mut();
                let len = text.len(&txn);
                text.insert(&mut txn, len, std::str::from_utf8(&stamp).unwrap());
                txn.encode_update_v1()
            };
            let mut want = vec![0, 2];
            want.write_buf(&expected);
            assert_eq!(msg, want, "ts {ts}");
            let mut got = Vec::new();
            stamps_of(&msg, typist.client.wrapping_add(1), &mut got).unwrap();
            assert_eq!(got, vec![ts]);
            got.clear();
            stamps_of(&msg, typist.client, &mut got).unwrap();
            assert!(got.is_empty());
        }
    }

    #[test]
    fn ratios_keep_two_digits() {
        assert_eq!(ratio(0.7812), "0.78");
        assert_eq!(ratio(0.002_31), "0.0023");
        assert_eq!(ratio(7.46), "7.5");
        assert_eq!(ratio(42.4), "42");
    }

    #[test]
    fn quantiles_come_from_the_buckets() {
        let h = Histogram::new();
        for us in 1..=1000 {
            h.record(us * 100);
        }
        assert!((h.quantile_ms(0.5) - 50.0).abs() < 0.1);
        assert!((h.quantile_ms(0.99) - 99.0).abs() < 0.1);
        h.clear();
        assert!(h.quantile_ms(0.5).is_nan());
    }

    #[test]
    fn merged_updates_give_every_stamp() {
        let (mut a, mut b) = (Typist::new(), Typist::new());
        let parts = [a.next(1), b.next(2), a.next(3), a.next(4), b.next(5)];
        let updates: Vec<Vec<u8>> = parts.iter().map(|m| m[3..].to_vec()).collect();
        let merged = yrs::merge_updates_v1(updates).unwrap();
        let mut msg = vec![0, 2];
        msg.write_buf(&merged);
        let mut got = Vec::new();
        stamps_of(&msg, 0, &mut got).unwrap();
        got.sort_unstable();
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
        got.clear();
        stamps_of(&msg, b.client, &mut got).unwrap();
        got.sort_unstable();
        assert_eq!(got, vec![1, 3, 4]);
    }
}

//! Two engines send files to each other in simulated time.
//!
//! The link between them behaves like a WebRTC data channel over a bad network: packets
//! are lost, delayed by random amounts (so they arrive out of order) and serialized at a
//! fixed rate; a small retransmit-and-reorder layer on top gives the engines what SCTP
//! gives them for real — an ordered, reliable channel whose buffered amount grows when
//! they send faster than the link. The "disk" is a map of names to bytes, so the tests
//! can check that nothing but complete, verified files ever appears under a final name.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use portal_engine::backoff::Rng;
use portal_engine::transfer::{FileConfig, TransferState};
use portal_engine::{Channel, Engine, EngineConfig, FileAction, Input, Output, ReceivePolicy};
use portal_proto::channel::{DeclineReason, FILE_FRAME_MAX, TransferSide};
use portal_proto::{PeerId, PeerInfo, Role, ServerMessage};
use sha2::{Digest, Sha256};

const A: PeerId = PeerId(1);
const B: PeerId = PeerId(2);
const MIB: usize = 1024 * 1024;

#[derive(Clone, Debug)]
enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Binary(b) => b.len(),
        }
    }
}

#[derive(Clone, Debug)]
struct Msg {
    channel: Channel,
    payload: Payload,
}

/// Network conditions of one direction.
#[derive(Clone, Copy, Debug)]
struct Net {
    loss: f64,
    delay: Duration,
    jitter: Duration,
    bytes_per_sec: f64,
    rto: Duration,
}

impl Net {
    fn bad() -> Self {
        Net {
            loss: 0.05,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(40),
            bytes_per_sec: 8.0 * MIB as f64,
            rto: Duration::from_millis(250),
        }
    }
}

/// One direction of an ordered reliable channel over a lossy, reordering link.
struct Link {
    net: Net,
    rng: Rng,
    next_seq: u64,
    unacked: BTreeMap<u64, (Msg, Instant)>,
    data_in_flight: Vec<(Instant, u64, Msg)>,
    acks_in_flight: Vec<(Instant, u64)>,
    free_at: Instant,
    recv_next: u64,
    recv_buf: BTreeMap<u64, Msg>,
    /// Flip a byte in the n-th binary message handed to the receiver.
    corrupt_binary: Option<usize>,
    binaries_delivered: usize,
    /// What the link did, to show a test really met loss, reordering and back-pressure.
    retransmits: usize,
    reordered: usize,
    highest_arrived: Option<u64>,
    max_buffered: usize,
}

impl Link {
    fn new(net: Net, seed: u64, now: Instant) -> Self {
        Link {
            net,
            rng: Rng::new(seed),
            next_seq: 0,
            unacked: BTreeMap::new(),
            data_in_flight: Vec::new(),
            acks_in_flight: Vec::new(),
            free_at: now,
            recv_next: 0,
            recv_buf: BTreeMap::new(),
            corrupt_binary: None,
            binaries_delivered: 0,
            retransmits: 0,
            reordered: 0,
            highest_arrived: None,
            max_buffered: 0,
        }
    }

    fn buffered(&self) -> usize {
        self.unacked.values().map(|(m, _)| m.payload.len()).sum()
    }

    fn send(&mut self, now: Instant, msg: Msg) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unacked.insert(seq, (msg, now));
        self.max_buffered = self.max_buffered.max(self.buffered());
        self.transmit(now, seq);
    }

    fn transmit(&mut self, now: Instant, seq: u64) {
        let Some((msg, sent)) = self.unacked.get_mut(&seq) else {
            return;
        };
        *sent = now;
        let msg = msg.clone();
        let wire = Duration::from_secs_f64(msg.payload.len() as f64 / self.net.bytes_per_sec);
        let depart = self.free_at.max(now) + wire;
        self.free_at = depart;
        if self.rng.next_f64() < self.net.loss {
            return;
        }
        let arrive = depart + self.net.delay + self.net.jitter.mul_f64(self.rng.next_f64());
        self.data_in_flight.push((arrive, seq, msg));
    }

    fn next_event(&self) -> Option<Instant> {
        let data = self.data_in_flight.iter().map(|(t, _, _)| *t);
        let acks = self.acks_in_flight.iter().map(|(t, _)| *t);
        let rto = self.unacked.values().map(|(_, sent)| *sent + self.net.rto);
        data.chain(acks).chain(rto).min()
    }

    /// Runs the link up to `now`; returns messages delivered in order to the receiver.
    fn advance(&mut self, now: Instant) -> Vec<Msg> {
        let mut delivered = Vec::new();
        // Data packets that have arrived.
        let mut arrived: Vec<(Instant, u64, Msg)> = Vec::new();
        self.data_in_flight.retain(|(t, seq, msg)| {
            if *t <= now {
                arrived.push((*t, *seq, msg.clone()));
                false
            } else {
                true
            }
        });
        arrived.sort_by_key(|(t, _, _)| *t);
        for (_, seq, msg) in arrived {
            if self.highest_arrived.is_some_and(|h| seq < h) {
                self.reordered += 1;
            }
            self.highest_arrived = self.highest_arrived.max(Some(seq));
            if seq >= self.recv_next {
                self.recv_buf.insert(seq, msg);
            }
            while let Some(msg) = self.recv_buf.remove(&self.recv_next) {
                self.recv_next += 1;
                delivered.push(msg);
            }
            if self.rng.next_f64() >= self.net.loss {
                let back = now + self.net.delay + self.net.jitter.mul_f64(self.rng.next_f64());
                self.acks_in_flight.push((back, self.recv_next));
            }
        }
        // Cumulative acks that have come back.
        let mut acked_to = None;
        self.acks_in_flight.retain(|(t, upto)| {
            if *t <= now {
                acked_to = acked_to.max(Some(*upto));
                false
            } else {
                true
            }
        });
        if let Some(upto) = acked_to {
            self.unacked.retain(|seq, _| *seq >= upto);
        }
        // Retransmit what timed out.
        let due: Vec<u64> = self
            .unacked
            .iter()
            .filter(|(_, (_, sent))| *sent + self.net.rto <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in due {
            self.retransmits += 1;
            self.transmit(now, seq);
        }
        for msg in &mut delivered {
            if let Payload::Binary(frame) = &mut msg.payload {
                if self.corrupt_binary == Some(self.binaries_delivered) {
                    let last = frame.len() - 1;
                    frame[last] ^= 0x55;
                }
                self.binaries_delivered += 1;
            }
        }
        delivered
    }
}

/// One kiosk: its engine, the files it can send, and its download directory.
struct Node {
    engine: Engine,
    other: PeerId,
    sources: HashMap<u32, Vec<u8>>,
    disk: BTreeMap<String, Vec<u8>>,
    temps: HashMap<u32, String>,
    creates: usize,
    asks: Vec<u32>,
    reported_buffered: usize,
}

struct Sim {
    now: Instant,
    start: Instant,
    nodes: [Node; 2],
    /// links[0] carries a -> b, links[1] b -> a.
    links: [Link; 2],
}

fn engine(me: PeerId, other: PeerId, policy: ReceivePolicy, max_size: u64) -> Engine {
    let mut config = EngineConfig::new("sim", format!("kiosk {me}"));
    config.files = FileConfig {
        policy,
        max_size,
        ..FileConfig::default()
    };
    config.seed = me.0;
    let mut e = Engine::new(config);
    let now = Instant::now();
    e.handle(now, Input::SignalingOpened);
    e.handle(
        now,
        Input::Server(ServerMessage::Welcome {
            protocol: 1,
            peer_id: me,
            server_time: 0.0,
            ice_servers: vec![],
            resume_token: "t".into(),
            resumed: false,
        }),
    );
    e.handle(
        now,
        Input::Server(ServerMessage::Joined {
            protected: false,
            room: "sim".into(),
            peer_id: me,
            peers: vec![PeerInfo {
                id: other,
                name: format!("kiosk {other}"),
                role: Role::Kiosk,
            }],
            watch: None,
            doc_token: String::new(),
        }),
    );
    for channel in [Channel::Chat, Channel::File] {
        e.handle(
            now,
            Input::ChannelOpened {
                peer: other,
                channel,
            },
        );
    }
    e
}

impl Sim {
    fn new(policy_b: ReceivePolicy, net: Net, seed: u64) -> Self {
        let now = Instant::now();
        let node = |me, other, policy| Node {
            engine: engine(me, other, policy, 64 * MIB as u64),
            other,
            sources: HashMap::new(),
            disk: BTreeMap::new(),
            temps: HashMap::new(),
            creates: 0,
            asks: Vec::new(),
            reported_buffered: 0,
        };
        Sim {
            now,
            start: now,
            nodes: [node(A, B, ReceivePolicy::Accept), node(B, A, policy_b)],
            links: [
                Link::new(net, seed, now),
                Link::new(net, seed ^ 0xABCD, now),
            ],
        }
    }

    /// Node `i` offers `data` under `name`; returns the transfer id.
    fn offer(&mut self, i: usize, name: &str, data: Vec<u8>) -> u32 {
        let node = &mut self.nodes[i];
        let id = node
            .engine
            .send_file(
                node.other,
                name,
                data.len() as u64,
                "application/octet-stream",
            )
            .unwrap();
        node.sources.insert(id, data);
        self.settle();
        id
    }

    /// Handles every output of both engines until both are quiet.
    fn settle(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..2 {
                while let Some(out) = self.nodes[i].engine.poll_output() {
                    busy = true;
                    self.apply(i, out);
                }
                let buffered = self.links[i].buffered();
                if buffered != self.nodes[i].reported_buffered {
                    self.nodes[i].reported_buffered = buffered;
                    let peer = self.nodes[i].other;
                    self.nodes[i].engine.handle(
                        self.now,
                        Input::FileBuffered {
                            peer,
                            amount: buffered,
                        },
                    );
                    busy = true;
                }
            }
            if !busy {
                return;
            }
        }
    }

    fn apply(&mut self, i: usize, out: Output) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let peer = node.other;
        match out {
            Output::File { action, .. } => match action {
                FileAction::SendText(text) => self.links[i].send(
                    now,
                    Msg {
                        channel: Channel::File,
                        payload: Payload::Text(text),
                    },
                ),
                FileAction::SendBinary(frame) => self.links[i].send(
                    now,
                    Msg {
                        channel: Channel::File,
                        payload: Payload::Binary(frame),
                    },
                ),
                FileAction::Read { id, offset, len } => {
                    let src = &node.sources[&id];
                    let start = offset as usize;
                    let bytes = src[start..start + len].to_vec();
                    node.engine.handle(now, Input::FileData { peer, id, bytes });
                }
                FileAction::Create { id, temp } => {
                    assert!(temp.starts_with('.'), "temp files are hidden: {temp}");
                    assert!(node.disk.insert(temp.clone(), Vec::new()).is_none());
                    node.temps.insert(id, temp);
                    node.creates += 1;
                }
                FileAction::Write { id, offset, bytes } => {
                    let temp = &node.temps[&id];
                    let file = node.disk.get_mut(temp).expect("write without a temp file");
                    assert_eq!(file.len() as u64, offset, "writes are sequential");
                    file.extend_from_slice(&bytes);
                }
                FileAction::Commit { id, temp, name } => {
                    assert!(!name.starts_with('.') && !name.contains('/'));
                    if node.disk.contains_key(&name) {
                        node.engine.handle(
                            now,
                            Input::FileStoreFailed {
                                peer,
                                id,
                                reason: "exists".into(),
                            },
                        );
                    } else {
                        let bytes = node.disk.remove(&temp).expect("commit of a missing temp");
                        node.disk.insert(name, bytes);
                        node.engine.handle(now, Input::FileStored { peer, id });
                    }
                }
                FileAction::Discard { temp, .. } => {
                    node.disk.remove(&temp);
                }
                FileAction::Ask { id } => node.asks.push(id),
                FileAction::Changed { .. } => {}
            },
            Output::Chat { text, .. } => self.links[i].send(
                now,
                Msg {
                    channel: Channel::Chat,
                    payload: Payload::Text(text),
                },
            ),
            _ => {}
        }
    }

    /// Runs simulated time until `done` holds; panics when nothing is left to happen or
    /// simulated time runs past `limit`.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) {
        self.settle();
        while !done(self) {
            let next = [
                self.links[0].next_event(),
                self.links[1].next_event(),
                self.nodes[0].engine.poll_timeout(),
                self.nodes[1].engine.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("simulation stalled: nothing left to happen");
            self.now = next.max(self.now);
            assert!(
                self.now - self.start < limit,
                "not done after {limit:?} of simulated time"
            );
            for i in 0..2 {
                let delivered = self.links[i].advance(self.now);
                let to = 1 - i;
                let peer = self.nodes[to].other;
                for msg in delivered {
                    let input = match (msg.channel, msg.payload) {
                        (Channel::Chat, Payload::Text(text)) => Input::ChatText { peer, text },
                        (Channel::File, Payload::Text(text)) => Input::FileText { peer, text },
                        (Channel::File, Payload::Binary(frame)) => {
                            Input::FileBinary { peer, frame }
                        }
                        (Channel::Chat, Payload::Binary(_)) => continue,
                    };
                    self.nodes[to].engine.handle(self.now, input);
                }
            }
            for node in &mut self.nodes {
                if node.engine.poll_timeout().is_some_and(|t| t <= self.now) {
                    node.engine.handle_timeout(self.now);
                }
            }
            self.settle();
        }
    }

    fn state(&self, i: usize, side: TransferSide, id: u32) -> TransferState {
        let node = &self.nodes[i];
        node.engine
            .transfer(node.other, side, id)
            .map(|t| t.state.clone())
            .expect("no such transfer")
    }

    fn final_files(&self, i: usize) -> Vec<&String> {
        self.nodes[i]
            .disk
            .keys()
            .filter(|k| !k.starts_with('.'))
            .collect()
    }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn both_final(id: u32) -> impl FnMut(&Sim) -> bool {
    move |sim| {
        sim.state(0, TransferSide::Sender, id).is_final()
            && sim.state(1, TransferSide::Receiver, id).is_final()
    }
}

#[test]
fn twenty_mib_over_a_lossy_reordering_link_arrive_intact() {
    let data = random_bytes(20 * MIB, 42);
    let digest = portal_engine::transfer::hex(&Sha256::digest(&data));
    let mut sim = Sim::new(ReceivePolicy::Accept, Net::bad(), 7);
    let id = sim.offer(0, "recording.bin", data.clone());
    sim.run_until(Duration::from_secs(120), both_final(id));

    assert_eq!(
        sim.state(0, TransferSide::Sender, id),
        TransferState::Complete
    );
    assert_eq!(
        sim.state(1, TransferSide::Receiver, id),
        TransferState::Complete
    );
    assert_eq!(sim.nodes[1].disk.len(), 1, "no temp file left behind");
    assert!(sim.nodes[1].disk["recording.bin"] == data);
    let received = sim.nodes[1]
        .engine
        .transfer(A, TransferSide::Receiver, id)
        .unwrap();
    assert_eq!(received.sha256.as_deref(), Some(digest.as_str()));
    assert_eq!(received.stored_name.as_deref(), Some("recording.bin"));
    // The link really lost and reordered packets, and back-pressure held: the sender
    // never had more than its high-water mark plus one frame queued.
    let link = &sim.links[0];
    assert!(
        link.retransmits > 10 && link.reordered > 10,
        "{} {}",
        link.retransmits,
        link.reordered
    );
    let high_water = FileConfig::default().high_water;
    assert!(
        link.max_buffered <= high_water + FILE_FRAME_MAX,
        "{}",
        link.max_buffered
    );
    assert!(
        link.max_buffered > high_water / 2,
        "the link was the bottleneck"
    );
}

#[test]
fn a_corrupted_chunk_fails_and_keeps_nothing() {
    let mut sim = Sim::new(ReceivePolicy::Accept, Net::bad(), 11);
    sim.links[0].corrupt_binary = Some(3);
    let id = sim.offer(0, "doc.pdf", random_bytes(MIB, 1));
    sim.run_until(Duration::from_secs(60), both_final(id));
    assert!(matches!(
        sim.state(0, TransferSide::Sender, id),
        TransferState::Failed(reason) if reason.contains("sha256")
    ));
    assert!(matches!(
        sim.state(1, TransferSide::Receiver, id),
        TransferState::Failed(_)
    ));
    assert!(
        sim.nodes[1].disk.is_empty(),
        "{:?}",
        sim.nodes[1].disk.keys()
    );
}

fn cancel_midway(canceller: TransferSide) {
    let mut sim = Sim::new(ReceivePolicy::Accept, Net::bad(), 3);
    let id = sim.offer(0, "big.iso", random_bytes(8 * MIB, 2));
    sim.run_until(Duration::from_secs(60), |sim| {
        sim.nodes[1]
            .engine
            .transfer(A, TransferSide::Receiver, id)
            .is_some_and(|t| t.transferred > MIB as u64)
    });
    match canceller {
        TransferSide::Sender => sim.nodes[0]
            .engine
            .cancel_transfer(B, TransferSide::Sender, id, "changed my mind")
            .unwrap(),
        TransferSide::Receiver => sim.nodes[1]
            .engine
            .cancel_transfer(A, TransferSide::Receiver, id, "no room")
            .unwrap(),
    }
    sim.run_until(Duration::from_secs(60), both_final(id));
    for (i, side) in [(0, TransferSide::Sender), (1, TransferSide::Receiver)] {
        assert!(
            matches!(sim.state(i, side, id), TransferState::Cancelled { by, .. } if by == canceller),
            "{side:?}: {:?}",
            sim.state(i, side, id)
        );
    }
    // Let every late chunk drain: nothing reappears.
    let until = sim.now + Duration::from_secs(5);
    sim.run_until(Duration::from_secs(120), |sim| {
        sim.now >= until
            || (sim.links[0].next_event().is_none() && sim.links[1].next_event().is_none())
    });
    assert!(
        sim.nodes[1].disk.is_empty(),
        "{:?}",
        sim.nodes[1].disk.keys()
    );
}

#[test]
fn the_sender_cancels_midway() {
    cancel_midway(TransferSide::Sender);
}

#[test]
fn the_receiver_cancels_midway() {
    cancel_midway(TransferSide::Receiver);
}

#[test]
fn a_declined_offer_writes_nothing() {
    let mut sim = Sim::new(ReceivePolicy::Ask, Net::bad(), 5);
    let id = sim.offer(0, "holiday.jpg", random_bytes(300_000, 3));
    sim.run_until(Duration::from_secs(10), |sim| !sim.nodes[1].asks.is_empty());
    assert_eq!(sim.nodes[1].asks, [id]);
    sim.nodes[1].engine.decline_file(A, id).unwrap();
    sim.run_until(Duration::from_secs(10), both_final(id));
    assert_eq!(
        sim.state(0, TransferSide::Sender, id),
        TransferState::Declined(DeclineReason::Declined)
    );
    assert_eq!(sim.nodes[1].creates, 0);
    assert!(sim.nodes[1].disk.is_empty());
}

#[test]
fn an_offer_nobody_answers_is_declined_after_the_ask_timeout() {
    let mut sim = Sim::new(ReceivePolicy::Ask, Net::bad(), 6);
    let id = sim.offer(0, "x.txt", b"hello".to_vec());
    sim.run_until(Duration::from_secs(600), both_final(id));
    assert_eq!(
        sim.state(0, TransferSide::Sender, id),
        TransferState::Declined(DeclineReason::Declined)
    );
    assert!(sim.now - sim.start >= Duration::from_secs(120));
    assert!(sim.nodes[1].disk.is_empty());
}

#[test]
fn accepted_after_asking_then_stored() {
    let mut sim = Sim::new(ReceivePolicy::Ask, Net::bad(), 8);
    let id = sim.offer(0, "notes.md", b"# notes\n".to_vec());
    sim.run_until(Duration::from_secs(10), |sim| !sim.nodes[1].asks.is_empty());
    sim.nodes[1].engine.accept_file(A, id).unwrap();
    sim.run_until(Duration::from_secs(10), both_final(id));
    assert_eq!(sim.final_files(1), ["notes.md"]);
}

#[test]
fn policy_deny_and_size_cap_decline_with_reasons() {
    let mut sim = Sim::new(ReceivePolicy::Deny, Net::bad(), 9);
    let id = sim.offer(0, "a.txt", b"a".to_vec());
    sim.run_until(Duration::from_secs(10), both_final(id));
    assert_eq!(
        sim.state(0, TransferSide::Sender, id),
        TransferState::Declined(DeclineReason::Policy)
    );

    let mut sim = Sim::new(ReceivePolicy::Accept, Net::bad(), 10);
    // B's engine caps files at 64 MiB; offer a larger size without sending a byte.
    let huge = sim.nodes[0]
        .engine
        .send_file(B, "huge.bin", 65 * MIB as u64, "")
        .unwrap();
    sim.run_until(Duration::from_secs(10), both_final(huge));
    assert_eq!(
        sim.state(0, TransferSide::Sender, huge),
        TransferState::Declined(DeclineReason::TooLarge)
    );
    assert_eq!(sim.nodes[1].creates, 0);
}

#[test]
fn hostile_names_land_safely_and_never_overwrite() {
    let mut sim = Sim::new(ReceivePolicy::Accept, Net::bad(), 12);
    sim.nodes[1]
        .engine
        .set_existing_files(["passwd".to_owned()]);
    sim.nodes[1]
        .disk
        .insert("passwd".into(), b"keep me".to_vec());
    let first = sim.offer(0, "../../etc/passwd", b"one".to_vec());
    let second = sim.offer(0, "../../etc/passwd", b"two".to_vec());
    let hidden = sim.offer(0, ".profile", b"three".to_vec());
    let empty = sim.offer(0, "empty.txt", Vec::new());
    for id in [first, second, hidden, empty] {
        sim.run_until(Duration::from_secs(30), both_final(id));
        assert_eq!(
            sim.state(1, TransferSide::Receiver, id),
            TransferState::Complete
        );
    }
    let disk = &sim.nodes[1].disk;
    assert_eq!(disk["passwd"], b"keep me");
    assert_eq!(disk["passwd (1)"], b"one");
    assert_eq!(disk["passwd (2)"], b"two");
    assert_eq!(disk["profile"], b"three");
    assert_eq!(disk["empty.txt"], b"");
    assert_eq!(disk.len(), 5);
}

#[test]
fn transfers_both_ways_at_once_with_the_same_ids() {
    let mut sim = Sim::new(ReceivePolicy::Accept, Net::bad(), 13);
    let a_data = random_bytes(700_000, 4);
    let b_data = random_bytes(900_000, 5);
    let from_a = sim.offer(0, "from-a.bin", a_data.clone());
    let from_b = sim.offer(1, "from-b.bin", b_data.clone());
    assert_eq!(from_a, from_b, "each sender picks ids in its own space");
    sim.run_until(Duration::from_secs(60), |sim| {
        [
            (0, TransferSide::Sender),
            (1, TransferSide::Receiver),
            (1, TransferSide::Sender),
            (0, TransferSide::Receiver),
        ]
        .into_iter()
        .all(|(i, side)| sim.state(i, side, from_a) == TransferState::Complete)
    });
    assert!(sim.nodes[1].disk["from-a.bin"] == a_data);
    assert!(sim.nodes[0].disk["from-b.bin"] == b_data);
}

#[test]
fn chat_both_ways_over_the_same_link() {
    let mut sim = Sim::new(ReceivePolicy::Accept, Net::bad(), 14);
    sim.nodes[0].engine.send_chat(1.0, "hello from A").unwrap();
    sim.nodes[1]
        .engine
        .send_chat(2.0, "<b>hi</b> from B")
        .unwrap();
    sim.run_until(Duration::from_secs(10), |sim| {
        sim.nodes.iter().all(|n| n.engine.chat().len() == 2)
    });
    let texts: Vec<_> = sim.nodes[1].engine.chat().map(|e| e.text.clone()).collect();
    assert!(texts.contains(&"hello from A".to_owned()));
    assert!(texts.contains(&"<b>hi</b> from B".to_owned()));
    let remote = sim.nodes[0]
        .engine
        .chat()
        .find(|e| e.peer == Some(B))
        .unwrap();
    assert_eq!(remote.from, "kiosk 2");
}

#[test]
fn a_sender_leaving_midway_leaves_no_partial_file() {
    let mut sim = Sim::new(ReceivePolicy::Accept, Net::bad(), 15);
    let id = sim.offer(0, "video.mp4", random_bytes(4 * MIB, 6));
    sim.run_until(Duration::from_secs(60), |sim| {
        sim.nodes[1]
            .engine
            .transfer(A, TransferSide::Receiver, id)
            .is_some_and(|t| t.transferred > MIB as u64)
    });
    assert_eq!(
        sim.nodes[1].disk.len(),
        1,
        "the temp file exists while receiving"
    );
    let now = sim.now;
    sim.nodes[1]
        .engine
        .handle(now, Input::Server(ServerMessage::PeerLeft { peer_id: A }));
    sim.settle();
    assert!(
        sim.nodes[1].disk.is_empty(),
        "{:?}",
        sim.nodes[1].disk.keys()
    );
    assert!(
        sim.nodes[1].engine.transfers().is_empty(),
        "the peer's transfers went with it"
    );
}

#[test]
fn the_file_channel_closing_midway_cancels_both_sides() {
    let mut sim = Sim::new(ReceivePolicy::Accept, Net::bad(), 16);
    let id = sim.offer(0, "video.mp4", random_bytes(4 * MIB, 7));
    sim.run_until(Duration::from_secs(60), |sim| {
        sim.nodes[1]
            .engine
            .transfer(A, TransferSide::Receiver, id)
            .is_some_and(|t| t.transferred > MIB as u64)
    });
    let now = sim.now;
    for (i, peer) in [(0, B), (1, A)] {
        sim.nodes[i].engine.handle(
            now,
            Input::ChannelClosed {
                peer,
                channel: Channel::File,
            },
        );
    }
    sim.settle();
    for (i, side) in [(0, TransferSide::Sender), (1, TransferSide::Receiver)] {
        assert!(matches!(
            sim.state(i, side, id),
            TransferState::Cancelled { .. }
        ));
    }
    assert!(sim.nodes[1].disk.is_empty());
}

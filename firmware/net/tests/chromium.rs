//! portal-net against a real Chromium running Portal's browser client.
//!
//! The real `portal-server` relays signaling; `browser-peer.mjs` drives Debian's Chromium
//! (playwright-core, fake camera and microphone) into the room; this file plays the kiosk
//! with portal-net: it answers the browser's offer, sends H.264 (or VP8, when the browser
//! leaves H.264 out) and Opus made by GStreamer at test time, receives the browser's
//! camera and microphone, exchanges chat and keyframe requests, and keeps the call across
//! a restart of the rooms server.
//!
//! Needs `portal-server` built next to this test (`cargo build -p portal-signaling --bin
//! portal-server`, or `PORTAL_SERVER_BIN`), the browser client built (`npm run build` in
//! signaling/web), `/usr/bin/chromium` and `gst-launch-1.0` with x264. Every wait is a
//! condition with a generous limit; nothing here asserts a duration.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use portal_net::codec::{is_compatible_h264, rtp_sections};
use portal_net::{
    Channel, ChannelMessage, Codec, ConnectionState, KeyframeRequest, MediaSample, Negotiation,
    PeerConfig, PeerConnection, PeerEvent, Slot,
};
use portal_proto::channel::ChatChannelMessage;
use portal_proto::{IceServer, PeerId, Role, SdpType, SignalData};
use portal_testkit::{NodeDriver, ServerProc, TempDir, wait_until_async};
use room::{Room as SignalingHandle, RoomEvent as SignalingEvent};
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod common;
mod room;

use common::LONG;

/// One encoded frame of the test clip (an H.264 access unit or a VP8 frame).
#[derive(Clone)]
struct AccessUnit {
    data: Bytes,
    keyframe: bool,
}

/// 300 frames of `videotestsrc`, 640x480, constrained baseline, a keyframe every 30.
fn make_h264(dir: &Path) -> Vec<AccessUnit> {
    let file = dir.join("clip.h264");
    let status = std::process::Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=300", "!"])
        .args(["video/x-raw,width=640,height=480,framerate=30/1", "!"])
        .args([
            "x264enc",
            "tune=zerolatency",
            "speed-preset=ultrafast",
            "key-int-max=30",
            "!",
        ])
        .args(["video/x-h264,profile=constrained-baseline", "!"])
        .args(["h264parse", "config-interval=-1", "!"])
        .args(["video/x-h264,stream-format=byte-stream,alignment=au", "!"])
        .arg("filesink")
        .arg(format!("location={}", file.display()))
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success(), "gst-launch-1.0 failed: {status}");
    let bytes = std::fs::read(&file).expect("clip written");
    split_access_units(&bytes)
}

/// 150 frames of `videotestsrc`, 640x480, VP8 with a keyframe every 30, one file per
/// frame (`multifilesink`), so no container has to be parsed.
fn make_vp8(dir: &Path) -> Vec<AccessUnit> {
    let status = std::process::Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=150", "!"])
        .args(["video/x-raw,width=640,height=480,framerate=30/1", "!"])
        .args(["vp8enc", "deadline=1", "keyframe-max-dist=30", "!"])
        .arg("multifilesink")
        .arg(format!("location={}", dir.join("frame-%05d.vp8").display()))
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success(), "gst-launch-1.0 failed: {status}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("frames written")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "vp8"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let data = std::fs::read(f).expect("frame");
            // RFC 6386: bit 0 of the first byte is 0 on a key frame.
            let keyframe = data.first().is_some_and(|b| b & 1 == 0);
            AccessUnit {
                data: Bytes::from(data),
                keyframe,
            }
        })
        .collect()
}

/// Two seconds of a 440 Hz tone as 20 ms Opus packets, one file per packet.
fn make_opus(dir: &Path) -> Vec<Bytes> {
    let status = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "audiotestsrc",
            "num-buffers=100",
            "samplesperbuffer=960",
            "!",
        ])
        .args(["audio/x-raw,rate=48000,channels=1", "!"])
        .args(["opusenc", "frame-size=20", "!"])
        .arg("multifilesink")
        .arg(format!(
            "location={}",
            dir.join("packet-%05d.opus").display()
        ))
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success(), "gst-launch-1.0 failed: {status}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("packets written")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "opus"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| Bytes::from(std::fs::read(f).expect("packet")))
        .collect()
}

/// Loops the Opus packets into the audio slot, one every 20 ms.
async fn feed_audio(packets: Vec<Bytes>, shared: Shared) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut index = 0;
    loop {
        tick.tick().await;
        let Some(peer) = observe(&shared, |o| o.peer.clone()) else {
            continue;
        };
        let sample = MediaSample::new(packets[index].clone(), Duration::from_millis(20));
        match peer.write_sample(Slot::Audio, Codec::Opus, &sample).await {
            Ok(true) => index = (index + 1) % packets.len(),
            Ok(false) => {}
            Err(portal_net::PeerError::Closed) => return,
            Err(e) => eprintln!("audio write_sample failed: {e}"),
        }
    }
}

/// NAL units of an Annex B byte stream (without start codes).
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(stream.len(), |next| next - 3);
        // A four-byte start code leaves a zero before the next three-byte one.
        while end > start && stream[end - 1] == 0 && n + 1 < starts.len() {
            end -= 1;
        }
        if end > start {
            nals.push(&stream[start..end]);
        }
    }
    nals
}

/// Groups NAL units into access units: a new one starts at an AUD, SPS, PPS or SEI after
/// a slice, or at a slice whose `first_mb_in_slice` is 0 after a slice.
fn split_access_units(stream: &[u8]) -> Vec<AccessUnit> {
    let mut units = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut keyframe = false;
    let mut seen_slice = false;
    for nal in nal_units(stream) {
        let kind = nal[0] & 0x1f;
        let is_slice = kind == 1 || kind == 5;
        let first_mb_zero = nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts_new = seen_slice && (matches!(kind, 6..=9) || (is_slice && first_mb_zero));
        if starts_new {
            units.push(AccessUnit {
                data: Bytes::from(std::mem::take(&mut current)),
                keyframe,
            });
            keyframe = false;
            seen_slice = false;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        keyframe |= kind == 5;
        seen_slice |= is_slice;
    }
    if !current.is_empty() {
        units.push(AccessUnit {
            data: Bytes::from(current),
            keyframe,
        });
    }
    units
}

/// What the kiosk side saw, for the test to wait on.
#[derive(Default)]
struct Observed {
    states: Vec<ConnectionState>,
    negotiated: Option<[Option<Codec>; 3]>,
    offer_sdp: Option<String>,
    remote_candidates: Vec<String>,
    chat_open: bool,
    chats: Vec<ChatChannelMessage>,
    rtp: HashMap<Slot, u64>,
    camera_payload_types: BTreeSet<u8>,
    camera_mime: Option<String>,
    keyframe_requests: Vec<KeyframeRequest>,
    samples_written: u64,
    peer: Option<PeerConnection>,
}

type Shared = Arc<Mutex<Observed>>;

fn observe<R>(shared: &Shared, f: impl FnOnce(&mut Observed) -> R) -> R {
    f(&mut shared.lock().expect("observed state"))
}

async fn wait_until(what: &str, shared: &Shared, cond: impl Fn(&Observed) -> bool) {
    wait_until_async(LONG, what, || observe(shared, |o| cond(o))).await;
}

/// The kiosk: answers browsers, relays signals, records what happens.
async fn run_kiosk(
    signaling: SignalingHandle,
    mut signal_events: mpsc::Receiver<SignalingEvent>,
    shared: Shared,
) {
    let (peer_tx, mut peer_rx) = mpsc::channel(1024);
    let mut ice_servers: Vec<IceServer> = Vec::new();
    let mut roles: HashMap<PeerId, Role> = HashMap::new();
    let mut peers: HashMap<PeerId, PeerConnection> = HashMap::new();
    loop {
        tokio::select! {
            event = signal_events.recv() => {
                let Some(event) = event else { return };
                match event {
                    SignalingEvent::Welcome { ice_servers: servers, .. } => ice_servers = servers,
                    SignalingEvent::PeerJoined(info, offer) => {
                        assert!(!offer, "a browser always offers to a kiosk");
                        roles.insert(info.id, info.role);
                    }
                    SignalingEvent::PeerLeft(id) => {
                        if let Some(peer) = peers.remove(&id) {
                            peer.close().await;
                        }
                    }
                    SignalingEvent::Signal { from, data } => {
                        if let SignalData::Sdp(desc) = &data
                            && desc.kind == SdpType::Offer
                        {
                            observe(&shared, |o| o.offer_sdp = Some(desc.sdp.clone()));
                        }
                        if let SignalData::Candidate(c) = &data {
                            observe(&shared, |o| o.remote_candidates.push(c.candidate.clone()));
                        }
                        let peer = match peers.entry(from) {
                            Entry::Occupied(known) => known.into_mut(),
                            Entry::Vacant(slot) => {
                                // A browser always offers to a kiosk: we answer.
                                assert_eq!(roles.get(&from), Some(&Role::Browser));
                                let mut config = PeerConfig::new(from, Negotiation::Answer);
                                config.ice_servers.clone_from(&ice_servers);
                                let peer = PeerConnection::connect(config, peer_tx.clone())
                                    .await
                                    .expect("peer connection");
                                observe(&shared, |o| o.peer = Some(peer.clone()));
                                slot.insert(peer)
                            }
                        };
                        if let Err(e) = peer.handle_signal(data).await {
                            panic!("signal from {from} failed: {e}");
                        }
                    }
                    SignalingEvent::Stopped(None) => return,
                    SignalingEvent::Stopped(Some(e)) => panic!("signaling stopped: {e}"),
                    _ => {}
                }
            }
            event = peer_rx.recv() => {
                let Some((from, event)) = event else { return };
                match event {
                    PeerEvent::Signal(data) => {
                        if let Err(e) = signaling.signal(from, data).await {
                            eprintln!("relay to {from} failed: {e}");
                        }
                    }
                    PeerEvent::State(s) => observe(&shared, |o| o.states.push(s)),
                    PeerEvent::Negotiated { send } => {
                        observe(&shared, |o| o.negotiated = Some(send));
                    }
                    PeerEvent::ChannelOpen(Channel::Chat) => {
                        observe(&shared, |o| o.chat_open = true);
                    }
                    PeerEvent::Message {
                        channel: Channel::Chat,
                        message: ChannelMessage::Text(text),
                    } => {
                        if let Ok(msg) = ChatChannelMessage::parse(&text) {
                            observe(&shared, |o| o.chats.push(msg));
                        }
                    }
                    PeerEvent::Rtp(rtp) => observe(&shared, |o| {
                        *o.rtp.entry(rtp.slot).or_default() += 1;
                        if rtp.slot == Slot::Camera {
                            o.camera_payload_types.insert(rtp.payload_type);
                            o.camera_mime = Some(rtp.codec.mime_type.clone());
                        }
                    }),
                    PeerEvent::KeyframeRequested { slot: Slot::Camera, kind } => {
                        observe(&shared, |o| o.keyframe_requests.push(kind));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Loops the clip into the camera slot at 30 fps, starting on a delta frame (so Chromium
/// has to ask for a keyframe) and jumping to the next keyframe when one is requested, as
/// an encoder's force-key-unit would.
async fn feed_camera(codec: Codec, units: Vec<AccessUnit>, shared: Shared) {
    let mut tick = tokio::time::interval(Duration::from_millis(33));
    let mut index = 1;
    let mut served_requests = 0;
    loop {
        tick.tick().await;
        let (peer, requests) = observe(&shared, |o| (o.peer.clone(), o.keyframe_requests.len()));
        let Some(peer) = peer else { continue };
        if requests > served_requests {
            served_requests = requests;
            if let Some(next) = (index..units.len())
                .chain(0..index)
                .find(|&i| units[i].keyframe)
            {
                index = next;
            }
        }
        let unit = &units[index];
        let sample = MediaSample::new(unit.data.clone(), Duration::from_millis(33));
        match peer.write_sample(Slot::Camera, codec, &sample).await {
            Ok(true) => {
                index = (index + 1) % units.len();
                observe(&shared, |o| o.samples_written += 1);
            }
            Ok(false) => {}
            Err(portal_net::PeerError::Closed) => return,
            Err(e) => eprintln!("write_sample failed: {e}"),
        }
    }
}

/// `browser-peer.mjs` in `room`: Portal's browser client in Chromium, with `query` added
/// to its URL; `no_media` gives it no camera or microphone permission.
fn start_browser(server: &ServerProc, room: &str, query: &str, no_media: bool) -> NodeDriver {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser-peer.mjs");
    let base = server.http_url("");
    let mode = if no_media { "nomedia" } else { "" };
    NodeDriver::start(script, [base.as_str(), room, query, mode], &[])
        .reply_timeout(LONG + Duration::from_secs(30))
}

fn video_codec_lines(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter(|l| {
            l.starts_with("m=")
                || l.contains("H264/")
                || l.contains("VP8/")
                || l.contains("opus/")
                || l.contains("profile-level-id")
        })
        .map(str::to_owned)
        .collect()
}

/// One Chromium at a time: two at once on two shared cores prove nothing more.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_calls_chromium_in_h264_and_survives_a_server_restart() {
    let _one = ONE_BROWSER.lock().await;
    call_chromium(Codec::H264, "", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_falls_back_to_vp8_when_chromium_leaves_h264_out() {
    let _one = ONE_BROWSER.lock().await;
    // `?codec=vp8` makes the browser client drop H.264 from its codec preferences.
    call_chromium(Codec::Vp8, "&codec=vp8", false).await;
}

/// The whole call with the browser, `video` being what both sides should send;
/// `restart_server` restarts the rooms server mid-call.
async fn call_chromium(video: Codec, query: &str, restart_server: bool) {
    common::init_tracing();
    let clip_dir = TempDir::new("clip");
    let units = tokio::task::spawn_blocking({
        let dir = clip_dir.path().to_owned();
        move || match video {
            Codec::Vp8 => make_vp8(&dir),
            _ => make_h264(&dir),
        }
    })
    .await
    .expect("clip task");
    assert!(units.len() >= 150, "frames in the clip: {}", units.len());
    assert!(
        units[0].keyframe && !units[1].keyframe,
        "a clip starting with a keyframe"
    );
    let opus = tokio::task::spawn_blocking({
        let dir = clip_dir.join("opus");
        move || {
            std::fs::create_dir_all(&dir).expect("opus dir");
            make_opus(&dir)
        }
    })
    .await
    .expect("opus task");
    assert!(opus.len() >= 100, "Opus packets: {}", opus.len());
    let video_mime = match video {
        Codec::Vp8 => "video/VP8",
        _ => "video/H264",
    };

    let mut server = ServerProc::builder().web_dist().start_async().await;
    let room = format!("interop-{}", rand::random::<u32>());
    let (signaling, events) = room::join(server.ws_url(), "Kiosk", &room, None);
    let shared: Shared = Arc::default();
    let kiosk = tokio::spawn(run_kiosk(signaling.clone(), events, Arc::clone(&shared)));
    let feeder = tokio::spawn(feed_camera(video, units, Arc::clone(&shared)));
    let audio = tokio::spawn(feed_audio(opus, Arc::clone(&shared)));
    wait_until_async(LONG, "the kiosk to join", || signaling.is_joined()).await;

    let mut browser = start_browser(&server, &room, query, false);

    // 1. The browser's connection to the kiosk comes up, on both sides.
    let connected = browser.call(json!({"cmd": "waitConnected"})).await;
    assert_eq!(
        connected["offerer"],
        json!(true),
        "the browser offers to a kiosk"
    );
    wait_until("the kiosk's side to connect", &shared, |o| {
        o.states.contains(&ConnectionState::Connected)
    })
    .await;

    // What Chromium offered, and what the kiosk chose from it.
    let offer = observe(&shared, |o| o.offer_sdp.clone()).expect("an offer arrived");
    eprintln!(
        "Chromium's offer (codec lines):\n  {}",
        video_codec_lines(&offer).join("\n  ")
    );
    let sections = rtp_sections(&offer);
    assert_eq!(sections.len(), 3, "audio, camera and screen sections");
    assert_eq!(
        sections.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(),
        ["audio", "video", "video"]
    );
    wait_until("negotiation", &shared, |o| o.negotiated.is_some()).await;
    let negotiated = observe(&shared, |o| o.negotiated).expect("negotiated");
    assert_eq!(negotiated, [Some(Codec::Opus), Some(video), Some(video)]);

    // 2. The kiosk receives the browser's camera in the same codec; for H.264 with a
    //    payload type Chromium offered for constrained baseline, packetization mode 1.
    wait_until("camera RTP from the browser", &shared, |o| {
        o.rtp.get(&Slot::Camera).copied().unwrap_or(0) >= 30
    })
    .await;
    let offered_pts: BTreeSet<u8> = sections[1]
        .formats
        .iter()
        .filter(|f| match video {
            Codec::Vp8 => f.name.eq_ignore_ascii_case("VP8"),
            _ => is_compatible_h264(f),
        })
        .map(|f| f.payload_type)
        .collect();
    let (pts, mime) = observe(&shared, |o| {
        (o.camera_payload_types.clone(), o.camera_mime.clone())
    });
    assert_eq!(
        mime.as_deref().map(str::to_ascii_lowercase),
        Some(video_mime.to_ascii_lowercase())
    );
    assert!(
        !pts.is_empty() && pts.is_subset(&offered_pts),
        "camera payload types {pts:?} within {offered_pts:?}"
    );
    wait_until("microphone RTP from the browser", &shared, |o| {
        o.rtp.get(&Slot::Audio).copied().unwrap_or(0) >= 10
    })
    .await;

    // 3. The browser plays the kiosk's video.
    let video = browser.call(json!({"cmd": "waitVideo"})).await;
    assert_eq!(
        (video["videoWidth"].as_u64(), video["videoHeight"].as_u64()),
        (Some(640), Some(480))
    );

    // ... and receives the kiosk's Opus.
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let stats = browser.call(json!({"cmd": "stats"})).await;
        let audio_in = stats["rtp"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["type"] == "inbound-rtp" && s["kind"] == "audio")
            .cloned();
        if let Some(a) = &audio_in
            && a["packets"].as_u64().unwrap_or(0) >= 25
        {
            assert_eq!(a["codec"]["mimeType"], json!("audio/opus"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Chromium received no Opus from the kiosk: {audio_in:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 4. Chromium asked for a keyframe (we started on a delta frame) and it reached us.
    wait_until("a keyframe request from Chromium", &shared, |o| {
        !o.keyframe_requests.is_empty()
    })
    .await;

    // 5. Chat both ways on the `chat` channel, in the browser's format.
    wait_until("the chat channel", &shared, |o| o.chat_open).await;
    let peer = observe(&shared, |o| o.peer.clone()).expect("peer");
    let line = ChatChannelMessage::Chat {
        id: format!("kiosk-{}", rand::random::<u32>()),
        from: "Kiosk".into(),
        time: signaling.server_now_ms(),
        text: "hello from the kiosk".into(),
    };
    peer.send_text(Channel::Chat, &line.to_json())
        .await
        .expect("chat sent");
    let got = browser
        .call(json!({"cmd": "waitChat", "text": "hello from the kiosk"}))
        .await;
    assert_eq!(got["message"]["from"], json!("Kiosk"));
    browser
        .call(json!({"cmd": "sendChat", "text": "hello from Chromium"}))
        .await;
    wait_until("the browser's chat line", &shared, |o| {
        o.chats.iter().any(|m| {
            matches!(m, ChatChannelMessage::Chat { text, from, .. }
                if text == "hello from Chromium" && from == "Browser")
        })
    })
    .await;

    // 6. The kiosk's own PLI reaches Chromium's camera sender.
    let before = browser.call(json!({"cmd": "stats"})).await;
    let plis = |stats: &Value| {
        stats["rtp"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["type"] == "outbound-rtp" && s["kind"] == "video")
            .filter_map(|s| s["pliCount"].as_u64())
            .sum::<u64>()
    };
    assert!(
        peer.request_keyframe(Slot::Camera).await.expect("PLI sent"),
        "the camera track has started"
    );
    let deadline = tokio::time::Instant::now() + LONG;
    let after = loop {
        let stats = browser.call(json!({"cmd": "stats"})).await;
        if plis(&stats) > plis(&before) {
            break stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Chromium never counted the kiosk's PLI: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = peer.request_keyframe(Slot::Camera).await;
    };
    eprintln!("Chromium's RTP stats: {}", after["rtp"]);
    eprintln!("Chromium's selected pair: {}", after["pair"]);
    let inbound_video = after["rtp"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| {
            s["type"] == "inbound-rtp"
                && s["kind"] == "video"
                && s["framesDecoded"].as_u64().unwrap_or(0) > 0
        })
        .cloned()
        .expect("Chromium decodes the kiosk's video");
    assert_eq!(inbound_video["codec"]["mimeType"], json!(video_mime));
    let stats = peer.stats();
    eprintln!(
        "kiosk: {} samples written, rtp received {:?}, {} keyframe requests ({:?})",
        observe(&shared, |o| o.samples_written),
        stats.rtp_received,
        stats.keyframe_requests,
        observe(&shared, |o| o.keyframe_requests.clone()),
    );

    eprintln!(
        "Chromium's candidates: {:?}",
        observe(&shared, |o| o.remote_candidates.clone())
    );
    eprintln!("kiosk's selected path: {:?}", peer.selected_path().await);

    if restart_server {
        // 7. The rooms server restarts mid-call: the kiosk comes back under the same id
        //    and the call itself (same connection on both sides) goes on.
        let kiosk_id = signaling.peer_id().expect("kiosk id");
        browser.call(json!({"cmd": "tag"})).await;
        server.terminate_async().await;
        wait_until_async(LONG, "the kiosk to notice the drop", || {
            !signaling.is_joined()
        })
        .await;
        server.restart_async().await;
        wait_until_async(LONG, "the kiosk to rejoin", || signaling.is_joined()).await;
        assert_eq!(
            signaling.peer_id(),
            Some(kiosk_id),
            "resumed under the same id"
        );
        let again = browser.call(json!({"cmd": "waitConnected"})).await;
        assert_eq!(
            again["tag"],
            json!("before"),
            "the browser kept its connection"
        );
        assert_eq!(peer.state(), ConnectionState::Connected);
        browser.call(json!({"cmd": "waitVideo"})).await;
        browser
            .call(json!({"cmd": "sendChat", "text": "still here"}))
            .await;
        wait_until("chat after the restart", &shared, |o| {
            o.chats
                .iter()
                .any(|m| matches!(m, ChatChannelMessage::Chat { text, .. } if text == "still here"))
        })
        .await;
    }

    feeder.abort();
    audio.abort();
    browser.quit().await;
    signaling.leave().await;
    peer.close().await;
    kiosk.abort();
    server.terminate_async().await;
}

/// A browser without camera or microphone permission joins receive-only, and Chromium
/// then announces its host addresses only as mDNS `<uuid>.local` names, which the kiosk
/// has to resolve (or learn as peer-reflexive from Chromium's checks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_reaches_a_chromium_that_hides_its_addresses_behind_mdns() {
    let _one = ONE_BROWSER.lock().await;
    common::init_tracing();
    let clip_dir = TempDir::new("clip-mdns");
    let units = tokio::task::spawn_blocking({
        let dir = clip_dir.path().to_owned();
        move || make_h264(&dir)
    })
    .await
    .expect("clip task");
    let mut server = ServerProc::builder().web_dist().start_async().await;
    let room = format!("mdns-{}", rand::random::<u32>());
    let (signaling, events) = room::join(server.ws_url(), "Kiosk", &room, None);
    let shared: Shared = Arc::default();
    let kiosk = tokio::spawn(run_kiosk(signaling.clone(), events, Arc::clone(&shared)));
    let feeder = tokio::spawn(feed_camera(Codec::H264, units, Arc::clone(&shared)));
    wait_until_async(LONG, "the kiosk to join", || signaling.is_joined()).await;
    let mut browser = start_browser(&server, &room, "", true);
    browser.call(json!({"cmd": "waitConnected"})).await;
    wait_until("the kiosk's side to connect", &shared, |o| {
        o.states.contains(&ConnectionState::Connected)
    })
    .await;
    let candidates = observe(&shared, |o| o.remote_candidates.clone());
    eprintln!("Chromium's candidates without media permission: {candidates:?}");
    assert!(
        candidates.iter().any(|c| c.contains(".local")),
        "Chromium announced mDNS names: {candidates:?}"
    );
    let peer = observe(&shared, |o| o.peer.clone()).expect("peer");
    let path = peer.selected_path().await;
    eprintln!("kiosk's selected path: {path:?}");
    browser.call(json!({"cmd": "waitVideo"})).await;
    wait_until("the chat channel", &shared, |o| o.chat_open).await;
    browser
        .call(json!({"cmd": "sendChat", "text": "no camera here"}))
        .await;
    wait_until("the browser's chat line", &shared, |o| {
        o.chats
            .iter()
            .any(|m| matches!(m, ChatChannelMessage::Chat { text, .. } if text == "no camera here"))
    })
    .await;
    feeder.abort();
    browser.quit().await;
    signaling.leave().await;
    peer.close().await;
    kiosk.abort();
    server.terminate_async().await;
}

//! Two portal-net kiosks in one room through the real `portal-server`: the lower peer id
//! offers, media and both data channels flow, a PLI reaches the sender, and only the
//! offerer restarts ICE.

mod common;
mod room;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{LONG, init_tracing};
use portal_net::{
    Channel, ChannelMessage, Codec, ConnectionState, MediaSample, Negotiation, PeerConfig,
    PeerConnection, PeerError, PeerEvent, Slot,
};
use portal_proto::{IceServer, PeerId, Role};
use portal_testkit::{ServerProc, wait_until_async};
use room::{Room as SignalingHandle, RoomEvent as SignalingEvent};
use tokio::sync::mpsc;

#[derive(Default)]
struct Seen {
    peer: Option<PeerConnection>,
    states: Vec<ConnectionState>,
    negotiated: Option<[Option<Codec>; 3]>,
    open: Vec<Channel>,
    texts: Vec<(Channel, String)>,
    binaries: Vec<(Channel, usize)>,
    rtp: HashMap<Slot, u64>,
    camera_mime: Option<String>,
    keyframe_requests: u64,
    ice_restarts: u32,
}

type Shared = Arc<Mutex<Seen>>;

fn seen<R>(shared: &Shared, f: impl FnOnce(&mut Seen) -> R) -> R {
    f(&mut shared.lock().expect("seen"))
}

/// A kiosk that offers to kiosks with a higher id and answers the others.
async fn kiosk(
    signaling: SignalingHandle,
    mut events: mpsc::Receiver<SignalingEvent>,
    shared: Shared,
) {
    let (peer_tx, mut peer_rx) = mpsc::channel(1024);
    let mut ice_servers: Vec<IceServer> = Vec::new();
    let mut me: Option<PeerId> = None;
    let mut peers: HashMap<PeerId, PeerConnection> = HashMap::new();
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let mut found = Vec::new();
                match event {
                    SignalingEvent::Welcome { peer_id, ice_servers: s, .. } => {
                        me = Some(peer_id);
                        ice_servers = s;
                    }
                    SignalingEvent::PeerJoined(info, offer) => found.push((info, offer)),
                    SignalingEvent::Signal { from, data } => {
                        let peer = match peers.entry(from) {
                            Entry::Occupied(known) => known.into_mut(),
                            Entry::Vacant(slot) => {
                                let mut config = PeerConfig::new(from, Negotiation::Answer);
                                config.ice_servers.clone_from(&ice_servers);
                                let peer = PeerConnection::connect(config, peer_tx.clone())
                                    .await
                                    .expect("peer");
                                seen(&shared, |s| s.peer = Some(peer.clone()));
                                slot.insert(peer)
                            }
                        };
                        if let Err(e) = peer.handle_signal(data).await {
                            eprintln!("signal from {from}: {e}");
                        }
                    }
                    _ => {}
                }
                for (info, offer) in found {
                    let me = me.expect("welcome before peers");
                    // Between kiosks the lower id offers: the engine says so.
                    assert_eq!(offer, info.role == Role::Kiosk && me < info.id);
                    if offer && !peers.contains_key(&info.id) {
                        let mut config = PeerConfig::new(info.id, Negotiation::Offer);
                        config.ice_servers.clone_from(&ice_servers);
                        let peer = PeerConnection::connect(config, peer_tx.clone()).await.expect("peer");
                        seen(&shared, |s| s.peer = Some(peer.clone()));
                        peers.insert(info.id, peer);
                    }
                }
            }
            event = peer_rx.recv() => {
                let Some((from, event)) = event else { return };
                match event {
                    PeerEvent::Signal(data) => {
                        if let Err(e) = signaling.signal(from, data).await {
                            eprintln!("relay to {from}: {e}");
                        }
                    }
                    PeerEvent::State(s) => seen(&shared, |x| x.states.push(s)),
                    PeerEvent::Negotiated { send } => seen(&shared, |x| x.negotiated = Some(send)),
                    PeerEvent::ChannelOpen(c) => seen(&shared, |x| x.open.push(c)),
                    PeerEvent::Message { channel, message: ChannelMessage::Text(t) } => {
                        seen(&shared, |x| x.texts.push((channel, t)));
                    }
                    PeerEvent::Message { channel, message: ChannelMessage::Binary(b) } => {
                        seen(&shared, |x| x.binaries.push((channel, b.len())));
                    }
                    PeerEvent::Rtp(rtp) => seen(&shared, |x| {
                        *x.rtp.entry(rtp.slot).or_default() += 1;
                        if rtp.slot == Slot::Camera {
                            x.camera_mime = Some(rtp.codec.mime_type);
                        }
                    }),
                    PeerEvent::KeyframeRequested { .. } => {
                        seen(&shared, |x| x.keyframe_requests += 1);
                    }
                    PeerEvent::IceRestart { attempt } => {
                        seen(&shared, |x| x.ice_restarts = attempt);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A minimal H.264 access unit stream: SPS, PPS and an IDR slice header. Decoders would
/// reject it; the RTP path does not look inside.
fn fake_h264_frame(n: u8) -> MediaSample {
    let data = vec![
        0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02, 0x80, //
        0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, //
        0, 0, 0, 1, 0x65, 0x88, 0x84, n, 0x21, 0xa0,
    ];
    MediaSample::new(data, Duration::from_millis(33))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_kiosks_call_each_other() {
    init_tracing();
    let mut server = ServerProc::builder().start_async().await;
    let room = "kiosks";
    let (a_sig, a_events) = room::join(server.ws_url(), "Kiosk A", room, None);
    wait_until_async(LONG, "A joined", || a_sig.is_joined()).await;
    let (b_sig, b_events) = room::join(server.ws_url(), "Kiosk B", room, None);
    let a: Shared = Arc::default();
    let b: Shared = Arc::default();
    let a_task = tokio::spawn(kiosk(a_sig.clone(), a_events, Arc::clone(&a)));
    let b_task = tokio::spawn(kiosk(b_sig.clone(), b_events, Arc::clone(&b)));

    // A joined first and so has the lower id: A offers.
    wait_until_async(LONG, "both connected", || {
        seen(&a, |s| s.states.contains(&ConnectionState::Connected))
            && seen(&b, |s| s.states.contains(&ConnectionState::Connected))
    })
    .await;
    let pa = seen(&a, |s| s.peer.clone()).expect("A's peer");
    let pb = seen(&b, |s| s.peer.clone()).expect("B's peer");
    assert_eq!(pa.negotiation(), Negotiation::Offer);
    assert_eq!(pb.negotiation(), Negotiation::Answer);
    wait_until_async(LONG, "negotiated on both", || {
        seen(&a, |s| s.negotiated.is_some()) && seen(&b, |s| s.negotiated.is_some())
    })
    .await;
    let full = Some([Some(Codec::Opus), Some(Codec::H264), Some(Codec::H264)]);
    assert_eq!(seen(&a, |s| s.negotiated), full);
    assert_eq!(seen(&b, |s| s.negotiated), full);

    // Media: A's camera samples arrive at B as H.264 RTP on the camera slot; a sample of
    // another codec is not taken.
    assert!(
        !pa.write_sample(Slot::Camera, Codec::Vp8, &fake_h264_frame(0))
            .await
            .expect("write")
    );
    let feeder = {
        let pa = pa.clone();
        tokio::spawn(async move {
            let mut n = 0u8;
            loop {
                let _ = pa
                    .write_sample(Slot::Camera, Codec::H264, &fake_h264_frame(n))
                    .await;
                n = n.wrapping_add(1);
                tokio::time::sleep(Duration::from_millis(33)).await;
            }
        })
    };
    wait_until_async(LONG, "camera RTP at B", || {
        seen(&b, |s| s.rtp.get(&Slot::Camera).copied().unwrap_or(0) >= 20)
    })
    .await;
    assert_eq!(
        seen(&b, |s| s.camera_mime.clone()).as_deref(),
        Some("video/H264")
    );

    // B asks A for a keyframe; the PLI reaches A's application.
    let deadline = tokio::time::Instant::now() + LONG;
    while seen(&a, |s| s.keyframe_requests == 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B's PLI never reached A"
        );
        assert!(
            pb.request_keyframe(Slot::Camera).await.expect("PLI"),
            "B has A's camera track"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Both channels open on both sides; text and binary both ways.
    wait_until_async(LONG, "channels open", || {
        [&a, &b].iter().all(|x| {
            seen(x, |s| {
                s.open.contains(&Channel::Chat) && s.open.contains(&Channel::File)
            })
        })
    })
    .await;
    pa.send_text(
        Channel::Chat,
        r#"{"type":"chat","id":"1","from":"A","time":1,"text":"hi B"}"#,
    )
    .await
    .expect("chat A→B");
    pb.send_text(
        Channel::Chat,
        r#"{"type":"chat","id":"2","from":"B","time":2,"text":"hi A"}"#,
    )
    .await
    .expect("chat B→A");
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..8 {
        pb.writable(Channel::File).await.expect("writable");
        pb.send_binary(Channel::File, &chunk)
            .await
            .expect("chunk B→A");
    }
    wait_until_async(LONG, "messages delivered", || {
        seen(&b, |s| {
            s.texts
                .iter()
                .any(|(c, t)| *c == Channel::Chat && t.contains("hi B"))
        }) && seen(&a, |s| {
            s.texts
                .iter()
                .any(|(c, t)| *c == Channel::Chat && t.contains("hi A"))
        }) && seen(&a, |s| {
            s.binaries
                .iter()
                .filter(|(c, n)| *c == Channel::File && *n == 64 * 1024)
                .count()
                == 8
        })
    })
    .await;
    assert!(matches!(
        pb.send_binary(Channel::File, &vec![0; 300 * 1024]).await,
        Err(PeerError::MessageTooLarge { .. })
    ));

    // ICE restart: the answerer may not, the offerer may; the call goes on.
    assert!(matches!(pb.restart_ice().await, Err(PeerError::NotOfferer)));
    let before = seen(&b, |s| s.rtp.get(&Slot::Camera).copied().unwrap_or(0));
    pa.restart_ice().await.expect("offerer restarts ICE");
    wait_until_async(LONG, "restart reported", || {
        seen(&a, |s| s.ice_restarts == 1)
    })
    .await;
    wait_until_async(LONG, "media after the restart", || {
        seen(&b, |s| s.rtp.get(&Slot::Camera).copied().unwrap_or(0)) > before + 30
    })
    .await;
    assert_eq!(pa.state(), ConnectionState::Connected);
    pa.send_text(Channel::Chat, "after restart")
        .await
        .expect("chat after restart");
    wait_until_async(LONG, "chat after restart", || {
        seen(&b, |s| s.texts.iter().any(|(_, t)| t == "after restart"))
    })
    .await;

    // Closing one side leaves the other to notice; the closed side refuses work.
    feeder.abort();
    pa.close().await;
    assert!(matches!(
        pa.send_text(Channel::Chat, "x").await,
        Err(PeerError::Closed)
    ));
    a_sig.leave().await;
    b_sig.leave().await;
    pb.close().await;
    a_task.abort();
    b_task.abort();
    server.terminate_async().await;
}

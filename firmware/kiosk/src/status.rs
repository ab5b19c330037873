//! The JSON of `GET /status`: where the call stands (`state`, and `error` when the
//! server refused us for good), the room and its peers with their media counters, what
//! the kiosk sends, the chat log and the file transfers. Built from the engine's answers
//! and the links' and sender's counters; nothing here decides anything. `update` is the
//! update agent's state, when there is one ([`add_update`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use portal_engine::{CallState, Engine, TransferState};
use portal_proto::channel::TransferSide;
use portal_proto::media::{Codec, Slot};
use portal_proto::{ErrorCode, PeerId};
use serde_json::{Value, json};

use crate::link::Link;
use crate::media::Media;

/// Adds `"update"`: where the update agent stands (`null` without `[update]`).
pub(crate) fn add_update(status: &mut Value, updater: Option<&crate::update::Updater>) {
    if let Some(map) = status.as_object_mut() {
        map.insert(
            "update".into(),
            updater.map_or(Value::Null, crate::update::Updater::json),
        );
    }
}

/// `state` and `error` of a call state.
fn state_fields(state: &CallState) -> (Value, Value) {
    let error = match state {
        CallState::Failed { code, message } => json!({"code": code, "message": message}),
        _ => Value::Null,
    };
    let attempt = match state {
        CallState::Reconnecting { attempt } => json!(attempt),
        _ => Value::Null,
    };
    (json!({"state": state.as_str(), "attempt": attempt}), error)
}

/// No call: home, or after a refusal (kept until the next join). `rooms` are home's
/// rooms with the people in each as last heard from the server (`None`: not known).
pub(crate) fn idle(
    name: &str,
    failure: Option<(&str, ErrorCode, &str)>,
    rooms: &[(String, Option<u32>)],
) -> Value {
    let (state, error) = match failure {
        Some((room, code, message)) => (
            "failed",
            json!({"code": code, "message": message, "room": room}),
        ),
        None => ("idle", Value::Null),
    };
    json!({
        "state": state,
        "error": error,
        "room": null,
        "name": name,
        "rooms": rooms
            .iter()
            .map(|(room, peers)| json!({"room": room, "peers": peers}))
            .collect::<Vec<_>>(),
        "connected": false,
        "peers": [],
        "chat": [],
        "files": [],
    })
}

/// Everything a running call can tell.
pub(crate) fn call(
    engine: &Engine,
    links: &HashMap<PeerId, Link>,
    media: &Media,
    files_dir: &Path,
    join_started_unix_ms: u64,
) -> Value {
    let call_state = engine.call_state();
    let (state, error) = state_fields(&call_state);
    let peers: Vec<Value> = engine
        .peers()
        .into_iter()
        .map(|p| peer(engine, links.get(&p.id), p))
        .collect();
    let sender = &media.sender;
    let video_codecs = [Codec::H264, Codec::Vp8];
    let running: Vec<Codec> = video_codecs
        .into_iter()
        .filter(|c| sender.stats(*c).running)
        .collect();
    let frames: u64 = video_codecs.iter().map(|c| sender.stats(*c).samples).sum();
    let local = engine.local_media();
    let chat: Vec<Value> = engine
        .chat()
        .map(|c| json!({"from": c.from, "text": c.text, "mine": c.peer.is_none()}))
        .collect();
    let files: Vec<Value> = engine
        .transfers()
        .into_iter()
        .map(|(peer, t)| {
            let path = (t.side == TransferSide::Receiver && t.state == TransferState::Complete)
                .then_some(t.stored_name.as_ref())
                .flatten()
                .map(|name| files_dir.join(name).display().to_string());
            json!({
                "id": portal_engine::FileKey::new(peer, t.id).to_string(),
                "peer": peer.0,
                "direction": match t.side { TransferSide::Sender => "out", TransferSide::Receiver => "in" },
                "offeredName": t.offered_name,
                "name": t.stored_name.clone().unwrap_or_else(|| t.offered_name.clone()),
                "path": path,
                "size": t.size,
                "transferred": t.transferred,
                "sha256": t.sha256,
                "state": transfer_state(&t.state),
            })
        })
        .collect();
    json!({
        "state": state["state"],
        "attempt": state["attempt"],
        "error": error,
        "room": engine.config().room,
        "name": engine.config().name,
        "me": engine.me().map(|p| p.0),
        "connected": call_state == CallState::Joined,
        "joinStartedUnixMs": join_started_unix_ms,
        "stage": stage(engine.stage()),
        "volume": media.gates.volume(),
        "micMuted": !local.audio,
        "cameraOff": !local.video,
        "peers": peers,
        "sending": {
            "videoCodec": running.first().map(|c| c.mime_type()),
            "framesEncoded": frames,
            "bitrate": sender.bitrate(),
            "encoders": running.len(),
            "encoderElements": running.iter().filter_map(|c| sender.encoder_element(*c)).collect::<Vec<_>>(),
            "audioFrames": sender.stats(Codec::Opus).samples,
        },
        "chat": chat,
        "files": files,
        "filesDir": files_dir.display().to_string(),
        "fileStats": file_stats(&engine.file_stats()),
    })
}

fn peer(engine: &Engine, link: Option<&Link>, p: &portal_engine::Peer) -> Value {
    let stats = |slot| link.and_then(|l| l.shared.receiver_stats(slot));
    let video = stats(Slot::Camera);
    let audio = stats(Slot::Audio);
    let screen = stats(Slot::Screen);
    let state = engine
        .peer_connection(p.id)
        .map_or("none", portal_proto::media::ConnectionState::as_str);
    let sending = link.and_then(|l| {
        *l.shared
            .send_video
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    });
    let mime = |c: Option<Codec>| c.map(Codec::mime_type);
    json!({
        "id": p.id.0,
        "name": p.name,
        "role": format!("{:?}", p.role).to_lowercase(),
        "offer": format!("{:?}", p.offer).to_lowercase(),
        "state": state,
        "sendingVideo": sending.map(|c| c.to_string()),
        "media": engine.peer_media(p.id).map(|m| json!({"audio": m.audio, "video": m.video, "screen": m.screen})),
        "iceRestarts": link.map_or(0, |l| l.shared.ice_restarts.load(Ordering::Relaxed)),
        "sendEstimateKbps": link.map(|l| l.shared.send_estimate.load(Ordering::Relaxed) / 1000),
        "video": {
            "codec": mime(video.map(|(c, _)| c)),
            "framesDecoded": video.map_or(0, |(_, s)| s.frames_decoded),
            "width": video.map_or(0, |(_, s)| s.width),
            "height": video.map_or(0, |(_, s)| s.height),
            "packets": video.map_or(0, |(_, s)| s.packets_in),
            "firstFrameUnixMs": video.map(|(_, s)| s.first_frame_unix_ms).filter(|t| *t > 0),
        },
        "audio": {
            "codec": mime(audio.map(|(c, _)| c)),
            "packetsDecoded": audio.map_or(0, |(_, s)| s.audio_decoded),
            "packets": audio.map_or(0, |(_, s)| s.packets_in),
        },
        "screen": {
            "codec": mime(screen.map(|(c, _)| c)),
            "framesDecoded": screen.map_or(0, |(_, s)| s.frames_decoded),
        },
    })
}

/// What the file channels refused or ignored (offer floods show here).
fn file_stats(stats: &portal_engine::FileStats) -> Value {
    json!({
        "declinedBusy": stats.declined_busy,
        "declinedInvalid": stats.declined_invalid,
        "declinedNoSpace": stats.declined_no_space,
        "ignoredFrames": stats.ignored_frames,
        "forgotten": stats.forgotten,
        "unanswered": stats.unanswered,
    })
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

/// What fills the stage, as the engine's rule chose it: `kind` (`screen`, `camera`,
/// `editor`, `watch`, `filmstrip`), `peer` for a screen or a camera (else null), and
/// `reason`.
fn stage(choice: portal_engine::StageChoice) -> Value {
    use portal_engine::{StageContent, StageReason};
    let kind = match choice.content {
        StageContent::Screen(_) => "screen",
        StageContent::Camera(_) => "camera",
        StageContent::Editor => "editor",
        StageContent::Watch => "watch",
        StageContent::Filmstrip => "filmstrip",
    };
    json!({
        "kind": kind,
        "peer": choice.content.peer().map(|p| p.0),
        "reason": match choice.reason {
            StageReason::Pinned => "pinned",
            StageReason::Presenting => "presenting",
            StageReason::ScreenShare => "screenShare",
            StageReason::Editor => "editor",
            StageReason::Watching => "watching",
            StageReason::Speaking => "speaking",
            StageReason::First => "first",
            StageReason::Empty => "empty",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_and_failures_say_where_the_kiosk_stands() {
        let home = idle(
            "Room 4.01",
            None,
            &[("a".into(), Some(2)), ("b".into(), None)],
        );
        assert_eq!(home["rooms"][0]["peers"], 2);
        assert!(home["rooms"][1]["peers"].is_null());
        assert_eq!(home["state"], "idle");
        assert!(home["error"].is_null());
        let failed = idle(
            "Room 4.01",
            Some(("4-01", ErrorCode::WrongPassword, "wrong password")),
            &[],
        );
        assert_eq!(failed["state"], "failed");
        assert_eq!(failed["error"]["code"], "wrongPassword");
        let (state, error) = state_fields(&CallState::Reconnecting { attempt: 3 });
        assert_eq!(state["state"], "reconnecting");
        assert_eq!(state["attempt"], 3);
        assert!(error.is_null());
    }
}

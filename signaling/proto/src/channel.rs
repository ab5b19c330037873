//! What peers say to each other on their pre-negotiated data channels, browser and
//! kiosk alike (ARCHITECTURE.md, "Contracts between browser and kiosk").
//!
//! - `chat` (id 0, ordered): JSON text frames, one [`ChatChannelMessage`] each.
//! - `file` (id 1, ordered): JSON text frames carry [`FileMessage`]s; binary frames carry
//!   file bytes, each `[transfer id: u32 big-endian][at most FILE_CHUNK_PAYLOAD bytes]`.
//!
//! A file transfer, with `S` the sender and `R` the receiver:
//! ```text
//! S: offer {id, name, size, mime}          R decides (ask, policy, size cap)
//! R: accept {id} | decline {id, reason}    no byte flows before accept
//! S: binary chunks of transfer id, in order, paced by the channel's buffered amount
//! S: end {id, sha256}                      after the last chunk
//! R: complete {id} | failed {id, reason}   R checked size and SHA-256
//! either: cancel {id, by, reason}          at any time before complete/failed
//! ```
//! A transfer id is chosen by its sender and is unique among that sender's transfers on
//! the channel. Every id lives in the sender's space: `offer`, `end` and chunks come from
//! the sender, `accept`, `decline`, `complete` and `failed` from the receiver, and
//! `cancel` says which side it comes from (`by`), so two peers that pick the same id for
//! transfers in opposite directions never mix them up.
//!
//! Unknown `type`s are ignored by receivers (newer peers may say more), never fatal.

use serde::{Deserialize, Serialize};

/// Label and stream id of the chat channel.
pub const CHAT_CHANNEL: (&str, u16) = ("chat", 0);
/// Label and stream id of the file channel.
pub const FILE_CHANNEL: (&str, u16) = ("file", 1);

/// Largest binary frame on the file channel, header included (64 KiB).
pub const FILE_FRAME_MAX: usize = 64 * 1024;
/// Bytes of the transfer-id header on every binary frame.
pub const FILE_CHUNK_HEADER: usize = 4;
/// Largest file payload in one binary frame.
pub const FILE_CHUNK_PAYLOAD: usize = FILE_FRAME_MAX - FILE_CHUNK_HEADER;
/// Longest chat message, in characters.
pub const MAX_CHAT_TEXT: usize = 4000;
/// Longest file name offered, in bytes.
pub const MAX_FILE_NAME: usize = 255;
/// Longest mime type offered, in bytes (RFC 6838 allows 127 for each half).
pub const MAX_FILE_MIME: usize = 255;
/// Longest JSON text frame on the file channel, in bytes; longer ones are not parsed.
pub const FILE_TEXT_MAX: usize = 8 * 1024;

/// One JSON text frame on the `chat` channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ChatChannelMessage {
    /// A chat line. `id` is unique for its sender (a UUID in browsers); `time` is the
    /// sender's clock in ms since the Unix epoch. Receivers show `text` as text, never
    /// as markup.
    Chat {
        id: String,
        from: String,
        time: f64,
        text: String,
    },
    /// What a peer says about its own media, sent when the channel opens and on change.
    State {
        audio: bool,
        video: bool,
        screen: bool,
        recording: bool,
    },
}

/// One JSON text frame on the `file` channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum FileMessage {
    /// Sender: a file is on offer. Nothing else flows until the receiver accepts.
    Offer {
        id: u32,
        name: String,
        size: u64,
        #[serde(default)]
        mime: String,
    },
    /// Receiver: send it.
    Accept { id: u32 },
    /// Receiver: no (a person said so, the policy is `deny`, or it is too large).
    Decline { id: u32, reason: DeclineReason },
    /// Sender: every chunk is sent; `sha256` is the lowercase hex digest of the bytes.
    End { id: u32, sha256: String },
    /// Receiver: every byte arrived and the digest matches.
    Complete { id: u32 },
    /// Receiver: the bytes arrived but do not match (size or digest); nothing was kept.
    Failed { id: u32, reason: String },
    /// Either side stops the transfer; `by` says whose side is stopping.
    Cancel {
        id: u32,
        by: TransferSide,
        #[serde(default)]
        reason: String,
    },
}

/// Which end of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum TransferSide {
    Sender,
    Receiver,
}

/// Why a receiver declined an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum DeclineReason {
    /// A person tapped Decline.
    Declined,
    /// The receiver's policy refuses files.
    Policy,
    /// Larger than the receiver's size cap.
    TooLarge,
    /// The offer itself was unusable (empty or overlong name or mime type, id in use).
    Invalid,
    /// The receiver already has as many offers and transfers in flight as it takes (from
    /// this peer or in all); offer again once one has ended.
    Busy,
    /// The receiver has not got the free disk space for it.
    NoSpace,
}

/// A binary frame split into its transfer id and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub id: u32,
    pub payload: &'a [u8],
}

/// Why a binary frame is not a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkError {
    /// Shorter than the header.
    Short,
    /// Longer than [`FILE_FRAME_MAX`].
    TooLarge(usize),
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkError::Short => write!(f, "file chunk shorter than its header"),
            ChunkError::TooLarge(n) => {
                write!(f, "file chunk of {n} bytes is over {FILE_FRAME_MAX}")
            }
        }
    }
}

impl std::error::Error for ChunkError {}

impl<'a> Chunk<'a> {
    /// Reads a binary frame from the file channel.
    pub fn parse(frame: &'a [u8]) -> Result<Self, ChunkError> {
        if frame.len() > FILE_FRAME_MAX {
            return Err(ChunkError::TooLarge(frame.len()));
        }
        let Some((head, payload)) = frame.split_first_chunk::<FILE_CHUNK_HEADER>() else {
            return Err(ChunkError::Short);
        };
        Ok(Chunk {
            id: u32::from_be_bytes(*head),
            payload,
        })
    }

    /// Writes the frame: header then payload. The caller keeps payloads within
    /// [`FILE_CHUNK_PAYLOAD`].
    pub fn encode(id: u32, payload: &[u8]) -> Vec<u8> {
        debug_assert!(payload.len() <= FILE_CHUNK_PAYLOAD);
        let mut frame = Vec::with_capacity(FILE_CHUNK_HEADER + payload.len());
        frame.extend_from_slice(&id.to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }
}

impl ChatChannelMessage {
    /// Parses a text frame; `Err` for anything that is not a known message.
    pub fn parse(text: &str) -> Result<Self, crate::ParseError> {
        serde_json::from_str(text).map_err(crate::ParseError)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("chat messages always serialize")
    }
}

impl FileMessage {
    /// Parses a text frame; `Err` for anything that is not a known message, and for
    /// frames longer than [`FILE_TEXT_MAX`] (never parsed).
    pub fn parse(text: &str) -> Result<Self, crate::ParseError> {
        if text.len() > FILE_TEXT_MAX {
            let too_long = <serde_json::Error as serde::de::Error>::custom(format_args!(
                "file channel frame of {} bytes is over {FILE_TEXT_MAX}",
                text.len()
            ));
            return Err(crate::ParseError(too_long));
        }
        serde_json::from_str(text).map_err(crate::ParseError)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("file messages always serialize")
    }

    /// The transfer this message is about.
    pub fn id(&self) -> u32 {
        match self {
            FileMessage::Offer { id, .. }
            | FileMessage::Accept { id }
            | FileMessage::Decline { id, .. }
            | FileMessage::End { id, .. }
            | FileMessage::Complete { id }
            | FileMessage::Failed { id, .. }
            | FileMessage::Cancel { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_round_trip_and_limits() {
        let frame = Chunk::encode(7, b"abc");
        assert_eq!(&frame[..4], &[0, 0, 0, 7]);
        let chunk = Chunk::parse(&frame).unwrap();
        assert_eq!((chunk.id, chunk.payload), (7, &b"abc"[..]));
        assert_eq!(Chunk::parse(&[1, 2]), Err(ChunkError::Short));
        let big = vec![0; FILE_FRAME_MAX + 1];
        assert_eq!(
            Chunk::parse(&big),
            Err(ChunkError::TooLarge(FILE_FRAME_MAX + 1))
        );
        let full = Chunk::encode(1, &vec![9; FILE_CHUNK_PAYLOAD]);
        assert_eq!(full.len(), FILE_FRAME_MAX);
        assert!(Chunk::parse(&full).is_ok());
    }

    #[test]
    fn wire_shapes_are_the_contract() {
        let offer = FileMessage::Offer {
            id: 3,
            name: "a.txt".into(),
            size: 10,
            mime: "text/plain".into(),
        };
        assert_eq!(
            offer.to_json(),
            r#"{"type":"offer","id":3,"name":"a.txt","size":10,"mime":"text/plain"}"#
        );
        let cancel = FileMessage::parse(r#"{"type":"cancel","id":3,"by":"receiver"}"#).unwrap();
        assert_eq!(
            cancel,
            FileMessage::Cancel {
                id: 3,
                by: TransferSide::Receiver,
                reason: String::new()
            }
        );
        let decline = FileMessage::Decline {
            id: 1,
            reason: DeclineReason::TooLarge,
        };
        assert_eq!(
            decline.to_json(),
            r#"{"type":"decline","id":1,"reason":"tooLarge"}"#
        );
        let chat = ChatChannelMessage::parse(
            r#"{"type":"chat","id":"x","from":"Ann","time":1.5,"text":"<b>"}"#,
        )
        .unwrap();
        assert!(matches!(chat, ChatChannelMessage::Chat { ref text, .. } if text == "<b>"));
        assert!(ChatChannelMessage::parse(r#"{"type":"nope"}"#).is_err());
        assert!(FileMessage::parse("[]").is_err());
    }

    #[test]
    fn new_decline_reasons_and_frame_cap() {
        let busy = FileMessage::Decline {
            id: 2,
            reason: DeclineReason::Busy,
        };
        assert_eq!(
            busy.to_json(),
            r#"{"type":"decline","id":2,"reason":"busy"}"#
        );
        let parsed = FileMessage::parse(r#"{"type":"decline","id":2,"reason":"noSpace"}"#).unwrap();
        assert_eq!(
            parsed,
            FileMessage::Decline {
                id: 2,
                reason: DeclineReason::NoSpace
            }
        );
        let padded = format!(r#"{{"type":"accept","id":1}}{}"#, " ".repeat(FILE_TEXT_MAX));
        assert!(FileMessage::parse(&padded).is_err());
        assert!(FileMessage::parse(padded.trim_end()).is_ok());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn reason() -> impl Strategy<Value = DeclineReason> {
            prop_oneof![
                Just(DeclineReason::Declined),
                Just(DeclineReason::Policy),
                Just(DeclineReason::TooLarge),
                Just(DeclineReason::Invalid),
                Just(DeclineReason::Busy),
                Just(DeclineReason::NoSpace),
            ]
        }

        fn side() -> impl Strategy<Value = TransferSide> {
            prop_oneof![Just(TransferSide::Sender), Just(TransferSide::Receiver)]
        }

        fn message() -> impl Strategy<Value = FileMessage> {
            prop_oneof![
                (any::<u32>(), ".{0,40}", any::<u64>(), ".{0,20}").prop_map(
                    |(id, name, size, mime)| FileMessage::Offer {
                        id,
                        name,
                        size,
                        mime
                    }
                ),
                any::<u32>().prop_map(|id| FileMessage::Accept { id }),
                (any::<u32>(), reason())
                    .prop_map(|(id, reason)| FileMessage::Decline { id, reason }),
                (any::<u32>(), "[0-9a-f]{64}")
                    .prop_map(|(id, sha256)| FileMessage::End { id, sha256 }),
                any::<u32>().prop_map(|id| FileMessage::Complete { id }),
                (any::<u32>(), ".{0,40}")
                    .prop_map(|(id, reason)| FileMessage::Failed { id, reason }),
                (any::<u32>(), side(), ".{0,40}")
                    .prop_map(|(id, by, reason)| FileMessage::Cancel { id, by, reason }),
            ]
        }

        /// A valid message's JSON with one byte changed, cut short, or with bytes
        /// inserted: what a confused or hostile peer might send.
        fn mangled() -> impl Strategy<Value = String> {
            (message(), any::<usize>(), any::<u8>(), 0u8..3).prop_map(|(msg, at, byte, how)| {
                let mut bytes = msg.to_json().into_bytes();
                let at = at % (bytes.len() + 1);
                match how {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, byte),
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
        }

        proptest! {
            // A bounded number of cases, so CI spends a few seconds here.
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn messages_round_trip(msg in message()) {
                prop_assert_eq!(FileMessage::parse(&msg.to_json()).ok(), Some(msg));
            }

            #[test]
            fn the_decoder_never_panics(text in prop_oneof![".{0,200}", mangled()]) {
                if let Ok(msg) = FileMessage::parse(&text) {
                    // Whatever parses serializes and parses back to itself.
                    prop_assert_eq!(FileMessage::parse(&msg.to_json()).ok(), Some(msg));
                }
                let _ = ChatChannelMessage::parse(&text);
            }

            #[test]
            fn chunks_parse_exactly_when_their_length_allows(
                len in prop_oneof![0usize..16, (FILE_FRAME_MAX - 4)..(FILE_FRAME_MAX + 4)],
                id in any::<u32>(),
            ) {
                let frame: Vec<u8> = (0..len).map(|i| i as u8).collect();
                match Chunk::parse(&frame) {
                    Ok(chunk) => {
                        prop_assert!((FILE_CHUNK_HEADER..=FILE_FRAME_MAX).contains(&len));
                        prop_assert_eq!(chunk.payload.len(), len - FILE_CHUNK_HEADER);
                        prop_assert_eq!(Chunk::encode(chunk.id, chunk.payload), frame.clone());
                    }
                    Err(ChunkError::Short) => prop_assert!(len < FILE_CHUNK_HEADER),
                    Err(ChunkError::TooLarge(n)) => prop_assert!(n == len && len > FILE_FRAME_MAX),
                }
                if (FILE_CHUNK_HEADER..=FILE_FRAME_MAX).contains(&len) {
                    let mut framed = frame;
                    framed[..4].copy_from_slice(&id.to_be_bytes());
                    prop_assert_eq!(Chunk::parse(&framed).map(|c| c.id), Ok(id));
                }
            }
        }
    }
}

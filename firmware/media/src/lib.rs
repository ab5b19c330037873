//! Portal kiosk media through GStreamer: what the camera and microphone send, and what
//! remote peers' tracks show and play.
//!
//! - [`Sender`]: capture from the board's camera and microphone and encode once per codec
//!   (H.264 constrained baseline, VP8, Opus), handing the same samples to every peer's
//!   track. Encoders are picked at run time from what the system has
//!   ([`select`]), start with their first subscriber and stop with their last.
//! - [`Receiver`]: one remote track's RTP packets through a jitter buffer, depayloader and
//!   decoder to RGBA frames for a frame sink, or to the board's speaker; counters, a
//!   keyframe-request hook for PLIs, and PNG snapshots.
//! - [`Player`]: a direct video URL for watch-together through `playbin3`, frames to a
//!   frame sink and sound to the speaker, with play, pause, accurate seeks, rate changes
//!   (pitch kept by `scaletempo`), typed errors for links that cannot play, and a status
//!   cheap enough to poll.
//!
//! Devices are element descriptions from `portal-board`, so tests run the real pipelines
//! on test sources without hardware (`audiotestsrc`, `videotestsrc`, and [`simcam`], this
//! crate's cheap call-like test camera). This crate moves media; what to send
//! to whom is decided in `portal-engine`, and RTP transport is `portal-net`'s. The
//! [`Codec`] and [`KeyframeRequest`] words are `portal_proto::media`'s, the same types
//! `portal-net` speaks.

pub mod frame;
pub mod player;
pub mod receiver;
pub mod sample;
pub mod select;
pub mod sender;
pub mod simcam;
pub mod snapshot;

mod delivery;
mod error;
mod pipeline;

pub use error::{MediaError, PlaybackError, PlaybackErrorKind};
pub use frame::VideoFrame;
pub use player::{PlaybackStatus, Player, PlayerConfig};
pub use portal_proto::media::{Codec, KeyframeRequest};
pub use receiver::{FrameSink, KeyframeHook, Receiver, ReceiverConfig, ReceiverStats};
pub use sample::{Delivery, EncodedSample, SampleCallback};
pub use select::{H264Encoder, preload};
pub use sender::{CodecStats, Sender, SenderConfig, Subscription, SubscriptionGuard};

/// Initialises GStreamer and registers this crate's own elements ([`simcam`]); idempotent,
/// and every constructor here calls it.
pub fn init() -> Result<(), MediaError> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    gstreamer::init().map_err(MediaError::Init)?;
    REGISTERED
        .get_or_init(|| simcam::register().map_err(|e| e.to_string()))
        .clone()
        .map_err(MediaError::Register)
}

//! The player's video sink: an appsink at the clock's pace, scaled and converted to RGBA
//! only when somebody looks at the frames, and a latest-frame mailbox on a thread of its
//! own so a slow frame sink (the UI) never holds up the pipeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::delivery::Delivery;
use crate::frame::{kept, rgba, to_frame, video_info};
use crate::{FrameSink, MediaError, VideoFrame};

/// Frame counters, read by `Player::status`.
#[derive(Debug, Default)]
pub(super) struct FrameCounters {
    pub(super) shown: AtomicU64,
    /// Frames the sink missed because it was slower than playback.
    pub(super) dropped: AtomicU64,
    /// `width << 32 | height` of the last frame.
    pub(super) size: AtomicU64,
}

/// The video sink bin and what hangs off it.
pub(super) struct VideoOut {
    pub(super) bin: gst::Element,
    pub(super) counters: Arc<FrameCounters>,
    /// The newest sample: RGBA with a frame sink, else the decoder's format.
    latest: Arc<Mutex<Option<gst::Sample>>>,
    /// Frames to the frame sink, when there is one.
    delivery: Option<Delivery>,
}

impl VideoOut {
    /// With a frame sink: `videoscale ! videoconvert ! RGBA at most max_height high !
    /// appsink`; without one, the decoder's frames as they are (a headless kiosk pays
    /// nothing for conversion; a snapshot converts one frame).
    ///
    /// The appsink syncs to the clock, like a display would, so positions, rate changes
    /// and EOS keep real time, and it sends QoS upstream so a decoder that falls behind
    /// skips frames rather than drifting.
    pub(super) fn new(sink: Option<FrameSink>, max_height: u32) -> Result<Self, MediaError> {
        let description = if sink.is_some() {
            format!(
                "videoscale ! videoconvert \
                 ! video/x-raw,format=RGBA,height=[1,{h}],pixel-aspect-ratio=1/1 \
                 ! appsink name=frames sync=true qos=true max-buffers=1",
                h = max_height.max(2),
            )
        } else {
            "appsink name=frames sync=true qos=true max-buffers=1 caps=video/x-raw".to_owned()
        };
        let bin = gst::parse::bin_from_description(&description, true).map_err(|e| {
            MediaError::Build {
                name: "player-video",
                message: e.to_string(),
            }
        })?;
        let appsink = bin
            .by_name("frames")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| MediaError::Build {
                name: "player-video",
                message: "no appsink".into(),
            })?;
        let mut out = VideoOut {
            bin: bin.upcast(),
            counters: Arc::default(),
            latest: Arc::default(),
            delivery: None,
        };
        out.attach(&appsink, sink)?;
        Ok(out)
    }

    fn attach(
        &mut self,
        appsink: &gst_app::AppSink,
        sink: Option<FrameSink>,
    ) -> Result<(), MediaError> {
        let counters = Arc::clone(&self.counters);
        let latest = Arc::clone(&self.latest);
        self.delivery = sink
            .map(|sink| Delivery::start("portal-player-frames", sink))
            .transpose()?;
        let poster = self.delivery.as_ref().map(Delivery::poster);
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |appsink| {
                    let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(info) = video_info(&sample) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    counters.shown.fetch_add(1, Ordering::Relaxed);
                    counters.size.store(
                        u64::from(info.width()) << 32 | u64::from(info.height()),
                        Ordering::Relaxed,
                    );
                    let frame = poster.as_ref().and_then(|_| to_frame(&sample, &info));
                    *latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(kept(&sample));
                    if let (Some(poster), Some(frame)) = (&poster, frame)
                        && poster.post(frame)
                    {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        Ok(())
    }

    /// The newest frame, as RGBA (converted here when the sink bin does not).
    pub(super) fn latest_frame(&self) -> Option<VideoFrame> {
        let sample = self
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        rgba(&sample)
    }

    /// Stops the delivery thread and waits for it (after the pipeline has stopped).
    pub(super) fn shut_down(&mut self) {
        if let Some(mut delivery) = self.delivery.take() {
            delivery.stop();
        }
    }
}

//! A GStreamer pipeline built from a launch description, with its bus handled on the
//! posting thread (no GLib main loop needed) and stopped when dropped.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::MediaError;

/// Called for every bus message, on the thread that posted it: keep it short.
pub(crate) type BusHook = Arc<dyn Fn(&gst::Message) + Send + Sync>;

/// A running (or ready) pipeline; set to `Null` on drop.
#[derive(Debug)]
pub(crate) struct Pipeline {
    name: &'static str,
    pipeline: gst::Pipeline,
}

impl Pipeline {
    /// Parses `description`; `hook` sees bus messages after they are logged.
    pub(crate) fn launch(
        name: &'static str,
        description: &str,
        hook: Option<BusHook>,
    ) -> Result<Self, MediaError> {
        tracing::debug!(name, description, "building pipeline");
        let element = gst::parse::launch(description).map_err(|e| MediaError::Build {
            name,
            message: e.to_string(),
        })?;
        let pipeline = element
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Build {
                name,
                message: "description is a single element, not a pipeline".into(),
            })?;
        pipeline.set_property("name", name);
        if let Some(bus) = pipeline.bus() {
            bus.set_sync_handler(move |_, msg| {
                log_message(name, msg);
                if let Some(hook) = &hook {
                    hook(msg);
                }
                gst::BusSyncReply::Drop
            });
        }
        Ok(Pipeline { name, pipeline })
    }

    pub(crate) fn start(&self) -> Result<(), MediaError> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| MediaError::Start { name: self.name })?;
        tracing::debug!(name = self.name, "pipeline playing");
        Ok(())
    }

    /// The element named `element` in the description, as type `T`.
    pub(crate) fn get<T: IsA<gst::Element>>(&self, element: &str) -> Result<T, MediaError> {
        self.pipeline
            .by_name(element)
            .and_then(|e| e.downcast::<T>().ok())
            .ok_or_else(|| MediaError::Build {
                name: self.name,
                message: format!("no element {element:?} of the expected type"),
            })
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if self.pipeline.set_state(gst::State::Null).is_err() {
            tracing::warn!(name = self.name, "pipeline did not stop cleanly");
        }
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
    }
}

fn log_message(name: &'static str, msg: &gst::Message) {
    use gst::MessageView;
    match msg.view() {
        MessageView::Error(e) => tracing::error!(
            pipeline = name,
            source = ?e.src().map(GstObjectExt::path_string),
            error = %e.error(),
            debug = ?e.debug(),
            "pipeline error"
        ),
        MessageView::Warning(w) => tracing::warn!(
            pipeline = name,
            source = ?w.src().map(GstObjectExt::path_string),
            warning = %w.error(),
            "pipeline warning"
        ),
        _ => {}
    }
}

/// The first candidate for which `build` succeeds (candidates are fallbacks of one
/// device description); the error of the last one otherwise.
pub(crate) fn first_that_builds<T>(
    candidates: impl IntoIterator<Item = String>,
    mut build: impl FnMut(&str) -> Result<T, MediaError>,
) -> Result<T, MediaError> {
    let mut last = None;
    for candidate in candidates {
        match build(&candidate) {
            Ok(t) => return Ok(t),
            Err(e) => {
                tracing::debug!(candidate, error = %e, "candidate unusable, trying the next");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(MediaError::Build {
        name: "device",
        message: "no candidate description".into(),
    }))
}

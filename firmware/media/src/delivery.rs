//! Latest-frame delivery: decoded frames go to a frame sink (the UI) on a thread of their
//! own, through a mailbox that holds only the newest frame. A slow sink gets fewer
//! frames, never older ones, and the pipeline's streaming thread never waits for it.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::{FrameSink, MediaError, VideoFrame};

/// The newest frame, waiting for the delivery thread; `.1` says stop.
#[derive(Debug, Default)]
struct Mailbox {
    slot: Mutex<(Option<VideoFrame>, bool)>,
    ready: Condvar,
}

/// Where the streaming thread posts frames (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Poster(Arc<Mailbox>);

impl Poster {
    /// Leaves `frame` for the sink; returns `true` when it replaced one the sink had not
    /// taken yet (a dropped frame).
    pub(crate) fn post(&self, frame: VideoFrame) -> bool {
        let mut slot = self.0.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let replaced = slot.0.replace(frame).is_some();
        self.0.ready.notify_one();
        replaced
    }
}

/// The delivery thread. Dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(crate) struct Delivery {
    mailbox: Arc<Mailbox>,
    thread: Option<JoinHandle<()>>,
}

impl Delivery {
    /// Starts a thread named `name` handing each newest frame to `sink`.
    pub(crate) fn start(name: &str, mut sink: FrameSink) -> Result<Self, MediaError> {
        let mailbox = Arc::new(Mailbox::default());
        let inbox = Arc::clone(&mailbox);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                loop {
                    let frame = {
                        let mut slot = inbox.slot.lock().unwrap_or_else(PoisonError::into_inner);
                        while slot.0.is_none() && !slot.1 {
                            slot = inbox
                                .ready
                                .wait(slot)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                        if slot.1 {
                            return;
                        }
                        slot.0.take()
                    };
                    if let Some(frame) = frame {
                        sink(&frame);
                    }
                }
            })
            .map_err(|e| MediaError::Io {
                path: format!("{name} thread"),
                source: e,
            })?;
        Ok(Delivery {
            mailbox,
            thread: Some(thread),
        })
    }

    pub(crate) fn poster(&self) -> Poster {
        Poster(Arc::clone(&self.mailbox))
    }

    /// Stops the thread (a frame still waiting is dropped) and waits for it.
    pub(crate) fn stop(&mut self) {
        {
            let mut slot = self
                .mailbox
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            slot.1 = true;
            self.mailbox.ready.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.stop();
    }
}

//! `portalsimcam`: a live test camera that draws what a webcam in a call mostly shows — a
//! still background with something moving on it.
//!
//! The picture is a flat green field, a disc drifting slowly across it and a row of squares
//! that count frames in binary (so every frame differs, like a clock in the corner). It is
//! the same kind of picture as Chromium's fake camera (`--use-fake-device-for-media-stream`:
//! a flat green field, a pacman and a running timestamp), so an encoder on either side of
//! `cargo xtask bench kiosk` does the same kind of work. Drawing costs next to nothing —
//! one fill of the frame and a few spans per row of the disc, into pooled buffers — which
//! is closer to a V4L2 camera (the frame arrives by DMA) than `videotestsrc`, whose moving
//! patterns are painted pixel by pixel (about 5 % of a core at 720p30 for scrolling bars,
//! 17 % for the ball).
//!
//! Registered by [`crate::init`] for this process only (no plugin file); the board's `sim`
//! backend names it in its default camera's launch description.
//!
//! ```text
//! portalsimcam ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! ...
//! ```

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_video as gst_video;

/// The element's factory name: the one the sim board's default camera asks for.
pub const ELEMENT_NAME: &str = portal_board::sim::SIM_CAMERA_ELEMENT;

glib::wrapper! {
    /// The live test camera element (see the module docs).
    pub struct SimCam(ObjectSubclass<imp::SimCam>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

/// Makes `portalsimcam` available to `gst::parse::launch` in this process.
pub(crate) fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(None, ELEMENT_NAME, gst::Rank::NONE, SimCam::static_type())
}

/// A colour as Y', Cb, Cr (BT.601, studio range), from 8-bit R'G'B'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Yuv {
    pub y: u8,
    pub u: u8,
    pub v: u8,
}

impl Yuv {
    /// The value for I420 plane `index` (0 Y, 1 U, 2 V).
    fn component(self, index: usize) -> u8 {
        [self.y, self.u, self.v][index]
    }

    #[allow(clippy::many_single_char_names)] // the textbook names
    pub const fn from_rgb(r: u8, g: u8, b: u8) -> Yuv {
        // Integer BT.601 (the coefficients scaled by 256), as libyuv does; every result is
        // within 16..=240, so the casts back to u8 cannot wrap.
        let (r, g, b) = (r as i32, g as i32, b as i32);
        let y = (66 * r + 129 * g + 25 * b + 128) / 256 + 16;
        let u = (-38 * r - 74 * g + 112 * b + 128) / 256 + 128;
        let v = (112 * r - 94 * g - 18 * b + 128) / 256 + 128;
        Yuv {
            y: y as u8,
            u: u as u8,
            v: v as u8,
        }
    }
}

/// The field behind everything.
pub const BACKGROUND: Yuv = Yuv::from_rgb(0, 136, 0);
/// The drifting disc.
pub const DISC: Yuv = Yuv::from_rgb(68, 255, 34);
/// A counter square whose bit is set.
pub const COUNTER_ON: Yuv = Yuv::from_rgb(220, 255, 220);

/// Bits of the frame counter drawn.
const COUNTER_BITS: u32 = 16;

/// Where things are in frame `n` of a `width` x `height` picture at `fps`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Layout {
    cx: f64,
    cy: f64,
    radius: f64,
    square: usize,
}

impl Layout {
    fn at(n: u64, width: usize, height: usize, fps: f64) -> Layout {
        let t = n as f64 / fps.max(1.0);
        // A slow figure of eight, 6 s around: a few pixels a frame, like a head in a call.
        let phase = std::f64::consts::TAU * t / 6.0;
        Layout {
            cx: width as f64 * (0.5 + 0.25 * phase.sin()),
            cy: height as f64 * (0.5 + 0.15 * (2.0 * phase).sin()),
            radius: height as f64 / 4.0,
            square: (height / 24).max(2) & !1,
        }
    }
}

/// Draws frame `n` into the three planes of an I420 picture.
///
/// `planes` are (data, stride) for Y, U and V; U and V are half size in both directions.
pub(crate) fn draw(n: u64, width: usize, height: usize, fps: f64, planes: [(&mut [u8], usize); 3]) {
    let layout = Layout::at(n, width, height, fps);
    let chroma = (width.div_ceil(2), height.div_ceil(2));
    let lit = (0..COUNTER_BITS).filter(|bit| n & (1 << bit) != 0);
    for (index, (data, stride)) in planes.into_iter().enumerate() {
        // Luma at full size, chroma at half; each plane takes its own component.
        let (scale, (width, height)) = if index == 0 {
            (1, (width, height))
        } else {
            (2, chroma)
        };
        let mut plane = Plane {
            data,
            stride,
            width,
            height,
        };
        plane.fill(BACKGROUND.component(index));
        let s = scale as f64;
        plane.disc(
            layout.cx / s,
            layout.cy / s,
            layout.radius / s,
            DISC.component(index),
        );
        // The counter, top left: bit i of n is square i, lit or left as background.
        let side = layout.square;
        for bit in lit.clone() {
            let x = side + bit as usize * side * 3 / 2;
            plane.square(
                x / scale,
                side / scale,
                side / scale,
                COUNTER_ON.component(index),
            );
        }
    }
}

/// One plane of a picture: `height` rows of `width` bytes, `stride` apart.
struct Plane<'a> {
    data: &'a mut [u8],
    stride: usize,
    width: usize,
    height: usize,
}

impl Plane<'_> {
    fn fill(&mut self, value: u8) {
        for row in self.data.chunks_mut(self.stride).take(self.height) {
            row[..self.width].fill(value);
        }
    }

    /// Fills columns `x0..x1` of `row`, clipped to the plane.
    fn span(&mut self, row: usize, x0: usize, x1: usize, value: u8) {
        let x1 = x1.min(self.width);
        if row < self.height && x0 < x1 {
            self.data[row * self.stride + x0..row * self.stride + x1].fill(value);
        }
    }

    /// Fills the disc at (`cx`, `cy`) of radius `r`, one span per row.
    fn disc(&mut self, cx: f64, cy: f64, r: f64, value: u8) {
        let top = (cy - r).floor().max(0.0) as usize;
        let bottom = (cy + r).ceil() as usize;
        for row in top..bottom.min(self.height) {
            let dy = row as f64 + 0.5 - cy;
            let half = r * r - dy * dy;
            if half <= 0.0 {
                continue;
            }
            let half = half.sqrt();
            let x0 = (cx - half).round().max(0.0) as usize;
            let x1 = (cx + half).round().max(0.0) as usize;
            self.span(row, x0, x1, value);
        }
    }

    /// Fills the `side` x `side` square whose top left corner is (`x`, `y`).
    fn square(&mut self, x: usize, y: usize, side: usize, value: u8) {
        for row in y..y + side {
            self.span(row, x, x + side, value);
        }
    }
}

mod imp {
    use std::sync::{Arc, LazyLock, Mutex};

    use gst::subclass::prelude::*;
    use gst_base::prelude::*;
    use gst_base::subclass::base_src::CreateSuccess;
    use gst_base::subclass::prelude::*;
    use gst_video::prelude::*;

    use super::{draw, glib, gst, gst_base, gst_video};

    /// What the caps decided, fixed until they change.
    #[derive(Debug)]
    struct Negotiated {
        info: gst_video::VideoInfo,
        /// One frame, non-zero.
        duration: gst::ClockTime,
        fps: f64,
        /// Buffers of `info`'s size, recycled.
        pool: gst::BufferPool,
    }

    impl Negotiated {
        fn new(caps: &gst::Caps) -> Result<Negotiated, gst::LoggableError> {
            let info = gst_video::VideoInfo::from_caps(caps)
                .map_err(|_| gst::loggable_error!(gst::CAT_RUST, "caps {caps} are not video"))?;
            let rate = info.fps();
            let duration = u64::try_from(rate.numer())
                .ok()
                .filter(|&numer| numer > 0)
                .and_then(|numer| gst::ClockTime::SECOND.mul_div_floor(rate.denom() as u64, numer))
                .ok_or_else(|| {
                    gst::loggable_error!(
                        gst::CAT_RUST,
                        "portalsimcam needs a fixed, non-zero framerate"
                    )
                })?;
            let pool = gst_video::VideoBufferPool::new();
            let mut config = pool.config();
            config.set_params(Some(caps), info.size() as u32, 2, 0);
            pool.set_config(config)
                .map_err(|e| gst::loggable_error!(gst::CAT_RUST, "buffer pool: {e}"))?;
            pool.set_active(true)
                .map_err(|e| gst::loggable_error!(gst::CAT_RUST, "buffer pool: {e}"))?;
            Ok(Negotiated {
                fps: f64::from(rate.numer()) / f64::from(rate.denom()),
                info,
                duration,
                pool: pool.upcast(),
            })
        }

        /// Stamps frame `n` and draws it into `buffer`.
        fn paint(&self, n: u64, buffer: &mut gst::BufferRef) -> Result<(), gst::FlowError> {
            buffer.set_pts(self.duration * n);
            buffer.set_duration(self.duration);
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &self.info)
                .map_err(|_| gst::FlowError::Error)?;
            let stride = |plane: usize| frame.plane_stride()[plane] as usize;
            let strides = [stride(0), stride(1), stride(2)];
            let [y, u, v, _] = frame.planes_data_mut();
            draw(
                n,
                self.info.width() as usize,
                self.info.height() as usize,
                self.fps,
                [(y, strides[0]), (u, strides[1]), (v, strides[2])],
            );
            Ok(())
        }
    }

    impl Drop for Negotiated {
        fn drop(&mut self) {
            let _ = self.pool.set_active(false);
        }
    }

    #[derive(Debug, Default)]
    struct State {
        negotiated: Option<Arc<Negotiated>>,
        /// The next frame's number.
        frame: u64,
    }

    #[derive(Debug, Default)]
    pub struct SimCam {
        state: Mutex<State>,
    }

    impl SimCam {
        /// The negotiated format and the number of the frame to make now.
        fn next_frame(&self) -> Result<(Arc<Negotiated>, u64), gst::FlowError> {
            let mut state = self.state.lock().expect("simcam state");
            let negotiated = state
                .negotiated
                .clone()
                .ok_or(gst::FlowError::NotNegotiated)?;
            let n = state.frame;
            state.frame += 1;
            Ok((negotiated, n))
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for SimCam {
        const NAME: &'static str = "PortalSimCam";
        type Type = super::SimCam;
        type ParentType = gst_base::PushSrc;
    }

    impl ObjectImpl for SimCam {
        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            obj.set_live(true);
            obj.set_format(gst::Format::Time);
        }
    }

    impl GstObjectImpl for SimCam {}

    impl ElementImpl for SimCam {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "Portal test camera",
                    "Source/Video",
                    "A live I420 picture like a camera in a call: a still field, a drifting \
                     disc, a frame counter",
                    "Portal",
                )
            });
            Some(&META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst_video::VideoCapsBuilder::new()
                    .format(gst_video::VideoFormat::I420)
                    .width_range(16..=4096)
                    .height_range(16..=4096)
                    .framerate_range(gst::Fraction::new(1, 1)..=gst::Fraction::new(120, 1))
                    .build();
                vec![
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("a valid pad template"),
                ]
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseSrcImpl for SimCam {
        fn fixate(&self, caps: gst::Caps) -> gst::Caps {
            // Downstream's own size first (the first structure), else 720p30.
            let mut caps = caps;
            caps.truncate();
            {
                let caps = caps.make_mut();
                if let Some(s) = caps.structure_mut(0) {
                    s.fixate_field_nearest_int("width", 1280);
                    s.fixate_field_nearest_int("height", 720);
                    s.fixate_field_nearest_fraction("framerate", gst::Fraction::new(30, 1));
                }
            }
            self.parent_fixate(caps)
        }

        fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
            // The previous format's pool (if any) is deactivated as it is dropped.
            self.state.lock().expect("simcam state").negotiated =
                Some(Arc::new(Negotiated::new(caps)?));
            Ok(())
        }

        fn start(&self) -> Result<(), gst::ErrorMessage> {
            self.state.lock().expect("simcam state").frame = 0;
            Ok(())
        }

        fn stop(&self) -> Result<(), gst::ErrorMessage> {
            self.state.lock().expect("simcam state").negotiated = None;
            Ok(())
        }

        fn is_seekable(&self) -> bool {
            false
        }

        fn times(
            &self,
            buffer: &gst::BufferRef,
        ) -> (Option<gst::ClockTime>, Option<gst::ClockTime>) {
            // Live: the base class waits on the clock until each frame's time has come.
            let start = buffer.pts();
            (start, start.opt_add(buffer.duration()))
        }

        fn query(&self, query: &mut gst::QueryRef) -> bool {
            if let gst::QueryViewMut::Latency(q) = query.view_mut() {
                let state = self.state.lock().expect("simcam state");
                let Some(negotiated) = &state.negotiated else {
                    return false;
                };
                // A frame is out one frame duration after its time starts.
                q.set(true, negotiated.duration, None);
                return true;
            }
            BaseSrcImplExt::parent_query(self, query)
        }
    }

    impl PushSrcImpl for SimCam {
        fn create(
            &self,
            buffer: Option<&mut gst::BufferRef>,
        ) -> Result<CreateSuccess, gst::FlowError> {
            // Into the buffer given, else one of our pool's: recycled, never allocated per frame.
            let (negotiated, n) = self.next_frame()?;
            if let Some(buffer) = buffer {
                negotiated.paint(n, buffer)?;
                return Ok(CreateSuccess::FilledBuffer);
            }
            let mut buffer = negotiated.pool.acquire_buffer(None)?;
            negotiated.paint(n, buffer.get_mut().ok_or(gst::FlowError::Error)?)?;
            Ok(CreateSuccess::NewBuffer(buffer))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(n: u64, width: usize, height: usize) -> Vec<u8> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let mut y = vec![0u8; width * height];
        let mut u = vec![0u8; cw * ch];
        let mut v = vec![0u8; cw * ch];
        draw(
            n,
            width,
            height,
            30.0,
            [(&mut y, width), (&mut u, cw), (&mut v, cw)],
        );
        [y, u, v].concat()
    }

    #[test]
    fn the_colours_are_bt601_greens() {
        assert_eq!(
            Yuv::from_rgb(0, 0, 0),
            Yuv {
                y: 16,
                u: 128,
                v: 128
            }
        );
        assert_eq!(
            Yuv::from_rgb(255, 255, 255),
            Yuv {
                y: 235,
                u: 128,
                v: 128
            }
        );
        // The field is Chromium's fake-camera green; the disc stands out of it.
        assert_eq!(
            BACKGROUND,
            Yuv {
                y: 85,
                u: 90,
                v: 79
            }
        );
        assert_eq!(
            DISC,
            Yuv {
                y: 165,
                u: 60,
                v: 63
            }
        );
    }

    #[test]
    fn the_field_is_flat_and_the_disc_is_in_the_middle_at_first() {
        let (w, h) = (320, 180);
        let p = picture(0, w, h);
        assert_eq!(p[w * (h - 1)], BACKGROUND.y, "bottom left is field");
        assert_eq!(p[(h / 2) * w + w / 2], DISC.y, "the centre is disc");
        // Frame 0 lights no counter square.
        assert!(p[..w * 20].iter().all(|&px| px == BACKGROUND.y));
    }

    #[test]
    fn every_frame_differs_but_most_of_the_picture_stays() {
        let (w, h) = (640, 360);
        let a = picture(100, w, h);
        let b = picture(101, w, h);
        let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(changed > 0, "consecutive frames differ");
        assert!(
            changed * 10 < a.len(),
            "a call's picture is mostly still: {changed} of {} bytes changed",
            a.len()
        );
    }

    #[test]
    fn odd_sizes_and_padded_strides_stay_in_their_planes() {
        let (width, height, stride) = (33, 17, 48);
        let (chroma_width, chroma_height, chroma_stride) = (17, 9, 32);
        let mut luma = vec![7u8; stride * height];
        let mut cb = vec![7u8; chroma_stride * chroma_height];
        let mut cr = vec![7u8; chroma_stride * chroma_height];
        for n in [0, 45, 90, 0xffff] {
            draw(
                n,
                width,
                height,
                30.0,
                [
                    (&mut luma, stride),
                    (&mut cb, chroma_stride),
                    (&mut cr, chroma_stride),
                ],
            );
        }
        let padding_untouched = |plane: &[u8], stride: usize, width: usize| {
            plane
                .chunks(stride)
                .all(|row| row[width..].iter().all(|&b| b == 7))
        };
        assert!(padding_untouched(&luma, stride, width));
        assert!(padding_untouched(&cb, chroma_stride, chroma_width));
        assert!(padding_untouched(&cr, chroma_stride, chroma_width));
    }
}

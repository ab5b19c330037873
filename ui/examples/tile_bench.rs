//! Four 720p video tiles at 30 fps on the software renderer, drawn into a 1920x1080
//! buffer, as on a kiosk without a GPU. Prints one JSON line.
//!
//! `cargo run -p portal-ui --release --example tile_bench -- [seconds] [tiles]` (default
//! 10 s, 4 tiles; `cargo xtask bench ui` compares 4 tiles with 1);
//! `TILE_BENCH_PNG=last.png` also saves the last rendered picture.
//!
//! A producer thread feeds synthetic frames through `UiHandle::push_frame` (the real
//! path: one copy, newest frame wins). The main thread runs a minimal event loop: run
//! queued callbacks, then `draw_if_needed` into the buffer, timing each draw. Only
//! rendering is timed; showing the buffer on a display is not part of it.

use std::rc::Rc;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use portal_ui::{PeerView, Quality, TileKey, Ui, UiHandle, Update};
use slint::platform::software_renderer::{
    MinimalSoftwareWindow, PremultipliedRgbaColor, RepaintBufferType,
};
use slint::platform::{EventLoopProxy, Platform, WindowAdapter};
use slint::{EventLoopError, PhysicalSize, PlatformError};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const TILE_WIDTH: u32 = 1280;
const TILE_HEIGHT: u32 = 720;
/// Tiles when no second argument says otherwise.
const TILES: u64 = 4;
const FPS: u32 = 30;

enum Job {
    Run(Box<dyn FnOnce() + Send>),
    Quit,
}

struct Proxy(Mutex<mpsc::Sender<Job>>);

impl EventLoopProxy for Proxy {
    fn quit_event_loop(&self) -> Result<(), EventLoopError> {
        self.send(Job::Quit)
    }

    fn invoke_from_event_loop(
        &self,
        event: Box<dyn FnOnce() + Send>,
    ) -> Result<(), EventLoopError> {
        self.send(Job::Run(event))
    }
}

impl Proxy {
    fn send(&self, job: Job) -> Result<(), EventLoopError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job)
            .map_err(|_| EventLoopError::EventLoopTerminated)
    }
}

struct BenchPlatform {
    window: Rc<MinimalSoftwareWindow>,
    jobs: mpsc::Sender<Job>,
    start: Instant,
}

impl Platform for BenchPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, PlatformError> {
        Ok(self.window.clone())
    }

    fn duration_since_start(&self) -> Duration {
        self.start.elapsed()
    }

    fn new_event_loop_proxy(&self) -> Option<Box<dyn EventLoopProxy>> {
        Some(Box::new(Proxy(Mutex::new(self.jobs.clone()))))
    }
}

/// utime + stime of this process, in seconds (Linux clock ticks are 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ')'.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

/// Feeds every tile a changing frame at `FPS` for `seconds`, then quits the loop.
fn produce(handle: &UiHandle, seconds: f64, tiles: u64) {
    let len = (TILE_WIDTH * TILE_HEIGHT * 4) as usize;
    let base = |tile: u64| {
        let shade = 40 + 40 * tile as u8;
        [shade, 90, 200 - shade, 255]
    };
    let mut frames: Vec<Vec<u8>> = (1..=tiles).map(|tile| base(tile).repeat(len / 4)).collect();
    let period = Duration::from_secs(1) / FPS;
    let start = Instant::now();
    let ticks = (seconds * f64::from(FPS)).round() as u32;
    let band_width = 16;
    for tick in 0..ticks {
        // A bright band moves across each picture, so every frame differs.
        let old = ((tick + TILE_WIDTH / band_width - 1) * band_width % TILE_WIDTH * 4) as usize;
        let new = (tick * band_width % TILE_WIDTH * 4) as usize;
        let span = (band_width * 4) as usize;
        for (tile, rgba) in (1..=tiles).zip(frames.iter_mut()) {
            let background = base(tile).repeat(band_width as usize);
            for row in rgba.chunks_exact_mut((TILE_WIDTH * 4) as usize) {
                row[old..old + span].copy_from_slice(&background);
                row[new..new + span].fill(255);
            }
            handle
                .push_frame(TileKey::Camera(tile), TILE_WIDTH, TILE_HEIGHT, rgba)
                .expect("frame size is right");
        }
        if let Some(wait) = (start + period * (tick + 1)).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    handle.quit();
}

/// The last rendered picture, to check by eye that the bench draws what it claims.
fn save_png(
    path: &std::path::Path,
    buffer: &[PremultipliedRgbaColor],
) -> Result<(), Box<dyn std::error::Error>> {
    let rgba: Vec<u8> = buffer
        .iter()
        .flat_map(|p| [p.red, p.green, p.blue, p.alpha])
        .collect();
    let mut encoder = png::Encoder::new(std::fs::File::create(path)?, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgba);
    encoder.write_header()?.write_image_data(&rgba)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10.0);
    let tiles: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(TILES);

    let window = MinimalSoftwareWindow::new(RepaintBufferType::ReusedBuffer);
    let (jobs, queue) = mpsc::channel();
    slint::platform::set_platform(Box::new(BenchPlatform {
        window: window.clone(),
        jobs,
        start: Instant::now(),
    }))?;

    let ui = Ui::new(|_| {})?;
    window.set_size(PhysicalSize::new(WIDTH, HEIGHT));
    ui.window().show()?;
    ui.apply(Update::Call(Some("Bench".into())));
    ui.apply(Update::Peers(
        (1..=tiles)
            .map(|id| PeerView {
                id,
                name: format!("Peer {id}"),
                quality: Quality::Good,
                on_stage: id == 1,
                ..PeerView::default()
            })
            .collect(),
    ));

    let mut buffer = vec![PremultipliedRgbaColor::default(); (WIDTH * HEIGHT) as usize];
    window.draw_if_needed(|renderer| {
        renderer.render(&mut buffer, WIDTH as usize);
    });

    let handle = ui.handle();
    let cpu_start = cpu_seconds();
    let wall_start = Instant::now();
    let producer = std::thread::spawn(move || produce(&handle, seconds, tiles));

    let mut draws_ms = Vec::new();
    'run: loop {
        slint::platform::update_timers_and_animations();
        let mut job = queue.recv_timeout(Duration::from_millis(100));
        loop {
            match job {
                Ok(Job::Run(f)) => f(),
                Ok(Job::Quit) | Err(mpsc::RecvTimeoutError::Disconnected) => break 'run,
                Err(mpsc::RecvTimeoutError::Timeout) => break,
            }
            job = queue.try_recv().map_err(|e| match e {
                mpsc::TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                mpsc::TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
            });
        }
        let started = Instant::now();
        let drew = window.draw_if_needed(|renderer| {
            renderer.render(&mut buffer, WIDTH as usize);
        });
        if drew {
            draws_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    producer.join().map_err(|_| "producer panicked")?;
    let wall = wall_start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;

    if let Some(path) = std::env::var_os("TILE_BENCH_PNG") {
        save_png(std::path::Path::new(&path), &buffer)?;
    }

    draws_ms.sort_by(f64::total_cmp);
    let stats = ui.frame_stats();
    println!(
        "{{\"frames\":{},\"frameMsMedian\":{:.2},\"frameMsP95\":{:.2},\"cpuPercent\":{:.1},\"framesDropped\":{},\"rssMiB\":{:.1}}}",
        draws_ms.len(),
        percentile(&draws_ms, 0.5),
        percentile(&draws_ms, 0.95),
        cpu / wall * 100.0,
        stats.dropped,
        rss_mib(),
    );
    Ok(())
}

// Shared-experiences benchmark (issue 14): the release kiosk beside Chromium peers in one
// room, in one run:
//   (1) watch drift: the kiosk and a Chromium peer play the same direct URL (a 720p30
//       clip made with GStreamer, served with byte ranges). A script of changes over 60 s
//       (play, pause, seek, rate 1.25, rate 1, seek) is set through the peer's controls;
//       every SAMPLE_MS both positions are read (the peer's <video>.currentTime with the
//       page's wall-clock time of the reading; the kiosk's `/status` `watch.position`,
//       timed at the middle of the request) and the peer's is carried to the kiosk's
//       instant at its rate. After each change the gap |kiosk - peer| counts once it has
//       settled: from the first sample under SETTLE_MS that stays under it for 1 s (a
//       segment that never gets there counts from FALLBACK_MS after its change, so a
//       steady offset shows). The p50/p95 of those samples, the signed median (kiosk -
//       peer), each player's own drift from the room's timeline as it reports it, and the
//       time from each change (each seek) to settled.
//   (2) editor latency: EDITS single-character edits typed in Chromium A; the time from
//       just before the key press to the text in Chromium B (its Y.Text polled in the page
//       every POLL_MS) and to the kiosk's `/editor` (polled every POLL_MS from here, each
//       request timed at its middle). p50/p95, and the kiosk/browser ratio of the medians.
//   (3) the kiosk's CPU (% of one core, utime+stime of its process from /proc) over
//       CPU_MS in windows of CPU_WINDOW_MS, their median: in the call with nothing shared,
//       while a presenter types in the editor, and while it plays the 720p30 clip.
// The peers turn their cameras off, so the kiosk's figures are the shared experiences',
// not the call's video.
//
// Env: PORTAL_SERVER_BIN, PORTAL_KIOSK_BIN (release builds); dist/ built.
// PORTAL_BENCH_DISPLAY=:N runs the kiosk with its window on that X display (the view
// drawn) instead of `--headless`. `--quick`: 40 edits, short CPU windows, a 30 s script.
// The last stdout line is one JSON object.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchBrowser, joinRoom, startAnnounced, startServer, terminate } from "../kit.mjs";
import { loadVideo, makeVideo, openEditor, readPlayer, seekTo, serveFile, setPlaying, setPresenting, setSpeed, typeAtEnd } from "../room-kit.mjs";

const quick = process.argv.includes("--quick");
const EDITS = quick ? 40 : 200;
const POLL_MS = 5;
const SAMPLE_MS = 100;
const SETTLE_MS = 50;
const SETTLE_HOLD_MS = 1000;
// A segment whose gap never settles under SETTLE_MS counts from this long after its change.
const FALLBACK_MS = 2000;
const CPU_MS = quick ? 6_000 : 20_000;
const CPU_WINDOW_MS = quick ? 1_000 : 2_000;
const CLIP = { seconds: 80, width: 1280, height: 720, fps: 30 };
const TARGETS = { driftP95Ms: 50, settleMs: 1000, editorRatio: 1.2 };
const KIOSK_BIN = process.env.PORTAL_KIOSK_BIN;
if (!KIOSK_BIN) throw new Error("PORTAL_KIOSK_BIN must name a built portal-kiosk");
const DISPLAY = process.env.PORTAL_BENCH_DISPLAY ?? null;
// The kiosk's tests' filter: webrtc-rs warns about every DTLS ClientHello extension it skips.
const KIOSK_LOG = "warn,rtc=error,rtc_ice=error,rtc_sctp=error,rtc_dtls=error,webrtc=error";
const ROOM = `bench-shared-${Date.now()}`;
const TICKS = 100; // USER_HZ on Linux

// The script of changes, at seconds from its start (positions stay inside the clip).
const SCRIPT = quick
  ? [
      { at: 0, change: "play" },
      { at: 6, change: "pause" },
      { at: 9, change: "seek", to: 30 },
      { at: 12, change: "play" },
      { at: 17, change: "rate", rate: 1.25 },
      { at: 21, change: "rate", rate: 1 },
      { at: 24, change: "seek", to: 10 },
    ]
  : [
      { at: 0, change: "play" },
      { at: 10, change: "pause" },
      { at: 15, change: "seek", to: 30 },
      { at: 19, change: "play" },
      { at: 28, change: "rate", rate: 1.25 },
      { at: 38, change: "rate", rate: 1 },
      { at: 46, change: "seek", to: 10 },
    ];
const SCRIPT_S = quick ? 30 : 60;

const log = (...args) => console.error("[bench shared]", ...args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, digits = 1) => (x === null ? null : Number(x.toFixed(digits)));

/** Nearest-rank percentile. */
function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] : null;
}
const median = (xs) => percentile(xs, 50);
const series = (runs, digits = 1) => ({ median: round(median(runs), digits), p95: round(percentile(runs, 95), digits), runs: runs.map((r) => round(r, digits)) });

async function until(what, fn, timeout = 60_000, every = 100) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error(`timed out: ${what}`);
    await sleep(every);
  }
}

// ---- the kiosk ----

async function startKiosk(server, dir) {
  const runtime = join(dir, "runtime");
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  const mode = DISPLAY ? [] : ["--headless"];
  const env = { ...process.env, PORTAL_LOG: process.env.PORTAL_LOG ?? KIOSK_LOG, XDG_RUNTIME_DIR: runtime };
  if (DISPLAY) {
    env.DISPLAY = DISPLAY;
    delete env.WAYLAND_DISPLAY;
  }
  const { child, line } = await startAnnounced(
    KIOSK_BIN,
    [...mode, "--server", server.base.replace("http", "ws"), "--room", ROOM, "--name", "Room 4.01", "--status-addr", "127.0.0.1:0", "--files-dir", join(dir, "files"), "--snapshot-dir", join(dir, "snapshots"), "--config", "/dev/null"],
    { env, name: "portal-kiosk" },
  );
  const status = line.replace("status on ", "");
  const headers = { Authorization: `Bearer ${readFileSync(join(runtime, "portal-kiosk/status-token"), "utf8").trim()}` };
  const get = async (path) => {
    const res = await fetch(`${status}${path}`, { headers });
    return res.ok ? res.json() : null;
  };
  return {
    pid: child.pid,
    status: () => get("/status"),
    editor: () => get("/editor"),
    stop: () => terminate(child, 10_000),
  };
}

/** utime+stime of `pid` in ticks. */
function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** The kiosk's CPU (% of one core) in each CPU_WINDOW_MS window over CPU_MS; `busy()` runs meanwhile until `stop`. */
async function measureCpu(pid, what, busy = null) {
  const state = { stop: false };
  const work = busy ? busy(state) : Promise.resolve();
  const windows = [];
  try {
    const end = Date.now() + CPU_MS;
    while (Date.now() < end) {
      const t0 = performance.now();
      const c0 = cpuTicks(pid);
      await sleep(CPU_WINDOW_MS);
      const c1 = cpuTicks(pid);
      windows.push((((c1 - c0) / TICKS) * 1000 * 100) / (performance.now() - t0));
    }
  } finally {
    state.stop = true;
    await work;
  }
  log(`CPU ${what}: median ${median(windows).toFixed(1)} % over ${windows.length} windows`);
  return { median: round(median(windows)), windows: windows.map((w) => round(w)) };
}

// ---- (2) editor latency ----

/** Arms B's in-page poll for a text of `length`; `window.__benchSeen` becomes its Date.now(). */
function armBrowser(page, length) {
  return page.evaluate(
    ({ length, every }) => {
      window.__benchSeen = null;
      const check = () => {
        if (window.portalEditor.text().length >= length) window.__benchSeen = Date.now();
        else setTimeout(check, every);
      };
      check();
    },
    { length, every: POLL_MS },
  );
}

/** Polls the kiosk's /editor every POLL_MS until its text has `length`; the request's middle (Date.now()). */
async function kioskSees(kiosk, length, timeout = 30_000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    const t0 = Date.now();
    const e = await kiosk.editor();
    const t1 = Date.now();
    if (e && e.text.length >= length) return (t0 + t1) / 2;
    await sleep(POLL_MS);
  }
  throw new Error(`the kiosk's /editor never reached ${length} characters`);
}

async function editorLatency(kiosk, a, b) {
  await typeAtEnd(a, "// typed: ");
  const start = await a.evaluate(() => window.portalEditor.text().length);
  await until("B has A's text", () => b.evaluate((n) => window.portalEditor.text().length === n, start));
  await until("the kiosk has A's text", async () => (await kiosk.editor())?.text.length === start);
  const browserMs = [];
  const kioskMs = [];
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; i < EDITS; i++) {
    const length = start + i + 1;
    await armBrowser(b, length);
    const t0 = Date.now();
    const kioskDone = kioskSees(kiosk, length);
    await a.keyboard.press(letters[i % letters.length]);
    const tk = await kioskDone;
    await b.waitForFunction(() => window.__benchSeen !== null, null, { timeout: 30_000, polling: 10 });
    const tb = await b.evaluate(() => window.__benchSeen);
    browserMs.push(tb - t0);
    kioskMs.push(tk - t0);
    if ((i + 1) % 50 === 0) log(`edit ${i + 1}/${EDITS}: browser ${median(browserMs)} ms, kiosk ${median(kioskMs)} ms (medians so far)`);
    await sleep(30);
  }
  const browser = series(browserMs);
  const kioskSeries = series(kioskMs);
  return { browser, kiosk: kioskSeries, ratio: round(kioskSeries.median / browser.median, 2), edits: EDITS, pollMs: POLL_MS };
}

/** A presenter typing: a character every 100 ms, a new line every 40, until `state.stop`. */
async function presenterTypes(page, state) {
  let n = 0;
  while (!state.stop) {
    await page.keyboard.press(n % 40 === 39 ? "Enter" : "x");
    n++;
    await sleep(100);
  }
}

// ---- (1) watch drift ----

/** One sample: the peer's position carried to the kiosk's instant; null while either has none. */
async function sample(kiosk, page) {
  const p = await readPlayer(page);
  const t0 = Date.now();
  const s = await kiosk.status();
  const t1 = Date.now();
  const k = s?.watch?.position;
  if (!p || typeof k !== "number") return null;
  const at = (t0 + t1) / 2;
  const moving = !p.paused && !p.seeking;
  const browser = p.time + (moving ? ((at - p.at) / 1000) * p.rate : 0);
  const playing = moving && s.watch.playing === true;
  return {
    at,
    kiosk: k,
    browser,
    signedMs: (k - browser) * 1000,
    readMs: t1 - t0,
    gapMs: Math.abs(k - browser) * 1000,
    // Each player's own idea of its distance from the room's timeline (local - shared).
    kioskDriftMs: playing && typeof s.watch.drift === "number" ? s.watch.drift * 1000 : null,
    browserDriftMs: playing && typeof p.drift === "number" ? p.drift * 1000 : null,
  };
}

async function apply(page, step) {
  if (step.change === "play") await setPlaying(page, true);
  else if (step.change === "pause") await setPlaying(page, false);
  else if (step.change === "seek") await seekTo(page, step.to);
  else if (step.change === "rate") await setSpeed(page, step.rate);
}

/** Where in `samples` (from `from`, before `to`) the gap first stays under SETTLE_MS for SETTLE_HOLD_MS; its index or -1. */
function settledAt(samples, from, to) {
  for (let i = from; i < to; i++) {
    if (samples[i].gapMs >= SETTLE_MS) continue;
    let j = i;
    while (j < to && samples[j].gapMs < SETTLE_MS) j++;
    const lastAt = (j < to ? samples[j].at : samples[to - 1].at) - samples[i].at;
    if (lastAt >= SETTLE_HOLD_MS) return i;
    i = j;
  }
  return -1;
}

async function watchDrift(kiosk, page, url) {
  await loadVideo(page, url);
  await until("the clip loaded in the peer and on the kiosk", async () => {
    const p = await readPlayer(page);
    const s = await kiosk.status();
    return p && p.ready >= 1 && typeof s?.watch?.position === "number";
  });
  const samples = [];
  const changes = [];
  let stop = false;
  const sampler = (async () => {
    while (!stop) {
      const next = Date.now() + SAMPLE_MS;
      const s = await sample(kiosk, page);
      if (s) samples.push(s);
      await sleep(Math.max(0, next - Date.now()));
    }
  })();
  const start = Date.now();
  try {
    for (const step of SCRIPT) {
      await sleep(Math.max(0, start + step.at * 1000 - Date.now()));
      changes.push({ ...step, t: Date.now() });
      await apply(page, step);
      log(`${step.change}${step.to !== undefined ? ` ${step.to} s` : ""}${step.rate !== undefined ? ` ${step.rate}x` : ""} at ${((Date.now() - start) / 1000).toFixed(1)} s`);
    }
    await sleep(Math.max(0, start + SCRIPT_S * 1000 - Date.now()));
  } finally {
    stop = true;
    await sampler;
  }
  const counted = [];
  const countedSamples = [];
  const settle = changes.map((c, n) => {
    const from = samples.findIndex((s) => s.at >= c.t);
    const endT = n + 1 < changes.length ? changes[n + 1].t : Infinity;
    let to = samples.findIndex((s) => s.at >= endT);
    if (to < 0) to = samples.length;
    const i = from < 0 ? -1 : settledAt(samples, from, to);
    let first = i;
    if (first < 0 && from >= 0) {
      first = samples.findIndex((s, k) => k >= from && s.at >= c.t + FALLBACK_MS);
      if (first >= to) first = -1;
    }
    const segment = first < 0 ? [] : samples.slice(first, to);
    counted.push(...segment.map((s) => s.gapMs));
    countedSamples.push(...segment);
    const gaps = from < 0 ? [] : samples.slice(from, to).map((s) => s.gapMs);
    return {
      change: c.change + (c.to !== undefined ? ` to ${c.to} s` : "") + (c.rate !== undefined ? ` ${c.rate}x` : ""),
      settleMs: i >= 0 ? round(samples[i].at - c.t, 0) : null,
      samples: gaps.length,
      counted: segment.length,
      medianGapMs: round(median(gaps)),
      countedMedianGapMs: round(median(segment.map((s) => s.gapMs))),
    };
  });
  const p50 = round(percentile(counted, 50));
  const p95 = round(percentile(counted, 95));
  const drifts = (key) => countedSamples.map((s) => s[key]).filter((d) => d !== null);
  const signedMedianMs = round(median(countedSamples.map((s) => s.signedMs)));
  const kioskDriftMs = round(median(drifts("kioskDriftMs")));
  const browserDriftMs = round(median(drifts("browserDriftMs")));
  log(`drift after settling: p50 ${p50} ms, p95 ${p95} ms over ${counted.length} of ${samples.length} samples; kiosk - peer median ${signedMedianMs} ms; own drift while playing: kiosk ${kioskDriftMs} ms, peer ${browserDriftMs} ms`);
  return {
    p50Ms: p50,
    p95Ms: p95,
    signedMedianMs,
    kioskDriftMs,
    browserDriftMs,
    counted: counted.length,
    samples: samples.length,
    // How long a /status read took (the kiosk's instant is its middle).
    statusReadMs: round(median(samples.map((s) => s.readMs))),
    changes: settle,
    sampleMs: SAMPLE_MS,
    settleBelowMs: SETTLE_MS,
    settleHoldMs: SETTLE_HOLD_MS,
    fallbackMs: FALLBACK_MS,
  };
}

// ---- the run ----

const server = await startServer();
const dir = mkdtempSync(join(tmpdir(), "portal-bench-shared-"));
const browserA = await launchBrowser(["--use-fake-device-for-media-stream=fps=5"]);
const browserB = await launchBrowser(["--use-fake-device-for-media-stream=fps=5"]);
let kiosk = null;
let media = null;
let exitCode = 0;
try {
  log(`making the ${CLIP.height}p${CLIP.fps} clip (${CLIP.seconds} s)`);
  media = await serveFile(makeVideo(dir, "mp4", CLIP));
  kiosk = await startKiosk(server, join(dir, "kiosk"));
  await until("the kiosk in its room", async () => (await kiosk.status())?.connected === true);
  const a = await joinRoom(browserA, server, ROOM, "Ada");
  const b = await joinRoom(browserB, server, ROOM, "Bo");
  for (const p of [a, b]) await p.getByRole("button", { name: "Turn off camera" }).click();
  await until("both peers in the kiosk's call", async () => (await kiosk.status())?.peers?.length === 2);
  const idle = await measureCpu(kiosk.pid, "in the call, nothing shared");

  for (const p of [a, b]) await openEditor(p);
  await until("the kiosk reads the document", async () => (await kiosk.editor())?.connected === true);
  const editor = await editorLatency(kiosk, a, b);
  log(`editor: browser p50 ${editor.browser.median} ms, kiosk p50 ${editor.kiosk.median} ms, ${editor.ratio}x`);
  await setPresenting(a, true);
  await until("the kiosk follows Ada", async () => (await kiosk.editor())?.presenter === "Ada");
  await typeAtEnd(a, "\n");
  const cpuEditor = await measureCpu(kiosk.pid, "a presenter typing", (state) => presenterTypes(a, state));
  await setPresenting(a, false);

  const watch = await watchDrift(kiosk, a, media.url);
  await seekTo(a, 5);
  await setPlaying(a, true);
  await until("the kiosk playing", async () => (await kiosk.status())?.watch?.playing === true);
  const cpuPlaying = await measureCpu(kiosk.pid, `playing the ${CLIP.height}p${CLIP.fps} clip`);
  await setPlaying(a, false);

  console.log(
    JSON.stringify({
      watch,
      editor,
      cpu: { idle, editor: cpuEditor, playing: cpuPlaying, windowMs: CPU_WINDOW_MS, totalMs: CPU_MS },
      clip: CLIP,
      windowed: DISPLAY !== null,
      targets: TARGETS,
      quick,
    }),
  );
} catch (e) {
  log("failed:", e);
  exitCode = 1;
} finally {
  await kiosk?.stop().catch(() => undefined);
  await browserA.close().catch(() => undefined);
  await browserB.close().catch(() => undefined);
  await media?.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);

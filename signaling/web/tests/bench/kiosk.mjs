// Kiosk benchmark: the kiosk beside a headless Chromium doing the same 1:1 720p30 call.
//
// A "remote" Chromium (its own browser process) sits in a room with its fake 720p30
// camera. Then, in turn, each contender joins that room and is measured:
//   - the kiosk: the release `portal-kiosk --headless` at 1280x720@30 from its sim camera;
//   - the Chromium peer: a second, separate Chromium process running the browser client
//     (fake 720p30 camera), so its process tree is its own.
// For each (several runs, medians):
//   (a) join to first remote frame (each run, and EXTRA_JOINS more joins): kiosk, from
//       the start of its connection to the room to the first frame out of its decoder
//       (its /status); Chromium, from the click on Join to the first remote frame
//       painted (requestVideoFrameCallback);
//   (b) CPU over a fixed window once the call runs, as a percentage of one core
//       (utime+stime from /proc, summed over Chromium's whole process tree), and memory:
//       RSS and PSS (PSS divides shared pages between Chromium's processes, so it is the
//       fair sum; for the one-process kiosk the two are close);
//   (c) file receive throughput: the remote sends a file of random bytes; for the kiosk
//       from its POST /files/ID/accept to `complete` on /status (SHA-256 checked, on disk),
//       for Chromium from Accept to the verified download link.
//
// Env: PORTAL_SERVER_BIN, PORTAL_KIOSK_BIN (release builds); dist/ built. `--quick`: one
// run, a 16 MiB file, a 6 s CPU window. `--joins=N`: only (a), N joins a side.
// `--camera=ID`: the kiosk's sim camera (default `sim:call`, a picture like Chromium's fake
// camera; `sim:bars` moves every pixel, the encoder's worst case). The last stdout line is
// one JSON object.

import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { joinRoom, launchBrowser, startAnnounced, startServer, terminate } from "../kit.mjs";

const quick = process.argv.includes("--quick");
const CAMERA = process.argv.find((a) => a.startsWith("--camera="))?.slice("--camera=".length);
const JOINS_ONLY = Number(process.argv.find((a) => a.startsWith("--joins="))?.slice("--joins=".length) ?? 0);
const RUNS = quick ? 1 : 3;
// Join to first frame swings by ±100 ms from one join to the next (the remote's offer,
// ICE, DTLS, the remote's keyframe), so each run also joins this many extra times for
// that figure alone.
const EXTRA_JOINS = quick ? 0 : 3;
const FILE_MIB = quick ? 16 : 128;
const CPU_WINDOW_MS = quick ? 6_000 : 20_000;
const WARMUP_MS = quick ? 2_000 : 5_000;
const KIOSK_BIN = process.env.PORTAL_KIOSK_BIN;
if (!KIOSK_BIN) throw new Error("PORTAL_KIOSK_BIN must name a built portal-kiosk");

// Chromium's fake camera runs at 20 fps unless told otherwise; the call is 720p30 on both
// sides (the last copy of a switch wins).
const CAMERA_30FPS = "--use-fake-device-for-media-stream=fps=30";
// What the kiosk is configured to send.
const KIOSK_VIDEO = { width: 1280, height: 720 };

const log = (...args) => console.error("[bench kiosk]", ...args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, digits = 1) => Number(x.toFixed(digits));

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const series = (runs, digits = 1) => ({ median: round(median(runs), digits), runs: runs.map((r) => round(r, digits)) });

async function randomFile(path, mib) {
  const out = createWriteStream(path);
  for (let i = 0; i < mib; i++) if (!out.write(randomBytes(1024 * 1024))) await once(out, "drain");
  out.end();
  await once(out, "finish");
}

// ---- /proc ----

const TICKS = 100; // USER_HZ on Linux

function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime, stime
  } catch {
    return 0;
  }
}

function memory(pid) {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(rollup)?.[1] ?? 0);
    return { rss: kib("Rss"), pss: kib("Pss") };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** The Chromium browser process (not a renderer or helper) launched with `marker`. */
function browserPid(marker) {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const args = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (args.includes(marker) && !args.some((a) => a.startsWith("--type="))) return Number(name);
    } catch {
      // gone already
    }
  }
  return null;
}

/** `root` and every process below it. */
function tree(root) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      // gone already
    }
  }
  const out = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop();
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU (% of one core) over `ms`, and memory (MiB) sampled every second, of `pids()`. */
async function measure(pids, ms) {
  const ticks = () => pids().reduce((sum, p) => sum + cpuTicks(p), 0);
  const t0 = Date.now();
  const c0 = ticks();
  const rss = [];
  const pss = [];
  while (Date.now() - t0 < ms) {
    await sleep(1000);
    const m = pids().map(memory).reduce((a, b) => ({ rss: a.rss + b.rss, pss: a.pss + b.pss }), { rss: 0, pss: 0 });
    rss.push(m.rss / 1024);
    pss.push(m.pss / 1024);
  }
  const cpu = ((ticks() - c0) / TICKS / ((Date.now() - t0) / 1000)) * 100;
  return { cpu, rss: Math.max(...rss), pss: Math.max(...pss) };
}

// ---- the kiosk ----

async function startKiosk(server, room, dir) {
  mkdirSync(dir, { recursive: true });
  const config = join(dir, "kiosk.toml");
  writeFileSync(config, `[video]\nwidth = ${KIOSK_VIDEO.width}\nheight = ${KIOSK_VIDEO.height}\nfps = 30\nkbps = 1500\nmax_kbps = 2500\n`);
  // The kiosk writes its endpoint's token into its runtime directory.
  const runtime = join(dir, "runtime");
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  const { child, line } = await startAnnounced(
    KIOSK_BIN,
    ["--headless", "--server", server.base.replace("http", "ws"), "--room", room, "--name", "Bench kiosk", "--status-addr", "127.0.0.1:0", "--files-dir", join(dir, "files"), "--file-policy", "ask", "--max-file-mib", "4096", "--config", config, ...(CAMERA ? ["--camera", CAMERA] : [])],
    { env: { ...process.env, PORTAL_LOG: process.env.PORTAL_LOG ?? "warn", XDG_RUNTIME_DIR: runtime }, name: "portal-kiosk" },
  );
  const status = line.replace("status on ", "");
  const token = readFileSync(join(runtime, "portal-kiosk/status-token"), "utf8").trim();
  const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  return {
    child,
    async get() {
      return (await fetch(`${status}/status`, { headers })).json();
    },
    async post(path) {
      const r = await fetch(`${status}${path}`, { method: "POST", body: "{}", headers });
      return { code: r.status, body: await r.json().catch(() => null) };
    },
    async stop() {
      await terminate(child, 10_000);
    },
  };
}

async function until(what, fn, timeout = 60_000, every = 20) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error(`timed out: ${what}`);
    await sleep(every);
  }
}

/** Sends `path` from the remote page to its one peer; returns once the offer is out. */
async function offerFile(page, path) {
  await page.getByRole("tab", { name: "Files" }).click();
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.getByRole("button", { name: "Send file" }).click()]);
  await chooser.setFiles(path);
}

async function kioskRun(server, remoteBrowser, dir, file, run, joinOnly = false) {
  const room = `bench-kiosk-${run}-${Date.now()}`;
  const remote = await joinRoom(remoteBrowser, server, room, "Remote");
  const kiosk = await startKiosk(server, room, join(dir, `kiosk-${run}`));
  try {
    const first = await until("the kiosk decodes the remote", async () => {
      const s = await kiosk.get();
      const p = s.peers?.find((x) => x.name === "Remote");
      return p?.video?.firstFrameUnixMs ? s : null;
    });
    const p = first.peers.find((x) => x.name === "Remote");
    const joinMs = p.video.firstFrameUnixMs - first.joinStartedUnixMs;
    if (joinOnly) return { joinMs };
    await sleep(WARMUP_MS);
    const before = await kiosk.get();
    const t0Window = Date.now();
    const usage = await measure(() => [kiosk.child.pid], CPU_WINDOW_MS);
    const during = await kiosk.get();
    const windowMs = Date.now() - t0Window;
    const sending = during.sending;
    const video = during.peers.find((x) => x.name === "Remote")?.video;
    const videoBefore = before.peers.find((x) => x.name === "Remote")?.video;

    await offerFile(remote, file);
    const offered = await until("the kiosk is offered the file", async () => (await kiosk.get()).files?.find((f) => f.state === "offered"));
    const t0 = Date.now();
    const r = await kiosk.post(`/files/${offered.id}/accept`);
    if (r.code !== 200) throw new Error(`accept: ${r.code} ${JSON.stringify(r.body)}`);
    const done = await until(
      "the kiosk stores the file",
      async () => {
        const f = (await kiosk.get()).files?.find((x) => x.id === offered.id);
        if (f && ["failed", "cancelled", "declined"].includes(f.state)) throw new Error(`file ${f.state}`);
        return f?.state === "complete" ? f : null;
      },
      600_000,
      50,
    );
    const seconds = (Date.now() - t0) / 1000;
    return {
      joinMs,
      ...usage,
      fileMiBs: done.size / 1048576 / seconds,
      encoder: sending.encoderElements?.[0] ?? null,
      sendKbps: sending.bitrate,
      // The kiosk encodes at its configured size, whatever the estimate.
      sent: `${KIOSK_VIDEO.width}x${KIOSK_VIDEO.height}`,
      sentFps: fps(before.sending.framesEncoded, sending.framesEncoded, windowMs),
      decoded: `${video?.width}x${video?.height}`,
      decodedFps: fps(videoBefore?.framesDecoded ?? 0, video?.framesDecoded ?? 0, windowMs),
    };
  } finally {
    await kiosk.stop();
    await remote.context().close().catch(() => undefined);
  }
}

async function chromiumRun(server, remoteBrowser, dir, file, run, joinOnly = false) {
  const room = `bench-chromium-${run}-${Date.now()}`;
  const remote = await joinRoom(remoteBrowser, server, room, "Remote");
  // A switch Chromium ignores marks this instance, so its browser process can be found.
  const marker = `--portal-bench-peer=${run}-${Date.now()}`;
  const peerBrowser = await launchBrowser([CAMERA_30FPS, marker]);
  const root = browserPid(marker);
  if (!root) throw new Error("no Chromium process id");
  try {
    const context = await peerBrowser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 720 }, acceptDownloads: true });
    const page = await context.newPage();
    await page.goto(`${server.base}/r/${room}?name=Peer`);
    await page.waitForFunction(() => document.querySelector("select[name=camera]")?.options.length > 0 && document.querySelector("video.preview")?.videoWidth > 0, null, { timeout: 30_000 });
    await page.evaluate(() => {
      window.__bench = { clicked: null, frame: null, accepted: null, done: null };
      document.addEventListener("click", (e) => {
        if (!(e.target instanceof HTMLButtonElement)) return;
        if (e.target.textContent === "Join") window.__bench.clicked = performance.now();
        if (e.target.textContent === "Accept") window.__bench.accepted = performance.now();
      }, { capture: true });
      const seen = new WeakSet();
      new MutationObserver(() => {
        for (const v of document.querySelectorAll('.grid .tile:not([data-peer="self"]) video')) {
          if (seen.has(v)) continue;
          seen.add(v);
          v.requestVideoFrameCallback(() => {
            window.__bench.frame ??= performance.now();
          });
        }
        if (document.querySelector("a.file-save")) window.__bench.done ??= performance.now();
      }).observe(document.body, { subtree: true, childList: true });
    });
    await page.getByRole("button", { name: "Join" }).click();
    await page.waitForFunction(() => window.__bench.frame !== null, null, { timeout: 30_000 });
    const joinMs = await page.evaluate(() => window.__bench.frame - window.__bench.clicked);
    if (joinOnly) return { joinMs };
    await sleep(WARMUP_MS);
    const before = await chromiumVideo(page);
    const t0Window = Date.now();
    const usage = await measure(() => tree(root), CPU_WINDOW_MS);
    const after = await chromiumVideo(page);
    const windowMs = Date.now() - t0Window;
    const video = {
      encoder: after.encoder,
      sent: after.sent,
      sentFps: fps(before.framesEncoded, after.framesEncoded, windowMs),
      limitation: after.limitation,
      decoded: after.received,
      decodedFps: fps(before.framesDecoded, after.framesDecoded, windowMs),
    };

    await page.getByRole("tab", { name: "Files" }).click();
    await offerFile(remote, file);
    const accept = page.getByRole("button", { name: "Accept" });
    await accept.waitFor({ timeout: 30_000 });
    await accept.click();
    await page.waitForFunction(() => window.__bench.done !== null || document.querySelector('.file-item[data-state="failed"]'), null, { timeout: 600_000, polling: 200 });
    const { accepted, done } = await page.evaluate(() => window.__bench);
    if (done === null) throw new Error("the file failed in Chromium");
    return { joinMs, ...usage, ...video, fileMiBs: FILE_MIB / ((done - accepted) / 1000) };
  } finally {
    await peerBrowser.close().catch(() => undefined);
    await remote.context().close().catch(() => undefined);
  }
}

/** The Chromium peer's video as its own stats see it (its one peer connection). */
async function chromiumVideo(page) {
  return page.evaluate(async () => {
    const peer = [...window.portal.peers.values()][0];
    const out = { framesEncoded: 0, framesDecoded: 0 };
    (await peer.pc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video" && s.framesEncoded > out.framesEncoded) {
        Object.assign(out, {
          framesEncoded: s.framesEncoded,
          sent: `${s.frameWidth}x${s.frameHeight}`,
          encoder: s.encoderImplementation,
          limitation: s.qualityLimitationReason,
        });
      }
      if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > out.framesDecoded) {
        Object.assign(out, { framesDecoded: s.framesDecoded, received: `${s.frameWidth}x${s.frameHeight}` });
      }
    });
    return out;
  });
}

/** Frames per second between two counter readings `ms` apart. */
const fps = (before, after, ms) => round(((after - before) * 1000) / ms, 1);

async function retryOnce(what, fn) {
  try {
    return await fn();
  } catch (e) {
    log(`${what} failed (${String(e.message).split("\n")[0]}); trying once more`);
    return fn();
  }
}

const server = await startServer();
const remoteBrowser = await launchBrowser([CAMERA_30FPS]);
const dir = mkdtempSync(join(tmpdir(), "portal-bench-kiosk-"));
let exitCode = 0;
try {
  const file = join(dir, "payload.bin");
  await randomFile(file, JOINS_ONLY > 0 ? 1 : FILE_MIB);
  const kiosk = [];
  const chromium = [];
  const kioskJoins = [];
  const chromiumJoins = [];
  // One join-only sample a side, kiosk first.
  const joinEach = async (tag) => {
    kioskJoins.push((await retryOnce("kiosk join", () => kioskRun(server, remoteBrowser, dir, file, tag, true))).joinMs);
    chromiumJoins.push((await retryOnce("chromium join", () => chromiumRun(server, remoteBrowser, dir, file, tag, true))).joinMs);
  };
  if (JOINS_ONLY > 0) {
    for (let j = 0; j < JOINS_ONLY; j++) {
      await joinEach(`j${j}`);
      log(`join ${j + 1}/${JOINS_ONLY}: kiosk ${kioskJoins.at(-1).toFixed(0)} ms, chromium ${chromiumJoins.at(-1).toFixed(0)} ms`);
    }
    console.log(JSON.stringify({ kiosk: { joinToFirstFrameMs: series(kioskJoins, 0) }, chromium: { joinToFirstFrameMs: series(chromiumJoins, 0) } }));
  } else {
    // Alternate, so a slow minute on a shared machine hits both.
    for (let i = 0; i < RUNS; i++) {
      const k = await retryOnce("kiosk run", () => kioskRun(server, remoteBrowser, dir, file, i));
      log(`kiosk run ${i + 1}/${RUNS}: first frame ${k.joinMs} ms, CPU ${k.cpu.toFixed(0)} %, RSS ${k.rss.toFixed(0)} MiB, PSS ${k.pss.toFixed(0)} MiB, file ${k.fileMiBs.toFixed(1)} MiB/s (${k.encoder} ${k.sent}@${k.sentFps}, ${k.sendKbps} kbit/s, decoding ${k.decoded}@${k.decodedFps})`);
      kiosk.push(k);
      const c = await retryOnce("chromium run", () => chromiumRun(server, remoteBrowser, dir, file, i));
      log(`chromium run ${i + 1}/${RUNS}: first frame ${c.joinMs.toFixed(0)} ms, CPU ${c.cpu.toFixed(0)} %, RSS ${c.rss.toFixed(0)} MiB, PSS ${c.pss.toFixed(0)} MiB, file ${c.fileMiBs.toFixed(1)} MiB/s (${c.encoder} ${c.sent}@${c.sentFps}, limited by ${c.limitation}, decoding ${c.decoded}@${c.decodedFps})`);
      chromium.push(c);
      kioskJoins.push(k.joinMs);
      chromiumJoins.push(c.joinMs);
      for (let j = 0; j < EXTRA_JOINS; j++) await joinEach(`${i}-${j}`);
      log(`joins so far: kiosk ${kioskJoins.map((x) => x.toFixed(0)).join(", ")} ms; chromium ${chromiumJoins.map((x) => x.toFixed(0)).join(", ")} ms`);
    }
    const pick = (rows, key, digits) => series(rows.map((r) => r[key]), digits);
    const side = (rows, joins) => ({
      joinToFirstFrameMs: series(joins, 0),
      cpuPercent: pick(rows, "cpu", 1),
      rssMiB: pick(rows, "rss", 1),
      pssMiB: pick(rows, "pss", 1),
      fileReceiveMiBs: pick(rows, "fileMiBs", 1),
      sentFps: pick(rows, "sentFps", 1),
      decodedFps: pick(rows, "decodedFps", 1),
      // What was sent and decoded in the last run (Chromium adapts to its CPU).
      sent: rows.at(-1).sent,
      decoded: rows.at(-1).decoded,
      encoder: rows.at(-1).encoder,
    });
    console.log(
      JSON.stringify({
        kiosk: side(kiosk, kioskJoins),
        chromium: side(chromium, chromiumJoins),
        fileSizeMib: FILE_MIB,
        cpuWindowS: CPU_WINDOW_MS / 1000,
        kioskCamera: CAMERA ?? "sim:call",
      }),
    );
  }
} catch (e) {
  log("failed:", e);
  exitCode = 1;
} finally {
  await remoteBrowser.close().catch(() => undefined);
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);

// Browser benchmark: the figures the kiosk is later held against.
//
//   (a) join to first remote frame: a second Chromium page clicks Join in a room where a
//       first one waits; the time from the click to the first remote video frame painted
//       (requestVideoFrameCallback), in ms;
//   (b) browser-to-browser file throughput on loopback: one page sends a 256 MiB file of
//       random bytes to the other on the `file` data channel; the time from Accept to the
//       verified download link, in MiB/s (SHA-256 checked on both ends, as in use);
//   (c) what it is compared with: in the same call, just before (b), the same number of
//       bare 64 KiB frames on the same `file` channel, paced the same way, with no
//       protocol, hashing or storage (their transfer id matches no transfer, so the
//       receiver drops them) — the ceiling Chromium sets for (b) with the call running.
//
// Medians over several runs, each with fresh pages in a fresh room ((b) and (c) share
// one). `--quick` makes the file 16 MiB and does one run of each. Uses the test kit (../kit.mjs):
// PORTAL_SERVER_BIN must name a built portal-server and `npm run build` must have
// produced dist/. Progress goes to stderr; the last stdout line is one JSON object:
//   {"joinToFirstFrameMs":{"median":..,"runs":[..]},"fileThroughputMiBs":{"median":..,"runs":[..]},
//    "channelCeilingMiBs":{"median":..,"runs":[..]},"fileSizeMib":256}

import { randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { joinRoom, launchBrowser, startServer } from "../kit.mjs";

const quick = process.argv.includes("--quick");
const JOIN_RUNS = quick ? 1 : 7;
const FILE_RUNS = quick ? 1 : 3;
const FILE_MIB = quick ? 16 : 256;

const log = (...args) => console.error("[bench browser]", ...args);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x, digits = 1) => Number(x.toFixed(digits));

/** Writes `mib` MiB of random bytes to a file, a MiB at a time. */
async function randomFile(path, mib) {
  const out = createWriteStream(path);
  for (let i = 0; i < mib; i++) if (!out.write(randomBytes(1024 * 1024))) await once(out, "drain");
  out.end();
  await once(out, "finish");
}

async function newPage(browser, url) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => log("page error:", e.message));
  await page.goto(url);
  return { context, page };
}

/** One run of (a): ms from clicking Join to the first remote frame. */
async function joinToFirstFrame(browser, server, room) {
  const contexts = [];
  try {
    const first = await joinRoom(browser, server, room, "Waiting");
    contexts.push(first.context());
    const { context, page } = await newPage(browser, `${server.base}/r/${room}?name=Joiner`);
    contexts.push(context);
    // The pre-join screen is ready once its media is open and its pickers are filled.
    await page.waitForFunction(() => document.querySelector("select[name=camera]")?.options.length > 0 && document.querySelector("video.preview")?.videoWidth > 0, null, { timeout: 20_000 });
    await page.evaluate(() => {
      window.__bench = { clicked: null, frame: null };
      document.addEventListener("click", (e) => {
        if (e.target instanceof HTMLButtonElement && e.target.textContent === "Join") window.__bench.clicked = performance.now();
      }, { capture: true });
      const seen = new WeakSet();
      const hook = () => {
        for (const v of document.querySelectorAll('.grid .tile:not([data-peer="self"]) video')) {
          if (seen.has(v)) continue;
          seen.add(v);
          v.requestVideoFrameCallback(() => {
            window.__bench.frame ??= performance.now();
          });
        }
      };
      new MutationObserver(hook).observe(document.body, { subtree: true, childList: true });
    });
    await page.getByRole("button", { name: "Join" }).click();
    await page.waitForFunction(() => window.__bench.frame !== null, null, { timeout: 30_000 });
    return await page.evaluate(() => window.__bench.frame - window.__bench.clicked);
  } finally {
    for (const c of contexts) await c.close().catch(() => undefined);
  }
}

/** (c) on an open call: MiB/s of bare frames from page `a` to page `b`, first byte sent to last received. */
async function bareFrames(a, b, mib) {
  const bytes = mib * 1024 * 1024;
  // The receiver listens before the first frame leaves.
  await b.evaluate((total) => {
    window.__bareArrived = new Promise((resolve) => {
      const ch = [...window.portal.peers.values()][0].file;
      let got = 0;
      const onFrame = (e) => {
        if (typeof e.data === "string" || new DataView(e.data).getUint32(0) !== 0xffffffff) return;
        got += e.data.byteLength;
        if (got >= total) {
          ch.removeEventListener("message", onFrame);
          resolve(Date.now());
        }
      };
      ch.addEventListener("message", onFrame);
    });
  }, bytes);
  const started = await a.evaluate(async (total) => {
    const ch = [...window.portal.peers.values()][0].file;
    // The same frame size and water marks as src/features/files.ts.
    const frame = new Uint8Array(64 * 1024);
    new DataView(frame.buffer).setUint32(0, 0xffffffff);
    const t0 = Date.now();
    for (let sent = 0; sent < total; sent += frame.length) {
      if (ch.bufferedAmount > 4 * 1024 * 1024) await new Promise((r) => ch.addEventListener("bufferedamountlow", r, { once: true }));
      ch.send(frame);
    }
    return t0;
  }, bytes);
  const arrived = await b.evaluate(() => window.__bareArrived);
  return mib / ((arrived - started) / 1000);
}

/** One run of (b) and (c) in one call: MiB/s of bare frames, then of a file from Accept to the verified download link. */
async function fileThroughput(browser, server, room, path) {
  const contexts = [];
  try {
    const a = await joinRoom(browser, server, room, "Sender");
    contexts.push(a.context());
    const b = await joinRoom(browser, server, room, "Receiver");
    contexts.push(b.context());
    for (const p of [a, b]) {
      await p.waitForFunction(() => {
        const peers = [...(window.portal?.peers.values() ?? [])];
        return peers.length === 1 && peers[0].file.readyState === "open";
      }, null, { timeout: 20_000 });
      await p.getByRole("tab", { name: "Files" }).click();
    }
    const ceiling = await bareFrames(a, b, FILE_MIB);

    const [chooser] = await Promise.all([a.waitForEvent("filechooser"), a.getByRole("button", { name: "Send file" }).click()]);
    await chooser.setFiles(path);
    const accept = b.getByRole("button", { name: "Accept" });
    await accept.waitFor({ timeout: 20_000 });
    await b.evaluate(() => {
      window.__bench = { accepted: null, done: null };
      document.addEventListener("click", (e) => {
        if (e.target instanceof HTMLButtonElement && e.target.textContent === "Accept") window.__bench.accepted = performance.now();
      }, { capture: true });
      new MutationObserver(() => {
        if (document.querySelector("a.file-save")) window.__bench.done ??= performance.now();
      }).observe(document.body, { subtree: true, childList: true });
    });
    await accept.click();
    await b.waitForFunction(() => window.__bench.done !== null || document.querySelector('.file-item[data-state="failed"]'), null, { timeout: 600_000, polling: 200 });
    const { accepted, done } = await b.evaluate(() => window.__bench);
    if (done === null) throw new Error(`transfer failed: ${await b.locator(".file-status").first().textContent()}`);
    return { file: FILE_MIB / ((done - accepted) / 1000), ceiling };
  } finally {
    for (const c of contexts) await c.close().catch(() => undefined);
  }
}

/** Runs `fn` again once if it fails: on a shared, loaded machine a page can miss the
 * kit's join timeout. A second failure ends the benchmark. */
async function retryOnce(what, fn) {
  try {
    return await fn();
  } catch (e) {
    log(`${what} failed (${e.message.split("\n")[0]}); trying once more`);
    return fn();
  }
}

const server = await startServer();
const browser = await launchBrowser();
const dir = mkdtempSync(join(tmpdir(), "portal-bench-"));
let exitCode = 0;
try {
  const joinRuns = [];
  for (let i = 0; i < JOIN_RUNS; i++) {
    const ms = await retryOnce("join run", () => joinToFirstFrame(browser, server, `bench-join-${i}-${Date.now()}`));
    log(`join to first remote frame, run ${i + 1}/${JOIN_RUNS}: ${ms.toFixed(0)} ms`);
    joinRuns.push(round(ms, 0));
  }

  const path = join(dir, "payload.bin");
  await randomFile(path, FILE_MIB);
  const fileRuns = [];
  const ceilingRuns = [];
  for (let i = 0; i < FILE_RUNS; i++) {
    const { file, ceiling } = await retryOnce("file run", () => fileThroughput(browser, server, `bench-file-${i}-${Date.now()}`, path));
    log(`${FILE_MIB} MiB, run ${i + 1}/${FILE_RUNS}: file ${file.toFixed(1)} MiB/s, bare frames on the same channel ${ceiling.toFixed(1)} MiB/s`);
    fileRuns.push(round(file));
    ceilingRuns.push(round(ceiling));
  }

  console.log(
    JSON.stringify({
      joinToFirstFrameMs: { median: median(joinRuns), runs: joinRuns },
      fileThroughputMiBs: { median: round(median(fileRuns)), runs: fileRuns },
      channelCeilingMiBs: { median: round(median(ceilingRuns)), runs: ceilingRuns },
      fileSizeMib: FILE_MIB,
    }),
  );
} catch (e) {
  log("failed:", e);
  exitCode = 1;
} finally {
  await browser.close().catch(() => undefined);
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);

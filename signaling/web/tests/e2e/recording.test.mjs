// Recording between real browsers through the real server: one browser records the
// whole call and its own camera; the other sees that it records. Every file must be a
// WebM that Chromium plays back in a fresh page.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { test } from "node:test";
import { WEB_DIST, joinRoom, waitForRemoteVideos, withRoom } from "../kit.mjs";

const WEB_DIR = process.env.PORTAL_WEB_DIR ?? WEB_DIST;
const serverArgs = ["--web-dir", WEB_DIR];
// Cameras at 10 frames a second: enough to record, and lighter on a loaded machine.
const browserArgs = ["--use-fake-device-for-media-stream=fps=10"];

/** Opens the Recording panel if it is not open yet. */
async function openPanel(page) {
  const tab = page.getByRole("tab", { name: "Recording" });
  if ((await tab.getAttribute("aria-selected")) !== "true") await tab.click();
}

function recordButton(page) {
  return page.getByRole("button", { name: "Record", exact: true });
}

/** Records `source` for at least `seconds` and returns the automatic download. */
async function record(page, source, seconds) {
  await openPanel(page);
  await page.getByLabel("Recording source").selectOption({ label: source });
  const button = recordButton(page);
  const started = Date.now();
  await button.click();
  assert.equal(await button.getAttribute("aria-pressed"), "true");
  // The elapsed time shows and counts up.
  await waitElapsed(page, seconds);
  const downloaded = page.waitForEvent("download", { timeout: 30_000 });
  await button.click();
  const download = await downloaded;
  const took = (Date.now() - started) / 1000;
  assert.equal(await button.getAttribute("aria-pressed"), "false");
  const path = await download.path();
  const bytes = await readFile(path);
  // The panel keeps a link to save it again.
  await page.getByRole("link", { name: "Save recording" }).first().waitFor();
  return { name: download.suggestedFilename(), bytes, seconds: took };
}

/** Seconds the recording timer shows now. */
function elapsed(page) {
  return page.evaluate(() => {
    const m = /(\d+):(\d\d)$/.exec(document.querySelector('[role="timer"]')?.textContent.trim() ?? "");
    return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
  });
}

/** Waits until the recording timer ("Recording … · m:ss") shows at least `seconds`. */
async function waitElapsed(page, seconds) {
  await page.waitForFunction(
    (n) => {
      const timer = document.querySelector('[role="timer"]');
      const m = timer && !timer.hidden ? /(\d+):(\d\d)$/.exec(timer.textContent.trim()) : null;
      return m !== null && Number(m[1]) * 60 + Number(m[2]) >= n;
    },
    seconds,
    { timeout: seconds * 1000 + 20_000, polling: 200 },
  );
}

function rate({ bytes, seconds }) {
  return `${bytes.length} bytes in ~${seconds.toFixed(1)} s (~${Math.round((bytes.length * 8) / seconds / 1000)} kbit/s)`;
}

function assertWebm({ name, bytes }, room) {
  assert.match(name, new RegExp(`^portal-${room}-\\d{8}-\\d{6}\\.webm$`));
  assert.deepEqual([...bytes.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3], "EBML magic");
  assert.ok(bytes.includes(Buffer.from("webm")), "DocType webm");
  assert.ok(bytes.includes(Buffer.from("V_VP8")), "VP8 video track");
  assert.ok(bytes.includes(Buffer.from("A_OPUS")), "Opus audio track");
  assert.ok(bytes.length > 10 * 1024, `size ${bytes.length}`);
}

/** Serves `bytes` as /rec.webm (with byte ranges) and a page with a <video> on 127.0.0.1. */
async function serveRecording(bytes) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>playback</title><video controls></video>");
      return;
    }
    if (path !== "/rec.webm") {
      res.writeHead(404).end();
      return;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
      res.writeHead(206, { "content-type": "video/webm", "accept-ranges": "bytes", "content-range": `bytes ${start}-${end}/${bytes.length}`, "content-length": end - start + 1 });
      res.end(bytes.subarray(start, end + 1));
    } else {
      res.writeHead(200, { "content-type": "video/webm", "accept-ranges": "bytes", "content-length": bytes.length });
      res.end(bytes);
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { base: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

/** Plays the file in a fresh page: its size, that time advances, and the audio level. */
async function playBack(browser, bytes) {
  const served = await serveRecording(bytes);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${served.base}/`);
    return await page.evaluate(async () => {
      const v = document.querySelector("video");
      v.src = "/rec.webm";
      await new Promise((resolve, reject) => {
        v.onloadedmetadata = resolve;
        v.onerror = () => reject(new Error(`media error ${v.error?.code}: ${v.error?.message}`));
        setTimeout(() => reject(new Error("no loadedmetadata in 20 s")), 20_000);
      });
      // Measure the audio as it plays (the page is muted to the speakers, not to WebAudio).
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      ctx.createMediaElementSource(v).connect(analyser);
      await ctx.resume();
      const buf = new Float32Array(analyser.fftSize);
      let peak = 0;
      const t0 = v.currentTime;
      await v.play();
      const started = performance.now();
      while (performance.now() - started < 10_000 && !(v.currentTime > t0 + 1.5 && peak > 0)) {
        analyser.getFloatTimeDomainData(buf);
        for (const s of buf) peak = Math.max(peak, Math.abs(s));
        await new Promise((r) => setTimeout(r, 50));
      }
      return {
        width: v.videoWidth,
        height: v.videoHeight,
        advanced: v.currentTime - t0,
        frames: v.getVideoPlaybackQuality?.().totalVideoFrames ?? null,
        audioBytes: v.webkitAudioDecodedByteCount ?? null,
        peak,
      };
    });
  } finally {
    await context.close();
    await served.close();
  }
}

/** Plays the file to its end in a fresh page, sampling the colour at `point` on every frame. */
async function pixelOverTime(browser, bytes, point) {
  const served = await serveRecording(bytes);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${served.base}/`);
    return await page.evaluate(async ([x, y]) => {
      const v = document.querySelector("video");
      v.muted = true;
      v.src = "/rec.webm";
      await new Promise((resolve, reject) => {
        v.onloadedmetadata = resolve;
        v.onerror = () => reject(new Error(`media error ${v.error?.code}: ${v.error?.message}`));
      });
      const canvas = new OffscreenCanvas(v.videoWidth, v.videoHeight);
      const g = canvas.getContext("2d", { willReadFrequently: true });
      const samples = [];
      const sample = (_now, meta) => {
        g.drawImage(v, 0, 0);
        const [r, gr, b] = g.getImageData(x, y, 1, 1).data;
        samples.push({ t: meta.mediaTime, r, g: gr, b });
        if (!v.ended) v.requestVideoFrameCallback(sample);
      };
      v.requestVideoFrameCallback(sample);
      const ended = new Promise((resolve) => (v.onended = resolve));
      await v.play();
      await Promise.race([ended, new Promise((r) => setTimeout(r, 60_000))]);
      return samples;
    }, point);
  } finally {
    await context.close();
    await served.close();
  }
}

test("recording the whole call and one's camera: the others see it, the files play", async () => {
  await withRoom(
    async ({ server, browser }) => {
      const room = "taped";
      const a = await joinRoom(browser, server, room, "Ada");
      const b = await joinRoom(browser, server, room, "Bo");
      await waitForRemoteVideos(a, 1, 30_000);
      await waitForRemoteVideos(b, 1, 30_000);

      // Whole call, ~3 s; meanwhile Bo sees that Ada records.
      await openPanel(a);
      await a.getByLabel("Recording source").selectOption({ label: "Whole call" });
      const button = recordButton(a);
      const started = Date.now();
      await button.click();
      await b.getByRole("figure", { name: /Ada.*recording/ }).waitFor({ timeout: 15_000 });
      await openPanel(b);
      await b.getByText("Ada is recording", { exact: true }).waitFor({ timeout: 5_000 });
      await waitElapsed(a, 3);
      const downloaded = a.waitForEvent("download", { timeout: 30_000 });
      await button.click();
      const call = await downloaded;
      const whole = { name: call.suggestedFilename(), bytes: await readFile(await call.path()), seconds: (Date.now() - started) / 1000 };
      assertWebm(whole, room);
      // Bo sees the recording end.
      await b.waitForFunction(() => !/recording/.test(document.querySelector('.grid .tile:not([data-peer="self"])')?.getAttribute("aria-label") ?? "recording"), null, {
        timeout: 15_000,
      });
      await b.getByText("Ada is recording", { exact: true }).waitFor({ state: "detached", timeout: 5_000 });

      const wholePlay = await playBack(browser, whole.bytes);
      console.log(`whole call: ${rate(whole)}, playback ${JSON.stringify(wholePlay)}`);
      assert.equal(wholePlay.width, 1280);
      assert.equal(wholePlay.height, 720);
      assert.ok(wholePlay.advanced > 1, `playback advanced ${wholePlay.advanced} s`);
      assert.ok(wholePlay.peak > 0.001, `audio peak ${wholePlay.peak}`);

      // Own camera.
      const own = await record(a, "My camera", 3);
      assertWebm(own, room);
      const ownPlay = await playBack(browser, own.bytes);
      console.log(`my camera: ${rate(own)}, playback ${JSON.stringify(ownPlay)}`);
      assert.ok(ownPlay.width > 0 && ownPlay.height > 0, `size ${ownPlay.width}x${ownPlay.height}`);
      assert.ok(ownPlay.advanced > 1, `playback advanced ${ownPlay.advanced} s`);
      assert.equal(await a.getByRole("link", { name: "Save recording" }).count(), 2);
    },
    { serverArgs, browserArgs },
  );
});

test("a recorded participant who leaves, and leaving while recording, still save the file", async () => {
  await withRoom(
    async ({ server, browser }) => {
      const room = "walkout";
      const a = await joinRoom(browser, server, room, "Ada");
      const b = await joinRoom(browser, server, room, "Bo");
      await waitForRemoteVideos(a, 1, 30_000);

      // Ada records Bo; Bo leaves: the recording stops by itself and downloads.
      await openPanel(a);
      await a.getByLabel("Recording source").selectOption({ label: "Bo" });
      await recordButton(a).click();
      await waitElapsed(a, 2);
      const downloaded = a.waitForEvent("download", { timeout: 30_000 });
      await b.getByRole("button", { name: "Leave" }).click();
      const bo = await downloaded;
      const file = { name: bo.suggestedFilename(), bytes: await readFile(await bo.path()) };
      assertWebm(file, room);
      await a.getByText("Bo left the call, so the recording stopped").first().waitFor({ timeout: 5_000 });
      assert.equal(await recordButton(a).getAttribute("aria-pressed"), "false");
      const play = await playBack(browser, file.bytes);
      console.log(`peer: ${file.bytes.length} bytes, ${JSON.stringify(play)}`);
      assert.ok(play.width > 0 && play.advanced > 1, JSON.stringify(play));

      // Leaving mid-recording stops it cleanly and still downloads it.
      await a.getByLabel("Recording source").selectOption({ label: "Whole call" });
      await recordButton(a).click();
      await waitElapsed(a, 2);
      const onLeave = a.waitForEvent("download", { timeout: 30_000 });
      await a.getByRole("button", { name: "Leave" }).click();
      const left = await onLeave;
      assertWebm({ name: left.suggestedFilename(), bytes: await readFile(await left.path()) }, room);
    },
    { serverArgs, browserArgs },
  );
});

test("a participant who joins mid-recording is added to the recorded layout", async () => {
  await withRoom(
    async ({ server, browser }) => {
      const room = "latecomer";
      const a = await joinRoom(browser, server, room, "Ada");
      await joinRoom(browser, server, room, "Bo");
      await waitForRemoteVideos(a, 1, 30_000);

      // No MediaRecorder: a clear message, and nothing starts.
      await openPanel(a);
      await a.evaluate(() => {
        window.savedMediaRecorder = window.MediaRecorder;
        delete window.MediaRecorder;
      });
      await recordButton(a).click();
      await a.getByRole("alert").getByText("Recording is not supported in this browser.").first().waitFor({ timeout: 5_000 });
      assert.equal(await recordButton(a).getAttribute("aria-pressed"), "false");
      await a.evaluate(() => {
        window.MediaRecorder = window.savedMediaRecorder;
      });

      await a.getByLabel("Recording source").selectOption({ label: "Whole call" });
      await recordButton(a).click();
      const started = Date.now();
      await waitElapsed(a, 2);
      const c = await joinRoom(browser, server, room, "Cy");
      await waitForRemoteVideos(a, 2, 30_000);
      const cyPlaying = Date.now();
      // Cy sees at once that Ada records (state sent when the channel opens).
      await c.getByRole("figure", { name: /Ada.*recording/ }).waitFor({ timeout: 15_000 });
      // More recording with Cy's camera in the picture. (On a starved machine the
      // recording's media time falls behind the wall clock, so give it room.)
      await waitElapsed(a, (await elapsed(a)) + 5);
      const downloaded = a.waitForEvent("download", { timeout: 30_000 });
      const cyFrom = (cyPlaying - started) / 1000;
      const tiles = await a.locator(".grid .tile").count();
      await recordButton(a).click();
      const wall = (Date.now() - started) / 1000;
      const dl = await downloaded;
      const bytes = await readFile(await dl.path());
      assertWebm({ name: dl.suggestedFilename(), bytes }, room);

      // Two tiles sit side by side in the middle band; a third goes in a second row
      // below them, centred. (640, 650) is background before Cy joins, camera after.
      const samples = await pixelOverTime(browser, bytes, [640, 650]);
      const green = (s) => s.g > 80 && s.g > s.r + 40 && s.g > s.b + 40;
      const dark = (s) => s.r < 60 && s.g < 60 && s.b < 60;
      console.log(`latecomer: ${bytes.length} bytes, ${samples.length} frames over ${samples.at(-1)?.t.toFixed(2)} s; recorded for ${wall.toFixed(1)} s, ${tiles} tiles, Cy's video playing from ${cyFrom.toFixed(1)} s`);
      // By media time (a loaded machine presents only some frames on playback): the first
      // second shows the background there; later Cy's camera does, and keeps doing so.
      const head = samples.filter((s) => s.t < 1);
      const from = samples.findIndex(green);
      assert.ok(head.length >= 1 && head.every(dark), `first frames: ${JSON.stringify(head)}`);
      assert.ok(from > 0, `Cy's camera from frame ${from} of ${samples.length}: ${JSON.stringify(samples.slice(-3))}`);
      assert.ok(samples.slice(from).every(green), `after Cy appeared: ${JSON.stringify(samples.slice(from))}`);
    },
    { serverArgs, browserArgs },
  );
});

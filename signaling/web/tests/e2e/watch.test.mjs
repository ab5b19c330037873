// Watch together between real browsers through the real server: a local video file
// (made with GStreamer, served with Range support) stays in sync across browsers when
// one plays, another seeks, one pauses, and a third joins late.
//
// Positions are compared at one instant: each page reports its currentTime with a
// wall-clock timestamp taken in the same task, and every sample is carried forward
// (by the playback rate) to the latest of those timestamps before comparing.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { WEB_DIST, joinRoom, launchBrowser, startServer } from "../kit.mjs";
import { haveGstreamer, makeVideo, openWatch, readPlayer, seekTo, serveFile } from "../room-kit.mjs";

const WEB_DIR = process.env.PORTAL_WEB_DIR ?? WEB_DIST;
const TOLERANCE = 0.3; // seconds between any two browsers
// The call's cameras are not what is tested here: 5 frames a second leaves the CPU of a
// loaded machine to the players.
const BROWSER_ARGS = ["--use-fake-device-for-media-stream=fps=5"];
const SECONDS = 90; // length of the test video

/** Positions of all pages carried to one instant, and their spread (max - min) in seconds. */
async function measure(pages) {
  const samples = await Promise.all(pages.map(readPlayer));
  if (samples.some((s) => s === null)) return { spread: Infinity, positions: [], samples };
  const at = Math.max(...samples.map((s) => s.at));
  const positions = samples.map((s) => s.time + (s.paused || s.seeking ? 0 : ((at - s.at) / 1000) * s.rate));
  return { spread: Math.max(...positions) - Math.min(...positions), positions, samples };
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The sampled spreads stay under TOLERANCE. A single sample over it is let pass when the
 * next one is back under (a player starved of CPU for a moment, or caught mid-seek, whose
 * position is then where it jumps to): a loss of sync shows in consecutive samples.
 */
function assertStaysInSync(r) {
  const over = r.spreads.map((s) => s >= TOLERANCE);
  const lasting = over.some((o, i) => o && (i === over.length - 1 || over[i + 1]));
  assert.ok(!lasting && r.median < TOLERANCE / 2, `spreads ${r.spreads.map((s) => s.toFixed(3))}`);
}

/**
 * Waits until `ok(measurement)` holds for `streak` samples in a row (sampling every
 * 250 ms), then takes `count` more samples and returns their spreads.
 */
async function settleThenSample(pages, ok, { timeout = 45_000, streak = 4, count = 12, label = "" } = {}) {
  const started = Date.now();
  const deadline = started + timeout;
  let good = 0;
  let last = null;
  while (good < streak) {
    if (Date.now() > deadline) throw new Error(`${label}: not settled within ${timeout} ms; last: ${JSON.stringify(last)}`);
    last = await measure(pages);
    if (process.env.WATCH_DEBUG) console.log(`# ${label} ${((Date.now() - started) / 1000).toFixed(2)} ${JSON.stringify(last.samples.map((x) => x && [x.time.toFixed(3), x.paused, x.seeking, x.rate, x.drift?.toFixed(3)]))} spread ${last.spread.toFixed(3)}`);
    good = ok(last) ? good + 1 : 0;
    await pause(250);
  }
  const settled = ((Date.now() - started) / 1000).toFixed(1);
  const spreads = [];
  const all = [];
  for (let i = 0; i < count; i++) {
    const m = await measure(pages);
    spreads.push(m.spread);
    all.push(m);
    await pause(250);
  }
  const sorted = [...spreads].sort((a, b) => a - b);
  const stats = { median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1] };
  console.log(`# ${label}: settled in ${settled} s; spread median ${(stats.median * 1000).toFixed(1)} ms, max ${(stats.max * 1000).toFixed(1)} ms over ${count} samples`);
  return { ...stats, spreads, all, last: all[all.length - 1] };
}

// One clip for all tests, made on first use; H.264/AAC mp4 when Chromium plays it (Debian's
// does), VP8/Opus webm otherwise.
const workDir = mkdtempSync(join(tmpdir(), "portal-watch-"));
after(() => rmSync(workDir, { recursive: true, force: true }));
let clipMade = null;
async function testClip(browser, server) {
  if (!clipMade) {
    const probe = await (await browser.newContext()).newPage();
    await probe.goto(server.base);
    const mp4 = await probe.evaluate(() => document.createElement("video").canPlayType('video/mp4; codecs="avc1.42E01E, mp4a.40.2"'));
    await probe.context().close();
    clipMade = makeVideo(workDir, mp4 === "probably" ? "mp4" : "webm");
    console.log(`# test clip: ${clipMade.name} (${statSync(clipMade.file).size} bytes), canPlayType(mp4) = ${JSON.stringify(mp4)}`);
  }
  return clipMade;
}

const playing = (m) => m.samples.every((s) => s && !s.paused && !s.seeking && s.ready >= 3);
const inSync = (m) => playing(m) && m.spread < TOLERANCE / 2;

test("watch together keeps browsers within 300 ms: play, seek, pause, late joiner", { timeout: 300_000 }, async (t) => {
  if (!haveGstreamer()) {
    t.skip("gst-launch-1.0 is not installed (gstreamer1.0-tools)");
    return;
  }
  const server = await startServer(["--web-dir", WEB_DIR]);
  const browser = await launchBrowser(BROWSER_ARGS);
  let media = null;
  try {
    media = await serveFile(await testClip(browser, server));

    const a = await joinRoom(browser, server, "cinema", "Ada");
    const b = await joinRoom(browser, server, "cinema", "Bo");
    for (const p of [a, b]) await openWatch(p);

    // Count the watch states Ada's page sends.
    await a.evaluate(() => {
      const session = window.portal;
      const send = session.sendWatch.bind(session);
      window.testWatchSends = [];
      session.sendWatch = (state) => (window.testWatchSends.push(state), send(state));
    });
    const sent = () => a.evaluate(() => window.testWatchSends);

    await t.test("a bad link is explained and nothing is sent", async () => {
      for (const bad of ["https://www.youtube.com/watch?v=tooShort", "ftp://example.com/a.mp4", "javascript:alert(1)"]) {
        await a.getByRole("textbox", { name: "Video URL" }).fill(bad);
        await a.getByRole("button", { name: "Load video" }).click();
        await a.getByRole("alert").filter({ hasText: "not a YouTube link" }).waitFor({ timeout: 5000 });
      }
      assert.deepEqual(await sent(), []);
      assert.equal(await b.locator(".watch video").count(), 0);
    });

    await t.test("a loaded video appears paused at 0 for everyone", async () => {
      await a.getByRole("textbox", { name: "Video URL" }).fill(media.url);
      await a.getByRole("button", { name: "Load video" }).click();
      assert.deepEqual(await sent(), [{ source: { kind: "url", url: media.url }, playing: false, position: 0, rate: 1 }]);
      for (const p of [a, b]) {
        await p.waitForFunction(
          (seconds) => {
            const v = document.querySelector(".watch video");
            return v && v.readyState >= 1 && v.paused && v.currentTime === 0 && Math.abs(v.duration - seconds) < 1;
          },
          SECONDS,
          { timeout: 20_000 },
        );
      }
    });

    await t.test("after play both run within 300 ms of each other", async () => {
      await a.getByRole("button", { name: "Play", exact: true }).click();
      const r = await settleThenSample([a, b], inSync, { label: "play" });
      assertStaysInSync(r);
      assert.ok(playing(r.last), "both playing");
      // And really advancing along the shared timeline, at the shared rate: compare the
      // advance with the wall-clock time between the two readings.
      const before = r.last;
      await pause(1000);
      const later = await measure([a, b]);
      const advanced = later.positions[0] - before.positions[0];
      const wall = (Math.max(...later.samples.map((s) => s.at)) - Math.max(...before.samples.map((s) => s.at))) / 1000;
      assert.ok(wall > 0.9 && Math.abs(advanced - wall) < TOLERANCE, `advanced ${advanced.toFixed(3)} s in ${wall.toFixed(3)} s`);
    });

    await t.test("after a seek by the other browser both are within 300 ms", async () => {
      await seekTo(b, 40);
      const r = await settleThenSample([a, b], (m) => inSync(m) && m.positions.every((x) => x >= 40 && x < 60), { label: "seek" });
      assertStaysInSync(r);
      assert.ok(r.last.positions[0] >= 40, `positions ${r.last.positions}`);
      assert.ok(media.stats.partial > 0, "the video was fetched with Range requests");
    });

    await t.test("a drift is corrected: a small one by the playback rate, a large one by a seek", async () => {
      // Log the seeks and rate changes on Bo's player from here on.
      await b.evaluate(() => {
        const v = document.querySelector(".watch video");
        const log = { seeks: 0, rates: [] };
        v.addEventListener("seeking", () => log.seeks++);
        v.addEventListener("ratechange", () => log.rates.push(v.playbackRate));
        window.testWatchLog = log;
      });
      const log = () => b.evaluate(() => window.testWatchLog);

      // Bo's clock estimate slips by 250 ms (under the 400 ms seek threshold): Bo's player
      // follows its timeline 250 ms later, slowed down rather than seeking.
      const shift = 0.25;
      await b.evaluate((ms) => {
        const session = window.portal;
        const real = Object.getPrototypeOf(session).serverNow;
        session.serverNow = () => real.call(session) - ms;
      }, shift * 1000);
      const behind = await settleThenSample([a, b], (m) => playing(m) && Math.abs(m.samples[1].drift) < 0.03 && Math.abs(m.positions[0] - m.positions[1] - shift) < 0.1, {
        label: "nudged 250 ms back",
        count: 2,
      });
      const gap = behind.last.positions[0] - behind.last.positions[1];
      assert.ok(Math.abs(gap - shift) < 0.1, `Bo is ${gap} s behind`);
      let seen = await log();
      assert.equal(seen.seeks, 0, "no seek for a drift under the threshold");
      assert.ok(seen.rates.some((r) => r < 1 && r >= 0.85), `rates ${seen.rates}`);

      // The clock is right again: Bo speeds up to catch up, still without seeking.
      await b.evaluate(() => delete window.portal.serverNow);
      const back = await settleThenSample([a, b], (m) => inSync(m) && m.samples.every((s) => s.rate === 1), { label: "nudged back" });
      assertStaysInSync(back);
      seen = await log();
      assert.equal(seen.seeks, 0, "no seek for a drift under the threshold");
      assert.ok(seen.rates.some((r) => r > 1 && r <= 1.15), `rates ${seen.rates}`);

      // Knocked 3 s ahead (past the threshold): the player seeks back onto the timeline.
      await b.evaluate((by) => {
        const v = document.querySelector(".watch video");
        v.currentTime += by;
      }, 3);
      const jumped = await settleThenSample([a, b], inSync, { label: "seeked back" });
      assertStaysInSync(jumped);
      seen = await log();
      assert.ok(seen.seeks >= 2, `the sync loop seeked after the knock (${seen.seeks} seeks)`);
    });

    await t.test("after pause both stand still within 300 ms of each other", async () => {
      await a.getByRole("button", { name: "Pause", exact: true }).click();
      const r = await settleThenSample([a, b], (m) => m.samples.every((s) => s && s.paused && !s.seeking), { label: "pause", count: 4 });
      assert.ok(r.max < TOLERANCE, `spreads ${r.spreads.map((s) => s.toFixed(3))}`);
      const still = await measure([a, b]);
      await pause(750);
      const later = await measure([a, b]);
      assert.deepEqual(later.positions, still.positions, "paused players do not move");
      assert.equal(await a.locator(".watch").getAttribute("data-sync"), "paused");
    });

    await t.test("a late joiner starts in sync with the others", async () => {
      // From near the start, so the clip does not run out on a slow machine.
      await seekTo(b, 10);
      await b.waitForFunction(() => Math.abs(document.querySelector(".watch video").currentTime - 10) < 0.05, null, { timeout: 10_000 });
      await b.getByRole("button", { name: "Play", exact: true }).click();
      await settleThenSample([a, b], inSync, { label: "resume", count: 2 });
      const c = await joinRoom(browser, server, "cinema", "Cy");
      await openWatch(c);
      const r = await settleThenSample([a, b, c], inSync, { label: "late joiner" });
      assertStaysInSync(r);
      // The page's own drift estimate (local - shared timeline) agrees.
      const drifts = r.last.samples.map((s) => s.drift);
      assert.ok(
        drifts.every((d) => typeof d === "number" && Math.abs(d) < TOLERANCE),
        `drifts ${drifts}`,
      );
      const text = await c.locator(".watch-sync").textContent();
      assert.match(text ?? "", /in sync|catching up/);
    });

    await t.test("a speed change is followed by everyone", async () => {
      await a.getByRole("combobox", { name: "Speed" }).selectOption("1.5");
      const pages = [a, b];
      const r = await settleThenSample(pages, (m) => inSync(m) && m.samples.every((s) => Math.abs(s.rate - 1.5) < 0.2), { label: "speed 1.5", count: 6 });
      assertStaysInSync(r);
    });
  } finally {
    await browser.close().catch(() => undefined);
    await server.stop();
    await media?.close();
  }
});

/**
 * Joins like `joinRoom` (without camera or microphone), but never gives the page a user
 * gesture: Playwright's own waits and evaluations count as one, so this page is only
 * read through plain CDP `Runtime.evaluate`. Returns the page, and `evaluate(fn, arg)`
 * and `waitFor(fn)` that keep it gesture-free.
 */
async function joinWithoutGesture(browser, server, room, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${name}] page error:`, e.message));
  await page.goto(`${server.base}/r/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}&autojoin=1`);
  const cdp = await context.newCDPSession(page);
  const quiet = {
    page,
    async evaluate(fn, arg) {
      const r = await cdp.send("Runtime.evaluate", { expression: `(${fn})(${JSON.stringify(arg ?? null)})`, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error(`evaluate failed: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
      return r.result.value;
    },
    async waitFor(fn, timeout = 30_000) {
      const deadline = Date.now() + timeout;
      while (!(await quiet.evaluate(fn))) {
        if (Date.now() > deadline) {
          const state = await quiet.evaluate(() => {
            const v = document.querySelector(".watch video");
            const start = document.querySelector(".watch-start");
            return v && { muted: v.muted, paused: v.paused, time: v.currentTime, ready: v.readyState, start: start && !start.hidden, sync: document.querySelector(".watch")?.dataset.sync };
          });
          throw new Error(`[${name}] timed out waiting for ${fn}; player: ${JSON.stringify(state)}`);
        }
        await pause(250);
      }
    },
  };
  await quiet.waitFor(() => !!document.querySelector('button[aria-label="Leave"]'));
  return quiet;
}

test("a browser that blocks autoplay plays muted and offers to join playback", { timeout: 180_000 }, async (t) => {
  if (!haveGstreamer()) {
    t.skip("gst-launch-1.0 is not installed (gstreamer1.0-tools)");
    return;
  }
  const server = await startServer(["--web-dir", WEB_DIR]);
  const browser = await launchBrowser(BROWSER_ARGS);
  // Desktop Chromium's default policy: sound needs a user gesture on the page first. A
  // page that captures camera or microphone is exempt, so this browser has no devices
  // (the call goes on receive-only).
  const strict = await launchBrowser(["--autoplay-policy=document-user-activation-required"], { media: false });
  let media = null;
  try {
    media = await serveFile(await testClip(browser, server));
    const a = await joinRoom(browser, server, "strict", "Ada");
    const b = await joinWithoutGesture(strict, server, "strict", "Bo");
    assert.equal(await b.evaluate(() => navigator.userActivation.hasBeenActive), false, "no gesture on the strict page yet");
    await openWatch(a);
    await a.getByRole("textbox", { name: "Video URL" }).fill(media.url);
    await a.getByRole("button", { name: "Load video" }).click();
    await a.getByRole("button", { name: "Play", exact: true }).click();
    // Refused with sound, the strict page plays muted, in sync, and asks for a click.
    await b.waitFor(() => {
      const v = document.querySelector(".watch video");
      return v && v.muted && !v.paused && !document.querySelector(".watch-start").hidden;
    });
    assert.equal(await b.evaluate(() => navigator.userActivation.hasBeenActive), false, "still no gesture");
    const muted = await settleThenSample([a, b], inSync, { label: "muted autoplay", count: 4 });
    assertStaysInSync(muted);
    await b.page.getByRole("tab", { name: "Watch together" }).click();
    await b.page.getByRole("button", { name: "Start playback" }).click();
    await b.page.waitForFunction(() => {
      const v = document.querySelector(".watch video");
      return v && !v.muted && !v.paused && document.querySelector(".watch-start").hidden;
    });
    const sound = await settleThenSample([a, b], inSync, { label: "after the click", count: 4 });
    assertStaysInSync(sound);
  } finally {
    await strict.close().catch(() => undefined);
    await browser.close().catch(() => undefined);
    await server.stop();
    await media?.close();
  }
});

// YouTube: no network here, so the IFrame API script (https://www.youtube.com/iframe_api)
// is answered with a stand-in that keeps the API's shape (YT.Player with onReady and
// onStateChange, getCurrentTime polling, fixed playback rates) and plays the local clip
// in a <video>. It checks the page's side: the script loads on demand, the player gets
// the page's origin, and every browser follows the shared state through it.
const IFRAME_API_URL = "https://www.youtube.com/iframe_api";
// A YouTube player cannot be nudged (a few fixed rates), so it is only held within its
// seek threshold (YOUTUBE_TUNING.seekThreshold, 0.5 s) of the shared timeline, with
// extra seeks to land closer after each seek; the 300 ms figure is for <video>.
const YT_LIMIT = 0.6;
/** Every player playing, each within YT_LIMIT of the shared timeline by its own measure. */
const ytOnTimeline = (m) => playing(m) && m.samples.every((s) => typeof s.drift === "number" && Math.abs(s.drift) < YT_LIMIT) && m.spread < YT_LIMIT;
/** Settled on the timeline (see `settleThenSample`), and mostly staying there: a player
 * starved of CPU may fall behind for a moment until its next seek. */
function assertYtOnTimeline(r) {
  const on = r.all.filter(ytOnTimeline).length;
  assert.ok(r.median < YT_LIMIT && on >= r.all.length / 2, `on the timeline in ${on} of ${r.all.length} samples; spreads ${r.spreads.map((s) => s.toFixed(3))}`);
}

/** The stand-in (support/youtube-standin.js, shared with the kiosk's tests) with its clip. */
const YOUTUBE_STANDIN = readFileSync(new URL("./support/youtube-standin.js", import.meta.url), "utf8");
function fakeYouTubeApi(clipUrl) {
  return `window.fakeYouTubeClip = ${JSON.stringify(clipUrl)};\n${YOUTUBE_STANDIN}`;
}

/** Like `joinRoom`, with the IFrame API answered by the stand-in from the first request on. */
async function joinWithFakeYouTube(browser, server, room, name, clipUrl) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 720 } });
  await context.route(IFRAME_API_URL, (route) => route.fulfill({ status: 200, contentType: "text/javascript", body: fakeYouTubeApi(clipUrl) }));
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${name}] page error:`, e.message));
  await page.goto(`${server.base}/r/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}&autojoin=1`);
  await page.getByRole("button", { name: "Leave" }).waitFor({ timeout: 15_000 });
  return page;
}

test("a YouTube link plays through the IFrame API on the shared timeline for everyone, a late joiner too", { timeout: 240_000 }, async (t) => {
  if (!haveGstreamer()) {
    t.skip("gst-launch-1.0 is not installed (gstreamer1.0-tools)");
    return;
  }
  const server = await startServer(["--web-dir", WEB_DIR]);
  const browser = await launchBrowser(BROWSER_ARGS);
  let media = null;
  try {
    media = await serveFile(await testClip(browser, server));
    const a = await joinWithFakeYouTube(browser, server, "tube", "Ada", media.url);
    const b = await joinWithFakeYouTube(browser, server, "tube", "Bo", media.url);
    await openWatch(a);
    // Nothing of YouTube loads before a YouTube video is set.
    assert.equal(await b.evaluate(() => window.fakeYouTube === undefined && !document.querySelector('script[src*="youtube"]')), true);

    await a.getByRole("textbox", { name: "Video URL" }).fill("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=5s");
    await a.getByRole("button", { name: "Load video" }).click();
    for (const p of [a, b]) {
      await p.waitForFunction(() => {
        const v = document.querySelector('.watch video[data-youtube="dQw4w9WgXcQ"]');
        return v && v.readyState >= 1 && v.paused && Math.abs(v.currentTime - 5) < 0.06;
      }, null, { timeout: 20_000 });
      const info = await p.evaluate(() => ({ ...window.fakeYouTube, origin: location.origin }));
      assert.equal(info.scripts, 1, "the API script loads once");
      assert.equal(info.players.length, 1);
      assert.equal(info.players[0].playerVars.origin, info.origin, "the player is told the page's origin");
      assert.equal(info.players[0].playerVars.controls, 0, "the room's controls drive the player, not YouTube's");
    }

    await openWatch(b);
    await b.getByRole("button", { name: "Play", exact: true }).click();
    const played = await settleThenSample([a, b], (m) => ytOnTimeline(m) && m.positions.every((x) => x > 5), { label: "youtube play" });
    assertYtOnTimeline(played);

    await a.getByRole("button", { name: "Pause", exact: true }).click();
    const paused = await settleThenSample([a, b], (m) => m.samples.every((s) => s && s.paused && !s.seeking), { label: "youtube pause", count: 4 });
    // Paused, every player stands at the shared position (YOUTUBE_TUNING.pausedTolerance).
    assert.ok(paused.max < 0.1, `spreads ${paused.spreads.map((s) => s.toFixed(3))}`);

    await a.getByRole("button", { name: "Play", exact: true }).click();
    await settleThenSample([a, b], ytOnTimeline, { label: "youtube resume", count: 2 });
    const c = await joinWithFakeYouTube(browser, server, "tube", "Cy", media.url);
    const late = await settleThenSample([a, b, c], ytOnTimeline, { label: "youtube late joiner" });
    assertYtOnTimeline(late);

    // A speed the player offers is taken as it is.
    await c.getByRole("tab", { name: "Watch together" }).click();
    await c.getByRole("combobox", { name: "Speed" }).selectOption("1.5");
    const fast = await settleThenSample([a, b, c], (m) => ytOnTimeline(m) && m.samples.every((s) => s.rate === 1.5), { label: "youtube speed 1.5", count: 6 });
    assertYtOnTimeline(fast);
  } finally {
    await browser.close().catch(() => undefined);
    await server.stop();
    await media?.close();
  }
});

// Driving a room's shared experiences from Node.js: the collaborative code editor (Monaco
// + Yjs on the room page) and watch-together (a GStreamer-made clip served with byte
// ranges, the page's player and its shared controls). Used by the web e2e tests, the
// kiosk's e2e driver (firmware/kiosk/tests/shared.mjs) and `cargo xtask bench shared`,
// so each of them drives the page the same way a person would.

import { spawnSync } from "node:child_process";
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const EDITOR_LINES = ".editor-host .monaco-editor .view-lines";

// ---- the code editor ----

/** Opens the Code tab (unless open) and waits until the editor has synced; answers its Yjs clientID. */
export async function openEditor(page, { timeout = 30_000 } = {}) {
  const tab = page.getByRole("tab", { name: "Code" });
  if ((await tab.getAttribute("aria-selected")) !== "true") await tab.click();
  await page.waitForFunction(() => window.portalEditor?.synced() === true, null, { timeout, polling: 100 });
  await page.locator(EDITOR_LINES).waitFor({ timeout });
  return page.evaluate(() => window.portalEditor.clientID());
}

/** Puts the caret at the end of the document and types `text` on the keyboard. */
export async function typeAtEnd(page, text, { delay = 15 } = {}) {
  await page.locator(EDITOR_LINES).click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(text, { delay });
}

/** The shared document's text as the page's Y.Text holds it. */
export const editorText = (page) => page.evaluate(() => window.portalEditor.text());

/** Picks `language` (a value of the Language picker, e.g. "python"). */
export async function setLanguage(page, language) {
  await page.getByRole("combobox", { name: "Language" }).selectOption(language);
  await page.waitForFunction((l) => window.portalEditor.language() === l, language, { timeout: 10_000, polling: 50 });
}

/** Presses Present until its state is `on`; answers the page's presenter list. */
export async function setPresenting(page, on) {
  const button = page.getByRole("button", { name: "Present" });
  if (((await button.getAttribute("aria-pressed")) === "true") !== on) await button.click();
  await page.waitForFunction(
    (on) => window.portalEditor.presenters().includes(window.portalEditor.clientID()) === on,
    on,
    { timeout: 10_000, polling: 50 },
  );
  return page.evaluate(() => window.portalEditor.presenters());
}

/**
 * Moves the caret to the start of 1-based `line` with the keyboard (Ctrl+Home, then
 * arrow down), as a presenter scrolling through the code would.
 */
export async function caretToLine(page, line) {
  await page.locator(EDITOR_LINES).click();
  await page.keyboard.press("Control+Home");
  for (let i = 1; i < line; i++) await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Home");
}

/**
 * Pastes `text` at the caret (after Ctrl+A when `replace`), through a paste event on
 * Monaco's input, as the clipboard would: typing thousands of lines key by key would
 * test the keyboard, not the document. Answers the document's length afterwards.
 */
export async function pasteText(page, text, { replace = false, timeout = 30_000 } = {}) {
  await page.locator(EDITOR_LINES).click();
  await page.keyboard.press(replace ? "Control+A" : "Control+End");
  const before = await page.evaluate(() => window.portalEditor.text().length);
  await page.locator(".editor-host .monaco-editor textarea").evaluate((area, text) => {
    const data = new DataTransfer();
    data.setData("text/plain", text);
    area.focus();
    area.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  }, text);
  const expected = replace ? text.length : before + text.length;
  await page.waitForFunction((n) => window.portalEditor.text().length === n, expected, { timeout, polling: 50 });
  return expected;
}

// ---- watch-together: the clip and its server ----

/** Whether gst-launch-1.0 runs here (gstreamer1.0-tools). */
export function haveGstreamer() {
  return spawnSync("gst-launch-1.0", ["--version"], { encoding: "utf8" }).status === 0;
}

function gst(args) {
  const r = spawnSync("gst-launch-1.0", ["-q", "-e", ...args], { stdio: ["ignore", "ignore", "pipe"], timeout: 600_000 });
  if (r.error) throw new Error(`gst-launch-1.0 failed to run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`gst-launch-1.0 exited with ${r.status}: ${r.stderr}`);
}

/**
 * A clip of `seconds` with a moving ball and ticking audio, a keyframe every second, in
 * `dir`: H.264/AAC mp4 (`kind` "mp4") or VP8/Opus webm. Only elements from the
 * base/good/bad/ugly plugin packages (no pango `timeoverlay`). Answers `{file, type,
 * name, seconds}`, what `serveFile` takes.
 */
export function makeVideo(dir, kind, { seconds = 90, width = 640, height = 360, fps = 30 } = {}) {
  const frames = seconds * fps;
  const audioBuffers = Math.ceil((seconds * 48000) / 1024);
  const video = ["videotestsrc", `num-buffers=${frames}`, "pattern=ball", "!", `video/x-raw,width=${width},height=${height},framerate=${fps}/1`, "!"];
  const audio = ["audiotestsrc", `num-buffers=${audioBuffers}`, "samplesperbuffer=1024", "wave=ticks", "!", "audio/x-raw,rate=48000,channels=2", "!", "audioconvert", "!"];
  const suffix = width === 640 ? "" : `-${height}p`;
  if (kind === "mp4") {
    const name = `clip${suffix}.mp4`;
    const file = join(dir, name);
    gst([
      ...video,
      ...["x264enc", "speed-preset=ultrafast", `key-int-max=${fps}`, "!", "video/x-h264,profile=constrained-baseline", "!", "h264parse", "!", "queue", "!", "mp4mux", "name=mux", "faststart=true", "!", "filesink", `location=${file}`],
      ...audio,
      ...["voaacenc", "!", "aacparse", "!", "queue", "!", "mux."],
    ]);
    return { file, type: "video/mp4", name, seconds };
  }
  const name = `clip${suffix}.webm`;
  const file = join(dir, name);
  gst([
    ...video,
    ...["vp8enc", "deadline=1", `keyframe-max-dist=${fps}`, "!", "queue", "!", "webmmux", "name=mux", "!", "filesink", `location=${file}`],
    ...audio,
    ...["audioresample", "!", "opusenc", "!", "queue", "!", "mux."],
  ]);
  return { file, type: "video/webm", name, seconds };
}

/**
 * Serves one file on 127.0.0.1 with byte ranges (Chromium and playbin need 206 answers to
 * seek), and `routes` (path to `{type, body}`) beside it. Answers `{url, base, stats,
 * close()}`; `stats` counts the partial and full answers for the file.
 */
export async function serveFile({ file, type, name }, { routes = {} } = {}) {
  const size = statSync(file).size;
  const stats = { partial: 0, full: 0 };
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (Object.hasOwn(routes, path)) {
      const { type: routeType, body } = routes[path];
      res.writeHead(200, { "Content-Type": routeType, "Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*" }).end(body);
      return;
    }
    if (path !== `/${name}`) {
      res.writeHead(404).end();
      return;
    }
    const headers = { "Content-Type": type, "Accept-Ranges": "bytes", "Cache-Control": "no-cache" };
    let start = 0;
    let end = size - 1;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && m[1] === "" && m[2] !== "") {
        start = Math.max(0, size - Number(m[2]));
      } else if (m && m[1] !== "") {
        start = Number(m[1]);
        if (m[2] !== "") end = Math.min(Number(m[2]), size - 1);
      }
      if (!m || (m[1] === "" && m[2] === "") || start > end || start >= size) {
        res.writeHead(416, { "Content-Range": `bytes */${size}` }).end();
        return;
      }
      stats.partial++;
      res.writeHead(206, { ...headers, "Content-Range": `bytes ${start}-${end}/${size}`, "Content-Length": end - start + 1 });
    } else {
      stats.full++;
      res.writeHead(200, { ...headers, "Content-Length": size });
    }
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const stream = createReadStream(file, { start, end });
    stream.pipe(res);
    res.on("close", () => stream.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/${name}`,
    base,
    stats,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---- watch-together: the YouTube IFrame API stand-in ----

/** Where pages ask for the IFrame API. */
export const IFRAME_API_URL = "https://www.youtube.com/iframe_api";
const STAND_IN = fileURLToPath(new URL("./e2e/support/youtube-standin.js", import.meta.url));

/**
 * The offline stand-in of the IFrame API (tests/e2e/support/youtube-standin.js), its
 * players playing `clipUrl` (`window.fakeYouTubeClip`, set first).
 */
export function youTubeStandIn(clipUrl) {
  if (!existsSync(STAND_IN)) throw new Error(`${STAND_IN} is missing`);
  return `window.fakeYouTubeClip = ${JSON.stringify(clipUrl)};\n${readFileSync(STAND_IN, "utf8")}`;
}

/** Answers every page of `context` that asks for the IFrame API with the stand-in playing `clipUrl`. */
export async function routeFakeYouTube(context, clipUrl) {
  const body = youTubeStandIn(clipUrl);
  await context.route(IFRAME_API_URL, (route) => route.fulfill({ status: 200, contentType: "text/javascript", body }));
}

// ---- watch-together: the page's player and controls ----

/** Opens the Watch together tab (unless open). */
export async function openWatch(page) {
  const tab = page.getByRole("tab", { name: "Watch together" });
  if ((await tab.getAttribute("aria-selected")) !== "true") await tab.click();
  await page.getByRole("textbox", { name: "Video URL" }).waitFor();
}

/** Loads `url` (a direct video URL or a YouTube link) for the room. */
export async function loadVideo(page, url) {
  await openWatch(page);
  await page.getByRole("textbox", { name: "Video URL" }).fill(url);
  await page.getByRole("button", { name: "Load video" }).click();
}

/** Presses the shared Play or Pause. */
export async function setPlaying(page, playing) {
  await openWatch(page);
  await page.getByRole("button", { name: playing ? "Play" : "Pause", exact: true }).click();
}

/** Moves the shared Position slider to `seconds`, as a drag would. */
export async function seekTo(page, seconds) {
  await openWatch(page);
  await page.getByRole("slider", { name: "Position" }).evaluate((el, v) => {
    el.value = String(v);
    el.dispatchEvent(new Event("input", { bubbles: true }));
    el.dispatchEvent(new Event("change", { bubbles: true }));
  }, seconds);
}

/** Picks a shared speed (one the page offers: 0.5, 0.75, 1, 1.25, 1.5, 2). */
export async function setSpeed(page, rate) {
  await openWatch(page);
  await page.getByRole("combobox", { name: "Speed" }).selectOption(String(rate));
}

/**
 * The page's player read in one task: its position, the wall-clock time of the reading
 * (ms since the epoch, as Date.now() here), its state; null without a player.
 */
export function readPlayer(page) {
  return page.evaluate(() => {
    const v = document.querySelector(".watch video");
    if (!v) return null;
    return {
      time: v.currentTime,
      at: performance.timeOrigin + performance.now(),
      paused: v.paused,
      seeking: v.seeking,
      rate: v.playbackRate,
      ready: v.readyState,
      duration: Number.isFinite(v.duration) ? v.duration : null,
      youtube: v.dataset.youtube ?? null,
      drift: window.portalWatchDrift ?? null,
    };
  });
}

/** `sample`'s position carried to the wall-clock time `at` (ms) at its rate, when it plays. */
export function positionAt(sample, at) {
  return sample.time + (sample.paused || sample.seeking ? 0 : ((at - sample.at) / 1000) * sample.rate);
}

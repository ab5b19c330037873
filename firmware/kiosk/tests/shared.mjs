// The browser side of the kiosk's shared-experiences test (shared.rs): Debian's Chromium,
// driven by playwright-core, opens Portal's real room page (served by the real
// portal-server) in one or more tabs of the room where the real portal-kiosk reads along,
// and drives the code editor and watch-together as people would. It also makes the test
// clip with GStreamer and serves it with byte ranges, beside the offline stand-in of the
// YouTube IFrame API for the kiosk's web player.
//
//   node shared.mjs <server base URL> <room>
//
// Protocol with the Rust test (portal_testkit::NodeDriver, the loop in
// signaling/web/tests/kit.mjs): one JSON command per line on stdin, one JSON answer per
// line. Logs go to stderr. Every page command takes an optional `tab` (default 0).
//   media {seconds}          makes the clip (mp4 when Chromium plays it, else webm) and
//                            serves it; answers {url, iframeApi, seconds, standIn}
//   open {name, youtube}     a new tab (own context) joins as `name`; with `youtube` its
//                            IFrame API is the stand-in playing the served clip
//   editor                   opens the Code tab; answers {clientID}
//   type {text}              types at the end of the document
//   language {language}      picks the editor's language
//   present {on}             sets Present
//   caret {line}             moves the caret to that line with the keyboard
//   pasteLines {lines, replace}  pastes that many numbered lines; answers {length}
//   text                     the page's Y.Text: {text}
//   load {url}               loads a video for the room
//   play | pause             the shared Play / Pause
//   seek {seconds}           the shared Position slider
//   speed {rate}             the shared Speed
//   player                   the page's player read in one task (see room-kit readPlayer)
//   share {on}               Share screen on / off
//   quit

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchBrowser, logPage, serveCommands } from "../../../signaling/web/tests/kit.mjs";
import {
  caretToLine,
  editorText,
  loadVideo,
  makeVideo,
  openEditor,
  pasteText,
  readPlayer,
  routeFakeYouTube,
  seekTo,
  serveFile,
  setLanguage,
  setPlaying,
  setPresenting,
  setSpeed,
  typeAtEnd,
  youTubeStandIn,
} from "../../../signaling/web/tests/room-kit.mjs";

const [base, room] = process.argv.slice(2);
if (!base || !room) {
  console.error("usage: node shared.mjs <server base URL> <room>");
  process.exit(2);
}
const WAIT = Number(process.env.PORTAL_E2E_WAIT_MS ?? 120_000);

// The call's cameras are not what is tested here: 5 frames a second leaves the CPU of a
// loaded machine to the players and the kiosk.
const browser = await launchBrowser(["--use-fake-device-for-media-stream=fps=5"]);
const work = mkdtempSync(join(tmpdir(), "portal-shared-"));
const tabs = [];
let media = null;

function tab(cmd) {
  const page = tabs[cmd.tab ?? 0];
  if (!page) throw new Error(`no tab ${cmd.tab ?? 0}`);
  return page;
}

/** Numbered lines of code-like text, `count` of them, each ending in a newline. */
function numberedLines(count) {
  let out = "";
  for (let i = 1; i <= count; i++) out += `let line_${i} = ${i} * 2; // line ${i}\n`;
  return out;
}

const commands = {
  async media({ seconds = 90 }) {
    const probe = await (await browser.newContext()).newPage();
    await probe.goto(base);
    const mp4 = await probe.evaluate(() => document.createElement("video").canPlayType('video/mp4; codecs="avc1.42E01E, mp4a.40.2"'));
    await probe.context().close();
    const clip = makeVideo(work, mp4 === "probably" ? "mp4" : "webm", { seconds });
    await media?.close();
    // The routes are read on every request: the stand-in names the clip's own URL.
    const routes = {};
    media = await serveFile(clip, { routes });
    // Without the stand-in file only the YouTube part cannot run; the clip still serves.
    let standIn = null;
    try {
      standIn = youTubeStandIn(media.url);
      routes["/iframe_api"] = { type: "text/javascript", body: standIn };
    } catch (e) {
      console.error("[shared]", String(e.message));
    }
    return { url: media.url, iframeApi: standIn === null ? null : `${media.base}/iframe_api`, seconds, standIn: standIn !== null };
  },

  async open({ name, youtube = false }) {
    const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 720 } });
    if (youtube) {
      if (!media) throw new Error("media first");
      await routeFakeYouTube(context, media.url);
    }
    const page = await context.newPage();
    logPage(page, `[tab ${tabs.length} ${name}]`);
    await page.goto(`${base}/r/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}&autojoin=1`);
    await page.getByRole("button", { name: "Leave" }).waitFor({ timeout: WAIT });
    tabs.push(page);
    return { tab: tabs.length - 1 };
  },

  async editor(cmd) {
    return { clientID: await openEditor(tab(cmd), { timeout: WAIT }) };
  },

  async type(cmd) {
    await typeAtEnd(tab(cmd), cmd.text);
    return { text: await editorText(tab(cmd)) };
  },

  async language(cmd) {
    await setLanguage(tab(cmd), cmd.language);
    return {};
  },

  async present(cmd) {
    return { presenters: await setPresenting(tab(cmd), cmd.on) };
  },

  async caret(cmd) {
    await caretToLine(tab(cmd), cmd.line);
    return {};
  },

  async pasteLines(cmd) {
    return { length: await pasteText(tab(cmd), numberedLines(cmd.lines), { replace: !!cmd.replace, timeout: WAIT }) };
  },

  async text(cmd) {
    return { text: await editorText(tab(cmd)) };
  },

  async load(cmd) {
    await loadVideo(tab(cmd), cmd.url);
    return {};
  },

  async play(cmd) {
    await setPlaying(tab(cmd), true);
    return {};
  },

  async pause(cmd) {
    await setPlaying(tab(cmd), false);
    return {};
  },

  async seek(cmd) {
    await seekTo(tab(cmd), cmd.seconds);
    return {};
  },

  async speed(cmd) {
    await setSpeed(tab(cmd), cmd.rate);
    return {};
  },

  async player(cmd) {
    return { player: await readPlayer(tab(cmd)) };
  },

  async share(cmd) {
    const page = tab(cmd);
    const button = page.getByRole("button", { name: "Share screen" });
    if (((await button.getAttribute("aria-pressed")) === "true") !== cmd.on) await button.click();
    await page.waitForFunction((on) => (document.querySelector('button[aria-label="Share screen"]')?.getAttribute("aria-pressed") === "true") === on, cmd.on, { timeout: WAIT });
    return {};
  },
};

try {
  await serveCommands(commands);
} finally {
  await browser.close().catch(() => undefined);
  await media?.close();
  rmSync(work, { recursive: true, force: true });
}

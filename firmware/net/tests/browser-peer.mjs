// The browser side of portal-net's interop test: Debian's Chromium, driven by
// playwright-core, runs Portal's real browser client (served by the real portal-server)
// and joins a room where the Rust kiosk waits.
//
//   node browser-peer.mjs <server base URL> <room> [extra query, e.g. "&codec=vp8"] [nomedia]
//
// With `nomedia` the page gets no camera or microphone permission: the client joins
// receive-only, and Chromium then hides its host addresses behind mDNS `.local` names.
//
// Protocol with the Rust test (portal_testkit::NodeDriver, the loop in
// signaling/web/tests/kit.mjs): one JSON command per line on stdin, one JSON answer per
// line on stdout ({"ok": true, ...} or {"ok": false, "error": "..."}). Logs go to stderr.
// Commands: waitConnected, tag, waitVideo, sendChat {text}, waitChat {text}, stats, quit.

import { KIOSK_PEER, collectChats, exposeKioskPeer, kioskStats, launchBrowser, logPage, sendChat, serveCommands, waitChat } from "../../../signaling/web/tests/kit.mjs";

const [base, room, query = "", mode = ""] = process.argv.slice(2);
const noMedia = mode === "nomedia";
if (!base || !room) {
  console.error("usage: node browser-peer.mjs <server base URL> <room>");
  process.exit(2);
}
const WAIT = Number(process.env.PORTAL_INTEROP_WAIT_MS ?? 90_000);

const browser = await launchBrowser([], { media: !noMedia });
const context = await browser.newContext({ permissions: noMedia ? [] : ["camera", "microphone"], viewport: { width: 1280, height: 720 } });
await exposeKioskPeer(context);
const page = await context.newPage();
logPage(page, "[browser]");
await page.goto(`${base}/r/${encodeURIComponent(room)}?name=Browser&autojoin=1${query}`);
await page.getByRole("button", { name: "Leave" }).waitFor({ timeout: WAIT });
await collectChats(page);

const commands = {
  async waitConnected() {
    await page.waitForFunction(() => window.__kioskPeer()?.pc.connectionState === "connected", null, { timeout: WAIT, polling: 250 });
    return page.evaluate(`(() => { const p = ${KIOSK_PEER}; return { state: p.pc.connectionState, offerer: p.offerer, peerId: p.id, tag: p.pc.portalTag ?? null }; })()`);
  },

  /** Marks the current RTCPeerConnection, to tell later whether it is still the same. */
  async tag() {
    return page.evaluate(`(() => { const p = ${KIOSK_PEER}; p.pc.portalTag = "before"; return { tagged: true }; })()`);
  },

  async waitVideo() {
    await page.waitForFunction(
      async () => {
        const v = document.querySelector('.grid .tile:not([data-peer="self"]) video');
        if (!v || v.videoWidth === 0 || v.videoHeight === 0) return false;
        const t0 = v.currentTime;
        await new Promise((r) => setTimeout(r, 300));
        return v.currentTime > t0;
      },
      null,
      { timeout: WAIT, polling: 250 },
    );
    return page.evaluate(() => {
      const v = document.querySelector('.grid .tile:not([data-peer="self"]) video');
      return { videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime };
    });
  },

  async sendChat({ text }) {
    return sendChat(page, text);
  },

  async waitChat({ text }) {
    return waitChat(page, text, { timeout: WAIT, polling: 100 });
  },

  async stats() {
    return kioskStats(page);
  },
};

await serveCommands(commands);
await browser.close().catch(() => undefined);

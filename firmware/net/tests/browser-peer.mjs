// The browser side of portal-net's interop test: Debian's Chromium, driven by
// playwright-core, runs Portal's real browser client (served by the real portal-server)
// and joins a room where the Rust kiosk waits.
//
//   node browser-peer.mjs <server base URL> <room> [extra query, e.g. "&codec=vp8"] [nomedia]
//
// With `nomedia` the page gets no camera or microphone permission: the client joins
// receive-only, and Chromium then hides its host addresses behind mDNS `.local` names.
//
// Protocol with the Rust test: one JSON command per line on stdin, one JSON answer per
// line on stdout ({"ok": true, ...} or {"ok": false, "error": "..."}). Logs go to stderr.
// Commands: waitConnected, tag, waitVideo, sendChat {text}, waitChat {text}, stats, quit.

import { createInterface } from "node:readline";
import { chromium } from "../../../signaling/web/node_modules/playwright-core/index.mjs";

const [base, room, query = "", mode = ""] = process.argv.slice(2);
const noMedia = mode === "nomedia";
if (!base || !room) {
  console.error("usage: node browser-peer.mjs <server base URL> <room>");
  process.exit(2);
}
const WAIT = Number(process.env.PORTAL_INTEROP_WAIT_MS ?? 90_000);

// playwright-core gives every launch a fresh profile of its own.
const browser = await chromium.launch({
  executablePath: process.env.PORTAL_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    ...(noMedia ? [] : ["--use-fake-ui-for-media-stream"]),
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
  ],
});
const context = await browser.newContext({ permissions: noMedia ? [] : ["camera", "microphone"], viewport: { width: 1280, height: 720 } });
const page = await context.newPage();
page.on("pageerror", (e) => console.error("[browser] page error:", e.message));
page.on("console", (m) => {
  if (m.type() === "error" || m.type() === "warning") console.error(`[browser] ${m.type()}: ${m.text()}`);
});
await page.goto(`${base}/r/${encodeURIComponent(room)}?name=Browser&autojoin=1${query}`);
await page.getByRole("button", { name: "Leave" }).waitFor({ timeout: WAIT });
// Collect chat lines as they arrive on the chat channel.
await page.evaluate(() => {
  window.__chats = [];
  window.portal.on("control", ({ msg }) => {
    if (msg.type === "chat") window.__chats.push(msg);
  });
});

/** The RTCPeerConnection to the one kiosk in the room. */
const kioskPeer = "[...window.portal.peers.values()].find((p) => p.info.role === 'kiosk')";

const commands = {
  async waitConnected() {
    await page.waitForFunction(`${kioskPeer}?.pc.connectionState === "connected"`, null, { timeout: WAIT, polling: 250 });
    return page.evaluate(`(() => { const p = ${kioskPeer}; return { state: p.pc.connectionState, offerer: p.offerer, peerId: p.id, tag: p.pc.portalTag ?? null }; })()`);
  },

  /** Marks the current RTCPeerConnection, to tell later whether it is still the same. */
  async tag() {
    return page.evaluate(`(() => { const p = ${kioskPeer}; p.pc.portalTag = "before"; return { tagged: true }; })()`);
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
    return page.evaluate((text) => {
      const msg = { type: "chat", id: crypto.randomUUID(), from: "Browser", time: Date.now(), text };
      window.portal.sendControl(msg);
      return { sent: msg };
    }, text);
  },

  async waitChat({ text }) {
    await page.waitForFunction((text) => window.__chats.some((m) => m.text === text), text, { timeout: WAIT, polling: 100 });
    return page.evaluate((text) => ({ message: window.__chats.find((m) => m.text === text) }), text);
  },

  async stats() {
    return page.evaluate(async (expr) => {
      const p = eval(expr);
      if (!p) return { error: "no kiosk peer" };
      const report = await p.pc.getStats();
      const codecs = {};
      report.forEach((s) => {
        if (s.type === "codec") codecs[s.id] = { mimeType: s.mimeType, payloadType: s.payloadType, sdpFmtpLine: s.sdpFmtpLine ?? "" };
      });
      const rtp = [];
      report.forEach((s) => {
        if (s.type === "inbound-rtp" || s.type === "outbound-rtp") {
          rtp.push({
            type: s.type,
            kind: s.kind,
            mid: s.mid,
            codec: codecs[s.codecId] ?? null,
            packets: s.packetsReceived ?? s.packetsSent ?? 0,
            framesDecoded: s.framesDecoded ?? null,
            framesEncoded: s.framesEncoded ?? null,
            keyFramesDecoded: s.keyFramesDecoded ?? null,
            pliCount: s.pliCount ?? null,
            firCount: s.firCount ?? null,
            nackCount: s.nackCount ?? null,
          });
        }
      });
      let pair = null;
      report.forEach((s) => {
        if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
          const local = report.get(s.localCandidateId);
          const remote = report.get(s.remoteCandidateId);
          pair = { local: local && `${local.candidateType} ${local.address}`, remote: remote && `${remote.candidateType} ${remote.address}` };
        }
      });
      return { rtp, pair, remoteSdp: p.pc.remoteDescription?.sdp ?? null };
    }, kioskPeer);
  },

  async quit() {
    return { bye: true };
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    console.log(JSON.stringify({ ok: false, error: `not JSON: ${line}` }));
    continue;
  }
  const handler = commands[cmd.cmd];
  if (!handler) {
    console.log(JSON.stringify({ ok: false, error: `unknown command ${cmd.cmd}` }));
    continue;
  }
  try {
    const result = await handler(cmd);
    console.log(JSON.stringify({ ok: true, ...result }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e) }));
  }
  if (cmd.cmd === "quit") break;
}
await browser.close().catch(() => undefined);

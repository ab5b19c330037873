// The browser side of the kiosk's end-to-end test: Debian's Chromium, driven by
// playwright-core, opens Portal's real browser client (served by the real portal-server)
// in one or more tabs, each joining the room where the real portal-kiosk waits.
//
//   node browser.mjs <server base URL> <room> [extra query, e.g. "&codec=vp8"]
//
// Protocol with the Rust test: one JSON command per line on stdin, one JSON answer per
// line on stdout ({"ok": true, ...} or {"ok": false, "error": "..."}). Logs go to stderr.
// Every command takes an optional `tab` (default 0). Commands:
//   open {name}            opens a new tab that joins as `name`; answers its index
//   waitConnected          waits for the connection to the kiosk
//   waitVideo              waits until the kiosk's video plays (size > 0, time advancing)
//   sendChat {text}        sends a chat line on the chat channel
//   waitChat {text}        waits for a chat line from the kiosk
//   sendFile {path} | {name, text}   sends a file to the kiosk through the Files panel
//   waitTransfer {name, states}      waits until that transfer's state is one of `states`
//   acceptAndSave {name, to}         accepts a file from the kiosk, saves it to `to`
//   rejoin                 reloads the tab (it leaves and joins again under a new id)
//   close                  closes the tab
//   stats                  the tab's RTP counters for the kiosk connection
//   quit

import { createInterface } from "node:readline";
import { chromium } from "../../../signaling/web/node_modules/playwright-core/index.mjs";

const [base, room, query = ""] = process.argv.slice(2);
if (!base || !room) {
  console.error("usage: node browser.mjs <server base URL> <room> [query]");
  process.exit(2);
}
const WAIT = Number(process.env.PORTAL_E2E_WAIT_MS ?? 120_000);

const browser = await chromium.launch({
  executablePath: process.env.PORTAL_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
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
const context = await browser.newContext({
  permissions: ["camera", "microphone"],
  viewport: { width: 1280, height: 720 },
  acceptDownloads: true,
});
const tabs = [];

/** The RTCPeerConnection to the one kiosk in the room. */
const kioskPeer = "[...window.portal.peers.values()].find((p) => p.info.role === 'kiosk')";

async function joined(page) {
  await page.getByRole("button", { name: "Leave" }).waitFor({ timeout: WAIT });
  await page.evaluate(() => {
    window.__chats = [];
    window.portal.on("control", ({ msg }) => {
      if (msg.type === "chat") window.__chats.push(msg);
    });
  });
}

async function openTab(name) {
  const page = await context.newPage();
  const tag = `[tab ${tabs.length} ${name}]`;
  page.on("pageerror", (e) => console.error(tag, "page error:", e.message));
  page.on("console", (m) => {
    // The client asks for a favicon the server does not have; that 404 is not news.
    if ((m.type() === "error" || m.type() === "warning") && !m.text().includes("404 (Not Found)")) console.error(tag, `${m.type()}: ${m.text()}`);
  });
  await page.goto(`${base}/r/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}&autojoin=1${query}`);
  await joined(page);
  tabs.push(page);
  return tabs.length - 1;
}

async function openFiles(page) {
  const tab = page.getByRole("tab", { name: "Files" });
  if ((await tab.getAttribute("aria-selected")) !== "true") await tab.click();
}

function tab(cmd) {
  const page = tabs[cmd.tab ?? 0];
  if (!page) throw new Error(`no tab ${cmd.tab ?? 0}`);
  return page;
}

const commands = {
  async open({ name }) {
    return { tab: await openTab(name) };
  },

  async waitConnected(cmd) {
    const page = tab(cmd);
    await page.waitForFunction(`${kioskPeer}?.pc.connectionState === "connected"`, null, { timeout: WAIT, polling: 250 });
    return page.evaluate(`(() => { const p = ${kioskPeer}; return { state: p.pc.connectionState, offerer: p.offerer, peerId: p.id }; })()`);
  },

  async waitVideo(cmd) {
    const page = tab(cmd);
    const kioskVideo = `(() => { const p = ${kioskPeer}; if (!p) return null; return document.querySelector('.grid .tile[data-peer="' + p.id + '"] video'); })()`;
    // Playing: a picture, and the play position moves between two polls.
    await page.evaluate(() => { window.__lastTime = undefined; });
    await page.waitForFunction(
      (expr) => {
        const v = eval(expr);
        if (!v || v.videoWidth === 0 || v.videoHeight === 0) return false;
        const before = window.__lastTime;
        window.__lastTime = v.currentTime;
        return before !== undefined && v.currentTime > before;
      },
      kioskVideo,
      { timeout: WAIT, polling: 500 },
    );
    return page.evaluate((expr) => {
      const v = eval(expr);
      return { videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime };
    }, kioskVideo);
  },

  async cameraOff(cmd) {
    const button = tab(cmd).getByRole("button", { name: "Turn off camera" });
    await button.click();
    return { pressed: await button.getAttribute("aria-pressed") };
  },

  async sendChat(cmd) {
    return tab(cmd).evaluate((text) => {
      const msg = { type: "chat", id: crypto.randomUUID(), from: "Browser", time: Date.now(), text };
      window.portal.sendControl(msg);
      return { sent: msg };
    }, cmd.text);
  },

  async waitChat(cmd) {
    const page = tab(cmd);
    await page.waitForFunction((text) => window.__chats.some((m) => m.text === text), cmd.text, { timeout: WAIT, polling: 200 });
    return page.evaluate((text) => ({ message: window.__chats.find((m) => m.text === text) }), cmd.text);
  },

  async sendFile(cmd) {
    const page = tab(cmd);
    await page.waitForFunction(`${kioskPeer}?.file.readyState === "open"`, null, { timeout: WAIT, polling: 250 });
    await openFiles(page);
    const kioskName = await page.evaluate(`${kioskPeer}.info.name`);
    await page.getByLabel("Send to").selectOption({ label: kioskName });
    const [chooser] = await Promise.all([page.waitForEvent("filechooser", { timeout: WAIT }), page.getByRole("button", { name: "Send file" }).click()]);
    if (cmd.path) await chooser.setFiles(cmd.path);
    else await chooser.setFiles({ name: cmd.name, mimeType: "text/plain", buffer: Buffer.from(cmd.text ?? "") });
    return { sent: true };
  },

  async waitTransfer(cmd) {
    const page = tab(cmd);
    const { name, states } = cmd;
    await page.waitForFunction(
      ({ name, states }) => (window.portalFiles?.transfers() ?? []).some((t) => t.name === name && states.includes(t.state)),
      { name, states },
      { timeout: WAIT, polling: 250 },
    );
    return page.evaluate((name) => ({ transfer: window.portalFiles.transfers().find((t) => t.name === name) }), name);
  },

  async acceptAndSave(cmd) {
    const page = tab(cmd);
    await openFiles(page);
    const row = page.getByRole("listitem", { name: cmd.name, exact: true });
    await row.getByRole("button", { name: "Accept" }).click({ timeout: WAIT });
    const link = page.getByRole("link", { name: `Save ${cmd.name}` });
    await link.waitFor({ timeout: WAIT });
    const [download] = await Promise.all([page.waitForEvent("download", { timeout: WAIT }), link.click()]);
    await download.saveAs(cmd.to);
    return { saved: cmd.to, suggested: download.suggestedFilename() };
  },

  async rejoin(cmd) {
    const page = tab(cmd);
    await page.reload();
    await joined(page);
    return { rejoined: true };
  },

  async close(cmd) {
    await tab(cmd).close();
    tabs[cmd.tab ?? 0] = null;
    return { closed: true };
  },

  async stats(cmd) {
    return tab(cmd).evaluate(async (expr) => {
      const p = eval(expr);
      if (!p) return { error: "no kiosk peer" };
      const report = await p.pc.getStats();
      const codecs = {};
      report.forEach((s) => {
        if (s.type === "codec") codecs[s.id] = { mimeType: s.mimeType, sdpFmtpLine: s.sdpFmtpLine ?? "" };
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
            pliCount: s.pliCount ?? null,
          });
        }
      });
      return { rtp };
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
// Closing can hang on a busy machine; the test does not wait for it.
await Promise.race([browser.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
process.exit(0);

// The browser side of the kiosk's end-to-end test: Debian's Chromium, driven by
// playwright-core, opens Portal's real browser client (served by the real portal-server)
// in one or more tabs, each joining the room where the real portal-kiosk waits.
//
//   node browser.mjs <server base URL> <room> [extra query, e.g. "&codec=vp8"]
//
// Protocol with the Rust test (portal_testkit::NodeDriver, the loop in
// signaling/web/tests/kit.mjs): one JSON command per line on stdin, one JSON answer per
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
//   floodFiles {offers, firstId, strays, settleMs}   plays a hostile peer on the file channel,
//                          past the UI: `offers` offers with fresh ids, an overlong name and
//                          mime type, `strays` chunks for no transfer; answers the kiosk's
//                          replies to them, counted by type and reason
//   rejoin                 reloads the tab (it leaves and joins again under a new id)
//   close                  closes the tab
//   stats                  the tab's RTP counters for the kiosk connection
//   quit

import { KIOSK_PEER, collectChats, exposeKioskPeer, kioskStats, launchBrowser, logPage, sendChat, serveCommands, waitChat } from "../../../signaling/web/tests/kit.mjs";

const [base, room, query = ""] = process.argv.slice(2);
if (!base || !room) {
  console.error("usage: node browser.mjs <server base URL> <room> [query]");
  process.exit(2);
}
const WAIT = Number(process.env.PORTAL_E2E_WAIT_MS ?? 120_000);

const browser = await launchBrowser();
const context = await browser.newContext({
  permissions: ["camera", "microphone"],
  viewport: { width: 1280, height: 720 },
  acceptDownloads: true,
});
await exposeKioskPeer(context);
const tabs = [];

async function joined(page) {
  await page.getByRole("button", { name: "Leave" }).waitFor({ timeout: WAIT });
  await collectChats(page);
}

async function openTab(name) {
  const page = await context.newPage();
  logPage(page, `[tab ${tabs.length} ${name}]`);
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
    await page.waitForFunction(() => window.__kioskPeer()?.pc.connectionState === "connected", null, { timeout: WAIT, polling: 250 });
    return page.evaluate(`(() => { const p = ${KIOSK_PEER}; return { state: p.pc.connectionState, offerer: p.offerer, peerId: p.id }; })()`);
  },

  async waitVideo(cmd) {
    const page = tab(cmd);
    // Playing: a picture, and the play position moves between two polls.
    await page.evaluate(() => {
      window.__lastTime = undefined;
      window.__kioskVideo = () => {
        const p = window.__kioskPeer();
        return p ? document.querySelector(`.grid .tile[data-peer="${p.id}"] video`) : null;
      };
    });
    await page.waitForFunction(
      () => {
        const v = window.__kioskVideo();
        if (!v || v.videoWidth === 0 || v.videoHeight === 0) return false;
        const before = window.__lastTime;
        window.__lastTime = v.currentTime;
        return before !== undefined && v.currentTime > before;
      },
      null,
      { timeout: WAIT, polling: 500 },
    );
    return page.evaluate(() => {
      const v = window.__kioskVideo();
      return { videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime };
    });
  },

  async cameraOff(cmd) {
    const button = tab(cmd).getByRole("button", { name: "Turn off camera" });
    await button.click();
    return { pressed: await button.getAttribute("aria-pressed") };
  },

  async sendChat(cmd) {
    return sendChat(tab(cmd), cmd.text);
  },

  async waitChat(cmd) {
    return waitChat(tab(cmd), cmd.text, { timeout: WAIT, polling: 200 });
  },

  async sendFile(cmd) {
    const page = tab(cmd);
    await page.waitForFunction(() => window.__kioskPeer()?.file.readyState === "open", null, { timeout: WAIT, polling: 250 });
    await openFiles(page);
    const kioskName = await page.evaluate(`${KIOSK_PEER}.info.name`);
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

  async floodFiles(cmd) {
    const page = tab(cmd);
    await page.waitForFunction(() => window.__kioskPeer()?.file.readyState === "open", null, { timeout: WAIT, polling: 250 });
    // Handed over as source text: the page's CSP allows no eval, so the kiosk peer is
    // looked up by the expression itself, not by evaluating a string inside the page.
    const flood = async (kiosk, { offers, firstId, strays, settleMs }) => {
      const dc = kiosk.file;
      const replies = {};
      const last = firstId + offers + 1;
      let latest = Date.now();
      const count = (ev) => {
        if (typeof ev.data !== "string") return;
        const msg = JSON.parse(ev.data);
        if (msg.id < firstId || msg.id > last) return;
        const key = msg.type === "decline" ? `decline:${msg.reason}` : msg.type;
        replies[key] = (replies[key] ?? 0) + 1;
        latest = Date.now();
      };
      dc.addEventListener("message", count);
      for (let i = 0; i < offers; i++) {
        dc.send(JSON.stringify({ type: "offer", id: firstId + i, name: `flood-${i}.bin`, size: 1000, mime: "application/octet-stream" }));
      }
      dc.send(JSON.stringify({ type: "offer", id: last - 1, name: "n".repeat(300), size: 1, mime: "" }));
      dc.send(JSON.stringify({ type: "offer", id: last, name: "m.txt", size: 1, mime: "m".repeat(300) }));
      for (let i = 0; i < strays; i++) {
        const frame = new Uint8Array(1024);
        new DataView(frame.buffer).setUint32(0, 0x7fff0000 + i);
        dc.send(frame);
      }
      // Done when nothing has come for `settleMs`.
      while (Date.now() - latest < settleMs) await new Promise((r) => setTimeout(r, 100));
      dc.removeEventListener("message", count);
      return { replies };
    };
    const args = { offers: cmd.offers, firstId: cmd.firstId, strays: cmd.strays ?? 0, settleMs: cmd.settleMs ?? 3000 };
    return page.evaluate(`(${flood})(${KIOSK_PEER}, ${JSON.stringify(args)})`);
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
    return kioskStats(tab(cmd));
  },
};

await serveCommands(commands);
// Closing can hang on a busy machine; the test does not wait for it.
await Promise.race([browser.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
process.exit(0);

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
//   rejoin                 reloads the tab (it leaves and joins again under a new id)
//   close                  closes the tab
//   stats                  the tab's RTP counters for the kiosk connection
//   quit

import { KIOSK_PEER, collectChats, kioskStats, launchBrowser, logPage, sendChat, serveCommands, waitChat } from "../../../signaling/web/tests/kit.mjs";

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
    await page.waitForFunction(`${KIOSK_PEER}?.pc.connectionState === "connected"`, null, { timeout: WAIT, polling: 250 });
    return page.evaluate(`(() => { const p = ${KIOSK_PEER}; return { state: p.pc.connectionState, offerer: p.offerer, peerId: p.id }; })()`);
  },

  async waitVideo(cmd) {
    const page = tab(cmd);
    const kioskVideo = `(() => { const p = ${KIOSK_PEER}; if (!p) return null; return document.querySelector('.grid .tile[data-peer="' + p.id + '"] video'); })()`;
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
    return sendChat(tab(cmd), cmd.text);
  },

  async waitChat(cmd) {
    return waitChat(tab(cmd), cmd.text, { timeout: WAIT, polling: 200 });
  },

  async sendFile(cmd) {
    const page = tab(cmd);
    await page.waitForFunction(`${KIOSK_PEER}?.file.readyState === "open"`, null, { timeout: WAIT, polling: 250 });
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

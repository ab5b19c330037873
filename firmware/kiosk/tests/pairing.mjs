// The laptop side of the kiosk's pairing test: Debian's Chromium, driven by
// playwright-core, opens Portal's real Pair page (served by the real portal-server) and
// drives the real portal-kiosk through the remote, as a person would.
//
//   node pairing.mjs <server base URL>
//
// Protocol with the Rust test (portal_testkit::NodeDriver, see serveCommands in
// signaling/web/tests/kit.mjs): one JSON command per line on stdin, one answer per line.
// Commands:
//   pair {code, name}        the laptop opens /p/CODE, names itself, presses Pair
//   tryPair {code}           a second page types CODE and presses Pair; answers the message
//   press {button}           presses a button of the remote (exact name); answers the result line
//   joinRoom {room}          "Join room" on the remote with that room name
//   present                  "Present": answers the laptop's own call state afterwards
//   stranger {command}       a client that never paired sends `command` over its own
//                            WebSocket; answers the server's reply
//   quit

import { launchBrowser, logPage, serveCommands, unpairedCommand } from "../../../signaling/web/tests/kit.mjs";

const [base] = process.argv.slice(2);
if (!base) {
  console.error("usage: node pairing.mjs <server base URL>");
  process.exit(2);
}
const WAIT = Number(process.env.PORTAL_E2E_WAIT_MS ?? 60_000);

const browser = await launchBrowser();
let laptop;
let stranger;

async function newPage(tag) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  logPage(page, `[${tag}]`);
  return page;
}

function remote() {
  if (!laptop) throw new Error("not paired");
  return laptop.getByRole("region", { name: "Room display remote" });
}

/** The remote's result line (the answer to the last command), or "". */
async function resultText() {
  const line = remote().locator("p.result");
  return (await line.count()) ? (await line.first().innerText()).trim() : "";
}

const commands = {
  async pair({ code, name }) {
    laptop = await newPage("laptop");
    await laptop.goto(`${base}/p/${code}`);
    await laptop.getByLabel("Your name (optional)").fill(name);
    await laptop.getByRole("button", { name: "Pair", exact: true }).click();
    await laptop.getByRole("heading", { name: /^Paired with / }).waitFor({ timeout: WAIT });
    return { heading: await laptop.getByRole("heading", { name: /^Paired with / }).innerText() };
  },

  async tryPair({ code, expect }) {
    stranger ??= await newPage("stranger");
    await stranger.goto(`${base}/`);
    await stranger.getByRole("link", { name: "Pair with a room display" }).click();
    await stranger.getByLabel("Pairing code").fill(code);
    await stranger.getByRole("button", { name: "Pair", exact: true }).click();
    await stranger.getByText(expect).waitFor({ timeout: WAIT });
    return { shown: expect };
  },

  async press({ button, expect }) {
    await remote().getByRole("button", { name: button, exact: true }).click();
    if (expect) await remote().getByText(expect).first().waitFor({ timeout: WAIT });
    return { result: await resultText() };
  },

  async joinRoom({ room, expect }) {
    await remote().getByLabel("Room name").fill(room);
    await remote().getByRole("button", { name: "Join room", exact: true }).click();
    if (expect) await remote().getByText(expect).first().waitFor({ timeout: WAIT });
    return { result: await resultText() };
  },

  async present({ expect }) {
    await remote().getByRole("button", { name: "Present", exact: true }).click();
    await remote().getByText(expect).first().waitFor({ timeout: WAIT });
    const call = laptop.getByRole("region", { name: "Call on this laptop" });
    return {
      micMuted: (await call.getByRole("button", { name: "Mute microphone" }).getAttribute("aria-pressed")) === "true",
      speakerMuted: (await call.getByRole("button", { name: "Mute speaker" }).getAttribute("aria-pressed")) === "true",
      note: await remote().getByText(/audio comes from the room/).count(),
    };
  },

  async stranger({ command }) {
    return { reply: await unpairedCommand(base, command) };
  },
};

await serveCommands(commands);
await browser.close();

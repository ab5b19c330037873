// Pairing a laptop with a kiosk through the real server: the Pair page against a kiosk's
// control connection that this test speaks itself (plain WebSocket, the wire protocol of
// portal-proto), so every message the kiosk gets and every answer it gives is checked
// here. The real kiosk's side is firmware/kiosk/tests.

import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket from "ws";
import { enrolKiosk, joinRoom, launchBrowser, logPage, startServer } from "../kit.mjs";

const KIOSK = "Room 4.01";
const KIOSK_ROOM = "room-4-01";

/** A kiosk's control connection: gets the pairing code and its laptops' commands. */
class FakeKiosk {
  messages = [];
  waiters = [];
  state = { inCall: false, micMuted: false, cameraOff: false, volume: 1 };
  /** How to answer each command kind: `(cmd, from) => ({ room?, error? })`. */
  answers = {};

  static async connect(base, token) {
    const kiosk = new FakeKiosk();
    kiosk.ws = new WebSocket(`${base.replace(/^http/, "ws")}/ws`);
    kiosk.ws.on("message", (data) => kiosk.onMessage(JSON.parse(String(data))));
    await new Promise((resolve, reject) => {
      kiosk.ws.once("open", resolve);
      kiosk.ws.once("error", reject);
    });
    kiosk.send({ type: "hello", protocol: 1, name: KIOSK, role: "kiosk", device: { token, control: true } });
    await kiosk.next((m) => m.type === "welcome");
    kiosk.sendState();
    return kiosk;
  }

  send(msg) {
    this.ws.send(JSON.stringify(msg));
  }

  sendState(change = {}) {
    this.state = { ...this.state, ...change };
    this.send({ type: "kioskState", state: this.state });
  }

  onMessage(msg) {
    this.messages.push(msg);
    if (msg.type === "command") {
      const answer = this.answers[msg.command.kind]?.(msg.command, msg.from) ?? {};
      this.send({ type: "commandResult", to: msg.from, id: msg.id, ...answer });
    }
    for (const w of [...this.waiters]) if (w.pred(msg)) w.resolve(msg);
  }

  /** The first message so far, or to come, that `pred` accepts. */
  next(pred, timeout = 10_000) {
    const seen = this.messages.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve: (m) => (clearTimeout(timer), this.waiters.splice(this.waiters.indexOf(waiter), 1), resolve(m)) };
      const timer = setTimeout(() => reject(new Error(`the kiosk got no matching message in ${timeout} ms; it got ${JSON.stringify(this.messages.map((m) => m.type))}`)), timeout);
      this.waiters.push(waiter);
    });
  }

  /** The command of `kind` the kiosk got, after `since` messages. */
  command(kind, since = 0) {
    return this.next((m) => m.type === "command" && m.command.kind === kind && this.messages.indexOf(m) >= since);
  }

  /** The latest pairing code. */
  get code() {
    return this.messages.findLast((m) => m.type === "pairingCode")?.code;
  }

  close() {
    this.ws.close();
  }
}

/** A laptop's page: the pairing link `/p/{link}` when given, else the landing page's
 * "Pair with a room display" with `typed` typed into the field. */
async function openPairPage(browser, base, { link, typed } = {}) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  logPage(page, `[pair ${link ?? "landing"}]`);
  if (link !== undefined) {
    const res = await page.goto(`${base}/p/${link}`);
    assert.equal(res?.status(), 200, `portal-server must serve the client at /p/{code} (as at /r/{room}); it answered ${res?.status()}`);
  } else {
    await page.goto(`${base}/`);
    await page.getByRole("link", { name: "Pair with a room display" }).click();
    if (typed) await page.getByLabel("Pairing code").pressSequentially(typed);
  }
  return page;
}

/** A code of the right shape that is not `code`. */
function otherCode(code) {
  const alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
  const last = alphabet[(alphabet.indexOf(code[5]) + 1) % alphabet.length];
  return code.slice(0, 5) + last;
}

async function withKiosk(fn) {
  let token;
  const server = await startServer([], { prepare: (dir) => (token = enrolKiosk(dir, KIOSK)) });
  const browser = await launchBrowser();
  let kiosk;
  try {
    kiosk = await FakeKiosk.connect(server.base, token);
    await kiosk.next((m) => m.type === "pairingCode");
    await fn({ server, browser, kiosk });
  } finally {
    kiosk?.close();
    await browser.close().catch(() => undefined);
    await server.stop();
  }
}

test("the Pair page pairs with the kiosk's code, refuses wrong and used codes, and drives the kiosk", async () => {
  await withKiosk(async ({ server, browser, kiosk }) => {
    const code = kiosk.code;
    assert.match(code, /^[2-9A-HJKMNP-Z]{6}$/);

    // A wrong code (of the right shape) is refused in plain words.
    const stranger = await openPairPage(browser, server.base);
    await stranger.getByRole("heading", { name: "Pair with a room display" }).waitFor();
    await stranger.getByLabel("Pairing code").fill(otherCode(code));
    await stranger.getByRole("button", { name: "Pair", exact: true }).click();
    await stranger.getByText("That code is not on any display — check the code on the screen").waitFor({ timeout: 10_000 });

    // The pairing link prefills the code, grouped as the kiosk shows it; any casing works.
    const laptop = await openPairPage(browser, server.base, { link: code.toLowerCase() });
    const field = laptop.getByLabel("Pairing code");
    assert.equal(await field.inputValue(), `${code.slice(0, 3)} ${code.slice(3)}`);
    await laptop.getByLabel("Your name (optional)").fill("Ada");
    await laptop.getByRole("button", { name: "Pair", exact: true }).click();
    await laptop.getByRole("heading", { name: `Paired with ${KIOSK}` }).waitFor({ timeout: 10_000 });
    const paired = await kiosk.next((m) => m.type === "paired");
    assert.equal(paired.name, "Ada");
    const remote = laptop.getByRole("region", { name: "Room display remote" });
    await remote.getByText("Not in a call").waitFor();

    // The used code is refused as expired.
    await stranger.getByLabel("Pairing code").fill(code);
    await stranger.getByRole("button", { name: "Pair", exact: true }).click();
    await stranger.getByText("That code has expired — use the new code on the screen").waitFor({ timeout: 10_000 });

    // A command reaches the kiosk; its answer and new state show on the remote.
    kiosk.answers.setMicMuted = (cmd) => (kiosk.sendState({ micMuted: cmd.muted }), {});
    await remote.getByRole("button", { name: "Mute room microphone" }).click();
    const mute = await kiosk.command("setMicMuted");
    assert.equal(mute.from, paired.peer);
    assert.deepEqual(mute.command, { kind: "setMicMuted", muted: true });
    await remote.getByText("Room microphone muted").waitFor();
    const unmute = remote.getByRole("button", { name: "Unmute room microphone" });
    await unmute.waitFor();
    assert.equal(await unmute.getAttribute("aria-pressed"), "true");

    // A typed error from the kiosk shows too.
    kiosk.answers.joinRoom = () => ({ error: { code: "joinFailed", message: "wrong password" } });
    await remote.getByLabel("Room name").fill("board");
    await remote.getByLabel("Room password (optional)").fill("nope");
    await remote.getByRole("button", { name: "Join room" }).click();
    const join = await kiosk.command("joinRoom");
    assert.deepEqual(join.command, { kind: "joinRoom", room: "board", password: "nope" });
    await remote.getByText(`${KIOSK} could not join the room: wrong password`).waitFor();

    // The volume slider sends setVolume.
    kiosk.answers.setVolume = (cmd) => (kiosk.sendState({ volume: cmd.volume }), {});
    await remote.getByRole("slider", { name: "Room volume" }).fill("40");
    const volume = await kiosk.command("setVolume");
    assert.equal(volume.command.volume, 0.4);
    await remote.getByText("Room volume 40%").first().waitFor();

    // The kiosk ends the pairing from its screen.
    kiosk.send({ type: "unpair", peer: paired.peer });
    await laptop.getByText(`${KIOSK} ended the pairing`).waitFor({ timeout: 10_000 });
    await laptop.getByLabel("Pairing code").waitFor();
  });
});

test("Present joins the kiosk's room with microphone and speaker off and shares the screen", async () => {
  await withKiosk(async ({ server, browser, kiosk }) => {
    const laptop = await openPairPage(browser, server.base, { typed: kiosk.code.toLowerCase() });
    await laptop.getByRole("button", { name: "Pair", exact: true }).click();
    const remote = laptop.getByRole("region", { name: "Room display remote" });
    await remote.getByRole("heading", { name: `Paired with ${KIOSK}` }).waitFor({ timeout: 10_000 });
    const paired = await kiosk.next((m) => m.type === "paired");

    // Someone already in the kiosk's room sees what the laptop shares.
    const watcher = await joinRoom(browser, server, KIOSK_ROOM, "Watcher");

    // The kiosk at home joins its own room and answers with it.
    kiosk.answers.present = (_cmd, from) => {
      kiosk.sendState({ room: KIOSK_ROOM, inCall: true, presenting: from });
      return { room: KIOSK_ROOM };
    };
    const since = kiosk.messages.length;
    await remote.getByRole("button", { name: "Present", exact: true }).click();
    const present = await kiosk.command("present", since);
    assert.equal(present.from, paired.peer);
    await remote.getByText(`In the room with ${KIOSK}: audio comes from the room`).waitFor({ timeout: 15_000 });
    await remote.getByText(`Presenting on ${KIOSK} in ${KIOSK_ROOM}`).waitFor({ timeout: 15_000 });

    // In the call: microphone and speaker off, the screen on the screen transceiver.
    const call = laptop.getByRole("region", { name: "Call on this laptop" });
    assert.equal(await call.getByRole("button", { name: "Mute microphone" }).getAttribute("aria-pressed"), "true");
    assert.equal(await call.getByRole("button", { name: "Mute speaker" }).getAttribute("aria-pressed"), "true");
    const self = await laptop.evaluate(() => ({
      room: window.portal.opts.room,
      peerId: window.portal.selfId,
      audio: window.portal.selfState.audio,
      micTrackEnabled: window.portal.local.audio?.enabled ?? false,
      screen: window.portal.local.screen?.readyState ?? null,
      remoteVideosMuted: [...document.querySelectorAll('.paired-call .grid .tile:not([data-peer="self"]) video')].every((v) => v.muted),
    }));
    assert.deepEqual(self, { room: KIOSK_ROOM, peerId: paired.peer, audio: false, micTrackEnabled: false, screen: "live", remoteVideosMuted: true });
    await watcher.getByRole("figure", { name: /Laptop.*muted/ }).waitFor({ timeout: 20_000 });
    await watcher.waitForFunction(
      () => {
        const v = document.querySelector(".stage video");
        return v && v.videoWidth > 0 && !document.querySelector(".stage").hidden;
      },
      null,
      { timeout: 20_000 },
    );

    // The person can turn the speaker on deliberately.
    await call.getByRole("button", { name: "Mute speaker" }).click();
    assert.equal(await laptop.evaluate(() => [...document.querySelectorAll('.paired-call .grid .tile:not([data-peer="self"]) video')].some((v) => v.muted)), false);

    // Stop presenting stops the share and tells the kiosk.
    kiosk.answers.stopPresenting = () => (kiosk.sendState({ presenting: undefined }), {});
    await remote.getByRole("button", { name: "Stop presenting" }).click();
    await kiosk.command("stopPresenting");
    await remote.getByText("Stopped presenting").waitFor();
    assert.equal(await laptop.evaluate(() => window.portal.local.screen), null);
    await watcher.waitForFunction(() => document.querySelector(".stage").hidden, null, { timeout: 10_000 });

    // Unpair ends it from the laptop.
    await remote.getByRole("button", { name: "Unpair" }).click();
    await laptop.getByText(`Unpaired from ${KIOSK}`).waitFor();
    await kiosk.next((m) => m.type === "unpaired");
  });
});

test("a command the kiosk does not answer times out, and joining the kiosk's call from the remote turns audio off", async () => {
  await withKiosk(async ({ server, browser, kiosk }) => {
    const laptop = await openPairPage(browser, server.base, { typed: kiosk.code.toLowerCase() });
    await laptop.getByRole("button", { name: "Pair", exact: true }).click();
    const remote = laptop.getByRole("region", { name: "Room display remote" });
    await remote.waitFor({ timeout: 10_000 });
    // This kiosk swallows `leave`.
    const answer = kiosk.onMessage.bind(kiosk);
    kiosk.onMessage = (msg) => (msg.type === "command" && msg.command.kind === "leave" ? kiosk.messages.push(msg) : answer(msg));
    const leave = remote.getByRole("button", { name: "Leave", exact: true });
    await leave.click();
    assert.equal(await leave.isDisabled(), true);
    await kiosk.command("leave");
    await remote.getByText(/did not answer/).waitFor({ timeout: 15_000 });
    assert.equal(await leave.isDisabled(), false);

    // Joining the kiosk's call another way than Present turns the laptop's audio off too.
    kiosk.sendState({ room: "huddle", inCall: true });
    await remote.getByRole("button", { name: "Join the call on this laptop" }).click();
    await remote.getByText(`In the room with ${KIOSK}: audio comes from the room`).waitFor({ timeout: 15_000 });
    const call = laptop.getByRole("region", { name: "Call on this laptop" });
    assert.equal(await call.getByRole("button", { name: "Mute microphone" }).getAttribute("aria-pressed"), "true");
    assert.equal(await call.getByRole("button", { name: "Mute speaker" }).getAttribute("aria-pressed"), "true");
    assert.deepEqual(await laptop.evaluate(() => [window.portal.opts.room, window.portal.selfState.audio]), ["huddle", false]);
  });
});

// The test kit for everything that drives Portal from Node.js: the real portal-server,
// Debian's Chromium through playwright-core with fake camera and microphone, and the
// JSON-per-line command loop that Rust tests speak to (portal_testkit::NodeDriver).
//
// Used by tests/e2e, tests/bench and the firmware drivers
// (firmware/kiosk/tests/browser.mjs, firmware/net/tests/browser-peer.mjs). Those import
// this file by relative path and get playwright-core through it: a bare import resolves
// from the importing file's folder, so from signaling/web/node_modules.

import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import WebSocket from "ws";

export const CHROMIUM = process.env.PORTAL_CHROMIUM ?? "/usr/bin/chromium";
export const WEB_DIST = fileURLToPath(new URL("../dist", import.meta.url));

/** Resolves after `ms`; does not keep the process alive on its own. */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

// ---- processes ----

/**
 * Spawns `bin` with `args` (stdin closed, stdout piped, stderr inherited) and waits at most
 * `timeout` ms for the first line it prints on stdout, such as `listening on
 * http://127.0.0.1:PORT`. The rest of its stdout is read and dropped. Resolves to
 * `{ child, line }` (the line trimmed); a child that says nothing in time is killed.
 */
export async function startAnnounced(bin, args, { env = process.env, timeout = 60_000, name = bin } = {}) {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"], env });
  const lines = createInterface({ input: child.stdout });
  let timer;
  try {
    const line = await new Promise((resolve, reject) => {
      lines.once("line", resolve);
      child.once("error", reject);
      // `close` comes after the last of its output, so a line printed just before an exit still wins.
      child.once("close", (code, signal) => reject(new Error(`${name} exited (${signal ?? code}) before printing a line`)));
      timer = setTimeout(() => reject(new Error(`${name} printed no line within ${timeout} ms`)), timeout);
    });
    return { child, line: String(line).trim() };
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, then waits for the exit; SIGKILL after `grace` ms. At once if it has exited. */
export async function terminate(child, grace = 30_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  if (await Promise.race([exited.then(() => true), sleep(grace).then(() => false)])) return;
  child.kill("SIGKILL");
  await exited;
}

// ---- portal-server ----

/** The portal-server binary: PORTAL_SERVER_BIN, as the Rust tests' portal_testkit::server_bin honours it. */
export function serverBin() {
  const bin = process.env.PORTAL_SERVER_BIN;
  if (!bin) {
    throw new Error(
      "PORTAL_SERVER_BIN is not set: build the server with `cargo build -p portal-signaling --bin portal-server` and point PORTAL_SERVER_BIN at it (`cargo xtask e2e` does both)",
    );
  }
  return bin;
}

/**
 * Starts portal-server on a free port with a fresh data dir; `extra` are more flags. It
 * serves the client as just built by `vite build` (the copy embedded in the binary is
 * covered by the Rust tests) unless `extra` names a `--web-dir`.
 *
 * The answer: `{ base, port, dataDir, child, terminate(), restart(), stop() }`, `base`
 * being `http://127.0.0.1:PORT`. `terminate()` stops it and keeps the data dir;
 * `restart()` stops it unless stopped and starts it again on the same port and data dir
 * with the same flags; `stop()` stops it and removes the data dir. `prepare(dataDir)`, when
 * given, runs before the server starts (e.g. `portal-server kiosk add`, see `enrolKiosk`).
 */
export async function startServer(extra = [], { prepare } = {}) {
  const bin = serverBin();
  const dataDir = mkdtempSync(join(tmpdir(), "portal-e2e-"));
  await prepare?.(dataDir);
  const web = extra.includes("--web-dir") ? [] : ["--web-dir", WEB_DIST];
  const env = { ...process.env, PORTAL_LOG: process.env.PORTAL_LOG ?? "warn" };
  const launch = (bind) => startAnnounced(bin, ["--bind", bind, "--data-dir", dataDir, ...web, ...extra], { env, name: "portal-server" });
  let { child, line } = await launch("127.0.0.1:0");
  const base = line.replace(/^listening on /, "");
  const port = new URL(base).port;
  return {
    base,
    port,
    dataDir,
    get child() {
      return child;
    },
    async terminate() {
      await terminate(child);
    },
    async restart() {
      await terminate(child);
      // The port was just let go of; the kernel may hold it for a moment.
      const deadline = Date.now() + 5_000;
      for (;;) {
        try {
          ({ child } = await launch(`127.0.0.1:${port}`));
          return;
        } catch (e) {
          if (Date.now() > deadline) throw e;
          await sleep(100);
        }
      }
    },
    async stop() {
      await terminate(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Enrols a kiosk named `name` in the store in `dataDir` with `portal-server kiosk add` and
 * answers its device token (the CLI prints `device_token = "..."` once).
 */
export function enrolKiosk(dataDir, name) {
  const out = execFileSync(serverBin(), ["kiosk", "add", name, "--data-dir", dataDir], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const token = /device_token\s*=\s*"([A-Za-z0-9_-]+)"/.exec(out)?.[1];
  if (!token) throw new Error(`portal-server kiosk add printed no device token: ${out}`);
  return token;
}

// ---- Chromium ----

/**
 * Chromium's flags: fake camera and microphone (`media: false` leaves out the auto-granted
 * permission prompt, so a page given no permission gets no devices), autoplay allowed,
 * no background traffic, screen capture without a picker (the current tab is shared).
 * A flag in `extraArgs` replaces the default of the same name.
 */
export function chromiumArgs(extraArgs = [], { media = true } = {}) {
  const defaults = [
    "--no-sandbox",
    ...(media ? ["--use-fake-ui-for-media-stream"] : []),
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
    "--auto-select-desktop-capture-source=Entire screen",
    "--auto-accept-this-tab-capture",
  ];
  const name = (flag) => flag.split("=")[0];
  const replaced = new Set(extraArgs.map(name));
  return [...defaults.filter((flag) => !replaced.has(name(flag))), ...extraArgs];
}

/** Launches Debian's Chromium headless with `chromiumArgs`; playwright-core gives every launch a fresh profile (`--user-data-dir`) of its own. */
export async function launchBrowser(extraArgs = [], { media = true } = {}) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(extraArgs, { media }) });
}

/** Opens a peer in its own context (own storage, own devices) and joins `room`. */
export async function joinRoom(browser, server, room, name, query = "") {
  const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${name}] page error:`, e.message));
  await page.goto(`${server.base}/r/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}&autojoin=1${query}`);
  await page.getByRole("button", { name: "Leave" }).waitFor({ timeout: 15_000 });
  return page;
}

/** Waits until `page` shows `count` remote videos that are playing (non-zero size, time advancing). */
export async function waitForRemoteVideos(page, count, timeout = 20_000) {
  await page.waitForFunction(
    async (n) => {
      const videos = [...document.querySelectorAll('.grid .tile:not([data-peer="self"]) video')];
      const playing = [];
      for (const v of videos) {
        if (v.videoWidth > 0 && v.videoHeight > 0) {
          const t0 = v.currentTime;
          await new Promise((r) => setTimeout(r, 150));
          if (v.currentTime > t0) playing.push(v);
        }
      }
      return playing.length >= n;
    },
    count,
    { timeout, polling: 250 },
  );
}

/** Runs `fn` with a started server and browser, always cleaning up. */
export async function withRoom(fn, { serverArgs = [], browserArgs = [] } = {}) {
  const server = await startServer(serverArgs);
  const browser = await launchBrowser(browserArgs);
  try {
    await fn({ server, browser });
  } finally {
    await browser.close().catch(() => undefined);
    await server.stop();
  }
}

// ---- drivers for Rust tests ----

/**
 * Gives every page of `context` `window.__kioskPeer()`: the client's connection to the one
 * kiosk in the room. An init script (run by the browser, not by the page) because the
 * client's Content-Security-Policy allows no eval: page functions call this instead of
 * evaluating an expression string.
 */
export async function exposeKioskPeer(context) {
  await context.addInitScript(() => {
    window.__kioskPeer = () => [...(window.portal?.peers.values() ?? [])].find((p) => p.info.role === "kiosk");
  });
}

/** A page expression for the client's connection to the kiosk (after `exposeKioskPeer`). */
export const KIOSK_PEER = "window.__kioskPeer()";

/** Logs the page's errors, console errors and warnings to stderr under `tag` (not the favicon's 404). */
export function logPage(page, tag) {
  page.on("pageerror", (e) => console.error(tag, "page error:", e.message));
  page.on("console", (m) => {
    if ((m.type() === "error" || m.type() === "warning") && !m.text().includes("404 (Not Found)")) console.error(tag, `${m.type()}: ${m.text()}`);
  });
}

/** From now on keeps every chat line the page receives on its chat channel in `window.__chats`. */
export async function collectChats(page) {
  await page.evaluate(() => {
    window.__chats = [];
    window.portal.on("control", ({ msg }) => {
      if (msg.type === "chat") window.__chats.push(msg);
    });
  });
}

/** Sends a chat line from `page` on the chat channel, as the client's chat would. */
export async function sendChat(page, text) {
  return page.evaluate((text) => {
    const msg = { type: "chat", id: crypto.randomUUID(), from: "Browser", time: Date.now(), text };
    window.portal.sendControl(msg);
    return { sent: msg };
  }, text);
}

/** Waits until a chat line with `text` has arrived (see `collectChats`); answers it. */
export async function waitChat(page, text, { timeout, polling = 200 }) {
  await page.waitForFunction((text) => window.__chats.some((m) => m.text === text), text, { timeout, polling });
  return page.evaluate((text) => ({ message: window.__chats.find((m) => m.text === text) }), text);
}

/**
 * The client's RTP counters for its connection to the kiosk (`rtp`: one entry an RTP
 * stream, with its codec), the ICE pair in use (`pair`) and the kiosk's SDP (`remoteSdp`).
 */
export async function kioskStats(page) {
return page.evaluate(async () => {
    const p = window.__kioskPeer();
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
  });
}

/**
 * The driver side of portal_testkit::NodeDriver: one JSON command per line on stdin,
 * `{"cmd": NAME, ...}`, runs `commands[NAME](cmd)` and answers one JSON line on stdout,
 * `{"ok": true, ...result}` or `{"ok": false, "error": "..."}` (so logs belong on stderr).
 * Returns after answering `quit`, or when stdin ends.
 */
export async function serveCommands(commands) {
  const answer = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch {
      answer({ ok: false, error: `not JSON: ${line}` });
      continue;
    }
    if (cmd.cmd === "quit") {
      answer({ ok: true, bye: true });
      break;
    }
    if (!Object.hasOwn(commands, cmd.cmd)) {
      answer({ ok: false, error: `unknown command ${cmd.cmd}` });
      continue;
    }
    try {
      answer({ ok: true, ...(await commands[cmd.cmd](cmd)) });
    } catch (e) {
      answer({ ok: false, error: String(e?.message ?? e) });
    }
  }
  lines.close();
}

/**
 * A client that never paired: says hello on its own WebSocket to `base`, sends
 * `{type: "command", id: 1, command}` and answers the server's reply to it
 * (`commandResult` or `error`).
 */
export async function unpairedCommand(base, command, timeout = 10_000) {
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/ws`);
  const seen = [];
  const waiters = [];
  ws.on("message", (data) => {
    const msg = JSON.parse(String(data));
    seen.push(msg);
    for (const w of [...waiters]) if (w.pred(msg)) w.done(msg);
  });
  const next = (pred) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply; got ${JSON.stringify(seen)}`)), timeout);
      waiters.push({ pred, done: (m) => (clearTimeout(timer), resolve(m)) });
    });
  await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
  const welcome = next((m) => m.type === "welcome");
  ws.send(JSON.stringify({ type: "hello", protocol: 1, name: "Stranger", role: "browser" }));
  await welcome;
  const reply = next((m) => m.type === "commandResult" || m.type === "error");
  ws.send(JSON.stringify({ type: "command", id: 1, command }));
  const answer = await reply;
  ws.close();
  return answer;
}


// End-to-end harness: the real portal-server and Debian's Chromium driven by
// playwright-core, with fake camera and microphone. Used by every *.test.mjs here.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.PORTAL_CHROMIUM ?? "/usr/bin/chromium";
export const WEB_DIST = fileURLToPath(new URL("../../dist", import.meta.url));

/** Starts portal-server on a free port with a fresh data dir; `extra` are more flags. */
export async function startServer(extra = []) {
  const bin = process.env.PORTAL_SERVER_BIN;
  if (!bin) throw new Error("PORTAL_SERVER_BIN is not set (run through `cargo xtask test` or `cargo xtask e2e`)");
  const dataDir = mkdtempSync(join(tmpdir(), "portal-e2e-"));
  // Serve the client as just built by `vite build` (the copy embedded in the binary is
  // covered by the Rust tests), unless a test chose its own web dir.
  const web = extra.includes("--web-dir") ? [] : ["--web-dir", WEB_DIST];
  const child = spawn(bin, ["--bind", "127.0.0.1:0", "--data-dir", dataDir, ...web, ...extra], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, PORTAL_LOG: process.env.PORTAL_LOG ?? "warn" },
  });
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once("line", (l) => resolve(l));
    child.once("exit", (code) => reject(new Error(`portal-server exited with ${code}`)));
  });
  const base = String(line).replace(/^listening on /, "").trim();
  return {
    base,
    child,
    dataDir,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Launches Chromium with fake media devices and a fresh profile. */
export async function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
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
      // Screen capture without a picker: the current tab is shared.
      "--auto-select-desktop-capture-source=Entire screen",
      "--auto-accept-this-tab-capture",
      ...extraArgs,
    ],
  });
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

// The collaborative code editor between real browsers through the real server's /yjs.

import assert from "node:assert/strict";
import { test } from "node:test";
import { WEB_DIST, joinRoom, withRoom } from "../kit.mjs";
import { editorText, openEditor, typeAtEnd } from "../room-kit.mjs";

const SERVER = ["--web-dir", process.env.PORTAL_WEB_DIR ?? WEB_DIST];
const WAIT = { timeout: 30_000, polling: 100 };

const textOf = editorText;

/** Joins through the pre-join form (name and password), without autojoin. */
async function joinWithPassword(browser, server, room, name, password) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${name}] page error:`, e.message));
  await page.goto(`${server.base}/r/${encodeURIComponent(room)}`);
  // The form is live once the devices are listed.
  await page.waitForFunction(() => document.querySelectorAll('select[name="camera"] option').length > 0, null, { timeout: 15_000 });
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Password (optional)").fill(password);
  await page.getByRole("button", { name: "Join" }).click();
  await page.getByRole("button", { name: "Leave" }).waitFor({ timeout: 15_000 });
  await page.getByText("Connected", { exact: true }).first().waitFor({ timeout: 15_000 });
  return page;
}

test("two browsers edit one document: text, language, cursors and presenting", async () => {
  await withRoom(
    async ({ server, browser }) => {
      const a = await joinRoom(browser, server, "pairing", "Ada");
      const b = await joinRoom(browser, server, "pairing", "Bo");
      const idA = await openEditor(a);
      const idB = await openEditor(b);
      assert.notEqual(idA, idB);

      // Monaco loaded lazily, with its worker environment.
      assert.equal(await a.evaluate(() => typeof self.MonacoEnvironment?.getWorker), "function");

      // Text typed in one editor shows in the other, both ways.
      await typeAtEnd(a, "hello from Ada");
      await b.waitForFunction(() => window.portalEditor.text().includes("hello from Ada"), null, WAIT);
      await typeAtEnd(b, " and Bo");
      await a.waitForFunction(() => window.portalEditor.text() === "hello from Ada and Bo", null, WAIT);
      assert.equal(await textOf(b), "hello from Ada and Bo");
      // What Monaco shows matches the shared text.
      await a.locator(".editor-host .view-lines", { hasText: "hello from Ada and Bo" }).waitFor({ timeout: 10_000 });

      // A language change propagates to the other's picker and Monaco model.
      const langA = a.getByRole("combobox", { name: "Language" });
      const langB = b.getByRole("combobox", { name: "Language" });
      assert.equal(await langB.inputValue(), "plaintext");
      const offered = await langA.evaluate((sel) => [...sel.options].map((o) => `${o.value}=${o.textContent}`).sort());
      assert.deepEqual(offered, ["c=C", "cpp=C++", "go=Go", "java=Java", "javascript=JavaScript", "plaintext=Plain text", "python=Python", "rust=Rust", "typescript=TypeScript"]);
      await langA.selectOption("python");
      await b.waitForFunction(() => window.portalEditor.language() === "python" && window.portalEditor.modelLanguage() === "python", null, WAIT);
      assert.equal(await langB.inputValue(), "python");
      await langB.selectOption("rust");
      await a.waitForFunction(() => window.portalEditor.modelLanguage() === "rust", null, WAIT);
      assert.equal(await langA.inputValue(), "rust");

      // Both list each other, each in their colour.
      await a.getByRole("listitem", { name: "Ada (you)", exact: true }).waitFor({ timeout: 10_000 });
      await a.getByRole("listitem", { name: "Bo", exact: true }).waitFor({ timeout: 10_000 });
      await b.getByRole("listitem", { name: "Ada", exact: true }).waitFor({ timeout: 10_000 });

      // Bo's caret shows in Ada's editor, labelled with Bo's name and colour.
      await b.locator(".editor-host .monaco-editor .view-lines").click();
      await b.keyboard.press("Control+Home");
      const head = a.locator(`.editor-host .yRemoteSelectionHead-${idB}`);
      await head.waitFor({ state: "attached", timeout: 15_000 });
      // The caret element can appear before the awareness update that styles its label.
      await a.waitForFunction(
        (cls) => {
          const el = document.querySelector(`.editor-host .${cls}`);
          return el !== null && getComputedStyle(el, "::after").content === '"Bo"';
        },
        `yRemoteSelectionHead-${idB}`,
        WAIT,
      );
      const label = await head.evaluate((el) => {
        const after = getComputedStyle(el, "::after");
        return { content: after.content, background: after.backgroundColor, border: getComputedStyle(el).borderLeftColor };
      });
      assert.equal(label.content, '"Bo"');
      const boColor = await b.evaluate(() => window.portalEditor.peers().find((p) => p.clientID === window.portalEditor.clientID()).color);
      const rgb = (hex) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(", ")})`;
      assert.equal(label.background, rgb(boColor));
      assert.equal(label.border, rgb(boColor));

      // Presenting: Ada presents, Bo sees it; then Bo presents too and is followed (the
      // most recent); Bo stops and Ada is followed again.
      const presentA = a.getByRole("button", { name: "Present" });
      const presentB = b.getByRole("button", { name: "Present" });
      assert.equal(await presentA.getAttribute("aria-pressed"), "false");
      await presentA.click();
      assert.equal(await presentA.getAttribute("aria-pressed"), "true");
      await b.waitForFunction((id) => window.portalEditor.followed() === id, idA, WAIT);
      await b.getByRole("listitem", { name: "Ada (presenting)", exact: true }).waitFor({ timeout: 10_000 });
      await new Promise((r) => setTimeout(r, 20));
      await presentB.click();
      for (const p of [a, b]) await p.waitForFunction(([ida, idb]) => JSON.stringify(window.portalEditor.presenters()) === JSON.stringify([idb, ida]), [idA, idB], WAIT);
      assert.equal(await a.evaluate(() => window.portalEditor.followed()), idB);
      await presentB.click();
      await a.waitForFunction((id) => window.portalEditor.followed() === id && window.portalEditor.presenters().length === 1, idA, WAIT);
      await presentA.click();
      await b.waitForFunction(() => window.portalEditor.followed() === null, null, WAIT);

      // Leaving removes the person from the other's list.
      await b.getByRole("button", { name: "Leave" }).click();
      await a.waitForFunction((id) => !window.portalEditor.peers().some((p) => p.clientID === id), idB, WAIT);
    },
    { serverArgs: SERVER },
  );
});

test("a protected room's document opens with the token from joining", async () => {
  await withRoom(
    async ({ server, browser }) => {
      const a = await joinWithPassword(browser, server, "secret-room", "Ada", "hunter22");
      const b = await joinWithPassword(browser, server, "secret-room", "Bo", "hunter22");
      // Without a token the document is refused.
      const refused = await a.evaluate(
        (url) =>
          new Promise((resolve) => {
            const ws = new WebSocket(url);
            ws.onopen = () => {
              ws.close();
              resolve(false);
            };
            ws.onerror = () => resolve(true);
          }),
        `${server.base.replace(/^http/, "ws")}/yjs/secret-room`,
      );
      assert.equal(refused, true, "the protected document opened without a token");
      await openEditor(a);
      await openEditor(b);
      await typeAtEnd(b, "shared secret");
      await a.waitForFunction(() => window.portalEditor.text() === "shared secret", null, WAIT);
    },
    { serverArgs: SERVER },
  );
});

test("the document outlives the editors and a late joiner gets it", async () => {
  await withRoom(
    async ({ server, browser }) => {
      const a = await joinRoom(browser, server, "later", "Ada");
      await openEditor(a);
      await a.getByRole("combobox", { name: "Language" }).selectOption("go");
      await typeAtEnd(a, "package main");
      await a.waitForFunction(() => window.portalEditor.text() === "package main", null, WAIT);
      await a.getByRole("button", { name: "Leave" }).click();
      await a.close();
      const c = await joinRoom(browser, server, "later", "Cy");
      await openEditor(c);
      assert.equal(await textOf(c), "package main");
      assert.equal(await c.getByRole("combobox", { name: "Language" }).inputValue(), "go");
      assert.equal(await c.evaluate(() => window.portalEditor.modelLanguage()), "go");
    },
    { serverArgs: SERVER },
  );
});

test("editing carries on after the rooms server restarts", async () => {
  await withRoom(
    async ({ server, browser }) => {
      const a = await joinWithPassword(browser, server, "sturdy-doc", "Ada", "pw-123456");
      const b = await joinWithPassword(browser, server, "sturdy-doc", "Bo", "pw-123456");
      await openEditor(a);
      await openEditor(b);
      await typeAtEnd(a, "before");
      await b.waitForFunction(() => window.portalEditor.text() === "before", null, WAIT);
      // Restart on the same port and data dir: the document and the token key persist.
      await server.terminate();
      await a.waitForFunction(() => window.portalEditor.synced() === false, null, WAIT);
      await server.restart();
      for (const p of [a, b]) await p.waitForFunction(() => window.portalEditor.synced() === true, null, WAIT);
      await typeAtEnd(b, " after");
      await a.waitForFunction(() => window.portalEditor.text() === "before after", null, WAIT);
    },
    { serverArgs: SERVER },
  );
});

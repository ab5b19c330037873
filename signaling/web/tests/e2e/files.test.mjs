// File transfer between real browsers on the `file` data channel: consent before bytes,
// SHA-256 checked end to end, decline, cancel on either side, the size cap, several at once.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { joinRoom, withRoom } from "../kit.mjs";

const dir = mkdtempSync(join(tmpdir(), "portal-files-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A file of `size` random bytes; returns its path and SHA-256. */
function randomFile(name, size) {
  const path = join(dir, name);
  const data = randomBytes(size);
  writeFileSync(path, data);
  return { path, sha256: createHash("sha256").update(data).digest("hex") };
}

/** A large file that costs nothing to make (sparse zeros), for cancelling mid-way. */
function sparseFile(name, size) {
  const path = join(dir, name);
  writeFileSync(path, "");
  truncateSync(path, size);
  return path;
}

async function filesOpen(page, count) {
  await page.waitForFunction((n) => {
    const peers = [...(window.portal?.peers.values() ?? [])];
    return peers.length >= n && peers.every((p) => p.file.readyState === "open");
  }, count, { timeout: 20_000 });
}

async function openFiles(page) {
  const tab = page.getByRole("tab", { name: "Files" });
  if ((await tab.getAttribute("aria-selected")) !== "true") await tab.click();
}

/** Picks `paths` through the Send file button, for `to` (a name, or "Everyone"). */
async function sendFiles(page, paths, to = "Everyone") {
  await openFiles(page);
  await page.getByLabel("Send to").selectOption({ label: to });
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.getByRole("button", { name: "Send file" }).click()]);
  await chooser.setFiles(paths);
}

const stats = (page) => page.evaluate(() => window.portalFiles.stats());
const transfer = (page, name) => page.getByRole("listitem", { name, exact: true });

async function pair(browser, server, room, bQuery = "") {
  const a = await joinRoom(browser, server, room, "Ada");
  const b = await joinRoom(browser, server, room, "Bo", bQuery);
  await filesOpen(a, 1);
  await filesOpen(b, 1);
  return { a, b };
}

test("a 20 MiB file arrives with a matching SHA-256, after the receiver accepts", async () => {
  await withRoom(async ({ server, browser }) => {
    const { a, b } = await pair(browser, server, "files-big");
    const big = randomFile("big.bin", 20 * 1024 * 1024);
    const small = randomFile("small.txt", 1000);
    // Two files at once.
    await sendFiles(a, [big.path, small.path], "Bo");

    // Bo sees name, size and sender, with a count on the closed tab, and no byte has flowed.
    await b.waitForFunction(() => document.querySelector('[role="tab"][aria-label="Files"] .badge')?.textContent === "2");
    await openFiles(b);
    const row = transfer(b, "big.bin");
    await row.getByRole("button", { name: "Accept" }).waitFor();
    assert.match(await row.innerText(), /20\.0 MiB from Ada/);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await stats(b)).framesReceived, 0, "no bytes before consent");
    assert.equal((await stats(a)).framesSent, 0);

    await transfer(b, "small.txt").getByRole("button", { name: "Accept" }).click();
    await row.getByRole("button", { name: "Accept" }).click();
    for (const [name, want] of [
      ["big.bin", big.sha256],
      ["small.txt", small.sha256],
    ]) {
      const link = b.getByRole("link", { name: `Save ${name}` });
      await link.waitFor({ timeout: 60_000 });
      const [download] = await Promise.all([b.waitForEvent("download"), link.click()]);
      assert.equal(download.suggestedFilename(), name);
      const got = createHash("sha256").update(readFileSync(await download.path())).digest("hex");
      assert.equal(got, want, `${name} arrived intact`);
    }
    await transfer(a, "big.bin").getByText("sent, SHA-256 checked").waitFor({ timeout: 10_000 });
    const sent = await stats(a);
    assert.ok(sent.bytesSent > 20 * 1024 * 1024 && sent.bytesSent < 20 * 1024 * 1024 + 2000 * 4 + 1000, `bytes sent ${sent.bytesSent}`);
  });
});

test("a declined transfer sends no data", async () => {
  await withRoom(async ({ server, browser }) => {
    const { a, b } = await pair(browser, server, "files-no");
    const file = randomFile("unwanted.bin", 2 * 1024 * 1024);
    await sendFiles(a, [file.path], "Bo");
    await openFiles(b);
    await transfer(b, "unwanted.bin").getByRole("button", { name: "Decline" }).click();
    await transfer(a, "unwanted.bin").getByText("declined", { exact: true }).waitFor({ timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(await stats(a), { framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0 });
    assert.deepEqual(await stats(b), { framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0 });
    const buffered = await a.evaluate(() => [...window.portal.peers.values()][0].file.bufferedAmount);
    assert.equal(buffered, 0);
    assert.equal(await b.getByRole("link", { name: /^Save/ }).count(), 0);
  });
});

test("an offer over the receiver's size cap is declined as too large", async () => {
  await withRoom(async ({ server, browser }) => {
    const { a, b } = await pair(browser, server, "files-cap", "&maxFileMiB=1");
    const file = randomFile("two-mib.bin", 2 * 1024 * 1024);
    await sendFiles(a, [file.path], "Bo");
    await transfer(a, "two-mib.bin").getByText("declined: too large").waitFor({ timeout: 10_000 });
    await openFiles(b);
    await transfer(b, "two-mib.bin").getByText("declined: too large").waitFor();
    assert.equal((await stats(b)).framesReceived, 0);
  });
});

for (const side of ["receiver", "sender"]) {
  test(`the ${side} cancels mid-transfer and both sides stop`, async () => {
    await withRoom(async ({ server, browser }) => {
      const { a, b } = await pair(browser, server, `files-cancel-${side}`);
      const path = sparseFile("long.bin", 1024 * 1024 * 1024);
      await sendFiles(a, [path], "Bo");
      await openFiles(b);
      await transfer(b, "long.bin").getByRole("button", { name: "Accept" }).click();
      await b.waitForFunction(() => window.portalFiles.stats().bytesReceived > 1024 * 1024, null, { timeout: 20_000 });
      const canceller = side === "receiver" ? b : a;
      const other = side === "receiver" ? a : b;
      await transfer(canceller, "long.bin").getByRole("button", { name: "Cancel" }).click();
      await transfer(canceller, "long.bin").getByText("cancelled by you").waitFor({ timeout: 10_000 });
      await transfer(other, "long.bin").getByText(/cancelled by (Ada|Bo)/).waitFor({ timeout: 10_000 });
      // The sender stopped: nothing more goes out, far short of the whole file.
      const s1 = await stats(a);
      await new Promise((r) => setTimeout(r, 1000));
      const s2 = await stats(a);
      assert.equal(s2.bytesSent, s1.bytesSent, "sending stopped");
      assert.ok(s2.bytesSent < 1024 * 1024 * 1024, `sent ${s2.bytesSent} bytes of 1 GiB`);
      assert.equal(await b.getByRole("link", { name: /^Save/ }).count(), 0);
      // The channel still works afterwards.
      const after = randomFile("after.txt", 5000);
      await sendFiles(a, [after.path], "Bo");
      await transfer(b, "after.txt").getByRole("button", { name: "Accept" }).click();
      await b.getByRole("link", { name: "Save after.txt" }).waitFor({ timeout: 20_000 });
    });
  });
}

test("a file dropped on the panel goes to everyone", async () => {
  await withRoom(async ({ server, browser }) => {
    const pages = [];
    for (const name of ["One", "Two", "Three"]) pages.push(await joinRoom(browser, server, "files-drop", name));
    for (const p of pages) await filesOpen(p, 2);
    await openFiles(pages[0]);
    await pages[0].evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(["dropped text"], "dropped.txt", { type: "text/plain" }));
      const target = document.querySelector(".files");
      target.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
      target.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    for (const p of pages.slice(1)) {
      await openFiles(p);
      await transfer(p, "dropped.txt").getByRole("button", { name: "Accept" }).click();
      const link = p.getByRole("link", { name: "Save dropped.txt" });
      await link.waitFor({ timeout: 20_000 });
      const [download] = await Promise.all([p.waitForEvent("download"), link.click()]);
      assert.equal(readFileSync(await download.path(), "utf8"), "dropped text");
    }
    // The sender has one row per recipient.
    assert.equal(await transfer(pages[0], "dropped.txt").count(), 2);
  });
});

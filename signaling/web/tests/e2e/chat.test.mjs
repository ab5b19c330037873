// Chat between two real browsers on the `chat` data channel.

import assert from "node:assert/strict";
import { test } from "node:test";
import { joinRoom, withRoom } from "../kit.mjs";

/** Waits until every peer's chat channel is open on `page`. */
async function channelsOpen(page, count) {
  await page.waitForFunction((n) => {
    const peers = [...(window.portal?.peers.values() ?? [])];
    return peers.length >= n && peers.every((p) => p.chat.readyState === "open");
  }, count, { timeout: 20_000 });
}

async function say(page, text) {
  await openChat(page);
  await page.getByRole("textbox", { name: "Message" }).fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

/** Opens the chat tab unless it is already open. */
async function openChat(page) {
  const tab = page.getByRole("tab", { name: "Chat" });
  if ((await tab.getAttribute("aria-selected")) !== "true") await tab.click();
}

test("chat goes both ways, counts unread lines and shows markup as text", async () => {
  await withRoom(async ({ server, browser }) => {
    const a = await joinRoom(browser, server, "talk", "Ada");
    const b = await joinRoom(browser, server, "talk", "Bo");
    await channelsOpen(a, 1);
    await channelsOpen(b, 1);

    await openChat(a);
    await a.getByRole("textbox", { name: "Message" }).fill("hello from Ada");
    await a.getByRole("button", { name: "Send", exact: true }).click();
    // The sender sees its own line at once.
    await a.getByRole("list", { name: "Messages" }).getByText("hello from Ada").waitFor();

    // Bo's panel is closed: the tab counts the line.
    await b.waitForFunction(() => document.querySelector('[role="tab"][aria-label="Chat"] .badge')?.textContent === "1");
    await openChat(b);
    await b.getByRole("list", { name: "Messages" }).getByText("hello from Ada").waitFor();
    const badgeHidden = await b.evaluate(() => document.querySelector('[role="tab"][aria-label="Chat"] .badge').hidden);
    assert.equal(badgeHidden, true, "opening the panel clears the unread count");
    assert.match(await b.locator(".chat-line").first().innerText(), /Ada/);

    // And back, with markup that must stay text.
    const evil = `<img src=x onerror="window.__pwned=1"><b>bold</b>`;
    await b.getByRole("textbox", { name: "Message" }).fill(evil);
    await b.getByRole("textbox", { name: "Message" }).press("Enter");
    await a.getByRole("list", { name: "Messages" }).getByText(evil, { exact: true }).waitFor();
    const check = await a.evaluate(() => ({
      pwned: window.__pwned === 1,
      images: document.querySelectorAll(".chat-log img").length,
      bold: document.querySelectorAll(".chat-log b").length,
    }));
    assert.deepEqual(check, { pwned: false, images: 0, bold: 0 });
    // Our own copy is text too.
    assert.equal(await b.locator(".chat-log img").count(), 0);
    assert.equal(await b.locator(".chat-line.self .chat-text").last().textContent(), evil);
  });
});

test("a line reaches everyone in a room of three", async () => {
  await withRoom(async ({ server, browser }) => {
    const pages = [];
    for (const name of ["One", "Two", "Three"]) pages.push(await joinRoom(browser, server, "trio", name));
    for (const p of pages) await channelsOpen(p, 2);
    await say(pages[2], "to all of you");
    for (const p of pages.slice(0, 2)) {
      await openChat(p);
      await p.getByRole("list", { name: "Messages" }).getByText("to all of you").waitFor();
    }
  });
});

// Calls between real browsers through the real server.

import assert from "node:assert/strict";
import { test } from "node:test";
import { joinRoom, waitForRemoteVideos, withRoom } from "../kit.mjs";

test("two browsers see and hear each other", async () => {
  await withRoom(async ({ server, browser }) => {
    const a = await joinRoom(browser, server, "pair", "Ada");
    const b = await joinRoom(browser, server, "pair", "Bo");
    await waitForRemoteVideos(a, 1);
    await waitForRemoteVideos(b, 1);
    // Audio arrives: the remote camera stream has a live audio track receiving packets.
    const audioPackets = await b.evaluate(async () => {
      const peer = [...window.portal.peers.values()][0];
      await new Promise((r) => setTimeout(r, 1000));
      const stats = await peer.pc.getStats();
      let packets = 0;
      stats.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio") packets += s.packetsReceived;
      });
      return packets;
    });
    assert.ok(audioPackets > 10, `audio packets received: ${audioPackets}`);
    // Names on tiles.
    await a.getByRole("figure", { name: /Bo/ }).waitFor();
    // Mute shows on the other side.
    await a.getByRole("button", { name: "Mute microphone" }).click();
    await b.getByRole("figure", { name: /Ada.*muted/ }).waitFor();
    // Leave: the tile goes away on the other side.
    await a.getByRole("button", { name: "Leave" }).click();
    await b.waitForFunction(() => document.querySelectorAll(".grid .tile").length === 1);
  });
});

test("three browsers form a mesh and a screen share appears large on the others", async () => {
  await withRoom(async ({ server, browser }) => {
    const pages = [];
    for (const name of ["One", "Two", "Three"]) pages.push(await joinRoom(browser, server, "mesh", name));
    for (const p of pages) await waitForRemoteVideos(p, 2, 30_000);
    await pages[0].getByRole("button", { name: "Share screen" }).click();
    for (const p of pages.slice(1)) {
      await p.waitForFunction(
        () => {
          const v = document.querySelector(".stage video");
          return v && v.videoWidth > 0 && !document.querySelector(".stage").hidden;
        },
        null,
        { timeout: 20_000 },
      );
    }
    // The camera keeps running while sharing.
    await waitForRemoteVideos(pages[1], 2);
    // Stopping the share takes the stage away.
    await pages[0].getByRole("button", { name: "Share screen" }).click();
    await pages[1].waitForFunction(() => document.querySelector(".stage").hidden, null, { timeout: 10_000 });
  });
});

test("a full room and a wrong password are explained", async () => {
  await withRoom(
    async ({ server, browser }) => {
      await joinRoom(browser, server, "tiny", "First");
      const second = await joinRoom(browser, server, "tiny", "Second");
      await second.getByText("This room is full").first().waitFor({ timeout: 10_000 });
    },
    { serverArgs: ["--max-peers", "1"] },
  );
});

test("calls survive a restart of the rooms server", async () => {
  await withRoom(async ({ server, browser }) => {
    const a = await joinRoom(browser, server, "sturdy", "Ada");
    const b = await joinRoom(browser, server, "sturdy", "Bo");
    await waitForRemoteVideos(a, 1);
    // Both ends settled (ICE and DTLS done) before the server goes away.
    for (const p of [a, b]) await p.waitForFunction(() => [...window.portal.peers.values()].every((x) => x.pc.connectionState === "connected"));
    await a.evaluate(() => {
      [...window.portal.peers.values()][0].pc.portalTag = "before";
    });
    const idBefore = await a.evaluate(() => [...window.portal.peers.keys()][0]);
    // Restart the server on the same port and data dir.
    await server.terminate();
    for (const p of [a, b]) await p.getByText("Reconnecting…", { exact: true }).waitFor({ timeout: 10_000 });
    await server.restart();
    // Both come back (reconnect with backoff) under the same ids, and the call never dropped.
    for (const p of [a, b]) await p.getByText("Connected", { exact: true }).waitFor({ timeout: 20_000 });
    // Same peer id, same RTCPeerConnection object (tagged before the restart), connected.
    await a
      .waitForFunction((id) => window.portal.peers.get(id)?.pc.portalTag === "before" && window.portal.peers.get(id).pc.connectionState === "connected", idBefore, { timeout: 15_000 })
      .catch(async (e) => {
        const state = (p) => p.evaluate(() => ({ self: window.portal.selfId, peers: [...window.portal.peers.entries()].map(([k, p]) => [k, p.pc.connectionState, p.pc.portalTag ?? null, p.confirmed]) }));
        throw new Error(`${e.message}: a=${JSON.stringify(await state(a))} b=${JSON.stringify(await state(b))} idBefore=${idBefore}`);
      });
    await waitForRemoteVideos(a, 1);
    await waitForRemoteVideos(b, 1);
  });
});

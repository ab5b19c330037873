// Shared documents through the real server with the stock npm clients: yjs + y-websocket's
// WebsocketProvider, unchanged. Run by `cargo test -p portal-signaling --test docs_node`,
// which starts portal-server and sets PORTAL_URL (ws://127.0.0.1:PORT).

import assert from "node:assert/strict";
import http from "node:http";
import { afterEach, test } from "node:test";
import WebSocket from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";

const BASE = process.env.PORTAL_URL;
if (!BASE) throw new Error("PORTAL_URL is not set (ws://127.0.0.1:PORT of a running portal-server)");
const DOCS = `${BASE}/yjs`;
const HTTP = BASE.replace(/^ws/, "http");

let open = [];
let keepers = [];

/** Destroys every client (the doc too: it stops the awareness timer). */
function closeAll() {
  for (const c of open) {
    c.provider.destroy();
    c.doc.destroy();
  }
  open = [];
}

afterEach(() => {
  closeAll();
  for (const k of keepers) k.close();
  keepers = [];
});

/**
 * A document exists only while its room does, and an open room only while someone is
 * in it: joins `room` (open) from a signaling connection kept until the test ends.
 */
async function keepRoom(room) {
  const ws = new WebSocket(`${BASE}/ws`);
  keepers.push(ws);
  const inbox = [];
  ws.on("message", (data) => inbox.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ type: "hello", protocol: 1, name: "keeper", role: "browser" }));
  await until(() => inbox.some((m) => m.type === "welcome"), "welcome");
  ws.send(JSON.stringify({ type: "join", room }));
  await until(() => inbox.some((m) => m.type === "joined"), `joined ${room}`);
}

/** A stock provider on `room`; `params` become the query string. */
function connect(room, params = {}) {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(DOCS, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    params,
  });
  const client = { doc, provider, text: doc.getText("code") };
  open.push(client);
  return client;
}

async function until(cond, what, ms = 5000) {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const synced = (c) => until(() => c.provider.synced, "sync");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let rooms = 0;
const freshRoom = (name) => `${name}-${process.pid}-${++rooms}`;
/** A fresh room that exists (kept by a member) for the rest of the test. */
async function openRoom(name) {
  const room = freshRoom(name);
  await keepRoom(room);
  return room;
}

async function loadedDocs() {
  // A fresh connection each time: a kept-alive one would hold the process open.
  const body = await new Promise((resolve, reject) => {
    http
      .get(`${HTTP}/metrics`, { agent: false }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve(text));
      })
      .on("error", reject);
  });
  const line = body.split("\n").find((l) => l.startsWith("portal_docs_loaded "));
  return Number(line.split(" ")[1]);
}

/** Closes every client and waits until the server unloaded their documents. */
async function everyoneLeaves() {
  closeAll();
  const start = Date.now();
  while ((await loadedDocs()) !== 0) {
    if (Date.now() - start > 5000) throw new Error("documents stayed loaded");
    await sleep(20);
  }
}

test("two providers edit one text at once and converge; a late one gets it all", async () => {
  const room = await openRoom("converge");
  const a = connect(room);
  const b = connect(room);
  await synced(a);
  await synced(b);
  // Concurrent: both type before either hears from the other.
  for (let i = 0; i < 20; i++) {
    a.text.insert(0, `a${i} `);
    b.text.insert(b.text.length, `b${i} `);
  }
  const expected = 2 * [...Array(20).keys()].reduce((n, i) => n + `a${i} `.length, 0);
  await until(
    () => a.text.length === expected && a.text.toString() === b.text.toString(),
    "both texts to converge",
  );
  const c = connect(room);
  await synced(c);
  await until(() => c.text.toString() === a.text.toString(), "the late client to catch up");
  assert.equal(c.text.length, expected);
});

test("the awareness of a client that vanishes goes away for the others", async () => {
  const room = await openRoom("awareness");
  const a = connect(room);
  const b = connect(room);
  await synced(a);
  await synced(b);
  a.provider.awareness.setLocalStateField("user", { name: "Ada", color: "#e91e63" });
  const id = a.doc.clientID;
  await until(() => b.provider.awareness.getStates().get(id)?.user?.name === "Ada", "Ada's presence");
  // The socket dies without the goodbye a provider sends on destroy.
  a.provider.shouldConnect = false;
  a.provider.ws.terminate();
  await until(() => !b.provider.awareness.getStates().has(id), "Ada's presence to go", 3000);
});

test("a read-only client's edits reach neither the others nor the store", async () => {
  const room = await openRoom("readonly");
  const w = connect(room);
  const r = connect(room, { readonly: "1" });
  await synced(w);
  await synced(r);
  w.text.insert(0, "shared");
  await until(() => r.text.toString() === "shared", "the viewer to receive the text");
  r.text.insert(r.text.length, " sneaky");
  r.provider.awareness.setLocalStateField("user", { name: "viewer" });
  // Presence is allowed (read-along), so the viewer shows up for the writer...
  await until(
    () => w.provider.awareness.getStates().get(r.doc.clientID)?.user?.name === "viewer",
    "the viewer's presence",
  );
  // ...but its edit never arrives.
  await sleep(300);
  assert.equal(w.text.toString(), "shared");
  await everyoneLeaves();
  const fresh = connect(room);
  await synced(fresh);
  assert.equal(fresh.text.toString(), "shared");
});

test("a protected room needs the token from joining", async () => {
  const room = freshRoom("locked");
  const signaling = new WebSocket(`${BASE}/ws`);
  const inbox = [];
  signaling.on("message", (data) => inbox.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => {
    signaling.once("open", resolve);
    signaling.once("error", reject);
  });
  const next = async (type) => {
    await until(() => inbox.some((m) => m.type === type || m.type === "error"), type);
    const msg = inbox.splice(inbox.findIndex((m) => m.type === type || m.type === "error"), 1)[0];
    assert.equal(msg.type, type, JSON.stringify(msg));
    return msg;
  };
  try {
    signaling.send(JSON.stringify({ type: "hello", protocol: 1, name: "x", role: "browser" }));
    await next("welcome");
    signaling.send(JSON.stringify({ type: "join", room, password: "pw-1234" }));
    const { docToken } = await next("joined");
    assert.ok(docToken);

    // Without a token the upgrade itself is refused.
    const status = await new Promise((resolve) => {
      const ws = new WebSocket(`${DOCS}/${room}`);
      ws.on("unexpected-response", (req, res) => {
        resolve(res.statusCode);
        req.destroy();
      });
      ws.on("open", () => {
        ws.close();
        resolve(101);
      });
      ws.on("error", () => {});
    });
    assert.equal(status, 403);
    const bad = connect(room, { token: "not-a-token" });
    await sleep(500);
    assert.equal(bad.provider.synced, false);

    const good = connect(room, { token: docToken });
    await synced(good);
    good.text.insert(0, "secret");
    const again = connect(room, { token: docToken });
    await synced(again);
    await until(() => again.text.toString() === "secret", "the text behind the password");
  } finally {
    signaling.close();
  }
});

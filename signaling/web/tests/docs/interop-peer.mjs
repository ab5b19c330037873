// The y-websocket half of the Rust <-> Node convergence test (docs_node.rs): writes
// "from-node;", waits for the Rust client's "from-rust;", prints the final text.
// Usage: PORTAL_URL=ws://127.0.0.1:PORT ROOM=name node interop-peer.mjs

import WebSocket from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";

const { PORTAL_URL, ROOM } = process.env;
if (!PORTAL_URL || !ROOM) {
  console.error("PORTAL_URL and ROOM must be set");
  process.exit(2);
}

const doc = new Y.Doc();
const text = doc.getText("code");
const provider = new WebsocketProvider(`${PORTAL_URL}/yjs`, ROOM, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
});

const deadline = setTimeout(() => {
  console.error(`timed out; text is ${JSON.stringify(text.toString())}`);
  process.exit(1);
}, 15_000);

provider.once("sync", () => {
  text.insert(text.length, "from-node;");
  console.log("wrote");
});

text.observe(() => {
  if (text.toString().includes("from-rust;")) {
    clearTimeout(deadline);
    console.log(`RESULT ${JSON.stringify({ text: text.toString() })}`);
    provider.destroy();
    process.exit(0);
  }
});

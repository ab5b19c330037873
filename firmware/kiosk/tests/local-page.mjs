// The browser side of the kiosk's local-page test: an ordinary web page in Debian's
// Chromium (driven by playwright-core) tries the kiosk's local endpoint, as any page in a
// browser on the kiosk's machine could, while a peer in another tab sits in the kiosk's
// room with Portal's real browser client and watches for anything that gets through.
//
//   node local-page.mjs <server base URL> <room> <kiosk endpoint HOST:PORT>
//
// The page comes from two places:
//   - a small HTTP server of this script's on 127.0.0.1 (another origin than the kiosk's:
//     cross-origin fetch, `no-cors` fetch, form posts into iframes, sendBeacon, a script
//     tag);
//   - `http://rebind.test:KIOSK_PORT/`, as after DNS rebinding: Chromium resolves
//     `rebind.test` to 127.0.0.1 (`--host-resolver-rules`) and the page itself is handed
//     over by the driver (the name's first answer, the attacker's server), so its origin is
//     the kiosk endpoint's own and it may read what its requests get back, but the `Host`
//     it sends is `rebind.test:PORT`.
// Both pages try twice: in Chromium as it comes, whose Local Network Access checks stop a
// page from a public address (the rebinding page counts as one) before it reaches
// loopback, and in a Chromium with those checks off, as a browser without them (or an
// older one) would be, so that only the kiosk's own guards stand in the way.
// Every request gets a `?try=N` the endpoint ignores, so Chromium's own view of the answer
// (the status the kiosk sent, which the page may not see) is matched to its attempt.
//
// Protocol with the Rust test: the JSON-per-line loop of signaling/web/tests/kit.mjs.
// Commands:
//   join {name}               a tab that joins the room as `name` (with camera and mic)
//   waitConnected             waits for that tab's connection to the kiosk
//   attack {mark, peer, bait} runs every attempt from both pages in both browsers; answers
//                             `attempts`, one {browser, page, via, target, seen, status,
//                             type, body, kiosk} each (`seen`: what the page got, `kiosk`:
//                             what Chromium saw come back: HTTP statuses, or failures)
//   peer {mark}               what the peer tab got: chat lines containing `mark`, file
//                             transfers, and whether its connection to the kiosk is up
//   waitChat {text}           waits for a chat line from the kiosk in the peer tab
//   quit

import { createServer } from "node:http";
import { once } from "node:events";
import { collectChats, exposeKioskPeer, launchBrowser, logPage, serveCommands, waitChat } from "../../../signaling/web/tests/kit.mjs";

const [base, room, kioskAddr] = process.argv.slice(2);
if (!base || !room || !kioskAddr) {
  console.error("usage: node local-page.mjs <server base URL> <room> <kiosk HOST:PORT>");
  process.exit(2);
}
const WAIT = Number(process.env.PORTAL_E2E_WAIT_MS ?? 120_000);
const kioskPort = new URL(`http://${kioskAddr}`).port;
const REBIND = `http://rebind.test:${kioskPort}`;

const REBIND_RULE = "--host-resolver-rules=MAP rebind.test 127.0.0.1";
// What a browser without Local (Private) Network Access checks does.
const NO_LNA = "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults";
const browser = await launchBrowser([REBIND_RULE]);
let peerTab = null;

// ---- the page ----

// Runs in the page (sent as source in the page's own <script>): `window.attempts(cfg)` makes
// every attempt against `cfg.target` and answers what the page got from each.
function pageScript() {
  const settle = (ms) => new Promise((r) => setTimeout(r, ms));
  let next = 0;
  let from = "";
  const tag = (url) => `${url}${url.includes("?") ? "&" : "?"}try=${from}-${++next}`;

  async function viaFetch(url, init) {
    try {
      const r = await fetch(url, init);
      let body;
      try {
        body = await r.text();
      } catch (e) {
        body = `(unreadable: ${e.name})`;
      }
      return { seen: `${r.type} response, status ${r.status}, body ${JSON.stringify(body)}`, status: r.status, type: r.type, body };
    } catch (e) {
      return { seen: `fetch threw ${e.name}: ${e.message}` };
    }
  }

  // A form posted into a hidden iframe, as a page does without any script privileges.
  async function viaForm(url, fields, enctype) {
    const name = `frame${next}`;
    const frame = document.createElement("iframe");
    frame.name = name;
    document.body.append(frame);
    await settle(0);
    const loaded = new Promise((resolve) => {
      frame.addEventListener("load", () => resolve(true), { once: true });
      setTimeout(() => resolve(false), 15_000);
    });
    const form = document.createElement("form");
    Object.assign(form, { method: "POST", action: url, enctype, target: name });
    for (const [key, value] of Object.entries(fields)) {
      const input = document.createElement("input");
      Object.assign(input, { type: "hidden", name: key, value });
      form.append(input);
    }
    document.body.append(form);
    form.submit();
    if (!(await loaded)) return { seen: "the frame did not load within 15 s" };
    try {
      const body = frame.contentWindow.document.body.innerText;
      return { seen: `frame loaded, the page reads ${JSON.stringify(body)}`, body };
    } catch (e) {
      return { seen: `frame loaded, reading it threw ${e.name}` };
    }
  }

  function viaBeacon(url, data) {
    try {
      const queued = data === undefined ? navigator.sendBeacon(url) : navigator.sendBeacon(url, data);
      return { seen: `sendBeacon answered ${queued}` };
    } catch (e) {
      return { seen: `sendBeacon threw ${e.name}: ${e.message}` };
    }
  }

  // `<script src>` on the JSON: an old way to read another origin's answers.
  function viaScript(url) {
    return new Promise((resolve) => {
      const script = document.createElement("script");
      script.src = url;
      script.onload = () => resolve({ seen: "script loaded" });
      script.onerror = () => resolve({ seen: "script error event" });
      document.body.append(script);
    });
  }

  window.attempts = async (config) => {
    ({ from } = config);
    const { target, mark, peer, bait } = config;
    const chat = (via) => JSON.stringify({ text: `${mark} ${via}` });
    const send = JSON.stringify({ peer, path: bait });
    const plain = "text/plain";
    const json = "application/json";
    const out = [];
    const attempt = async (via, what, run) => {
      const url = tag(`${target}${what.split(" ")[1]}`);
      const result = await run(url);
      out.push({ via, target: what, url, ...result });
    };

    // Requests any page may send without a preflight.
    await attempt("fetch no-cors text/plain", "POST /chat", (u) => viaFetch(u, { method: "POST", mode: "no-cors", body: chat("fetch") }));
    await attempt("fetch no-cors text/plain", "POST /files/send", (u) => viaFetch(u, { method: "POST", mode: "no-cors", body: send }));
    await attempt("fetch no-cors", "POST /snapshot", (u) => viaFetch(u, { method: "POST", mode: "no-cors" }));
    await attempt("fetch no-cors (JSON type dropped)", "POST /chat", (u) =>
      viaFetch(u, { method: "POST", mode: "no-cors", headers: { "Content-Type": json }, body: chat("fetch-json-no-cors") }),
    );
    await attempt("fetch no-cors", "GET /status", (u) => viaFetch(u, { mode: "no-cors" }));
    // Requests that need the endpoint's consent (CORS), or are same-origin after rebinding.
    await attempt("fetch cors", "GET /status", (u) => viaFetch(u));
    await attempt("fetch cors", "GET /healthz", (u) => viaFetch(u));
    await attempt("fetch cors JSON", "POST /chat", (u) => viaFetch(u, { method: "POST", headers: { "Content-Type": json }, body: chat("fetch-json") }));
    await attempt("fetch cors JSON", "POST /files/send", (u) => viaFetch(u, { method: "POST", headers: { "Content-Type": json }, body: send }));
    await attempt("fetch cors JSON", "POST /snapshot", (u) => viaFetch(u, { method: "POST", headers: { "Content-Type": json }, body: "{}" }));
    await attempt("fetch cors, guessed token, Host 127.0.0.1", "GET /status", (u) =>
      viaFetch(u, { headers: { Authorization: "Bearer 0000", Host: "127.0.0.1" } }),
    );
    // Forms: text/plain bodies shaped as JSON (`name=value` with the `=` inside a string).
    const cut = bait.indexOf("=");
    const [pathHead, pathTail] = [bait.slice(0, cut), bait.slice(cut + 1)];
    await attempt("form text/plain", "POST /chat", (u) => viaForm(u, { [`{"text": "${mark} form`]: ` post"}` }, plain));
    await attempt("form text/plain", "POST /files/send", (u) => viaForm(u, { [`{"peer": ${peer}, "path": "${pathHead}`]: `${pathTail}"}` }, plain));
    await attempt("form (empty body)", "POST /snapshot", (u) => viaForm(u, {}, plain));
    await attempt("form urlencoded", "POST /chat", (u) => viaForm(u, { text: `${mark} urlencoded` }, "application/x-www-form-urlencoded"));
    // Beacons: POSTs that outlive the page, text/plain for a string.
    await attempt("sendBeacon text/plain", "POST /chat", (u) => viaBeacon(u, chat("beacon")));
    await attempt("sendBeacon text/plain", "POST /files/send", (u) => viaBeacon(u, send));
    await attempt("sendBeacon (no body)", "POST /snapshot", (u) => viaBeacon(u));
    await attempt("sendBeacon Blob application/json", "POST /chat", (u) => viaBeacon(u, new Blob([chat("beacon-json")], { type: json })));
    await attempt("script tag", "GET /status", (u) => viaScript(u));
    return out;
  };
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>An ordinary page</title>
<p>Nothing to see here.</p>
<script>(${pageScript})();</script>
`;

// The attacker's server: one page, on a port of its own.
async function startPageServer() {
  const server = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(PAGE);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

/** Opens `url` in a fresh context (no permissions, nothing shared with the peer's) and
 * records every request that goes to the kiosk's port, with the status Chromium got. */
async function openPage(chromium, url, tagName, setup) {
  const context = await chromium.newContext();
  if (setup) await setup(context);
  const page = await context.newPage();
  // Its console is all refused requests, by design; only its own errors are logged.
  page.on("pageerror", (e) => console.error(`[${tagName}] page error:`, e.message));
  const seen = new Map();
  const note = (request, what) => {
    const u = new URL(request.url());
    if (u.port !== kioskPort || !u.searchParams.has("try")) return;
    const key = u.searchParams.get("try");
    seen.set(key, [...(seen.get(key) ?? []), what]);
  };
  page.on("response", (r) => note(r.request(), r.status()));
  page.on("requestfailed", (r) => note(r, `failed: ${r.failure()?.errorText ?? "?"}`));
  await page.goto(url);
  return { context, page, seen };
}

async function attackFrom(chromium, label, name, url, target, cmd, setup) {
  const { context, page, seen } = await openPage(chromium, url, `${label}: ${name}`, setup);
  const origin = await page.evaluate(() => location.origin);
  const attempts = await page.evaluate((cfg) => window.attempts(cfg), { from: name.split(" ")[0], target, mark: cmd.mark, peer: cmd.peer, bait: cmd.bait });
  // Beacons and frames finish on their own time: wait (a while) until Chromium has an
  // answer for every attempt that it sent.
  const deadline = Date.now() + 10_000;
  const key = (a) => new URL(a.url).searchParams.get("try");
  while (Date.now() < deadline && attempts.some((a) => !seen.has(key(a)))) await new Promise((r) => setTimeout(r, 200));
  await context.close();
  return attempts.map((a) => ({ page: `${name} (${origin})`, via: a.via, target: a.target, seen: a.seen, status: a.status ?? null, type: a.type ?? null, body: a.body ?? null, kiosk: seen.get(key(a)) ?? [] }));
}

const commands = {
  async join({ name }) {
    const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 720 } });
    await exposeKioskPeer(context);
    peerTab = await context.newPage();
    logPage(peerTab, `[peer ${name}]`);
    await peerTab.goto(`${base}/r/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}&autojoin=1`);
    await peerTab.getByRole("button", { name: "Leave" }).waitFor({ timeout: WAIT });
    await collectChats(peerTab);
    return { joined: true };
  },

  async waitConnected() {
    await peerTab.waitForFunction(() => window.__kioskPeer()?.pc.connectionState === "connected" && window.__kioskPeer()?.file.readyState === "open", null, { timeout: WAIT, polling: 250 });
    return { connected: true };
  },

  async attack(cmd) {
    const server = await startPageServer();
    const pageUrl = `http://127.0.0.1:${server.address().port}/`;
    // After rebinding: the name's first answer gave the attacker's page; now it is the kiosk.
    const rebound = (context) => context.route(`${REBIND}/`, (route) => route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: PAGE }));
    const all = [];
    const run = async (label, chromium) => {
      for (const [name, url, target, setup] of [
        ["cross-origin page", pageUrl, `http://${kioskAddr}`, null],
        ["rebinding page", `${REBIND}/`, REBIND, rebound],
      ]) {
        const attempts = await attackFrom(chromium, label, name, url, target, cmd, setup);
        all.push(...attempts.map((a) => ({ browser: label, ...a })));
      }
    };
    const bare = await launchBrowser([REBIND_RULE, NO_LNA]);
    try {
      await run("chromium", browser);
      await run("chromium without local network checks", bare);
      return { pageUrl, attempts: all };
    } finally {
      server.close();
      await Promise.race([bare.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
    }
  },

  async peer({ mark }) {
    return peerTab.evaluate((mark) => {
      const kiosk = window.__kioskPeer();
      return {
        chats: window.__chats.filter((m) => String(m.text).includes(mark)).map((m) => m.text),
        transfers: window.portalFiles?.transfers() ?? [],
        connection: kiosk?.pc.connectionState ?? null,
      };
    }, mark);
  },

  async waitChat({ text }) {
    return waitChat(peerTab, text, { timeout: WAIT, polling: 200 });
  },
};

await serveCommands(commands);
// Closing can hang on a busy machine; the test does not wait for it.
await Promise.race([browser.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
process.exit(0);

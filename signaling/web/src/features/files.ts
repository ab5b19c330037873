// Files: send a file to one peer or to everyone on the `file` data channel.
//
// The protocol decisions live in transfer.ts (one FileLink per peer); this module moves
// the bytes and draws the panel. Sending reads the file in blocks and paces chunks on
// the channel's buffered amount, so a 256 MiB file never sits in memory whole on the
// sending side; receiving keeps chunks as Blobs, which the browser may page out, and
// offers a download only once size and SHA-256 match. The receiver accepts or declines
// before any byte flows; offers over the size cap are declined on their own.

import { FILE_CHUNK_PAYLOAD, type FileMessage } from "../gen/protocol";
import type { CallUi, Feature } from "../call/view";
import type { RemotePeer, Session } from "../call/session";
import { el } from "../dom";
import { FileLink, fitFileName, isFinal, parseFileMessage, type Effect, type Transfer } from "./transfer";
import "./files.css";

/** The default size cap for incoming files. */
export const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;
/** Chunks wait while the channel holds more than this... */
const HIGH_WATER = 4 * 1024 * 1024;
/** ...and resume when it drains to this. */
const LOW_WATER = 1024 * 1024;
/** How much of the file is read at once when sending. */
const READ_BLOCK = 16 * FILE_CHUNK_PAYLOAD;
/** Received bytes are folded into a Blob every this many bytes. */
const SINK_BLOCK = 8 * 1024 * 1024;

export interface FilesOptions {
  /** Largest incoming file accepted (bytes). */
  maxBytes?: number;
}

/** What tests and the benchmark read: totals over every peer's channel. */
export interface FileStats {
  framesSent: number;
  bytesSent: number;
  framesReceived: number;
  bytesReceived: number;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

const DECLINE_TEXT: Record<string, string> = {
  declined: "declined",
  policy: "declined: this device does not take files",
  tooLarge: "declined: too large",
  invalid: "declined: the offer was not valid",
  busy: "declined: too many files at once, offer it again later",
  noSpace: "declined: not enough free space",
};

/** Received bytes, folded into Blobs as they come so the page holds little itself. */
class Sink {
  private parts: Uint8Array<ArrayBuffer>[] = [];
  private partBytes = 0;
  private blobs: Blob[] = [];

  push(payload: Uint8Array): void {
    // The payload is a view into the frame; copy only what it covers.
    this.parts.push(payload.slice() as Uint8Array<ArrayBuffer>);
    this.partBytes += payload.length;
    if (this.partBytes >= SINK_BLOCK) this.fold();
  }

  blob(): Blob {
    this.fold();
    // Always a download, never a page: an offered text/html must not run in our origin.
    return new Blob(this.blobs, { type: "application/octet-stream" });
  }

  private fold(): void {
    if (this.parts.length === 0) return;
    this.blobs.push(new Blob(this.parts));
    this.parts = [];
    this.partBytes = 0;
  }
}

/** One peer's file channel and its transfers. */
interface Link {
  /** Tells links apart when a peer reconnects under the same id (its ids start over). */
  serial: number;
  peer: RemotePeer;
  core: FileLink;
  files: Map<number, File>;
  sinks: Map<number, Sink>;
}

/** A transfer's entry in the list. */
interface Row {
  link: Link;
  t: Transfer;
  li: HTMLLIElement;
  status: HTMLElement;
  progress: HTMLProgressElement;
  actions: HTMLElement;
  url: string | null;
  lastState: string;
}

function maxBytesFromQuery(): number | undefined {
  if (typeof location === "undefined") return undefined;
  const mib = Number(new URLSearchParams(location.search).get("maxFileMiB"));
  return Number.isFinite(mib) && mib > 0 ? Math.floor(mib * 1024 * 1024) : undefined;
}

export function createFilesFeature(opts: FilesOptions = {}): Feature {
  return {
    id: "files",
    title: "Files",
    mount(session, panel, ui) {
      mountFiles(session, panel, ui, opts.maxBytes ?? maxBytesFromQuery() ?? DEFAULT_MAX_BYTES);
    },
  };
}

/** The feature as listed: a 2 GiB cap, or `?maxFileMiB=N`. */
export const filesFeature = createFilesFeature();

function mountFiles(session: Session, panel: HTMLElement, ui: CallUi, maxBytes: number): void {
  const input = el("input", { type: "file", multiple: true, hidden: true, ariaLabel: "File to send" });
  const sendButton = el("button", { type: "button", ariaLabel: "Send file" }, "Send file");
  const recipient = el("select", { name: "recipient", ariaLabel: "Send to" });
  const list = el("ul", { className: "file-list", ariaLabel: "Transfers" });
  const hint = el("p", { className: "file-hint" }, `Drop files here to send them. Files up to ${formatBytes(maxBytes)} are accepted.`);
  const drop = el("div", { className: "files" }, el("div", { className: "file-send" }, el("label", {}, el("span", {}, "Send to"), recipient), sendButton, input), hint, list);
  panel.append(drop);

  const links = new Map<number, Link>();
  let serials = 0;
  const rows = new Map<string, Row>();
  const totals: FileStats = { framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0 };
  let dirty = new Set<string>();
  let renderTimer: ReturnType<typeof setTimeout> | null = null;

  // A read-only view for tests and the benchmark.
  (window as unknown as { portalFiles?: unknown }).portalFiles = {
    stats: (): FileStats => ({ ...totals }),
    transfers: () => [...links.values()].flatMap((l) => l.core.transfers().map((t) => ({ peer: l.peer.id, id: t.id, direction: t.direction, name: t.name, size: t.size, state: t.state, bytes: t.bytes, reason: t.reason }))),
  };

  function refreshRecipients(): void {
    const current = recipient.value;
    const options = [el("option", { value: "all" }, "Everyone")];
    for (const peer of session.peers.values()) options.push(el("option", { value: String(peer.id) }, peer.info.name));
    recipient.replaceChildren(...options);
    recipient.value = options.some((o) => o.value === current) ? current : "all";
    sendButton.disabled = session.peers.size === 0;
  }

  function attach(peer: RemotePeer): void {
    const old = links.get(peer.id);
    if (old?.peer === peer) return;
    if (old) detach(old);
    const link: Link = { serial: ++serials, peer, core: new FileLink({ maxBytes }), files: new Map(), sinks: new Map() };
    links.set(peer.id, link);
    const ch = peer.file;
    ch.binaryType = "arraybuffer";
    ch.bufferedAmountLowThreshold = LOW_WATER;
    ch.addEventListener("message", (ev: MessageEvent) => {
      if (links.get(peer.id) !== link) return;
      if (typeof ev.data === "string") {
        const msg = parseFileMessage(ev.data);
        if (msg) apply(link, link.core.handle(msg));
      } else if (ev.data instanceof ArrayBuffer) {
        totals.framesReceived++;
        totals.bytesReceived += ev.data.byteLength;
        apply(link, link.core.handleFrame(ev.data));
      }
    });
    ch.addEventListener("close", () => {
      if (links.get(peer.id) === link) apply(link, link.core.close());
    });
    refreshRecipients();
  }

  function detach(link: Link): void {
    apply(link, link.core.close("left the call"));
    if (links.get(link.peer.id) === link) links.delete(link.peer.id);
    refreshRecipients();
  }

  function send(link: Link, msg: FileMessage): void {
    if (link.peer.file.readyState !== "open") return;
    try {
      link.peer.file.send(JSON.stringify(msg));
    } catch (e) {
      console.warn("file channel send failed", e);
    }
  }

  /** Carries out what the protocol core decided. */
  function apply(link: Link, effects: Effect[]): void {
    for (const fx of effects) {
      const t = fx.kind === "send" ? null : fx.transfer;
      switch (fx.kind) {
        case "send":
          send(link, fx.msg);
          break;
        case "offered":
          link.sinks.set(fx.transfer.id, new Sink());
          ui.notify(`${link.peer.info.name} offers ${fx.transfer.name} (${formatBytes(fx.transfer.size)})`);
          break;
        case "start": {
          const file = link.files.get(fx.transfer.id);
          if (file) void pump(link, fx.transfer, file);
          break;
        }
        case "data":
          link.sinks.get(fx.transfer.id)?.push(fx.payload);
          break;
        case "complete":
          link.files.delete(fx.transfer.id);
          break;
        case "stopped":
          link.files.delete(fx.transfer.id);
          link.sinks.delete(fx.transfer.id);
          break;
      }
      if (t) markDirty(link, t);
    }
  }

  /** Streams an accepted file: read a block, send its chunks as the channel drains. */
  async function pump(link: Link, t: Transfer, file: File): Promise<void> {
    const ch = link.peer.file;
    let offset = 0;
    try {
      while (offset < t.size) {
        const block = new Uint8Array(await file.slice(offset, Math.min(offset + READ_BLOCK, t.size)).arrayBuffer());
        if (block.length === 0) throw new Error("the file got shorter while it was sent");
        for (let p = 0; p < block.length; p += FILE_CHUNK_PAYLOAD) {
          if (ch.bufferedAmount > HIGH_WATER) await drained(ch);
          if (ch.readyState !== "open") return;
          const frame = link.core.frame(t.id, block.subarray(p, p + FILE_CHUNK_PAYLOAD));
          if (!frame) return; // cancelled, failed or the channel closed meanwhile
          ch.send(frame);
          totals.framesSent++;
          totals.bytesSent += frame.length;
          markDirty(link, t);
        }
        offset += block.length;
      }
      apply(link, link.core.finish(t.id));
    } catch (e) {
      apply(link, link.core.cancel("out", t.id, e instanceof Error ? e.message : String(e)));
    }
  }

  function offer(files: Iterable<File>): void {
    const to = recipient.value === "all" ? [...links.values()] : [links.get(Number(recipient.value))].filter((l): l is Link => l !== undefined);
    const open = to.filter((l) => l.peer.file.readyState === "open");
    if (open.length === 0) {
      ui.notify("Nobody to send to yet.");
      return;
    }
    for (const file of files) {
      for (const link of open) {
        const { transfer, effects } = link.core.offer(fitFileName(file.name), file.size, file.type);
        link.files.set(transfer.id, file);
        apply(link, effects);
        markDirty(link, transfer);
      }
    }
  }

  // ---- drawing ----

  function key(link: Link, t: Transfer): string {
    return `${link.serial}:${t.direction}:${t.id}`;
  }

  function markDirty(link: Link, t: Transfer): void {
    const k = key(link, t);
    dirty.add(k);
    let row = rows.get(k);
    if (!row) rows.set(k, (row = makeRow(link, t)));
    // State changes draw at once; progress at most every 100 ms.
    if (row.lastState !== t.state) render();
    else renderTimer ??= setTimeout(render, 100);
  }

  function makeRow(link: Link, t: Transfer): Row {
    const title = el("span", { className: "file-name" }, t.name);
    const status = el("span", { className: "file-status" });
    const progress = el("progress", { max: Math.max(t.size, 1), value: 0, ariaLabel: `Progress of ${t.name}` });
    const actions = el("div", { className: "file-actions" });
    const li = el("li", { className: `file-item ${t.direction}`, ariaLabel: t.name }, title, el("span", { className: "file-meta" }, `${formatBytes(t.size)} ${t.direction === "in" ? "from" : "to"} ${link.peer.info.name}`), status, progress, actions);
    li.dataset.direction = t.direction;
    list.prepend(li);
    return { link, t, li, status, progress, actions, url: null, lastState: "" };
  }

  function render(): void {
    if (renderTimer) clearTimeout(renderTimer);
    renderTimer = null;
    const keys = dirty;
    dirty = new Set();
    for (const k of keys) {
      const row = rows.get(k);
      if (row) renderRow(row);
    }
    updateBadge();
  }

  function renderRow(row: Row): void {
    const { link, t } = row;
    row.progress.value = t.bytes;
    row.li.dataset.state = t.state;
    const pct = t.size > 0 ? Math.floor((100 * t.bytes) / t.size) : 100;
    const cancelledBy = t.by === (t.direction === "out" ? "sender" : "receiver") ? "you" : link.peer.info.name;
    const text: Record<Transfer["state"], string> = {
      offered: t.direction === "in" ? "wants to send you this file" : "waiting for an answer",
      active: `${t.direction === "in" ? "receiving" : "sending"} ${pct}% (${formatBytes(t.bytes)})`,
      ending: "checking…",
      complete: t.direction === "in" ? "received, SHA-256 checked" : "sent, SHA-256 checked",
      declined: DECLINE_TEXT[t.reason] ?? "declined",
      cancelled: `cancelled by ${cancelledBy}${t.reason ? `: ${t.reason}` : ""}`,
      failed: `failed: ${t.reason}`,
    };
    row.status.textContent = text[t.state];
    row.progress.hidden = t.state !== "active" && t.state !== "ending";
    if (row.lastState === t.state) return;
    row.lastState = t.state;

    const buttons: HTMLElement[] = [];
    if (t.direction === "in" && t.state === "offered") {
      const accept = el("button", { type: "button", ariaLabel: "Accept" }, "Accept");
      accept.onclick = () => apply(link, link.core.accept(t.id));
      const decline = el("button", { type: "button", ariaLabel: "Decline" }, "Decline");
      decline.onclick = () => apply(link, link.core.decline(t.id));
      buttons.push(accept, decline);
    }
    if (!isFinal(t) && !(t.direction === "in" && t.state === "offered")) {
      const cancel = el("button", { type: "button", ariaLabel: "Cancel" }, "Cancel");
      cancel.onclick = () => apply(link, link.core.cancel(t.direction, t.id));
      buttons.push(cancel);
    }
    if (t.direction === "in" && t.state === "complete") {
      const blob = link.sinks.get(t.id)?.blob();
      link.sinks.delete(t.id);
      if (blob) {
        row.url = URL.createObjectURL(blob);
        const save = el("a", { href: row.url, download: t.name, className: "file-save", ariaLabel: `Save ${t.name}` }, `Save ${t.name}`);
        buttons.push(save);
      }
    }
    if (isFinal(t)) {
      const dismiss = el("button", { type: "button", ariaLabel: `Remove ${t.name} from the list`, className: "file-dismiss" }, "Remove");
      dismiss.onclick = () => {
        if (row.url) URL.revokeObjectURL(row.url);
        row.li.remove();
        rows.delete(key(link, t));
      };
      buttons.push(dismiss);
    }
    row.actions.replaceChildren(...buttons);
  }

  function updateBadge(): void {
    if (ui.isOpen("files")) {
      ui.setBadge("files", 0);
      return;
    }
    let waiting = 0;
    for (const link of links.values()) for (const t of link.core.transfers()) if (t.direction === "in" && t.state === "offered") waiting++;
    ui.setBadge("files", waiting);
  }

  // ---- wiring ----

  sendButton.onclick = () => input.click();
  input.onchange = () => {
    if (input.files) offer([...input.files]);
    input.value = "";
  };
  drop.addEventListener("dragover", (e) => {
    if (!e.dataTransfer?.types.includes("Files")) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    drop.classList.add("dragging");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (e) => {
    drop.classList.remove("dragging");
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    offer([...e.dataTransfer.files]);
  });
  new MutationObserver(updateBadge).observe(panel, { attributes: true, attributeFilter: ["hidden"] });

  for (const peer of session.peers.values()) attach(peer);
  session.on("peer-added", attach);
  session.on("peer-removed", (peer) => {
    const link = links.get(peer.id);
    if (link?.peer === peer) detach(link);
  });
  session.on("joined", refreshRecipients);
  refreshRecipients();
}

/** Resolves when the channel's buffer drains below its low-water mark, or it closes. */
function drained(ch: RTCDataChannel): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      ch.removeEventListener("bufferedamountlow", done);
      ch.removeEventListener("close", done);
      resolve();
    };
    ch.addEventListener("bufferedamountlow", done);
    ch.addEventListener("close", done);
  });
}

// Chat: a side-panel tab with the room's messages and a text box.
//
// Messages are `{type: "chat", id, from, time, text}` (ChatChannelMessage in
// signaling/proto/src/channel.rs) on every peer's `chat` data channel; the session
// parses that channel's JSON and hands each message to us as a "control" event. Text is
// only ever put in the page as text, never parsed as markup. While the panel is closed,
// its tab counts the messages not yet seen.

import { MAX_CHAT_TEXT, type ChatChannelMessage } from "../gen/protocol";
import type { Feature } from "../call/view";
import type { ControlMessage } from "../call/session";
import { el } from "../dom";
import "./chat.css";

export type ChatLine = Extract<ChatChannelMessage, { type: "chat" }>;

export interface ChatEntry {
  line: ChatLine;
  /** The name to show: for others the one the server announced, not what they claim. */
  sender: string;
  self: boolean;
}

/** Length in characters (code points), the unit MAX_CHAT_TEXT counts. */
export function chatLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Checks a control message from a peer; null unless it is a well-formed chat line. */
export function parseChatLine(msg: ControlMessage): ChatLine | null {
  if (msg.type !== "chat") return null;
  const { id, from, time, text } = msg;
  if (typeof id !== "string" || id.length === 0 || id.length > 100) return null;
  if (typeof from !== "string" || from.length > 200) return null;
  if (typeof time !== "number" || !Number.isFinite(time)) return null;
  if (typeof text !== "string" || text.trim().length === 0 || chatLength(text) > MAX_CHAT_TEXT) return null;
  return { type: "chat", id, from, time, text };
}

/** A new line of ours, or null when there is nothing to send or it is too long. */
export function makeChatLine(from: string, text: string, now: number, id: string = newId()): ChatLine | null {
  const trimmed = text.trim();
  if (trimmed.length === 0 || chatLength(trimmed) > MAX_CHAT_TEXT) return null;
  return { type: "chat", id, from, time: now, text: trimmed };
}

/** A random UUID; `crypto.randomUUID` exists only in secure contexts, so build one when it is missing. */
export function newId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** One message as a list item. Everything from the wire goes in as text. */
export function renderEntry(entry: ChatEntry): HTMLLIElement {
  const time = el("time", { dateTime: new Date(entry.line.time).toISOString() }, formatTime(entry.line.time));
  const who = el("span", { className: "chat-from" }, entry.self ? `${entry.sender} (you)` : entry.sender);
  const text = el("p", { className: "chat-text" });
  text.textContent = entry.line.text;
  return el("li", { className: entry.self ? "chat-line self" : "chat-line" }, el("div", { className: "chat-meta" }, who, " ", time), text);
}

/** Counts lines that arrived while nobody was looking. */
export class Unread {
  count = 0;
  arrived(seen: boolean): number {
    if (!seen) this.count++;
    return this.count;
  }
  seen(): number {
    this.count = 0;
    return 0;
  }
}

export const chatFeature: Feature = {
  id: "chat",
  title: "Chat",
  mount(session, panel, ui) {
    const list = el("ol", { className: "chat-log", ariaLabel: "Messages" });
    list.setAttribute("aria-live", "polite");
    const box = el("textarea", { name: "message", rows: 2, maxLength: MAX_CHAT_TEXT, ariaLabel: "Message", placeholder: "Message everyone" });
    const send = el("button", { type: "submit", ariaLabel: "Send" }, "Send");
    const form = el("form", { className: "chat-form" }, box, send);
    panel.append(el("div", { className: "chat" }, list, form));

    const unread = new Unread();
    const seen = new Map<string, Set<string>>();

    function show(entry: ChatEntry, key: string): void {
      // A message seen twice (a resent frame) is shown once.
      let ids = seen.get(key);
      if (!ids) seen.set(key, (ids = new Set()));
      if (ids.has(entry.line.id)) return;
      ids.add(entry.line.id);
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      list.append(renderEntry(entry));
      if (atBottom || entry.self) list.scrollTop = list.scrollHeight;
      if (!entry.self) ui.setBadge("chat", unread.arrived(ui.isOpen("chat")));
    }

    function submit(): void {
      const line = makeChatLine(session.opts.name, box.value, Date.now());
      if (!line) {
        if (chatLength(box.value.trim()) > MAX_CHAT_TEXT) ui.notify(`Messages are at most ${MAX_CHAT_TEXT} characters.`);
        return;
      }
      session.sendControl(line);
      show({ line, sender: session.opts.name, self: true }, "self");
      box.value = "";
      box.focus();
    }

    form.onsubmit = (e) => {
      e.preventDefault();
      submit();
    };
    // Enter sends; Shift+Enter starts a new line.
    box.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    });

    session.on("control", ({ from, msg }) => {
      const line = parseChatLine(msg);
      if (line) show({ line, sender: from.info.name, self: false }, `peer:${from.id}`);
    });

    // Opening the panel marks everything as read.
    new MutationObserver(() => {
      if (!panel.hidden) ui.setBadge("chat", unread.seen());
    }).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  },
};

// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { MAX_CHAT_TEXT } from "../gen/protocol";
import { chatFeature, chatLength, makeChatLine, newId, parseChatLine, renderEntry, Unread } from "./chat";
import type { CallUi } from "../call/view";
import type { ControlMessage, RemotePeer, Session } from "../call/session";

const line = (text: string) => ({ type: "chat" as const, id: "m1", from: "Ada", time: Date.UTC(2026, 0, 1, 9, 30), text });

describe("renderEntry", () => {
  it("shows markup as text and never builds elements from it", () => {
    const li = renderEntry({ line: line('<img src=x onerror="window.pwned=1">'), sender: "<b>Ada</b>", self: false });
    expect(li.querySelector("img")).toBeNull();
    expect(li.querySelector("b")).toBeNull();
    expect(li.querySelector(".chat-text")?.textContent).toBe('<img src=x onerror="window.pwned=1">');
    expect(li.querySelector(".chat-from")?.textContent).toBe("<b>Ada</b>");
  });

  it("marks our own lines and carries the time", () => {
    const li = renderEntry({ line: line("hi"), sender: "Bo", self: true });
    expect(li.classList.contains("self")).toBe(true);
    expect(li.querySelector(".chat-from")?.textContent).toBe("Bo (you)");
    expect(li.querySelector("time")?.getAttribute("datetime")).toBe("2026-01-01T09:30:00.000Z");
  });
});

describe("chat lines", () => {
  it("accepts well-formed lines only", () => {
    expect(parseChatLine(line("hello"))).toEqual(line("hello"));
    expect(parseChatLine({ type: "state" })).toBeNull();
    expect(parseChatLine({ ...line("x"), text: 5 } as unknown as ControlMessage)).toBeNull();
    expect(parseChatLine({ ...line("x"), time: "now" } as unknown as ControlMessage)).toBeNull();
    expect(parseChatLine({ ...line("x"), id: "" })).toBeNull();
    expect(parseChatLine(line("   "))).toBeNull();
    expect(parseChatLine(line("a".repeat(MAX_CHAT_TEXT)))).not.toBeNull();
    expect(parseChatLine(line("a".repeat(MAX_CHAT_TEXT + 1)))).toBeNull();
  });

  it("counts characters, not UTF-16 units, against the cap", () => {
    expect(chatLength("😀😀")).toBe(2);
    expect(parseChatLine(line("😀".repeat(MAX_CHAT_TEXT)))).not.toBeNull();
  });

  it("makes lines of trimmed text and refuses empty or overlong ones", () => {
    expect(makeChatLine("Ada", "  hi \n", 5, "id1")).toEqual({ type: "chat", id: "id1", from: "Ada", time: 5, text: "hi" });
    expect(makeChatLine("Ada", " \n ", 5)).toBeNull();
    expect(makeChatLine("Ada", "a".repeat(MAX_CHAT_TEXT + 1), 5)).toBeNull();
    expect(makeChatLine("Ada", "x", 5)?.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("makes UUIDs without randomUUID too (plain-http pages are not secure contexts)", () => {
    const original = crypto.randomUUID;
    try {
      Object.defineProperty(crypto, "randomUUID", { value: undefined, configurable: true });
      const id = newId();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(newId()).not.toBe(id);
    } finally {
      Object.defineProperty(crypto, "randomUUID", { value: original, configurable: true });
    }
  });

  it("counts unread lines only while the panel is closed", () => {
    const u = new Unread();
    expect(u.arrived(false)).toBe(1);
    expect(u.arrived(false)).toBe(2);
    expect(u.arrived(true)).toBe(2);
    expect(u.seen()).toBe(0);
    expect(u.arrived(false)).toBe(1);
  });
});

describe("chat panel", () => {
  function setup() {
    const handlers: ((d: { from: RemotePeer; msg: ControlMessage }) => void)[] = [];
    const sent: ControlMessage[] = [];
    const badges: number[] = [];
    let open = false;
    const session = {
      opts: { name: "Ada", room: "r" },
      on: (event: string, h: (d: { from: RemotePeer; msg: ControlMessage }) => void) => {
        if (event === "control") handlers.push(h);
        return () => undefined;
      },
      sendControl: (msg: ControlMessage) => sent.push(msg),
    } as unknown as Session;
    const ui = { setBadge: (_: string, n: number) => badges.push(n), isOpen: () => open, notify: () => undefined } as unknown as CallUi;
    const panel = document.createElement("section");
    panel.hidden = true;
    document.body.append(panel);
    chatFeature.mount(session, panel, ui);
    const bo = { id: 2, info: { id: 2, name: "Bo", role: "browser" } } as unknown as RemotePeer;
    const receive = (msg: ControlMessage) => handlers.forEach((h) => h({ from: bo, msg }));
    return { panel, sent, badges, receive, setOpen: (v: boolean) => (open = v) };
  }

  it("sends what is typed, shows it as ours, and shows others' lines with their announced name", () => {
    const { panel, sent, receive } = setup();
    const box = panel.querySelector("textarea[aria-label='Message']") as HTMLTextAreaElement;
    box.value = "<img src=x onerror=alert(1)>";
    (panel.querySelector("button[aria-label='Send']") as HTMLButtonElement).click();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ type: "chat", from: "Ada", text: "<img src=x onerror=alert(1)>" });
    expect(box.value).toBe("");
    receive({ type: "chat", id: "b1", from: "Mallory", time: 1, text: "hello" });
    const lines = [...panel.querySelectorAll(".chat-line")];
    expect(lines.map((l) => l.querySelector(".chat-from")?.textContent)).toEqual(["Ada (you)", "Bo"]);
    expect(panel.querySelector("img")).toBeNull();
    // The same line twice is shown once; state messages are not chat.
    receive({ type: "chat", id: "b1", from: "Bo", time: 1, text: "hello" });
    receive({ type: "state", audio: true });
    expect(panel.querySelectorAll(".chat-line")).toHaveLength(2);
  });

  it("badges unread lines while closed and clears them when opened", async () => {
    const { panel, badges, receive, setOpen } = setup();
    receive({ type: "chat", id: "1", from: "Bo", time: 1, text: "one" });
    receive({ type: "chat", id: "2", from: "Bo", time: 2, text: "two" });
    expect(badges).toEqual([1, 2]);
    setOpen(true);
    panel.hidden = false;
    await new Promise((r) => setTimeout(r, 0));
    expect(badges.at(-1)).toBe(0);
    receive({ type: "chat", id: "3", from: "Bo", time: 3, text: "three" });
    expect(badges.at(-1)).toBe(0);
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ClientMessage, ServerMessage } from "./gen/protocol";
import { Signaling } from "./signaling";

/** A WebSocket stand-in: records what is sent, lets the test deliver server messages. */
class FakeWs {
  static OPEN = 1;
  static last: FakeWs | null = null;
  readyState = 0;
  sent: ClientMessage[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeWs.last = this;
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientMessage);
  }
  close(): void {
    this.readyState = 3;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.();
  }
  deliver(msg: ServerMessage): void {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

const welcome: ServerMessage = { type: "welcome", protocol: 1, peerId: 5, serverTime: 0, iceServers: [{ urls: ["stun:x"] }], resumeToken: "r", resumed: false };

describe("Signaling", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal("WebSocket", FakeWs);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("joins its room after welcome", () => {
    const s = new Signaling({ url: "ws://x/ws", name: "Ada", room: "standup", webSocket: FakeWs as unknown as typeof WebSocket });
    s.start();
    const ws = FakeWs.last as FakeWs;
    ws.open();
    ws.deliver(welcome);
    expect(ws.sent.map((m) => m.type)).toEqual(["hello", "join"]);
    expect(s.iceServers).toEqual([{ urls: ["stun:x"] }]);
  });

  it("may start without a room and join one later, keeping the connection", () => {
    const seen: string[] = [];
    const s = new Signaling({ url: "ws://x/ws", name: "Ada", room: null, webSocket: FakeWs as unknown as typeof WebSocket });
    const off = s.listen({ onMessage: (m) => seen.push(m.type) });
    s.start();
    const ws = FakeWs.last as FakeWs;
    ws.open();
    ws.deliver(welcome);
    expect(s.ready).toBe(true);
    expect(ws.sent.map((m) => m.type)).toEqual(["hello"]);
    s.join("standup", "pw");
    expect(ws.sent.at(-1)).toEqual({ type: "join", room: "standup", password: "pw" });
    s.leaveRoom();
    expect(ws.sent.at(-1)).toEqual({ type: "leave" });
    expect(ws.readyState).toBe(1);
    off();
    ws.deliver({ type: "left", room: "standup" });
    expect(seen).toEqual(["welcome"]);
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ClientMessage, KioskState } from "../gen/protocol";
import { Pairing } from "./client";

const state: KioskState = { inCall: false, micMuted: false, cameraOff: false, volume: 0.5 };

function setup(connected = true) {
  const sent: ClientMessage[] = [];
  const events = { state: vi.fn(), ended: vi.fn() };
  const pairing = new Pairing((m) => (connected ? (sent.push(m), true) : false), events, 10_000);
  return { sent, events, pairing };
}

async function paired() {
  const s = setup();
  const outcome = s.pairing.pair("k7p 2xm");
  s.pairing.handle({ type: "pairAccepted", kiosk: 4, kioskName: "Room 4.01", expiresAt: 1 });
  await outcome;
  s.sent.length = 0;
  return s;
}

describe("Pairing", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends the normalized code and is accepted", async () => {
    const { sent, pairing } = setup();
    const outcome = pairing.pair("k7p 2xm");
    expect(sent).toEqual([{ type: "pair", code: "K7P2XM" }]);
    pairing.handle({ type: "pairAccepted", kiosk: 4, kioskName: "Room 4.01", expiresAt: 99 });
    expect(await outcome).toEqual({ ok: true, kiosk: 4, kioskName: "Room 4.01", expiresAt: 99 });
    expect(pairing.paired).toBe(true);
  });

  it("does not send a malformed code", async () => {
    const { sent, pairing } = setup();
    expect(await pairing.pair("K0P2XM")).toMatchObject({ ok: false, code: "malformed" });
    expect(sent).toEqual([]);
  });

  it("reports a typed refusal", async () => {
    const { pairing } = setup();
    const outcome = pairing.pair("K7P2XM");
    expect(pairing.handle({ type: "error", code: "codeExpired", message: "used" })).toBe(true);
    expect(await outcome).toEqual({ ok: false, code: "codeExpired", message: "used" });
    expect(pairing.paired).toBe(false);
  });

  it("gives up on a silent or absent server", async () => {
    const { pairing } = setup();
    const outcome = pairing.pair("K7P2XM");
    vi.advanceTimersByTime(10_000);
    expect(await outcome).toMatchObject({ ok: false, code: "noServer" });
    expect(await setup(false).pairing.pair("K7P2XM")).toMatchObject({ ok: false, code: "noServer" });
  });

  it("matches command results by id", async () => {
    const { sent, pairing } = await paired();
    const a = pairing.command({ kind: "present" });
    const b = pairing.command({ kind: "setMicMuted", muted: true });
    expect(sent).toEqual([
      { type: "command", id: 1, command: { kind: "present" } },
      { type: "command", id: 2, command: { kind: "setMicMuted", muted: true } },
    ]);
    pairing.handle({ type: "commandResult", id: 2, error: { code: "unavailable", message: "no microphone" } });
    pairing.handle({ type: "commandResult", id: 1, room: "room-4-01" });
    expect(await a).toEqual({ ok: true, room: "room-4-01" });
    expect(await b).toEqual({ ok: false, error: { code: "unavailable", message: "no microphone" } });
  });

  it("times a command out after 10 s", async () => {
    const { pairing } = await paired();
    const a = pairing.command({ kind: "leave" });
    vi.advanceTimersByTime(9_999);
    pairing.handle({ type: "commandResult", id: 99 });
    vi.advanceTimersByTime(1);
    expect(await a).toEqual({ ok: false, error: { code: "timeout", message: "" }, timedOut: true });
    // A late answer changes nothing.
    pairing.handle({ type: "commandResult", id: 1 });
  });

  it("fails a command the server refused before the kiosk saw it", async () => {
    const { pairing } = await paired();
    const a = pairing.command({ kind: "setVolume", volume: 3 });
    pairing.handle({ type: "error", code: "badRequest", message: "volume must be a number from 0 to 1" });
    expect(await a).toMatchObject({ ok: false, error: { code: "badRequest" } });
    const b = pairing.command({ kind: "leave" });
    pairing.handle({ type: "error", code: "notPaired", message: "no pairing" });
    expect(await b).toMatchObject({ ok: false, error: { code: "notPaired" } });
  });

  it("follows the kiosk's state and ends when told", async () => {
    const { pairing, events } = await paired();
    pairing.handle({ type: "kioskState", state });
    expect(events.state).toHaveBeenCalledWith(state);
    expect(pairing.state).toEqual(state);
    const pending = pairing.command({ kind: "leave" });
    pairing.handle({ type: "unpaired", peer: 4, reason: "kioskEnded" });
    expect(events.ended).toHaveBeenCalledWith("kioskEnded", "Room 4.01");
    expect(await pending).toMatchObject({ ok: false, error: { code: "notPaired" } });
    expect(pairing.paired).toBe(false);
    expect(await pairing.command({ kind: "leave" })).toMatchObject({ ok: false, error: { code: "notPaired" } });
  });

  it("unpairs from this side once", async () => {
    const { pairing, sent, events } = await paired();
    pairing.unpair();
    pairing.handle({ type: "unpaired", peer: 4, reason: "laptopLeft" });
    expect(sent).toEqual([{ type: "unpair" }]);
    expect(events.ended).toHaveBeenCalledTimes(1);
    expect(events.ended).toHaveBeenCalledWith("laptopLeft", "Room 4.01");
  });

  it("ends when a reconnect could not resume", async () => {
    const { pairing, events } = await paired();
    pairing.handle({ type: "welcome", protocol: 1, peerId: 9, serverTime: 0, iceServers: [], resumeToken: "t", resumed: true });
    expect(pairing.paired).toBe(true);
    pairing.handle({ type: "welcome", protocol: 1, peerId: 10, serverTime: 0, iceServers: [], resumeToken: "t", resumed: false });
    expect(events.ended).toHaveBeenCalledWith("connectionLost", "Room 4.01");
  });
});

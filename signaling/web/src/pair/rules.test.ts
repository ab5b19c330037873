import { describe, expect, it } from "vitest";
import type { KioskState } from "../gen/protocol";
import { besideKiosk, shouldSilence } from "./rules";

const kiosk = (room?: string): KioskState => ({ ...(room ? { room } : {}), inCall: room !== undefined, micMuted: false, cameraOff: false, volume: 1 });

describe("room-aware audio", () => {
  it("knows when the laptop shares the kiosk's call", () => {
    expect(besideKiosk("standup", kiosk("standup"))).toBe(true);
    expect(besideKiosk("standup", kiosk("other"))).toBe(false);
    expect(besideKiosk("standup", kiosk())).toBe(false);
    expect(besideKiosk(null, kiosk())).toBe(false);
    expect(besideKiosk("standup", null)).toBe(false);
  });

  it("silences once, when they come together", () => {
    expect(shouldSilence(false, true)).toBe(true);
    expect(shouldSilence(true, true)).toBe(false);
    expect(shouldSilence(true, false)).toBe(false);
    expect(shouldSilence(false, false)).toBe(false);
  });
});

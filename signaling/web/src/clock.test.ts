import { describe, expect, it } from "vitest";
import { ClockOffset } from "./clock";

describe("ClockOffset", () => {
  it("is zero before any sample", () => {
    expect(new ClockOffset().offset).toBe(0);
  });

  it("recovers a fixed offset from symmetric round trips", () => {
    const clock = new ClockOffset();
    // Server is 5000 ms ahead; one-way delay 10 ms.
    clock.add({ clientSend: 1000, serverTime: 6010, clientReceive: 1020 });
    expect(clock.offset).toBeCloseTo(5000, 6);
    expect(clock.serverNow(2000)).toBeCloseTo(7000, 6);
  });

  it("prefers fast samples over ones delayed by queueing", () => {
    const clock = new ClockOffset();
    for (let i = 0; i < 10; i++) {
      const t = i * 1000;
      // Fast, symmetric: true offset -300.
      clock.add({ clientSend: t, serverTime: t + 5 - 300, clientReceive: t + 10 });
    }
    // Slow samples whose return trip was queued for 400 ms skew the naive estimate.
    for (let i = 0; i < 4; i++) {
      const t = 20_000 + i * 1000;
      clock.add({ clientSend: t, serverTime: t + 5 - 300, clientReceive: t + 410 });
    }
    expect(clock.offset).toBeCloseTo(-300, 6);
    expect(clock.bestRtt).toBe(10);
  });

  it("ignores impossible samples", () => {
    const clock = new ClockOffset();
    clock.add({ clientSend: 100, serverTime: 50, clientReceive: 90 });
    clock.add({ clientSend: 100, serverTime: Number.NaN, clientReceive: 110 });
    expect(clock.offset).toBe(0);
  });
});

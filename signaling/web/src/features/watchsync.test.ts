import { describe, expect, it } from "vitest";
import type { WatchSnapshot, WatchState } from "../gen/protocol";
import {
  SyncController,
  VIDEO_TUNING,
  YOUTUBE_TUNING,
  describeSync,
  formatTime,
  nextState,
  nudgedRate,
  positionAt,
  sameSource,
} from "./watchsync";
import type { PlayerSample } from "./watchplayer";

const SRC = { kind: "url", url: "https://example.com/a.mp4" } as const;

function state(over: Partial<WatchState> = {}): WatchState {
  return { source: SRC, playing: true, position: 10, rate: 1, ...over };
}

function sample(over: Partial<PlayerSample> = {}): PlayerSample {
  return { now: 10_000, time: 10, paused: false, seeking: false, buffering: false, ended: false, duration: 60, rate: 1, ready: true, ...over };
}

/** A controller whose state change has been applied (the forced seek is behind it). */
function settled(tuning = VIDEO_TUNING): SyncController {
  const c = new SyncController(tuning);
  c.decide(state(), 10, sample({ now: 0 }));
  return c;
}

describe("positionAt", () => {
  const snap = (s: Partial<WatchState>, serverTime = 1000): WatchSnapshot => ({ state: state(s), serverTime });

  it("advances with server time while playing", () => {
    expect(positionAt(snap({}), 1000)).toBe(10);
    expect(positionAt(snap({}), 3500)).toBeCloseTo(12.5);
  });

  it("scales with the rate", () => {
    expect(positionAt(snap({ rate: 2 }), 3000)).toBeCloseTo(14);
    expect(positionAt(snap({ rate: 0.5 }), 5000)).toBeCloseTo(12);
  });

  it("stands still while paused", () => {
    expect(positionAt(snap({ playing: false }), 999_999)).toBe(10);
  });

  it("never goes back before the snapshot (server time ahead of our estimate)", () => {
    expect(positionAt(snap({}), 500)).toBe(10);
  });
});

describe("nextState", () => {
  const current: WatchSnapshot = { state: state({ position: 20, rate: 1.5 }), serverTime: 1000 };

  it("play, pause and speed keep the place on the timeline at arrival", () => {
    expect(nextState(current, 3000, { play: false })).toEqual({ source: SRC, playing: false, position: 23, rate: 1.5 });
    expect(nextState(current, 3000, { rate: 1 })).toEqual({ source: SRC, playing: true, position: 23, rate: 1 });
    const paused: WatchSnapshot = { state: state({ playing: false, position: 7 }), serverTime: 1000 };
    expect(nextState(paused, 9000, { play: true })).toEqual({ source: SRC, playing: true, position: 7, rate: 1 });
  });

  it("a seek sets the position and keeps playing", () => {
    expect(nextState(current, 3000, { seek: 5 })).toEqual({ source: SRC, playing: true, position: 5, rate: 1.5 });
  });

  it("a new source starts paused at its start", () => {
    const yt = { kind: "youtube", videoId: "dQw4w9WgXcQ" } as const;
    expect(nextState(current, 3000, { source: yt, seek: 42, rate: 1 })).toEqual({ source: yt, playing: false, position: 42, rate: 1 });
    expect(nextState(null, 0, { source: yt })).toEqual({ source: yt, playing: false, position: 0, rate: 1 });
    expect(nextState(current, 3000, { source: null })).toEqual({ source: null, playing: false, position: 0, rate: 1.5 });
  });

  it("keeps values within what the server accepts", () => {
    expect(nextState(current, 3000, { seek: -3 }).position).toBe(0);
    expect(nextState(current, 3000, { seek: Number.NaN }).position).toBe(0);
    expect(nextState(current, 3000, { rate: 10 }).rate).toBe(4);
    expect(nextState(current, 3000, { rate: 0.1 }).rate).toBe(0.25);
  });
});

describe("nudgedRate", () => {
  it("slows down when ahead and speeds up when behind, proportionally", () => {
    expect(nudgedRate(1, 0.1, VIDEO_TUNING)).toBeCloseTo(0.95);
    expect(nudgedRate(1, -0.1, VIDEO_TUNING)).toBeCloseTo(1.05);
    expect(nudgedRate(2, 0.1, VIDEO_TUNING)).toBeCloseTo(1.9);
  });

  it("is bounded", () => {
    for (const drift of [0.21, 0.39, 5, 1e9]) {
      expect(nudgedRate(1, drift, VIDEO_TUNING)).toBeCloseTo(0.9);
      expect(nudgedRate(1, -drift, VIDEO_TUNING)).toBeCloseTo(1.1);
      expect(nudgedRate(1.5, -drift, VIDEO_TUNING)).toBeCloseTo(1.65);
    }
  });
});

describe("SyncController", () => {
  it("waits for the player to know the media", () => {
    const c = new SyncController();
    expect(c.decide(state(), 10, sample({ ready: false }))).toEqual({ status: "loading", target: 10, drift: null });
    // The state change is still applied once the player is ready.
    expect(c.decide(state(), 10.5, sample({ time: 10.5, paused: true })).seek).toBeDefined();
  });

  it("after a state change seeks (aiming ahead by the seek latency) and plays", () => {
    const c = new SyncController();
    const d = c.decide(state(), 12, sample({ time: 0, paused: true }));
    expect(d.status).toBe("seeking");
    expect(d.play).toBe(true);
    expect(d.seek).toBeCloseTo(12 + VIDEO_TUNING.initialSeekLatency);
  });

  it("after a state change does not seek a player already exactly there", () => {
    const c = new SyncController();
    c.stateChanged();
    const d = c.decide(state(), 12, sample({ time: 12.01 }));
    expect(d.seek).toBeUndefined();
    expect(d.status).toBe("in-sync");
  });

  it("does nothing when within the nudge threshold", () => {
    const c = settled();
    for (const drift of [0, 0.01, -0.03, 0.039]) {
      const d = c.decide(state(), 20, sample({ time: 20 + drift }));
      expect(d).toEqual({ status: "in-sync", target: 20, drift: expect.closeTo(drift, 9) as number });
    }
  });

  it("nudges the rate for small drifts, until within the stop threshold", () => {
    const c = settled();
    let d = c.decide(state(), 20, sample({ time: 20.1 }));
    expect(d.status).toBe("correcting");
    expect(d.seek).toBeUndefined();
    expect(d.rate).toBeCloseTo(0.95);
    // Still 30 ms ahead: under the start threshold but not yet within the stop one.
    d = c.decide(state(), 21, sample({ time: 21.03, rate: 0.95 }));
    expect(d.status).toBe("correcting");
    expect(d.rate).toBeCloseTo(0.985);
    // Within 20 ms: back to the base rate.
    d = c.decide(state(), 22, sample({ time: 22.01, rate: 0.985 }));
    expect(d.status).toBe("in-sync");
    expect(d.rate).toBe(1);
    // And a 30 ms drift alone does not start nudging again.
    d = c.decide(state(), 23, sample({ time: 23.03 }));
    expect(d.status).toBe("in-sync");
    expect(d.rate).toBeUndefined();
  });

  it("nudges around the shared rate, not around 1", () => {
    const c = settled();
    const d = c.decide(state({ rate: 2 }), 20, sample({ time: 19.9, rate: 2 }));
    expect(d.rate).toBeCloseTo(2 * 1.05);
  });

  it("seeks when far off, and not again within the cool-down", () => {
    const c = settled();
    let d = c.decide(state(), 20, sample({ now: 5000, time: 21 }));
    expect(d.status).toBe("seeking");
    expect(d.seek).toBeCloseTo(20 + c.seekLatency);
    // Still far off 250 ms later (the seek did not land well): nudge, do not seek.
    d = c.decide(state(), 20.25, sample({ now: 5250, time: 20.9 }));
    expect(d.seek).toBeUndefined();
    expect(d.rate).toBeCloseTo(1 - VIDEO_TUNING.maxNudge);
    d = c.decide(state(), 21.25, sample({ now: 6250, time: 21.9 }));
    expect(d.seek).toBeDefined();
  });

  it("learns the seek latency from where a seek landed", () => {
    const c = settled();
    const before = c.seekLatency;
    c.decide(state(), 20, sample({ now: 5000, time: 25 }));
    // Playback resumed 250 ms after the seek (the guess was 50 ms): 200 ms behind.
    c.decide(state(), 20.5, sample({ now: 5500, time: 20.5 + before - 0.25 }));
    expect(c.seekLatency).toBeCloseTo(before + 0.5 * (0.25 - before));
    // A later seek aims further ahead.
    const d = c.decide(state(), 30, sample({ now: 9000, time: 40 }));
    expect(d.seek).toBeCloseTo(30 + c.seekLatency);
  });

  it("keeps the latency estimate within bounds", () => {
    const c = settled();
    for (let i = 0; i < 20; i++) {
      c.decide(state(), 20, sample({ now: 10_000 * (i + 1), time: 25 }));
      c.decide(state(), 20, sample({ now: 10_000 * (i + 1) + 250, time: 20 + 1.4 }));
    }
    expect(c.seekLatency).toBeGreaterThanOrEqual(0);
    expect(c.seekLatency).toBeLessThanOrEqual(VIDEO_TUNING.maxSeekLatency);
  });

  it("does not measure while seeking or buffering", () => {
    const c = settled();
    expect(c.decide(state(), 20, sample({ time: 10, seeking: true }))).toEqual({ status: "seeking", target: 20, drift: null });
    expect(c.decide(state(), 20, sample({ time: 10, buffering: true }))).toEqual({ status: "buffering", target: 20, drift: null });
  });

  it("starts a paused player that should play", () => {
    const c = settled();
    const d = c.decide(state(), 20, sample({ now: 5000, time: 20, paused: true }));
    expect(d.play).toBe(true);
    expect(d.seek).toBeUndefined();
    const far = c.decide(state(), 30, sample({ now: 9000, time: 20, paused: true }));
    expect(far.play).toBe(true);
    expect(far.seek).toBeDefined();
  });

  it("when paused: pauses and seeks to the exact position", () => {
    const c = new SyncController();
    const d = c.decide(state({ playing: false, position: 33.3 }), 33.3, sample({ time: 33.1 }));
    expect(d).toMatchObject({ status: "paused", play: false, seek: 33.3 });
    expect(d.drift).toBeCloseTo(-0.2);
    // There, and paused: nothing more to do.
    expect(c.decide(state({ playing: false, position: 33.3 }), 33.3, sample({ time: 33.3, paused: true }))).toEqual({ status: "paused", target: 33.3, drift: 0 });
    // Off by more than the tolerance: seek again.
    expect(c.decide(state({ playing: false, position: 33.3 }), 33.3, sample({ time: 33.5, paused: true })).seek).toBe(33.3);
  });

  it("when paused: restores the base rate after a nudge", () => {
    const c = settled();
    c.decide(state(), 20, sample({ time: 20.1 }));
    const d = c.decide(state({ playing: false, position: 20 }), 20, sample({ time: 20, rate: 0.95, paused: true }));
    expect(d.rate).toBe(1);
  });

  it("follows a rate change at once", () => {
    const c = settled();
    c.stateChanged();
    const d = c.decide(state({ rate: 1.5 }), 20, sample({ time: 20 }));
    expect(d.rate).toBe(1.5);
    expect(d.seek).toBeUndefined();
  });

  it("clamps the target to the duration and lets the end play out", () => {
    const c = settled();
    let d = c.decide(state(), 75, sample({ time: 59.8 }));
    expect(d.status).toBe("ended");
    expect(d.target).toBe(60);
    expect(d.seek).toBeUndefined();
    d = c.decide(state(), 75, sample({ time: 60, ended: true, paused: true }));
    expect(d).toEqual({ status: "ended", target: 60, drift: 0 });
    // Far behind the end: jump there.
    d = c.decide(state(), 75, sample({ time: 30 }));
    expect(d.seek).toBe(60);
  });

  it("restarts an ended player when the timeline moved back", () => {
    const c = settled();
    c.stateChanged();
    const d = c.decide(state({ position: 5 }), 5, sample({ time: 60, ended: true, paused: true }));
    expect(d.play).toBe(true);
    expect(d.seek).toBeCloseTo(5 + c.seekLatency);
  });

  it("with fixed rates (YouTube) only seeks", () => {
    const c = settled(YOUTUBE_TUNING);
    const d = c.decide(state(), 20, sample({ time: 20.3 }));
    expect(d.rate).toBeUndefined();
    expect(d.seek).toBeUndefined();
    expect(d.status).toBe("in-sync");
    expect(c.decide(state(), 20, sample({ now: 30_000, time: 20.6 })).seek).toBeDefined();
  });

  it("with fixed rates (YouTube) seeks again when a seek landed off, with the measured latency", () => {
    const c = settled(YOUTUBE_TUNING);
    c.stateChanged();
    // The forced seek of a new state, the player being 2 s behind...
    let d = c.decide(state(), 20, sample({ now: 10_000, time: 18 }));
    expect(d.seek).toBeCloseTo(20 + YOUTUBE_TUNING.initialSeekLatency);
    // ...lands 300 ms behind: under the seek threshold, but this player cannot nudge.
    d = c.decide(state(), 21, sample({ now: 11_000, time: 20.7 }));
    expect(d.seek).toBeUndefined(); // within the cool-down
    expect(d.status).toBe("correcting");
    expect(c.seekLatency).toBeCloseTo(0.45);
    d = c.decide(state(), 22.5, sample({ now: 12_500, time: 22.2 }));
    expect(d.seek).toBeCloseTo(22.5 + 0.45);
    // Landed within the settle threshold: done.
    d = c.decide(state(), 25, sample({ now: 15_000, time: 25.05 }));
    expect(d.seek).toBeUndefined();
    expect(d.status).toBe("in-sync");
    // A later drift under the seek threshold is left alone again.
    expect(c.decide(state(), 30, sample({ now: 30_000, time: 30.3 })).seek).toBeUndefined();
  });

  it("with fixed rates (YouTube) makes only a few extra seeks after a seek", () => {
    const c = settled(YOUTUBE_TUNING);
    c.stateChanged();
    c.decide(state(), 20, sample({ now: 10_000, time: 18 }));
    let seeks = 0;
    for (let i = 1; i <= 10; i++) {
      // Every seek lands 300 ms behind, however the latency guess moves.
      const d = c.decide(state(), 20 + i * 3, sample({ now: 10_000 + i * 3000, time: 20 + i * 3 - 0.3 }));
      if (d.seek !== undefined) seeks++;
    }
    expect(seeks).toBe(YOUTUBE_TUNING.maxSettleSeeks);
  });

  it("with a fine rate (<video>) nudges rather than seeking again after a seek", () => {
    const c = settled();
    c.stateChanged();
    c.decide(state(), 20, sample({ now: 10_000, time: 18 }));
    const d = c.decide(state(), 23, sample({ now: 13_000, time: 22.7 }));
    expect(d.seek).toBeUndefined();
    expect(d.rate).toBeCloseTo(1 + VIDEO_TUNING.maxNudge);
  });

  it("converges in a simulated playback with a seek latency and a clock error", () => {
    // A player that starts paused at 0 while the room is at 3 s, needs 120 ms to land a
    // seek, and whose clock runs 0.3 % fast: after one seek, nudges keep it within the
    // nudge threshold (plus one sampling period of clock error).
    const c = new SyncController();
    let local = 0;
    let rate = 1;
    let landing: { at: number; to: number } | null = null;
    let playing = false;
    let seeks = 0;
    const drifts: number[] = [];
    for (let step = 0; step < 200; step++) {
      const now = step * 250;
      const target = 3 + now / 1000;
      if (landing && now >= landing.at) {
        local = landing.to;
        landing = null;
      }
      const d = c.decide(state({ position: 3 }), target, sample({ now, time: local, paused: !playing, seeking: landing !== null, rate }));
      if (d.play) playing = true;
      if (d.rate !== undefined) rate = d.rate;
      if (d.seek !== undefined) {
        seeks++;
        landing = { at: now + 120, to: d.seek };
      }
      if (d.drift !== null && now > 15_000) drifts.push(d.drift);
      // 250 ms of playback; a seek in flight stalls it.
      if (playing && !landing) local += 0.25 * rate * 1.003;
    }
    expect(seeks).toBe(1);
    expect(drifts.length).toBeGreaterThan(100);
    expect(Math.max(...drifts.map(Math.abs))).toBeLessThan(VIDEO_TUNING.nudgeStart + 0.005);
  });
});

describe("helpers", () => {
  it("describes the sync", () => {
    expect(describeSync("in-sync", 0.012)).toBe("in sync ±12 ms");
    expect(describeSync("correcting", -0.25)).toBe("catching up (−250 ms)");
    expect(describeSync("paused", 0)).toBe("Paused");
    expect(describeSync("buffering", null)).toBe("Buffering…");
  });

  it("formats times", () => {
    expect(formatTime(0)).toBe("0:00");
    expect(formatTime(65.9)).toBe("1:05");
    expect(formatTime(3723)).toBe("1:02:03");
    expect(formatTime(Number.NaN)).toBe("0:00");
  });

  it("compares sources", () => {
    expect(sameSource(null, null)).toBe(true);
    expect(sameSource(SRC, { ...SRC })).toBe(true);
    expect(sameSource(SRC, null)).toBe(false);
    expect(sameSource({ kind: "youtube", videoId: "dQw4w9WgXcQ" }, { kind: "youtube", videoId: "dQw4w9WgXcQ" })).toBe(true);
    expect(sameSource({ kind: "youtube", videoId: "dQw4w9WgXcQ" }, SRC)).toBe(false);
  });
});

// Watch-together sync: where the shared video should be now, and what a local player
// must do to be there. Pure (no DOM, no timers): the view samples its player every
// ~250 ms and applies the decision.
//
// The server holds the room's WatchState with the server time it was set at; while
// playing, the position now is `position + (serverNow - serverTime) / 1000 * rate`.
// Every player, kiosks included, follows that one timeline:
// - far off (more than `seekThreshold`, or just after a state change) → seek, aiming
//   ahead by the measured seek latency so playback resumes on the timeline;
// - slightly off (more than `nudgeStart`) → play a little faster or slower, by an amount
//   proportional to the drift and bounded by `maxNudge`, until within `nudgeStop`;
// - a player that only takes a few fixed rates (YouTube) cannot be nudged: right after a
//   seek, while it landed further off than `settleThreshold`, it seeks again with the
//   latency it has just measured (at most `maxSettleSeeks` times in a row);
// - paused → pause and seek to the exact position.

import type { VideoSource, WatchSnapshot, WatchState } from "../gen/protocol";
import type { PlayerSample } from "./watchplayer";
import { isYouTubeHost, parseYouTube } from "./youtube";

/** Playback rates offered in the UI. */
export const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2] as const;

/** The server's accepted range of rates (`WATCH_RATE_RANGE` in portal-proto). */
export const RATE_RANGE: readonly [number, number] = [0.25, 4];

/** Longest direct URL the server accepts (`MAX_VIDEO_URL_LEN`). */
export const MAX_VIDEO_URL_LEN = 2048;

/** Where the shared video stands at `serverNow` (ms, server clock), in seconds. */
export function positionAt(snapshot: WatchSnapshot, serverNow: number): number {
  const { state, serverTime } = snapshot;
  if (!state.playing) return state.position;
  // A snapshot stamped "in the future" (clock estimate still settling) counts as now.
  const elapsed = Math.max(0, serverNow - serverTime);
  return state.position + (elapsed / 1000) * state.rate;
}

/**
 * The state to send for a user's action, from the current snapshot: every action sends
 * the full state. `arrival` is the server time at which the server will stamp it
 * (serverNow plus the one-way latency), so a playing video keeps its place.
 */
export function nextState(
  current: WatchSnapshot | null,
  arrival: number,
  change: { play?: boolean; seek?: number; rate?: number; source?: VideoSource | null },
): WatchState {
  const base: WatchState = current?.state ?? { source: null, playing: false, position: 0, rate: 1 };
  const position = current ? positionAt(current, arrival) : 0;
  const next: WatchState = { ...base, position };
  if (change.source !== undefined) {
    next.source = change.source;
    next.position = 0;
    next.playing = false;
  }
  if (change.play !== undefined) next.playing = change.play;
  if (change.seek !== undefined) next.position = change.seek;
  if (change.rate !== undefined) next.rate = change.rate;
  next.position = Math.max(0, Number.isFinite(next.position) ? next.position : 0);
  next.rate = clamp(Number.isFinite(next.rate) ? next.rate : 1, RATE_RANGE[0], RATE_RANGE[1]);
  return next;
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

export interface SyncTuning {
  /** Seek when further off than this, in seconds. */
  seekThreshold: number;
  /** Start nudging the rate when further off than this. */
  nudgeStart: number;
  /** Stop nudging (back to the base rate) when within this. */
  nudgeStop: number;
  /** Rate change per second of drift, as a fraction of the base rate. */
  gain: number;
  /** Largest rate change, as a fraction of the base rate. */
  maxNudge: number;
  /** When paused, seek again if further off than this. */
  pausedTolerance: number;
  /** False for players that only take a few fixed rates (YouTube): seek only. */
  fineRate: boolean;
  /** No second seek within this many ms of a seek (unless the state changed). */
  seekCooldown: number;
  /** After a seek that landed further off than this, seek again (players without nudging). */
  settleThreshold: number;
  /** Most such extra seeks after one seek; 0 turns them off. */
  maxSettleSeeks: number;
  /** First guess of the time from a seek to playback running again, in seconds. */
  initialSeekLatency: number;
  maxSeekLatency: number;
}

export const VIDEO_TUNING: SyncTuning = {
  seekThreshold: 0.4,
  nudgeStart: 0.04,
  nudgeStop: 0.02,
  gain: 0.5,
  maxNudge: 0.1,
  pausedTolerance: 0.01,
  fineRate: true,
  seekCooldown: 1000,
  // Nudging takes care of where a seek lands.
  settleThreshold: 0.4,
  maxSettleSeeks: 0,
  initialSeekLatency: 0.05,
  maxSeekLatency: 1.5,
};

export const YOUTUBE_TUNING: SyncTuning = {
  ...VIDEO_TUNING,
  seekThreshold: 0.5,
  pausedTolerance: 0.05,
  fineRate: false,
  seekCooldown: 2500,
  settleThreshold: 0.1,
  maxSettleSeeks: 3,
  initialSeekLatency: 0.3,
  maxSeekLatency: 3,
};

export type SyncStatus = "loading" | "seeking" | "buffering" | "in-sync" | "correcting" | "paused" | "ended";

export interface SyncDecision {
  status: SyncStatus;
  /** Where the player should be now (clamped to the duration), in seconds. */
  target: number;
  /** local - target in seconds, when it could be measured this time. */
  drift: number | null;
  /** Seek to this position. */
  seek?: number;
  /** Set this rate. */
  rate?: number;
  /** true: start playing; false: pause. */
  play?: boolean;
}

/** The playback rate that removes `drift` (local - target) gradually, bounded. */
export function nudgedRate(base: number, drift: number, tuning: Pick<SyncTuning, "gain" | "maxNudge">): number {
  return base * (1 - clamp(drift * tuning.gain, -tuning.maxNudge, tuning.maxNudge));
}

/**
 * Decides, sample by sample, how a player follows the shared timeline. Keeps the few
 * things that need memory: whether a state change is still to be applied, whether the
 * rate is being nudged, and an estimate of how long a seek takes to land.
 */
export class SyncController {
  /** Seconds from issuing a seek to playback running again (measured). */
  seekLatency: number;
  private force = true;
  private nudging = false;
  private lastSeekAt = -Infinity;
  /** The next measured drift tells how well the last seek's latency guess was. */
  private calibrate = false;
  /** Since the last seek the player has not been within `settleThreshold`. */
  private settling = false;
  /** Extra seeks made since the last regular one. */
  private settleSeeks = 0;

  constructor(readonly tuning: SyncTuning = VIDEO_TUNING) {
    this.seekLatency = tuning.initialSeekLatency;
  }

  /** A new state arrived: the next decision lines the player up exactly. */
  stateChanged(): void {
    this.force = true;
  }

  decide(state: WatchState, targetNow: number, s: PlayerSample): SyncDecision {
    const t = this.tuning;
    const base = state.rate;
    const known = Number.isFinite(s.duration) && s.duration > 0;
    const target = known ? Math.min(targetNow, s.duration) : targetNow;
    const out: SyncDecision = { status: "loading", target, drift: null };
    if (!s.ready) return out;
    const setRate = (r: number) => {
      if (Math.abs(s.rate - r) > 1e-9) out.rate = r;
    };

    if (!state.playing) {
      this.nudging = false;
      this.calibrate = false;
      this.settling = false;
      out.status = "paused";
      if (!s.paused) out.play = false;
      setRate(base);
      if (s.seeking && !this.force) return out;
      out.drift = s.time - target;
      if (this.force || Math.abs(out.drift) > t.pausedTolerance) {
        out.seek = target;
        this.lastSeekAt = s.now;
      }
      this.force = false;
      return out;
    }

    // Playing, and the shared timeline is at (or past) the end.
    if (known && targetNow >= s.duration - 0.05) {
      this.force = false;
      this.nudging = false;
      this.calibrate = false;
      this.settling = false;
      out.status = "ended";
      setRate(base);
      const drift = s.time - target;
      out.drift = s.ended ? 0 : drift;
      // Let a player that is just behind play out; one far behind jumps to the end.
      if (!s.ended && !s.seeking && Math.abs(drift) > t.seekThreshold) out.seek = target;
      return out;
    }

    if (this.force) {
      this.force = false;
      this.nudging = false;
      setRate(base);
      if (s.paused || s.ended) out.play = true;
      const drift = s.seeking || s.buffering || s.paused ? null : s.time - target;
      out.drift = drift;
      if (drift === null || Math.abs(drift) > t.nudgeStop) return this.seekTo(out, target, base, s.now);
      this.settling = false;
      out.status = "in-sync";
      return out;
    }

    if (s.paused || s.ended) {
      // Should be playing: start again (seeking first if a seek is needed).
      out.play = true;
      out.status = "buffering";
      const far = s.ended || Math.abs(s.time - target) > t.seekThreshold;
      if (far && !s.seeking && s.now - this.lastSeekAt >= t.seekCooldown) return this.seekTo(out, target, base, s.now);
      return out;
    }
    if (s.seeking) {
      out.status = "seeking";
      return out;
    }
    if (s.buffering) {
      out.status = "buffering";
      return out;
    }

    const drift = s.time - target;
    out.drift = drift;
    if (this.calibrate) {
      this.calibrate = false;
      // drift = (guess - actual latency) * rate: move the guess halfway to the actual.
      if (Math.abs(drift) < t.maxSeekLatency * base) {
        const actual = this.seekLatency - drift / base;
        this.seekLatency = clamp(this.seekLatency + 0.5 * (actual - this.seekLatency), 0, t.maxSeekLatency);
      }
    }
    const cooled = s.now - this.lastSeekAt >= t.seekCooldown;
    if (Math.abs(drift) > t.seekThreshold && cooled) {
      this.nudging = false;
      setRate(base);
      return this.seekTo(out, target, base, s.now);
    }
    if (this.settling) {
      if (Math.abs(drift) <= t.settleThreshold || this.settleSeeks >= t.maxSettleSeeks) this.settling = false;
      else if (cooled) {
        this.settleSeeks++;
        setRate(base);
        return this.seekTo(out, target, base, s.now, true);
      } else {
        out.status = "correcting";
        setRate(base);
        return out;
      }
    }
    if (t.fineRate) {
      const limit = this.nudging ? t.nudgeStop : t.nudgeStart;
      if (Math.abs(drift) > limit) {
        this.nudging = true;
        out.status = "correcting";
        setRate(nudgedRate(base, drift, t));
        return out;
      }
    }
    this.nudging = false;
    out.status = Math.abs(drift) > t.seekThreshold ? "correcting" : "in-sync";
    setRate(base);
    return out;
  }

  private seekTo(out: SyncDecision, target: number, base: number, now: number, settle = false): SyncDecision {
    out.status = "seeking";
    out.seek = target + this.seekLatency * base;
    this.lastSeekAt = now;
    this.calibrate = true;
    if (!settle) this.settleSeeks = 0;
    this.settling = this.tuning.maxSettleSeeks > 0;
    return out;
  }
}

/** "in sync ±12 ms", "paused", ... for the status line. */
export function describeSync(status: SyncStatus, drift: number | null): string {
  switch (status) {
    case "loading":
      return "Loading…";
    case "seeking":
      return "Catching up…";
    case "buffering":
      return "Buffering…";
    case "paused":
      return "Paused";
    case "ended":
      return "Ended";
    case "correcting":
    case "in-sync": {
      if (drift === null) return status === "in-sync" ? "In sync" : "Catching up…";
      const ms = Math.round(Math.abs(drift) * 1000);
      const sign = drift > 0 ? "+" : drift < 0 ? "−" : "±";
      return status === "in-sync" ? `in sync ±${ms} ms` : `catching up (${sign}${ms} ms)`;
    }
  }
}

/** "1:05", "1:02:03" */
export function formatTime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "0:00";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** Two sources are the same video. */
export function sameSource(a: VideoSource | null, b: VideoSource | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.kind === "youtube" && b.kind === "youtube") return a.videoId === b.videoId;
  if (a.kind === "url" && b.kind === "url") return a.url === b.url;
  return false;
}

/**
 * What the "Video URL" box holds: a YouTube link in any common form (with its start
 * time) or a direct http(s) URL of a video file. Null when it is neither, including a
 * YouTube link without a valid video id.
 */
export function parseVideoInput(input: string): { source: VideoSource; start: number } | null {
  const text = input.trim();
  if (!text || /[\s\u0000-\u001f\u007f]/.test(text)) return null;
  const yt = parseYouTube(text);
  if (yt) return { source: { kind: "youtube", videoId: yt.videoId }, start: yt.start };
  // A bare "host/path" means https.
  const withScheme = /^[a-z][a-z0-9+.-]*:/i.test(text) ? text : /^[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?(\/|$)/i.test(text) ? `https://${text}` : null;
  if (withScheme === null) return null;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return null;
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname || url.username || url.password) return null;
  if (isYouTubeHost(url.hostname)) return null;
  if (url.href.length > MAX_VIDEO_URL_LEN) return null;
  return { source: { kind: "url", url: url.href }, start: 0 };
}

// YouTube links and the IFrame Player API behind the `WatchPlayer` interface.
//
// The API script (https://www.youtube.com/iframe_api) is loaded only when a YouTube
// source is set. Its quirks: no time events (the sync loop polls getCurrentTime),
// setPlaybackRate only takes one of getAvailablePlaybackRates(), and error 153 when the
// page has no http(s) origin. Nothing here touches the DOM at import time.

import type { PlayerSample, WatchPlayer } from "./watchplayer";

const ID = /^[A-Za-z0-9_-]{11}$/;
const HOSTS = new Set(["youtube.com", "youtube-nocookie.com", "youtu.be"]);

/** True for youtube.com, youtu.be, youtube-nocookie.com and their www./m./music. hosts. */
export function isYouTubeHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^(www|m|music|gaming)\./, "");
  return HOSTS.has(h);
}

/**
 * The video id and start time (seconds) of a YouTube link: watch?v=, youtu.be/, /embed/,
 * /shorts/, /live/, /v/, with or without scheme, with t= or start= (also in the
 * fragment). Null for anything else, including ids that are not exactly 11 characters
 * of [A-Za-z0-9_-].
 */
export function parseYouTube(input: string): { videoId: string; start: number } | null {
  let text = input.trim();
  if (!text) return null;
  if (!/^[a-z][a-z0-9+.-]*:/i.test(text)) text = `https://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  if (!isYouTubeHost(url.hostname)) return null;
  const host = url.hostname.toLowerCase().replace(/^(www|m|music|gaming)\./, "");
  const segments = url.pathname.split("/").filter(Boolean);
  let id: string | null = null;
  if (host === "youtu.be") {
    id = segments[0] ?? null;
  } else if (segments[0] === "watch" && segments.length === 1) {
    id = url.searchParams.get("v");
  } else if (["embed", "shorts", "live", "v", "e"].includes(segments[0] ?? "") && segments.length >= 2) {
    id = segments[1];
  }
  if (id === null || !ID.test(id)) return null;
  const hash = new URLSearchParams(url.hash.replace(/^#/, ""));
  const t = url.searchParams.get("t") ?? url.searchParams.get("start") ?? hash.get("t") ?? hash.get("start");
  return { videoId: id, start: t === null ? 0 : parseStart(t) };
}

/** "90", "90s", "1m30s", "1h2m3s", "2m" → seconds; anything else → 0. */
export function parseStart(text: string): number {
  const t = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(t);
  if (!m || t === "") return 0;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** The available rate closest to `wanted` (1 when the player lists none). */
export function pickRate(wanted: number, available: readonly number[]): number {
  const list = available.filter((r) => Number.isFinite(r) && r > 0);
  if (list.length === 0) return 1;
  return list.reduce((best, r) => (Math.abs(r - wanted) < Math.abs(best - wanted) ? r : best));
}

// The parts of the IFrame API used here.
export interface YTPlayer {
  playVideo(): void;
  pauseVideo(): void;
  seekTo(seconds: number, allowSeekAhead: boolean): void;
  getCurrentTime(): number;
  getDuration(): number;
  getPlayerState(): number;
  getPlaybackRate(): number;
  setPlaybackRate(rate: number): void;
  getAvailablePlaybackRates(): number[];
  mute(): void;
  unMute(): void;
  isMuted(): boolean;
  destroy(): void;
}

export interface YTPlayerOptions {
  videoId: string;
  width?: string | number;
  height?: string | number;
  playerVars?: Record<string, string | number>;
  events?: {
    onReady?: (e: { target: YTPlayer }) => void;
    onStateChange?: (e: { data: number; target: YTPlayer }) => void;
    onError?: (e: { data: number; target: YTPlayer }) => void;
  };
}

export interface YTNamespace {
  Player: new (element: HTMLElement, options: YTPlayerOptions) => YTPlayer;
}

export const YT_STATE = { unstarted: -1, ended: 0, playing: 1, paused: 2, buffering: 3, cued: 5 } as const;

export const IFRAME_API_URL = "https://www.youtube.com/iframe_api";

/** How the API script reaches the page; replaced in tests. */
export interface YouTubeEnv {
  /** `window.YT` if the API is there. */
  current(): YTNamespace | undefined;
  /** Registers `window.onYouTubeIframeAPIReady`. */
  onReady(callback: () => void): void;
  /** Adds the script tag; returns a function that removes it. */
  insertScript(src: string, onError: () => void): () => void;
}

type YTWindow = { YT?: YTNamespace & { loaded?: number }; onYouTubeIframeAPIReady?: () => void };

export function browserEnv(): YouTubeEnv {
  const w = window as unknown as YTWindow;
  return {
    current: () => (w.YT && typeof w.YT.Player === "function" ? w.YT : undefined),
    onReady: (callback) => {
      const previous = w.onYouTubeIframeAPIReady;
      w.onYouTubeIframeAPIReady = () => {
        previous?.();
        callback();
      };
    },
    insertScript: (src, onError) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onerror = () => onError();
      document.head.append(script);
      return () => script.remove();
    },
  };
}

let pending: Promise<YTNamespace> | null = null;

/**
 * Loads the IFrame API once. Rejects with a readable message when the script cannot be
 * fetched (offline, blocked by an extension or a content policy) or does not start in
 * time; a later call tries again.
 */
export function loadYouTubeApi(env: YouTubeEnv = browserEnv(), timeoutMs = 15_000): Promise<YTNamespace> {
  const ready = env.current();
  if (ready) return Promise.resolve(ready);
  if (pending) return pending;
  const attempt = new Promise<YTNamespace>((resolve, reject) => {
    let done = false;
    let remove = () => {};
    const finish = (error: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const yt = env.current();
      if (error === null && yt) return resolve(yt);
      remove();
      reject(new Error(error ?? "The YouTube player did not start."));
    };
    const timer = setTimeout(() => finish("The YouTube player could not be loaded (timed out). Check the connection or any content blocker."), timeoutMs);
    env.onReady(() => finish(null));
    remove = env.insertScript(IFRAME_API_URL, () => finish("The YouTube player could not be loaded. Check the connection or any content blocker."));
  });
  pending = attempt;
  attempt.catch(() => {
    if (pending === attempt) pending = null;
  });
  return attempt;
}

/** For tests: forget a loaded or loading API. */
export function resetYouTubeApi(): void {
  pending = null;
}

/** What an IFrame player error code means, for the user. */
export function describeYouTubeError(code: number): string {
  switch (code) {
    case 2:
      return "YouTube says the video id is not valid.";
    case 5:
      return "YouTube could not play this video in the browser's HTML5 player.";
    case 100:
      return "This YouTube video was not found, or it is private.";
    case 101:
    case 150:
      return "The owner of this YouTube video does not allow it to be played on other sites.";
    case 153:
      return "YouTube refused the player: the page must be opened over http(s).";
    default:
      return `The YouTube player reported error ${code}.`;
  }
}

export interface YouTubeCallbacks {
  /** A player error, as a readable message. */
  onError?(message: string): void;
  /** The player changed state (playing, paused, ...). */
  onChange?(): void;
}

/** A YouTube IFrame player driven by the sync loop. */
export class YouTubePlayer implements WatchPlayer {
  private ready = false;
  private seekPending = false;
  private seekTimer: ReturnType<typeof setTimeout> | null = null;
  private playing: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void; timer: ReturnType<typeof setTimeout> } | null = null;
  private readonly player: YTPlayer;

  private constructor(
    yt: YTNamespace,
    element: HTMLElement,
    videoId: string,
    onReady: () => void,
    private readonly callbacks: YouTubeCallbacks,
    private readonly playTimeoutMs: number,
  ) {
    this.player = new yt.Player(element, {
      videoId,
      width: "100%",
      height: "100%",
      playerVars: {
        controls: 0,
        disablekb: 1,
        playsinline: 1,
        rel: 0,
        enablejsapi: 1,
        ...(typeof location !== "undefined" && /^https?:$/.test(location.protocol) ? { origin: location.origin } : {}),
      },
      events: {
        onReady: () => {
          this.ready = true;
          onReady();
        },
        onStateChange: (e) => this.onState(e.data),
        onError: (e) => {
          this.settlePlay(new Error(describeYouTubeError(e.data)));
          this.callbacks.onError?.(describeYouTubeError(e.data));
        },
      },
    });
  }

  /** Makes a player in `element` (replaced by the iframe); resolves when it is ready. */
  static create(
    yt: YTNamespace,
    element: HTMLElement,
    videoId: string,
    callbacks: YouTubeCallbacks = {},
    { readyTimeoutMs = 20_000, playTimeoutMs = 4_000 } = {},
  ): Promise<YouTubePlayer> {
    return new Promise((resolve, reject) => {
      let player: YouTubePlayer | null = null;
      const timer = setTimeout(() => {
        player?.destroy();
        reject(new Error("The YouTube player did not get ready in time."));
      }, readyTimeoutMs);
      try {
        player = new YouTubePlayer(
          yt,
          element,
          videoId,
          () => {
            clearTimeout(timer);
            resolve(player as YouTubePlayer);
          },
          callbacks,
          playTimeoutMs,
        );
      } catch (e) {
        clearTimeout(timer);
        reject(new Error(`The YouTube player could not be created: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  }

  get muted(): boolean {
    return this.call(() => this.player.isMuted(), false);
  }

  sample(now: number): PlayerSample {
    const state = this.call(() => this.player.getPlayerState(), YT_STATE.unstarted);
    const duration = this.call(() => this.player.getDuration(), 0);
    return {
      now,
      time: this.call(() => this.player.getCurrentTime(), 0),
      paused: this.playing === null && state !== YT_STATE.playing && state !== YT_STATE.buffering,
      seeking: this.seekPending,
      buffering: state === YT_STATE.buffering,
      ended: state === YT_STATE.ended,
      duration: duration > 0 ? duration : NaN,
      rate: this.call(() => this.player.getPlaybackRate(), 1),
      ready: this.ready,
    };
  }

  seek(seconds: number): void {
    this.call(() => this.player.seekTo(Math.max(0, seconds), true), undefined);
    // No seek events: a seek is over when the player reports playing or paused again.
    this.seekPending = true;
    if (this.seekTimer) clearTimeout(this.seekTimer);
    this.seekTimer = setTimeout(() => (this.seekPending = false), 2000);
  }

  play(): Promise<void> {
    if (this.playing) return this.playing.promise;
    let resolve = () => {};
    let reject: (e: unknown) => void = () => {};
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // The API has no promise: a play that never starts was blocked (autoplay policy).
    const timer = setTimeout(() => this.settlePlay(new DOMException("The browser did not let the video start.", "NotAllowedError")), this.playTimeoutMs);
    this.playing = { promise, resolve, reject, timer };
    this.call(() => this.player.playVideo(), undefined);
    return promise;
  }

  pause(): void {
    this.settlePlay(new DOMException("Paused before playback started.", "AbortError"));
    this.call(() => this.player.pauseVideo(), undefined);
  }

  setRate(rate: number): number {
    const chosen = pickRate(rate, this.call(() => this.player.getAvailablePlaybackRates(), [1]));
    if (this.call(() => this.player.getPlaybackRate(), 1) !== chosen) this.call(() => this.player.setPlaybackRate(chosen), undefined);
    return chosen;
  }

  setMuted(muted: boolean): void {
    this.call(() => (muted ? this.player.mute() : this.player.unMute()), undefined);
  }

  destroy(): void {
    this.settlePlay(new DOMException("The player was closed.", "AbortError"));
    if (this.seekTimer) clearTimeout(this.seekTimer);
    this.call(() => this.player.destroy(), undefined);
  }

  private onState(state: number): void {
    if (state === YT_STATE.playing || state === YT_STATE.paused || state === YT_STATE.cued || state === YT_STATE.ended) this.seekPending = false;
    if (state === YT_STATE.playing || state === YT_STATE.buffering) this.settlePlay(null);
    this.callbacks.onChange?.();
  }

  private settlePlay(error: unknown): void {
    const p = this.playing;
    if (!p) return;
    this.playing = null;
    clearTimeout(p.timer);
    if (error === null) p.resolve();
    else p.reject(error);
  }

  /** The player's methods throw while its iframe is not attached; treat that as a default. */
  private call<T>(f: () => T, fallback: T): T {
    try {
      const v = f();
      return v === undefined || (typeof v === "number" && Number.isNaN(v)) ? fallback : v;
    } catch {
      return fallback;
    }
  }
}

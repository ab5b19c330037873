// What the watch-together sync loop needs from a local player, and what it reads back.
// Its own module so that the sync loop (watchsync.ts) and the players that implement it
// (the <video> player in watch.ts, the IFrame player in youtube.ts) all depend on it and
// not on each other.

/** What a player reports at one instant. */
export interface PlayerSample {
  /** Local time since the page started, in ms (for cool-downs). */
  now: number;
  /** The player's current position, in seconds. */
  time: number;
  paused: boolean;
  /** A seek has been issued and not completed. */
  seeking: boolean;
  /** Asked to play but waiting for data. */
  buffering: boolean;
  ended: boolean;
  /** Seconds; NaN or Infinity when unknown. */
  duration: number;
  /** The rate the player runs at right now (nudges included). */
  rate: number;
  /** The player knows the media well enough to seek. */
  ready: boolean;
}

/** A local player the sync loop can drive: the `<video>` element or the YouTube player. */
export interface WatchPlayer {
  sample(now: number): PlayerSample;
  seek(seconds: number): void;
  /** Rejects (a DOMException named NotAllowedError) when the browser blocks autoplay. */
  play(): Promise<void>;
  pause(): void;
  /** Sets the rate; returns the rate the player really uses. */
  setRate(rate: number): number;
  setMuted(muted: boolean): void;
  readonly muted: boolean;
  destroy(): void;
}

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  IFRAME_API_URL,
  YT_STATE,
  YouTubePlayer,
  describeYouTubeError,
  loadYouTubeApi,
  resetYouTubeApi,
  type YTNamespace,
  type YTPlayer,
  type YTPlayerOptions,
  type YouTubeEnv,
} from "./youtube";

/** A stand-in for the IFrame API: records calls, lets the test fire its events. */
class FakePlayer implements YTPlayer {
  static last: FakePlayer | null = null;
  state: number = YT_STATE.unstarted;
  time = 0;
  rate = 1;
  rates = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
  isMutedValue = false;
  calls: string[] = [];
  constructor(
    _el: HTMLElement,
    readonly options: YTPlayerOptions,
  ) {
    FakePlayer.last = this;
  }
  fire(kind: "ready" | "state" | "error", data = 0): void {
    if (kind === "ready") this.options.events?.onReady?.({ target: this });
    if (kind === "state") {
      this.state = data;
      this.options.events?.onStateChange?.({ data, target: this });
    }
    if (kind === "error") this.options.events?.onError?.({ data, target: this });
  }
  playVideo() {
    this.calls.push("play");
  }
  pauseVideo() {
    this.calls.push("pause");
  }
  seekTo(s: number) {
    this.calls.push(`seek ${s}`);
    this.time = s;
  }
  getCurrentTime() {
    return this.time;
  }
  getDuration() {
    return 212;
  }
  getPlayerState() {
    return this.state;
  }
  getPlaybackRate() {
    return this.rate;
  }
  setPlaybackRate(r: number) {
    this.calls.push(`rate ${r}`);
    this.rate = r;
  }
  getAvailablePlaybackRates() {
    return this.rates;
  }
  mute() {
    this.isMutedValue = true;
  }
  unMute() {
    this.isMutedValue = false;
  }
  isMuted() {
    return this.isMutedValue;
  }
  destroy() {
    this.calls.push("destroy");
  }
}

const YT: YTNamespace = { Player: FakePlayer };
const element = {} as HTMLElement;

async function readyPlayer(): Promise<{ player: YouTubePlayer; fake: FakePlayer; errors: string[] }> {
  const errors: string[] = [];
  const created = YouTubePlayer.create(YT, element, "dQw4w9WgXcQ", { onError: (m) => errors.push(m) }, { playTimeoutMs: 1000 });
  const fake = FakePlayer.last as FakePlayer;
  fake.fire("ready");
  return { player: await created, fake, errors };
}

describe("loadYouTubeApi", () => {
  beforeEach(() => {
    resetYouTubeApi();
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  function env(behaviour: "ready" | "error" | "silent"): YouTubeEnv & { scripts: string[]; removed: number } {
    let yt: YTNamespace | undefined;
    let ready: (() => void) | null = null;
    const e = {
      scripts: [] as string[],
      removed: 0,
      current: () => yt,
      onReady: (cb: () => void) => (ready = cb),
      insertScript: (src: string, onError: () => void) => {
        e.scripts.push(src);
        if (behaviour === "error") setTimeout(onError, 10);
        if (behaviour === "ready")
          setTimeout(() => {
            yt = YT;
            ready?.();
          }, 10);
        return () => e.removed++;
      },
    };
    return e;
  }

  it("loads the script once and resolves with the API", async () => {
    const e = env("ready");
    const a = loadYouTubeApi(e);
    const b = loadYouTubeApi(e);
    await vi.advanceTimersByTimeAsync(20);
    expect(await a).toBe(YT);
    expect(await b).toBe(YT);
    expect(e.scripts).toEqual([IFRAME_API_URL]);
    // Already there: no second script.
    expect(await loadYouTubeApi(e)).toBe(YT);
    expect(e.scripts).toHaveLength(1);
  });

  it("fails with a clear message when the script cannot be fetched, and can retry", async () => {
    const e = env("error");
    const p = loadYouTubeApi(e);
    const check = expect(p).rejects.toThrow(/could not be loaded/);
    await vi.advanceTimersByTimeAsync(20);
    await check;
    expect(e.removed).toBe(1);
    const again = loadYouTubeApi(e);
    const check2 = expect(again).rejects.toThrow(/could not be loaded/);
    await vi.advanceTimersByTimeAsync(20);
    await check2;
    expect(e.scripts).toHaveLength(2);
  });

  it("times out when the API never reports ready", async () => {
    const e = env("silent");
    const p = loadYouTubeApi(e, 5000);
    const check = expect(p).rejects.toThrow(/timed out/);
    await vi.advanceTimersByTimeAsync(5001);
    await check;
  });
});

describe("YouTubePlayer", () => {
  afterEach(() => vi.useRealTimers());

  it("reports the player's state to the sync loop", async () => {
    const { player, fake } = await readyPlayer();
    expect(fake.options.videoId).toBe("dQw4w9WgXcQ");
    expect(fake.options.playerVars).toMatchObject({ controls: 0, playsinline: 1, enablejsapi: 1 });
    fake.time = 12.5;
    fake.fire("state", YT_STATE.playing);
    expect(player.sample(7)).toEqual({ now: 7, time: 12.5, paused: false, seeking: false, buffering: false, ended: false, duration: 212, rate: 1, ready: true });
    fake.fire("state", YT_STATE.buffering);
    expect(player.sample(8).buffering).toBe(true);
    fake.fire("state", YT_STATE.paused);
    expect(player.sample(9).paused).toBe(true);
    fake.fire("state", YT_STATE.ended);
    expect(player.sample(9).ended).toBe(true);
  });

  it("sets only rates the player offers", async () => {
    const { player, fake } = await readyPlayer();
    expect(player.setRate(1.25)).toBe(1.25);
    expect(player.setRate(1.3)).toBe(1.25);
    fake.rates = [1];
    expect(player.setRate(1.5)).toBe(1);
    expect(fake.calls.filter((c) => c.startsWith("rate"))).toEqual(["rate 1.25", "rate 1"]);
  });

  it("counts a seek as in progress until the player settles", async () => {
    const { player, fake } = await readyPlayer();
    player.seek(30);
    expect(fake.calls).toContain("seek 30");
    expect(player.sample(0).seeking).toBe(true);
    fake.fire("state", YT_STATE.buffering);
    expect(player.sample(0).seeking).toBe(true);
    fake.fire("state", YT_STATE.playing);
    expect(player.sample(0).seeking).toBe(false);
  });

  it("play resolves when playback starts", async () => {
    const { player, fake } = await readyPlayer();
    const p = player.play();
    expect(player.sample(0).paused).toBe(false);
    fake.fire("state", YT_STATE.buffering);
    await expect(p).resolves.toBeUndefined();
  });

  it("play is rejected as NotAllowedError when playback never starts (autoplay blocked)", async () => {
    vi.useFakeTimers();
    const { player } = await readyPlayer();
    const p = player.play();
    const check = expect(p).rejects.toMatchObject({ name: "NotAllowedError" });
    await vi.advanceTimersByTimeAsync(1001);
    await check;
    expect(player.sample(0).paused).toBe(true);
  });

  it("reports player errors in words", async () => {
    const { fake, errors } = await readyPlayer();
    fake.fire("error", 150);
    expect(errors).toEqual(["The owner of this YouTube video does not allow it to be played on other sites."]);
    expect(describeYouTubeError(153)).toMatch(/http\(s\)/);
    expect(describeYouTubeError(100)).toMatch(/not found/);
  });

  it("survives a player whose methods throw", async () => {
    const { player, fake } = await readyPlayer();
    fake.getCurrentTime = () => {
      throw new Error("no iframe");
    };
    fake.getPlayerState = () => {
      throw new Error("no iframe");
    };
    expect(player.sample(0)).toMatchObject({ time: 0, paused: true });
    expect(() => player.seek(3)).not.toThrow();
  });

  it("rejects creation when the player never gets ready", async () => {
    vi.useFakeTimers();
    const p = YouTubePlayer.create(YT, element, "dQw4w9WgXcQ", {}, { readyTimeoutMs: 500 });
    const check = expect(p).rejects.toThrow(/did not get ready/);
    await vi.advanceTimersByTimeAsync(501);
    await check;
    expect(FakePlayer.last?.calls).toContain("destroy");
  });
});

// Watch together: everyone in the room sees the same video at the same moment.
//
// Server-authoritative: every action (load, play, pause, seek, speed) sends the room's
// full WatchState and nothing changes locally until the server broadcasts it back (the
// sender applies its own echo too). A sync loop then keeps the local player on the
// shared timeline (see watchsync.ts). Direct URLs play in a <video>; YouTube links in the
// IFrame player (youtube.ts), whose script loads only when a YouTube video is set.

import "./watch.css";
import type { PeerId, VideoSource, WatchSnapshot } from "../gen/protocol";
import type { CallUi, Feature } from "../call/view";
import type { Session } from "../call/session";
import { el, field } from "../dom";
import {
  SPEEDS,
  SyncController,
  VIDEO_TUNING,
  YOUTUBE_TUNING,
  describeSync,
  formatTime,
  nextState,
  parseVideoInput,
  positionAt,
  sameSource,
} from "./watchsync";
import type { PlayerSample, WatchPlayer } from "./watchplayer";
import { YouTubePlayer, loadYouTubeApi } from "./youtube";

/** How often the sync loop samples the player, in ms. */
const TICK_MS = 250;

/** What tests and diagnostics can read: the last measured drift (local - shared), in seconds. */
declare global {
  interface Window {
    portalWatchDrift?: number | null;
  }
}

/** A direct video URL in a <video> element. */
class VideoPlayer implements WatchPlayer {
  constructor(readonly video: HTMLVideoElement) {}

  get muted(): boolean {
    return this.video.muted;
  }

  sample(now: number): PlayerSample {
    const v = this.video;
    return {
      now,
      time: v.currentTime,
      paused: v.paused,
      seeking: v.seeking,
      buffering: !v.paused && !v.ended && v.readyState < HTMLMediaElement.HAVE_FUTURE_DATA,
      ended: v.ended,
      duration: v.duration,
      rate: v.playbackRate,
      ready: v.readyState >= HTMLMediaElement.HAVE_METADATA && !v.error,
    };
  }

  seek(seconds: number): void {
    const d = this.video.duration;
    this.video.currentTime = Number.isFinite(d) ? Math.min(Math.max(0, seconds), d) : Math.max(0, seconds);
  }

  play(): Promise<void> {
    return this.video.play();
  }

  pause(): void {
    this.video.pause();
  }

  setRate(rate: number): number {
    this.video.playbackRate = rate;
    return rate;
  }

  setMuted(muted: boolean): void {
    this.video.muted = muted;
  }

  destroy(): void {
    this.video.pause();
    this.video.removeAttribute("src");
    this.video.load();
    this.video.remove();
  }
}

function describeMediaError(video: HTMLVideoElement): string {
  const code = video.error?.code;
  switch (code) {
    case MediaError.MEDIA_ERR_NETWORK:
      return "The video stopped loading (network error).";
    case MediaError.MEDIA_ERR_DECODE:
      return "The video could not be decoded.";
    case MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED:
      return "This URL cannot be played here: it must point to an mp4 or webm video file that allows embedding.";
    default:
      return "The video could not be played.";
  }
}

export const watchFeature: Feature = {
  id: "watch",
  title: "Watch together",
  mount(session: Session, panel: HTMLElement, ui: CallUi): void {
    mountWatch(session, panel, ui);
  },
};

function mountWatch(session: Session, panel: HTMLElement, ui: CallUi): void {
  panel.classList.add("watch");

  // Loading a video.
  const urlInput = el("input", { type: "text", name: "video-url", inputMode: "url", autocomplete: "off", placeholder: "YouTube link or https://…/video.mp4" });
  const loadButton = el("button", { type: "submit" }, "Load video");
  const form = el("form", { className: "watch-load" }, field("Video URL", urlInput), loadButton);
  const formError = el("p", { className: "error", role: "alert" });

  // The player area.
  const stage = el("div", { className: "watch-stage" });
  const empty = el("p", { className: "watch-empty" }, "No video yet. Paste a YouTube link or a direct mp4/webm URL above.");
  const startButton = el("button", { type: "button", className: "watch-start", ariaLabel: "Start playback", hidden: true }, "Click to join playback");
  const frame = el("div", { className: "watch-frame" }, stage, empty, startButton);
  const message = el("p", { className: "watch-message", role: "status" });

  // Shared controls.
  const playButton = el("button", { type: "button", ariaLabel: "Play" }, "Play");
  const pauseButton = el("button", { type: "button", ariaLabel: "Pause" }, "Pause");
  const slider = el("input", { type: "range", min: "0", max: "0", step: "0.1", value: "0", ariaLabel: "Position" });
  const timeText = el("span", { className: "watch-time" }, "0:00 / 0:00");
  const speed = el("select", { name: "speed" }, ...SPEEDS.map((r) => el("option", { value: String(r), selected: r === 1 }, `${r}×`)));
  const speedField = field("Speed", speed);
  speedField.classList.add("watch-speed");
  // Local only.
  const muteButton = el("button", { type: "button", ariaLabel: "Mute video" }, "Mute video");
  muteButton.setAttribute("aria-pressed", "false");
  const fullButton = el("button", { type: "button", ariaLabel: "Video full screen" }, "Full screen");
  const closeButton = el("button", { type: "button", ariaLabel: "Close video" }, "Close video");
  const syncText = el("span", { className: "watch-sync" });
  const controls = el("div", { className: "watch-controls", role: "group", ariaLabel: "Playback" }, playButton, pauseButton, slider, timeText, speedField);
  const local = el("div", { className: "watch-controls" }, muteButton, fullButton, closeButton, syncText);
  panel.append(form, formError, frame, message, controls, local);

  let snapshot: (WatchSnapshot & { by?: PeerId }) | null = null;
  let player: WatchPlayer | null = null;
  let playerSource: VideoSource | null = null;
  let controller = new SyncController(VIDEO_TUNING);
  /** Bumped on every source change: late results of an older load are dropped. */
  let generation = 0;
  let dragging = false;
  let userMuted = false;
  let playAttempt: Promise<void> | null = null;
  /** The browser refused to start playback until the user interacts. */
  let blocked = false;
  /** Playing without sound because the browser allowed only that. */
  let mutedByPolicy = false;
  let lastDrift: number | null = null;
  let rateWarned = false;

  const setMessage = (text: string) => {
    message.textContent = text;
  };

  function oneWayMs(): number {
    const rtt = session.signaling.clock.bestRtt;
    return Number.isFinite(rtt) ? rtt / 2 : 0;
  }

  function clockReady(): boolean {
    return Number.isFinite(session.signaling.clock.bestRtt);
  }

  function send(change: Parameters<typeof nextState>[2]): void {
    const state = nextState(snapshot, session.serverNow() + oneWayMs(), change);
    if (!session.sendWatch(state)) ui.notify("Not connected to the server: try again once the call has reconnected.");
  }

  form.onsubmit = (e) => {
    e.preventDefault();
    const parsed = parseVideoInput(urlInput.value);
    if (!parsed) {
      formError.textContent = "That is not a YouTube link or a direct http(s) link to an mp4 or webm video.";
      return;
    }
    formError.textContent = "";
    send({ source: parsed.source, seek: parsed.start, rate: 1 });
  };
  urlInput.oninput = () => (formError.textContent = "");

  playButton.onclick = () => {
    // From the end, play starts over.
    const d = durationNow();
    const at = snapshot ? positionAt(snapshot, session.serverNow()) : 0;
    unlock();
    send(Number.isFinite(d) && at >= d - 0.1 ? { play: true, seek: 0 } : { play: true });
  };
  pauseButton.onclick = () => send({ play: false });
  slider.oninput = () => {
    dragging = true;
    timeText.textContent = `${formatTime(Number(slider.value))} / ${formatTime(durationNow())}`;
  };
  slider.onchange = () => {
    dragging = false;
    send({ seek: Number(slider.value) });
  };
  slider.onblur = () => (dragging = false);
  speed.onchange = () => send({ rate: Number(speed.value) });
  muteButton.onclick = () => {
    userMuted = !userMuted;
    muteButton.setAttribute("aria-pressed", String(userMuted));
    if (mutedByPolicy && !userMuted) unlock();
    else player?.setMuted(userMuted);
  };
  fullButton.onclick = () => void frame.requestFullscreen?.().catch(() => undefined);
  closeButton.onclick = () => send({ source: null });
  startButton.onclick = () => unlock();

  /** In a user gesture: lift the autoplay block and bring the sound back. */
  function unlock(): void {
    if (!player) return;
    const p = player;
    blocked = false;
    startButton.hidden = true;
    if (mutedByPolicy) {
      mutedByPolicy = false;
      p.setMuted(userMuted);
    }
    if (snapshot?.state.playing) {
      playAttempt = p.play().then(
        () => {
          playAttempt = null;
        },
        (e: unknown) => {
          playAttempt = null;
          onPlayRejected(p, e);
        },
      );
    }
  }

  function durationNow(): number {
    return player ? player.sample(performance.now()).duration : NaN;
  }

  function startPlaying(p: WatchPlayer): void {
    if (playAttempt || blocked) return;
    playAttempt = p.play().then(
      () => {
        playAttempt = null;
      },
      (e: unknown) => {
        playAttempt = null;
        onPlayRejected(p, e);
      },
    );
  }

  function onPlayRejected(p: WatchPlayer, e: unknown): void {
    if (p !== player) return;
    const name = e instanceof DOMException ? e.name : "";
    if (name === "AbortError") return; // a pause or a new source interrupted it
    if (name !== "NotAllowedError") {
      setMessage(`Playback failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    // Autoplay with sound refused: play muted if allowed, and offer a click to join.
    startButton.hidden = false;
    startButton.textContent = "Click to join playback";
    if (p.muted) {
      blocked = true;
      return;
    }
    p.setMuted(true);
    mutedByPolicy = true;
    playAttempt = p.play().then(
      () => {
        playAttempt = null;
        if (p === player) startButton.textContent = "Click to join playback (sound is off)";
      },
      () => {
        playAttempt = null;
        if (p === player) blocked = true;
      },
    );
  }

  function teardown(): void {
    generation++;
    player?.destroy();
    player = null;
    playerSource = null;
    playAttempt = null;
    blocked = false;
    mutedByPolicy = false;
    startButton.hidden = true;
    stage.replaceChildren();
    setMessage("");
    syncText.textContent = "";
    window.portalWatchDrift = null;
    delete panel.dataset.driftMs;
    delete panel.dataset.sync;
  }

  function createPlayer(source: VideoSource): void {
    teardown();
    playerSource = source;
    const gen = generation;
    if (source.kind === "url") {
      const video = el("video", { playsInline: true, preload: "auto", muted: userMuted });
      video.dataset.watch = "video";
      video.addEventListener("error", () => {
        if (gen === generation) setMessage(describeMediaError(video));
      });
      for (const ev of ["loadedmetadata", "seeked", "playing", "pause", "ended"]) video.addEventListener(ev, () => gen === generation && tick());
      video.src = source.url;
      stage.append(video);
      player = new VideoPlayer(video);
      controller = new SyncController(VIDEO_TUNING);
      return;
    }
    // YouTube: the API replaces this element with its iframe.
    const host = el("div");
    stage.append(host);
    controller = new SyncController(YOUTUBE_TUNING);
    setMessage("Loading the YouTube player…");
    loadYouTubeApi()
      .then((yt) =>
        YouTubePlayer.create(yt, host, source.videoId, {
          onError: (text) => gen === generation && setMessage(text),
          onChange: () => gen === generation && tick(),
        }),
      )
      .then(
        (p) => {
          if (gen !== generation) return p.destroy();
          player = p;
          p.setMuted(userMuted);
          setMessage("");
          tick();
        },
        (e: unknown) => {
          if (gen === generation) setMessage(e instanceof Error ? e.message : String(e));
        },
      );
  }

  function apply(snap: WatchSnapshot & { by?: PeerId }): void {
    const previous = snapshot;
    snapshot = snap;
    const source = snap.state.source;
    if (!sameSource(source, playerSource)) {
      if (source) {
        createPlayer(source);
        rateWarned = false;
        if (snap.by !== undefined && snap.by !== session.selfId && !sameSource(source, previous?.state.source ?? null)) {
          const who = session.peers.get(snap.by)?.info.name ?? "Someone";
          if (!ui.isOpen("watch")) {
            ui.setBadge("watch", 1);
            ui.notify(`${who} shared a video in Watch together.`);
          }
        }
      } else teardown();
    }
    controller.stateChanged();
    const rate = snap.state.rate;
    if (![...speed.options].some((o) => Number(o.value) === rate)) speed.append(el("option", { value: String(rate) }, `${rate}×`));
    speed.value = [...speed.options].find((o) => Number(o.value) === rate)?.value ?? "1";
    playButton.setAttribute("aria-pressed", String(snap.state.playing));
    pauseButton.setAttribute("aria-pressed", String(!snap.state.playing && source !== null));
    render();
    tick();
  }

  function render(): void {
    const has = snapshot?.state.source != null;
    empty.hidden = has;
    stage.hidden = !has;
    for (const c of [playButton, pauseButton, slider, speed, fullButton, closeButton]) c.disabled = !has;
    if (!has) {
      slider.value = "0";
      slider.max = "0";
      timeText.textContent = "0:00 / 0:00";
      syncText.textContent = "";
    }
  }

  function tick(): void {
    if (!panel.isConnected) {
      // The call screen is gone (left the room).
      stop();
      return;
    }
    if (ui.isOpen("watch")) ui.setBadge("watch", 0);
    const snap = snapshot;
    const p = player;
    if (!snap || !snap.state.source) return;
    if (!p) {
      syncText.textContent = "Loading…";
      return;
    }
    if (!clockReady()) {
      syncText.textContent = "Waiting for the server clock…";
      return;
    }
    // Sample the player and the clock at the same instant.
    const s = p.sample(performance.now());
    const target = positionAt(snap, session.serverNow());
    const d = controller.decide(snap.state, target, s);
    if (d.play === false) {
      p.pause();
      playAttempt = null;
    }
    if (d.rate !== undefined) {
      const got = p.setRate(d.rate);
      if (Math.abs(got - snap.state.rate) > 1e-9 && Math.abs(d.rate - snap.state.rate) < 1e-9 && !rateWarned) {
        rateWarned = true;
        ui.notify(`This player cannot play at ${snap.state.rate}×; it plays at ${got}× and jumps to stay in sync.`);
      }
    }
    if (d.seek !== undefined) p.seek(d.seek);
    if (d.play === true) startPlaying(p);
    if (d.drift !== null) {
      lastDrift = d.drift;
      window.portalWatchDrift = d.drift;
      panel.dataset.driftMs = String(Math.round(d.drift * 1000));
    }
    panel.dataset.sync = d.status;
    syncText.textContent = describeSync(d.status, d.status === "in-sync" || d.status === "correcting" ? lastDrift : null);
    const duration = s.duration;
    if (!dragging) {
      slider.max = String(Number.isFinite(duration) ? duration : Math.max(s.time, 0));
      slider.value = String(s.time);
      slider.setAttribute("aria-valuetext", `${formatTime(s.time)} of ${formatTime(duration)}`);
      timeText.textContent = `${formatTime(s.time)} / ${formatTime(duration)}`;
    }
  }

  const timer = setInterval(tick, TICK_MS);
  function stop(): void {
    clearInterval(timer);
    teardown();
  }

  session.on("watch", (snap) => apply(snap));
  session.on("status", ({ state }) => {
    if (state === "closed") stop();
  });
  session.on("error", ({ message: text }) => {
    if (text.startsWith("invalid watch state")) formError.textContent = `The server refused this: ${text.replace(/^invalid watch state: /, "")}.`;
  });
  render();
  if (session.watch) apply(session.watch);
}

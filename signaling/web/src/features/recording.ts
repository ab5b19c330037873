// Recording: the whole call (every tile drawn on a canvas, everyone's audio mixed), one's
// own camera, or one other participant, recorded with MediaRecorder into a WebM file that
// downloads when the recording stops and stays in the panel to save again.
//
// While recording, our peer state says so and every tile of us shows "recording"; a peer
// who records is announced here (banner, tab badge, toast).

import type { CallUi, Feature } from "../call/view";
import type { RemotePeer, Session } from "../call/session";
import { el, field } from "../dom";
import { CANVAS_FPS, CANVAS_HEIGHT, CANVAS_WIDTH, fitContain, labelFontSize, layoutCall, nextDrawDelay, type Rect } from "./compositor";

/** Preferred container and codecs first; the first one the browser supports is used. */
export const VIDEO_MIME_TYPES = ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm"] as const;
/** For a source without video (a participant without a camera). */
export const AUDIO_MIME_TYPES = ["audio/webm;codecs=opus", "audio/webm"] as const;
/** MediaRecorder hands over data every second, so a crash loses at most a second. */
export const TIMESLICE_MS = 1000;
const VIDEO_BITS_PER_SECOND = 2_500_000;
const AUDIO_BITS_PER_SECOND = 128_000;

/** The first supported type for a recording with (or without) video; null if none is. */
export function pickMimeType(hasVideo: boolean, isSupported: (type: string) => boolean): string | null {
  for (const type of hasVideo ? VIDEO_MIME_TYPES : AUDIO_MIME_TYPES) {
    try {
      if (isSupported(type)) return type;
    } catch {
      // A check that throws counts as "not supported".
    }
  }
  return null;
}

/** `portal-<room>-<YYYYMMDD-HHMMSS>.webm` (local time); the room reduced to safe characters. */
export function recordingFileName(room: string, at: Date): string {
  const safe = room.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[-.]+|[-.]+$/g, "") || "call";
  const p = (n: number) => String(n).padStart(2, "0");
  const stamp = `${at.getFullYear()}${p(at.getMonth() + 1)}${p(at.getDate())}-${p(at.getHours())}${p(at.getMinutes())}${p(at.getSeconds())}`;
  return `portal-${safe}-${stamp}.webm`;
}

/** `m:ss`, or `h:mm:ss` from an hour on. */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** One line per peer who records: "Ada is recording". */
export function recordingNotices(names: string[]): string[] {
  return names.map((n) => `${n} is recording`);
}

/** The values of the source select. */
export type SourceChoice = { kind: "call" } | { kind: "self" } | { kind: "peer"; id: number };

export function parseSource(value: string): SourceChoice {
  if (value === "self") return { kind: "self" };
  const m = /^peer:(\d+)$/.exec(value);
  if (m) return { kind: "peer", id: Number(m[1]) };
  return { kind: "call" };
}

class RecordingError extends Error {}

/** A stream to record and what it takes to release it. */
interface Capture {
  stream: MediaStream;
  /** What is recorded, for the panel ("the whole call", "Bo"). */
  label: string;
  choice: SourceChoice;
  /** Called when peers or local tracks change mid-recording. */
  refresh(): void;
  /** Releases what the capture made (never the call's own tracks). */
  stop(): void;
}

function liveTracks(tracks: (MediaStreamTrack | null | undefined)[]): MediaStreamTrack[] {
  return tracks.filter((t): t is MediaStreamTrack => !!t && t.readyState === "live");
}

function captureSelf(session: Session): Capture {
  const tracks = liveTracks([session.local.video, session.local.audio]);
  if (tracks.length === 0) throw new RecordingError("Your camera and microphone are unavailable: there is nothing to record.");
  return { stream: new MediaStream(tracks), label: "your camera", choice: { kind: "self" }, refresh: () => undefined, stop: () => undefined };
}

function capturePeer(peer: RemotePeer): Capture {
  const tracks = liveTracks(peer.cameraStream.getTracks());
  if (tracks.length === 0) throw new RecordingError(`${peer.info.name}'s camera and microphone are not connected: there is nothing to record.`);
  return { stream: new MediaStream(tracks), label: peer.info.name, choice: { kind: "peer", id: peer.id }, refresh: () => undefined, stop: () => undefined };
}

/** The whole call: every video on screen drawn on a canvas, everyone's audio mixed. */
class CallCompositor implements Capture {
  readonly label = "the whole call";
  readonly choice: SourceChoice = { kind: "call" };
  readonly stream: MediaStream;
  private readonly canvas: HTMLCanvasElement;
  private readonly g: CanvasRenderingContext2D;
  private readonly audio: AudioContext | null;
  private readonly mix: MediaStreamAudioDestinationNode | null;
  /** Keeps the sum of many voices from clipping. */
  private readonly limiter: DynamicsCompressorNode | null;
  /** Mixed audio inputs by track id. */
  private readonly inputs = new Map<string, MediaStreamAudioSourceNode>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** What drawing a frame costs lately, in ms (smoothed). */
  private drawCost = 0;

  constructor(
    private readonly session: Session,
    private readonly ui: CallUi,
  ) {
    this.canvas = el("canvas", { width: CANVAS_WIDTH, height: CANVAS_HEIGHT });
    const g = this.canvas.getContext("2d", { alpha: false });
    if (!g || typeof this.canvas.captureStream !== "function") throw new RecordingError("This browser cannot draw the call for recording.");
    this.g = g;
    this.draw();
    const video = this.canvas.captureStream(CANVAS_FPS).getVideoTracks()[0];
    if (!video) throw new RecordingError("This browser cannot capture the call for recording.");
    this.audio = typeof AudioContext === "function" ? new AudioContext() : null;
    this.mix = this.audio ? this.audio.createMediaStreamDestination() : null;
    this.limiter = this.audio ? new DynamicsCompressorNode(this.audio, { threshold: -3, knee: 0, ratio: 20, attack: 0.003, release: 0.25 }) : null;
    if (this.limiter && this.mix) this.limiter.connect(this.mix);
    void this.audio?.resume().catch(() => undefined);
    this.refresh();
    this.stream = new MediaStream([video, ...(this.mix ? this.mix.stream.getAudioTracks() : [])]);
    // A timer rather than animation frames: in a hidden tab it slows down, frames stop.
    this.schedule();
  }

  /** Brings the audio mix in line with who is in the call now. */
  refresh(): void {
    const { audio, limiter } = this;
    if (!audio || !limiter) return;
    const wanted = new Map<string, MediaStreamTrack>();
    const candidates = [this.session.local.audio, ...[...this.session.peers.values()].flatMap((p) => p.cameraStream.getAudioTracks())];
    for (const t of liveTracks(candidates)) wanted.set(t.id, t);
    for (const [id, node] of this.inputs) {
      if (!wanted.has(id)) {
        node.disconnect();
        this.inputs.delete(id);
      }
    }
    for (const [id, track] of wanted) {
      if (this.inputs.has(id)) continue;
      try {
        const node = audio.createMediaStreamSource(new MediaStream([track]));
        node.connect(limiter);
        this.inputs.set(id, node);
      } catch (e) {
        console.warn("cannot mix an audio track into the recording", e);
      }
    }
  }

  /** Draws a frame, then waits for the next as long as the drawing's cost asks for. */
  private schedule(): void {
    if (this.stopped) return;
    const started = performance.now();
    this.draw();
    const cost = performance.now() - started;
    this.drawCost = this.drawCost === 0 ? cost : 0.8 * this.drawCost + 0.2 * cost;
    this.timer = setTimeout(() => this.schedule(), nextDrawDelay(this.drawCost));
  }

  private draw(): void {
    const g = this.g;
    g.fillStyle = "#111418";
    g.fillRect(0, 0, CANVAS_WIDTH, CANVAS_HEIGHT);
    const videos = this.ui.videos();
    const screen = videos.find((v) => v.kind === "screen") ?? null;
    const cameras = videos.filter((v) => v.kind === "camera");
    const layout = layoutCall(cameras.length, screen !== null);
    if (screen && layout.screen) this.drawTile(screen.video, layout.screen, this.screenName(screen.peerId), true, true);
    cameras.forEach((v, i) => {
      const cell = layout.tiles[i];
      if (cell) this.drawTile(v.video, cell, v.name, this.cameraOn(v.peerId));
    });
  }

  private cameraOn(peerId: number | null): boolean {
    if (peerId === null) return this.session.local.videoEnabled && this.session.local.video !== null;
    return this.session.peers.get(peerId)?.state.video !== false;
  }

  private screenName(peerId: number | null): string {
    const who = peerId === null ? this.session.opts.name : this.session.peers.get(peerId)?.info.name;
    return who ? `${who}'s screen` : "Shared screen";
  }

  private drawTile(video: HTMLVideoElement, cell: Rect, name: string, showVideo: boolean, screen = false): void {
    const g = this.g;
    // A camera cell is a black 16:9 tile; a shared screen shows just its picture.
    if (!screen) {
      g.fillStyle = "#000";
      g.fillRect(cell.x, cell.y, cell.w, cell.h);
    }
    let drawn: Rect | null = null;
    if (showVideo && video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && video.videoWidth > 0) {
      const r = fitContain(video.videoWidth, video.videoHeight, cell);
      try {
        g.drawImage(video, r.x, r.y, r.w, r.h);
        drawn = r;
      } catch {
        // A video that cannot be drawn right now shows its placeholder.
      }
    }
    if (!drawn) {
      g.fillStyle = "#1b2027";
      g.fillRect(cell.x, cell.y, cell.w, cell.h);
      const size = Math.max(16, Math.round(cell.h / 3));
      g.font = `600 ${size}px system-ui, sans-serif`;
      g.fillStyle = "#98a2b3";
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText((name.trim()[0] ?? "?").toUpperCase(), cell.x + cell.w / 2, cell.y + cell.h / 2);
    }
    this.drawLabel(screen && drawn ? drawn : cell, name);
  }

  private drawLabel(cell: Rect, name: string): void {
    const g = this.g;
    const size = labelFontSize(cell);
    const pad = Math.round(size / 2);
    g.font = `600 ${size}px system-ui, sans-serif`;
    g.textAlign = "left";
    g.textBaseline = "middle";
    const maxW = cell.w - 4 * pad;
    let text = name;
    while (text.length > 1 && g.measureText(text).width > maxW) text = text.slice(0, -2) + "…";
    const w = g.measureText(text).width + 2 * pad;
    const h = Math.round(size * 1.5);
    const x = cell.x + pad;
    const y = cell.y + cell.h - pad - h;
    g.fillStyle = "rgba(0, 0, 0, 0.6)";
    g.fillRect(x, y, w, h);
    g.fillStyle = "#f2f4f7";
    g.fillText(text, x + pad, y + h / 2);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    for (const t of this.stream.getTracks()) t.stop();
    for (const node of this.inputs.values()) node.disconnect();
    this.inputs.clear();
    void this.audio?.close().catch(() => undefined);
  }
}

interface Active {
  recorder: MediaRecorder;
  capture: Capture;
  mimeType: string;
  fileName: string;
  chunks: Blob[];
  startedAt: number;
  elapsed: number;
  /** Why the recording stopped, when it was not the user. */
  problem: string | null;
  finished: boolean;
}

function describe(e: unknown): string {
  if (e instanceof Error || e instanceof DOMException) return e.message || e.name;
  return String(e);
}

export const recordingFeature: Feature = {
  id: "recording",
  title: "Recording",
  mount(session: Session, panel: HTMLElement, ui: CallUi): void {
    mountRecording(session, panel, ui);
  },
};

function mountRecording(session: Session, panel: HTMLElement, ui: CallUi): void {
  const elapsedInButton = el("span", { className: "elapsed" });
  const button = el("button", { type: "button", className: "record", ariaLabel: "Record", title: "Record" }, "Record", elapsedInButton);
  button.setAttribute("aria-pressed", "false");
  ui.addControl(button);

  const banner = el("div", { className: "recording-banner", role: "status" });
  banner.style.cssText = "display: grid; gap: 0.25rem; font-weight: 600; color: var(--danger);";
  const source = el("select", { name: "recording-source" });
  const timer = el("p", { role: "timer", hidden: true });
  timer.style.fontWeight = "600";
  const problem = el("p", { className: "error", role: "alert", hidden: true });
  const saved = el("ul", { ariaLabel: "Recordings" });
  saved.style.cssText = "list-style: none; padding: 0; margin: 0; display: grid; gap: 0.5rem;";
  const help = el(
    "p",
    {},
    "Press Record in the control bar to record the chosen source into a WebM file. It downloads when you stop, and everyone in the call sees that you are recording.",
  );
  help.style.color = "var(--muted)";
  panel.append(banner, field("Recording source", source), timer, problem, help, saved);
  if (typeof MediaRecorder !== "function") showProblem("Recording is not supported in this browser.");

  let active: Active | null = null;
  let ticker: ReturnType<typeof setInterval> | null = null;
  const announced = new Set<number>();

  function showProblem(text: string | null): void {
    problem.textContent = text ?? "";
    problem.hidden = !text;
  }

  function fail(text: string): void {
    showProblem(text);
    ui.notify(text);
    render();
  }

  function renderSources(): void {
    const current = source.value || "call";
    const options: [string, string][] = [
      ["call", "Whole call"],
      ["self", "My camera"],
      ...[...session.peers.values()].map((p): [string, string] => [`peer:${p.id}`, p.info.name]),
    ];
    source.replaceChildren(...options.map(([value, text]) => el("option", { value }, text)));
    source.value = options.some(([v]) => v === current) ? current : "call";
  }

  function renderBanner(): void {
    const names = [...session.peers.values()].filter((p) => p.state.recording).map((p) => p.info.name);
    banner.replaceChildren(...recordingNotices(names).map((line) => el("span", {}, line)));
    banner.hidden = names.length === 0;
    ui.setBadge("recording", names.length);
  }

  function render(): void {
    const rec = active;
    button.setAttribute("aria-pressed", String(rec !== null));
    source.disabled = rec !== null;
    if (rec) {
      const t = formatElapsed(performance.now() - rec.startedAt);
      elapsedInButton.textContent = ` ${t}`;
      timer.textContent = `Recording ${rec.capture.label} · ${t}`;
      timer.hidden = false;
      if (ticker === null) ticker = setInterval(render, 500);
    } else {
      elapsedInButton.textContent = "";
      timer.hidden = true;
      if (ticker !== null) clearInterval(ticker);
      ticker = null;
    }
  }

  function makeCapture(choice: SourceChoice): Capture {
    if (choice.kind === "self") return captureSelf(session);
    if (choice.kind === "peer") {
      const peer = session.peers.get(choice.id);
      if (!peer) throw new RecordingError("That participant has left the call: choose another source.");
      return capturePeer(peer);
    }
    return new CallCompositor(session, ui);
  }

  function start(): void {
    showProblem(null);
    if (typeof MediaRecorder !== "function") return fail("Recording is not supported in this browser.");
    let capture: Capture;
    try {
      capture = makeCapture(parseSource(source.value));
    } catch (e) {
      return fail(e instanceof RecordingError ? e.message : `Recording could not start: ${describe(e)}`);
    }
    const mimeType = pickMimeType(capture.stream.getVideoTracks().length > 0, (t) => MediaRecorder.isTypeSupported(t));
    if (!mimeType) {
      capture.stop();
      return fail("This browser cannot record WebM files.");
    }
    let recorder: MediaRecorder;
    try {
      recorder = new MediaRecorder(capture.stream, { mimeType, videoBitsPerSecond: VIDEO_BITS_PER_SECOND, audioBitsPerSecond: AUDIO_BITS_PER_SECOND });
    } catch (e) {
      capture.stop();
      return fail(`Recording could not start: ${describe(e)}`);
    }
    const rec: Active = {
      recorder,
      capture,
      mimeType,
      fileName: recordingFileName(session.opts.room, new Date()),
      chunks: [],
      startedAt: performance.now(),
      elapsed: 0,
      problem: null,
      finished: false,
    };
    recorder.ondataavailable = (ev) => {
      if (ev.data.size > 0) rec.chunks.push(ev.data);
    };
    recorder.onerror = (ev) => {
      const err = (ev as Event & { error?: unknown }).error;
      rec.problem = `Recording failed${err ? `: ${describe(err)}` : ""}. What was recorded so far is saved.`;
      // The recorder stops on an error; make sure of it so the data comes out.
      if (active === rec) stop();
    };
    recorder.onstop = () => finish(rec);
    try {
      recorder.start(TIMESLICE_MS);
    } catch (e) {
      capture.stop();
      return fail(`Recording could not start: ${describe(e)}`);
    }
    active = rec;
    session.setRecording(true);
    render();
  }

  /** Stops the current recording; the file comes out when the recorder has flushed. */
  function stop(reason?: string): void {
    const rec = active;
    if (!rec) return;
    active = null;
    if (reason) rec.problem = reason;
    rec.elapsed = performance.now() - rec.startedAt;
    session.setRecording(false);
    render();
    if (rec.recorder.state === "inactive") finish(rec);
    else {
      try {
        rec.recorder.stop();
      } catch {
        finish(rec);
      }
    }
  }

  function finish(rec: Active): void {
    if (rec.finished) return;
    rec.finished = true;
    if (active === rec) {
      // The recorder stopped by itself: its source ended.
      active = null;
      rec.elapsed = performance.now() - rec.startedAt;
      rec.problem ??= `The recording of ${rec.capture.label} stopped because the source ended. What was recorded is saved.`;
      session.setRecording(false);
      render();
    }
    rec.capture.stop();
    const blob = new Blob(rec.chunks, { type: rec.mimeType.split(";")[0] });
    rec.chunks = [];
    if (rec.problem) {
      showProblem(rec.problem);
      ui.notify(rec.problem);
    }
    if (blob.size === 0) {
      fail("Nothing was recorded: the source sent no media.");
      return;
    }
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: rec.fileName, ariaLabel: "Save recording" }, "Save recording");
    const discard = el("button", { type: "button", ariaLabel: "Discard recording", title: "Discard recording" }, "Discard");
    const details = el("span", {}, `${rec.fileName} · ${rec.capture.label} · ${formatElapsed(rec.elapsed)} · ${formatSize(blob.size)}`);
    details.style.color = "var(--muted)";
    const item = el("li", {}, link, " ", discard, el("br"), details);
    discard.onclick = () => {
      item.remove();
      URL.revokeObjectURL(url);
    };
    saved.prepend(item);
    download(url, rec.fileName);
  }

  function download(url: string, name: string): void {
    const a = el("a", { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  }

  button.onclick = () => {
    if (active) stop();
    else start();
  };
  source.onchange = () => showProblem(null);

  const refresh = () => active?.capture.refresh();
  session.on("peer-added", () => {
    renderSources();
    refresh();
  });
  session.on("peer-removed", (peer) => {
    renderSources();
    announced.delete(peer.id);
    renderBanner();
    const choice = active?.capture.choice;
    if (choice?.kind === "peer" && choice.id === peer.id) stop(`${peer.info.name} left the call, so the recording stopped. What was recorded is saved.`);
    else refresh();
  });
  session.on("peer-media", refresh);
  session.on("local", () => {
    const rec = active;
    if (rec?.capture.choice.kind === "self") {
      const recorded = new Set(rec.capture.stream.getTracks());
      const now = liveTracks([session.local.video, session.local.audio]);
      if (now.some((t) => !recorded.has(t))) stop("Your camera or microphone changed, so the recording stopped. What was recorded is saved; press Record to go on.");
    } else refresh();
  });
  session.on("peer-state", (peer) => {
    if (peer.state.recording && !announced.has(peer.id)) {
      announced.add(peer.id);
      ui.notify(`${peer.info.name} is recording this call.`);
    } else if (!peer.state.recording) announced.delete(peer.id);
    renderBanner();
  });
  // Leaving the call ends the recording and still saves it.
  session.on("status", ({ state }) => {
    if (state === "closed") stop();
  });
  ui.onTilesChanged(refresh);
  window.addEventListener("beforeunload", (ev) => {
    if (active) ev.preventDefault();
  });

  renderSources();
  renderBanner();
  render();
}

// The call screen: a stage for a shared screen, a grid of tiles, the control bar and a
// side panel whose tabs are features (chat, files, watch-together, editor, ...).

import { el } from "../dom";
import { gridColumns } from "./rules";
import type { RemotePeer, Session } from "./session";

/** What a feature gets to plug itself into the call screen. */
export interface CallUi {
  /** Adds a button (or other control) to the control bar. */
  addControl(control: HTMLElement): void;
  /** Shows a count on the feature's tab (0 hides it). */
  setBadge(featureId: string, count: number): void;
  /** Whether the feature's panel is the one showing. */
  isOpen(featureId: string): boolean;
  open(featureId: string): void;
  /** Shows a short message to the user. */
  notify(text: string): void;
  /** Called whenever the tiles change (for features that draw them, e.g. recording). */
  onTilesChanged(handler: () => void): void;
  /** The video elements currently showing, self first. */
  videos(): { peerId: number | null; name: string; video: HTMLVideoElement; kind: "camera" | "screen" }[];
}

export interface Feature {
  id: string;
  title: string;
  mount(session: Session, panel: HTMLElement, ui: CallUi): void;
}

const ERROR_TEXT: Record<string, string> = {
  roomFull: "This room is full (8 people at most).",
  wrongPassword: "Wrong password for this room.",
  passwordMismatch: "This room exists without a password; join it without one, or pick another name for a protected room.",
  invalidRoomName: "Room names use letters, digits, '-', '_' and '.'.",
  invalidName: "Please enter a name (up to 64 characters).",
  unsupportedProtocol: "This page is out of date; reload it.",
  shuttingDown: "The server is restarting; reconnecting…",
};

interface Tile {
  root: HTMLElement;
  video: HTMLVideoElement;
  label: HTMLElement;
  peer: RemotePeer | null;
  level: number;
}

export function mountCall(root: HTMLElement, session: Session, features: Feature[], onLeave: () => void): void {
  const status = el("p", { className: "status", role: "status" }, "Connecting…");
  const stage = el("section", { className: "stage", ariaLabel: "Shared screen", hidden: true });
  const grid = el("section", { className: "grid", ariaLabel: "Participants" });
  const controls = el("div", { className: "controls", role: "toolbar", ariaLabel: "Call controls" });
  const tabs = el("div", { className: "tabs", role: "tablist" });
  const panels = el("div", { className: "panels" });
  const side = el("aside", { className: "side" }, tabs, panels);
  const toast = el("div", { className: "toast", role: "alert", hidden: true });
  root.replaceChildren(
    el("div", { className: "call" }, el("header", {}, el("h1", {}, session.opts.room), status), el("main", { className: "center" }, stage, grid), side, el("footer", {}, controls), toast),
  );

  const tiles = new Map<number | "self", Tile>();
  const tileListeners: (() => void)[] = [];
  let stageVideo: { peerId: number | "self"; video: HTMLVideoElement } | null = null;
  let open: string | null = null;
  const badges = new Map<string, HTMLElement>();
  const panelOf = new Map<string, HTMLElement>();
  const tabOf = new Map<string, HTMLButtonElement>();

  const ui: CallUi = {
    addControl: (c) => controls.append(c),
    setBadge: (id, n) => {
      const b = badges.get(id);
      if (b) {
        b.textContent = n > 0 ? String(n) : "";
        b.hidden = n <= 0;
      }
    },
    isOpen: (id) => open === id,
    open: (id) => showPanel(id),
    notify: (text) => {
      toast.textContent = text;
      toast.hidden = false;
      setTimeout(() => (toast.hidden = true), 5000);
    },
    onTilesChanged: (h) => tileListeners.push(h),
    videos: () => {
      const out: ReturnType<CallUi["videos"]> = [];
      for (const [key, t] of tiles) out.push({ peerId: key === "self" ? null : key, name: t.peer?.info.name ?? session.opts.name, video: t.video, kind: "camera" });
      if (stageVideo) out.push({ peerId: stageVideo.peerId === "self" ? null : stageVideo.peerId, name: "screen", video: stageVideo.video, kind: "screen" });
      return out;
    },
  };

  function showPanel(id: string | null): void {
    open = open === id ? null : id;
    for (const [fid, panel] of panelOf) panel.hidden = fid !== open;
    for (const [fid, tab] of tabOf) tab.setAttribute("aria-selected", String(fid === open));
    side.classList.toggle("open", open !== null);
  }

  for (const f of features) {
    const badge = el("span", { className: "badge", hidden: true });
    const tab = el("button", { type: "button", role: "tab", ariaLabel: f.title }, f.title, badge);
    tab.setAttribute("aria-selected", "false");
    tab.onclick = () => showPanel(f.id);
    const panel = el("section", { className: "panel", role: "tabpanel", ariaLabel: f.title, hidden: true });
    tabs.append(tab);
    panels.append(panel);
    badges.set(f.id, badge);
    panelOf.set(f.id, panel);
    tabOf.set(f.id, tab);
  }

  // Controls. Names stay fixed (tests and screen readers find them); aria-pressed says the state.
  const mute = toggle("Mute microphone", !session.selfState.audio, (on) => session.setAudioEnabled(!on));
  const camera = toggle("Turn off camera", !session.selfState.video, (on) => session.setVideoEnabled(!on));
  const speaker = toggle("Mute speaker", !session.speakerEnabled, (on) => session.setSpeakerEnabled(!on));
  const share = toggle("Share screen", session.local.screen !== null, async (on) => {
    try {
      if (on) await session.shareScreen();
      else await session.stopScreen();
    } catch (e) {
      share.setAttribute("aria-pressed", "false");
      if (!(e instanceof DOMException && e.name === "NotAllowedError")) ui.notify(`Screen sharing failed: ${String(e)}`);
    }
  });
  const leave = el("button", { type: "button", className: "leave", ariaLabel: "Leave" }, "Leave");
  leave.onclick = () => {
    session.leave();
    onLeave();
  };
  controls.append(mute, camera, speaker, share, leave);
  for (const f of features) f.mount(session, panelOf.get(f.id) as HTMLElement, ui);

  function toggle(label: string, pressed: boolean, onChange: (on: boolean) => unknown): HTMLButtonElement {
    const b = el("button", { type: "button", ariaLabel: label, title: label }, label);
    b.setAttribute("aria-pressed", String(pressed));
    b.onclick = () => {
      const on = b.getAttribute("aria-pressed") !== "true";
      b.setAttribute("aria-pressed", String(on));
      void onChange(on);
    };
    return b;
  }

  function makeTile(key: number | "self", peer: RemotePeer | null): Tile {
    const video = el("video", { autoplay: true, playsInline: true, muted: key === "self" || !session.speakerEnabled });
    const label = el("span", { className: "name" });
    const root = el("figure", { className: "tile" }, video, el("figcaption", {}, label));
    root.dataset.peer = String(key);
    const tile = { root, video, label, peer, level: 0 };
    tiles.set(key, tile);
    grid.append(root);
    return tile;
  }

  const self = makeTile("self", null);
  self.video.srcObject = session.local.stream;

  function renderTiles(): void {
    for (const [key, tile] of tiles) {
      const name = tile.peer ? tile.peer.info.name : `${session.opts.name} (you)`;
      const st = tile.peer ? tile.peer.state : session.selfState;
      const flags = [st.audio ? "" : "muted", st.video ? "" : "camera off", st.recording ? "recording" : "", tile.peer?.info.role === "kiosk" ? "room display" : ""].filter(Boolean);
      tile.label.textContent = flags.length ? `${name} · ${flags.join(" · ")}` : name;
      tile.root.setAttribute("aria-label", tile.label.textContent);
      tile.root.classList.toggle("muted", !st.audio);
      const conn = tile.peer?.pc.connectionState;
      tile.root.classList.toggle("connecting", key !== "self" && conn !== "connected");
    }
    grid.style.setProperty("--cols", String(gridColumns(tiles.size)));
    renderStage();
    for (const h of tileListeners) h();
  }

  function renderStage(): void {
    // A shared screen goes large: the newest sharer, or our own.
    const sharer = [...session.peers.values()].find((p) => p.state.screen);
    const key: number | "self" | null = sharer ? sharer.id : session.local.screen ? "self" : null;
    if (key === null) {
      stage.hidden = true;
      stage.replaceChildren();
      stageVideo = null;
      return;
    }
    if (stageVideo?.peerId === key) return;
    const video = el("video", { autoplay: true, playsInline: true, muted: true });
    video.srcObject = key === "self" ? new MediaStream(session.local.screen ? [session.local.screen] : []) : (sharer as RemotePeer).screenStream;
    const name = key === "self" ? "You are sharing your screen" : `${(sharer as RemotePeer).info.name}'s screen`;
    const full = el("button", { type: "button", ariaLabel: "Full screen" }, "Full screen");
    full.onclick = () => void video.requestFullscreen?.();
    stage.replaceChildren(el("figure", { className: "tile screen" }, video, el("figcaption", {}, name, full)));
    stage.hidden = false;
    stageVideo = { peerId: key, video };
  }

  // Active speaker: the loudest remote audio above a floor, from WebAudio analysers.
  const audioCtx = typeof AudioContext === "function" ? new AudioContext() : null;
  const analysers = new Map<number, AnalyserNode>();
  function watchLevel(peer: RemotePeer): void {
    const track = peer.cameraStream.getAudioTracks()[0];
    if (!audioCtx || !track || analysers.has(peer.id)) return;
    const src = audioCtx.createMediaStreamSource(new MediaStream([track]));
    const analyser = audioCtx.createAnalyser();
    analyser.fftSize = 512;
    src.connect(analyser);
    analysers.set(peer.id, analyser);
  }
  const levelTimer = setInterval(() => {
    const buf = new Float32Array(512);
    let loudest: number | null = null;
    let best = 0.01;
    for (const [id, a] of analysers) {
      a.getFloatTimeDomainData(buf);
      const rms = Math.sqrt(buf.reduce((s, v) => s + v * v, 0) / buf.length);
      const tile = tiles.get(id);
      if (tile) tile.level = rms;
      if (rms > best) {
        best = rms;
        loudest = id;
      }
    }
    for (const [key, tile] of tiles) tile.root.classList.toggle("speaking", key === loudest);
  }, 250);

  session.on("peer-added", (peer) => {
    const tile = makeTile(peer.id, peer);
    tile.video.srcObject = peer.cameraStream;
    watchLevel(peer);
    renderTiles();
  });
  session.on("peer-removed", (peer) => {
    tiles.get(peer.id)?.root.remove();
    tiles.delete(peer.id);
    analysers.delete(peer.id);
    renderTiles();
  });
  session.on("peer-state", () => renderTiles());
  session.on("peer-media", (peer) => {
    watchLevel(peer);
    renderTiles();
  });
  session.on("local", () => {
    self.video.srcObject = session.local.stream;
    share.setAttribute("aria-pressed", String(session.local.screen !== null));
    renderTiles();
  });
  // The state may change from elsewhere (a paired laptop turns audio off in the kiosk's room).
  session.on("self-state", () => {
    mute.setAttribute("aria-pressed", String(!session.selfState.audio));
    camera.setAttribute("aria-pressed", String(!session.selfState.video));
    speaker.setAttribute("aria-pressed", String(!session.speakerEnabled));
    for (const [key, tile] of tiles) tile.video.muted = key === "self" || !session.speakerEnabled;
    renderTiles();
  });
  session.on("status", ({ state }) => {
    status.textContent = state === "open" ? "Connected" : state === "connecting" ? "Reconnecting…" : "Left";
    status.className = "status";
  });
  session.on("error", ({ code, message }) => {
    status.textContent = ERROR_TEXT[code] ?? message;
    status.className = "status error";
    if (code === "roomFull" || code === "wrongPassword" || code === "passwordMismatch") {
      clearInterval(levelTimer);
      ui.notify(status.textContent);
    }
  });
  if (session.local.error) ui.notify(session.local.error);
  renderTiles();
}

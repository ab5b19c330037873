// A call in one room: signaling, one RTCPeerConnection per remote peer (mesh), local
// media, and the control messages that ride on the `chat` data channel.
//
// Contract with every peer, kiosks included (ARCHITECTURE.md):
// - every offer carries three transceivers in this order: audio, camera video, screen
//   video; screen sharing is `replaceTrack` on the third, so a call never renegotiates
//   except for an ICE restart, which only the offerer sends;
// - data channels are pre-negotiated: `chat` id 0 (JSON text), `file` id 1;
// - offer rule in `rules.ts`; the answerer never re-offers.

import type { IceServer, PeerId, PeerInfo, ServerMessage, WatchSnapshot, WatchState } from "../gen/protocol";
import { Signaling } from "../signaling";
import { CHAT_CHANNEL, FILE_CHANNEL, preferCodecs, shouldOffer, type TransceiverSlot } from "./rules";

/** What a peer says about itself on the chat channel (`{type: "state", ...}`). */
export interface PeerState {
  audio: boolean;
  video: boolean;
  screen: boolean;
  recording: boolean;
}

/** A JSON message on the chat channel. `type` names it: "chat", "state", ... */
export interface ControlMessage {
  type: string;
  [key: string]: unknown;
}

/** How long the server keeps a dropped peer in its room (`--resume-grace`), plus slack. */
const RESUME_GRACE_MS = 25_000;

export class RemotePeer {
  readonly pc: RTCPeerConnection;
  readonly chat: RTCDataChannel;
  readonly file: RTCDataChannel;
  readonly transceivers = new Map<TransceiverSlot, RTCRtpTransceiver>();
  /** Camera video with the peer's audio; the screen share alone. */
  readonly cameraStream = new MediaStream();
  readonly screenStream = new MediaStream();
  state: PeerState = { audio: true, video: true, screen: false, recording: false };
  pendingCandidates: RTCIceCandidateInit[] = [];
  restarts = 0;
  /** False while the server has not (re)announced this peer since our last `joined`. */
  confirmed = true;

  constructor(
    public info: PeerInfo,
    readonly offerer: boolean,
    config: RTCConfiguration,
  ) {
    this.pc = new RTCPeerConnection(config);
    this.chat = this.pc.createDataChannel(CHAT_CHANNEL.label, { negotiated: true, id: CHAT_CHANNEL.id, ordered: true });
    this.file = this.pc.createDataChannel(FILE_CHANNEL.label, { negotiated: true, id: FILE_CHANNEL.id, ordered: true });
    this.file.binaryType = "arraybuffer";
  }

  get id(): PeerId {
    return this.info.id;
  }
}

export interface SessionOptions {
  room: string;
  name: string;
  password?: string;
  /** `ws(s)://host/ws`; defaults to this page's host. */
  signalingUrl?: string;
  /** Leave H.264 out of the codec preferences (VP8 and others only). */
  excludeH264?: boolean;
  /** An open connection to join the room on (a paired laptop's, which must keep its peer
   * id); leaving the call then leaves the room but keeps the connection. */
  signaling?: Signaling;
}

type SessionEvents = {
  joined: { peers: PeerInfo[] };
  "peer-added": RemotePeer;
  "peer-removed": RemotePeer;
  "peer-state": RemotePeer;
  /** A remote track started or the connection state changed. */
  "peer-media": RemotePeer;
  "channel-open": RemotePeer;
  control: { from: RemotePeer; msg: ControlMessage };
  watch: WatchSnapshot & { by?: PeerId };
  error: { code: string; message: string };
  status: { state: "connecting" | "open" | "closed" };
  local: void;
  /** Our microphone, camera or speaker was turned on or off. */
  "self-state": void;
};

/** Local camera, microphone and screen tracks. */
export class LocalMedia {
  stream = new MediaStream();
  audio: MediaStreamTrack | null = null;
  video: MediaStreamTrack | null = null;
  screen: MediaStreamTrack | null = null;
  audioEnabled = true;
  videoEnabled = true;
  error: string | null = null;

  /** Opens camera and microphone; a failure leaves the call receive-only with a reason. */
  async open(audioDevice?: string, videoDevice?: string): Promise<void> {
    const constraints: MediaStreamConstraints = {
      audio: audioDevice ? { deviceId: { exact: audioDevice } } : true,
      video: { ...(videoDevice ? { deviceId: { exact: videoDevice } } : {}), width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    };
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      this.setTracks(stream.getAudioTracks()[0] ?? null, stream.getVideoTracks()[0] ?? null);
      this.error = null;
    } catch (e) {
      this.error = describeMediaError(e);
      // Try each kind alone: a missing camera should not cost the microphone.
      const audio = await navigator.mediaDevices.getUserMedia({ audio: constraints.audio }).catch(() => null);
      const video = await navigator.mediaDevices.getUserMedia({ video: constraints.video }).catch(() => null);
      this.setTracks(audio?.getAudioTracks()[0] ?? null, video?.getVideoTracks()[0] ?? null);
    }
  }

  setTracks(audio: MediaStreamTrack | null, video: MediaStreamTrack | null): void {
    for (const t of this.stream.getTracks()) this.stream.removeTrack(t);
    this.audio = audio;
    this.video = video;
    if (audio) {
      audio.enabled = this.audioEnabled;
      this.stream.addTrack(audio);
    }
    if (video) {
      video.enabled = this.videoEnabled;
      this.stream.addTrack(video);
    }
  }

  stop(): void {
    for (const t of [this.audio, this.video, this.screen]) t?.stop();
  }
}

export function describeMediaError(e: unknown): string {
  const name = e instanceof DOMException ? e.name : "";
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera and microphone access was denied. Allow it in the browser's site settings to be seen and heard.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera or microphone was found. You can still see and hear the others.";
    case "NotReadableError":
      return "The camera or microphone is in use by another application.";
    default:
      return `Camera and microphone are unavailable${e instanceof Error ? `: ${e.message}` : ""}.`;
  }
}

/** Asks the browser for a screen to share (call it from a click: it needs the user's gesture). */
export async function captureScreen(): Promise<MediaStreamTrack | null> {
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
  const track = stream.getVideoTracks()[0] ?? null;
  if (track) track.contentHint = "detail";
  return track;
}

export class Session {
  readonly local = new LocalMedia();
  readonly peers = new Map<PeerId, RemotePeer>();
  readonly signaling: Signaling;
  selfId: PeerId | null = null;
  docToken: string | null = null;
  watch: (WatchSnapshot & { by?: PeerId }) | null = null;
  private iceServers: RTCIceServer[] = [];
  private listeners = new Map<keyof SessionEvents, Set<(detail: never) => void>>();
  private state: PeerState = { audio: true, video: true, screen: false, recording: false };
  /** Whether the others are heard here (off in a room whose kiosk plays the call). */
  speakerEnabled = true;
  private readonly shared: boolean;
  private unlisten: () => void;

  constructor(readonly opts: SessionOptions) {
    this.shared = opts.signaling !== undefined;
    this.signaling =
      opts.signaling ??
      new Signaling({
        url: opts.signalingUrl ?? signalingUrl(),
        name: opts.name,
        room: opts.room,
        ...(opts.password ? { password: opts.password } : {}),
      });
    this.unlisten = this.signaling.listen({ onMessage: (msg) => void this.onSignal(msg), onState: (state) => this.emit("status", { state }) });
    if (this.shared) {
      this.selfId = this.signaling.peerId;
      this.iceServers = toRtcIceServers(this.signaling.iceServers);
    }
  }

  on<K extends keyof SessionEvents>(event: K, handler: (detail: SessionEvents[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(handler as (detail: never) => void);
    return () => set.delete(handler as (detail: never) => void);
  }

  private emit<K extends keyof SessionEvents>(event: K, detail: SessionEvents[K]): void {
    for (const handler of this.listeners.get(event) ?? []) {
      try {
        (handler as (d: SessionEvents[K]) => void)(detail);
      } catch (e) {
        console.error(`handler for ${event} failed`, e);
      }
    }
  }

  /** Connects signaling; media should be opened first so the first offer carries it. */
  start(): void {
    if (this.shared) this.signaling.join(this.opts.room, this.opts.password);
    else this.signaling.start();
  }

  leave(): void {
    if (this.shared) {
      // The connection stays (the pairing lives on it); for this call it is closed.
      this.signaling.leaveRoom();
      this.emit("status", { state: "closed" });
    } else this.signaling.stop();
    this.unlisten();
    for (const peer of [...this.peers.values()]) this.removePeer(peer);
    this.local.stop();
  }

  /** Server time now, in ms, from the ping/pong clock offset. */
  serverNow(): number {
    return this.signaling.clock.serverNow(Date.now());
  }

  sendWatch(state: WatchState): boolean {
    return this.signaling.send({ type: "watch", state });
  }

  /** Sends a JSON message to every peer whose chat channel is open (or to one peer). */
  sendControl(msg: ControlMessage, to?: PeerId): void {
    const text = JSON.stringify(msg);
    for (const peer of this.peers.values()) {
      if ((to === undefined || peer.id === to) && peer.chat.readyState === "open") peer.chat.send(text);
    }
  }

  get selfState(): PeerState {
    return { ...this.state };
  }

  setAudioEnabled(on: boolean): void {
    this.local.audioEnabled = on;
    if (this.local.audio) this.local.audio.enabled = on;
    this.updateState({ audio: on });
    this.emit("self-state", undefined);
  }

  setVideoEnabled(on: boolean): void {
    this.local.videoEnabled = on;
    if (this.local.video) this.local.video.enabled = on;
    this.updateState({ video: on });
    this.emit("self-state", undefined);
  }

  /** Plays the others' audio here, or not. */
  setSpeakerEnabled(on: boolean): void {
    this.speakerEnabled = on;
    this.emit("self-state", undefined);
  }

  setRecording(on: boolean): void {
    this.updateState({ recording: on });
  }

  /** Starts sharing a screen on the screen transceiver of every peer. */
  async shareScreen(): Promise<void> {
    const track = await captureScreen();
    if (track) await this.shareTrack(track);
  }

  /** Shares `track` (from `captureScreen`) on the screen transceiver of every peer, and
   * of every peer that comes later. */
  async shareTrack(track: MediaStreamTrack): Promise<void> {
    this.local.screen?.stop();
    this.local.screen = track;
    // The browser's own "Stop sharing" ends the track.
    track.addEventListener("ended", () => {
      if (this.local.screen === track) void this.stopScreen();
    });
    await this.replaceAll("screen", track);
    this.updateState({ screen: true });
    this.emit("local", undefined);
  }

  async stopScreen(): Promise<void> {
    const track = this.local.screen;
    this.local.screen = null;
    track?.stop();
    await this.replaceAll("screen", null);
    this.updateState({ screen: false });
    this.emit("local", undefined);
  }

  /** Switches camera or microphone mid-call without renegotiating. */
  async switchDevice(kind: "audio" | "video", deviceId: string): Promise<void> {
    const stream = await navigator.mediaDevices.getUserMedia(
      kind === "audio" ? { audio: { deviceId: { exact: deviceId } } } : { video: { deviceId: { exact: deviceId }, width: { ideal: 1280 }, height: { ideal: 720 } } },
    );
    const track = kind === "audio" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    if (!track) return;
    const old = kind === "audio" ? this.local.audio : this.local.video;
    if (kind === "audio") this.local.setTracks(track, this.local.video);
    else this.local.setTracks(this.local.audio, track);
    await this.replaceAll(kind === "audio" ? "audio" : "camera", track);
    old?.stop();
    this.emit("local", undefined);
  }

  private async replaceAll(slot: TransceiverSlot, track: MediaStreamTrack | null): Promise<void> {
    await Promise.all([...this.peers.values()].map((p) => p.transceivers.get(slot)?.sender.replaceTrack(track)));
  }

  private updateState(change: Partial<PeerState>): void {
    this.state = { ...this.state, ...change };
    this.sendControl({ type: "state", ...this.state });
  }

  private async onSignal(msg: ServerMessage): Promise<void> {
    switch (msg.type) {
      case "welcome":
        // A reconnect that could not resume gave us a new id: the others tore down their
        // connections to the old one, so ours to them are stale too.
        if (this.selfId !== null && msg.peerId !== this.selfId) for (const peer of [...this.peers.values()]) this.removePeer(peer);
        this.selfId = msg.peerId;
        this.iceServers = toRtcIceServers(msg.iceServers);
        break;
      case "iceServers":
        // TURN credentials come only with a successful join, just before `joined`.
        this.iceServers = toRtcIceServers(msg.iceServers);
        break;
      case "joined": {
        this.docToken = msg.docToken;
        if (msg.watch) {
          this.watch = msg.watch;
          this.emit("watch", msg.watch);
        }
        // After a reconnect the server may list peers we already have: keep those. Peers it
        // does not list may still be reconnecting themselves (after a server restart):
        // keep their live connections until the resume grace is over.
        const listed = new Set(msg.peers.map((p) => p.id));
        for (const peer of [...this.peers.values()]) {
          if (listed.has(peer.id)) {
            peer.confirmed = true;
            this.recover(peer);
          } else if (peer.pc.connectionState !== "closed") peer.confirmed = false;
          else this.removePeer(peer);
        }
        if ([...this.peers.values()].some((p) => !p.confirmed)) {
          setTimeout(() => {
            for (const peer of [...this.peers.values()]) if (!peer.confirmed) this.removePeer(peer);
          }, RESUME_GRACE_MS);
        }
        for (const info of msg.peers) if (!this.peers.has(info.id)) await this.addPeer(info, true);
        this.emit("joined", { peers: msg.peers });
        break;
      }
      case "peerJoined": {
        const existing = this.peers.get(msg.peer.id);
        // The same peer back after a server restart: keep the connection (restarting ICE
        // if it failed meanwhile). Recreating it would flip who offers.
        if (existing && existing.pc.connectionState !== "closed") {
          existing.info = msg.peer;
          existing.confirmed = true;
          this.recover(existing);
          break;
        }
        if (existing) this.removePeer(existing);
        await this.addPeer(msg.peer, false);
        break;
      }
      case "peerLeft": {
        const peer = this.peers.get(msg.peerId);
        if (peer) this.removePeer(peer);
        break;
      }
      case "signal":
        await this.onRemoteSignal(msg.from, msg.data);
        break;
      case "watch":
        this.watch = { state: msg.state, serverTime: msg.serverTime, ...(msg.by !== undefined ? { by: msg.by } : {}) };
        this.emit("watch", this.watch);
        break;
      case "error":
        this.emit("error", { code: msg.code, message: msg.message });
        break;
      default:
        break;
    }
  }

  private async addPeer(info: PeerInfo, selfIsNewcomer: boolean): Promise<void> {
    const selfId = this.selfId ?? 0;
    const offerer = shouldOffer({ id: selfId, role: "browser" }, { id: info.id, role: info.role }, selfIsNewcomer);
    const peer = new RemotePeer(info, offerer, { iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    this.peers.set(info.id, peer);
    this.wire(peer);
    if (offerer) {
      const tracks: Record<TransceiverSlot, MediaStreamTrack | null> = { audio: this.local.audio, camera: this.local.video, screen: this.local.screen };
      for (const slot of ["audio", "camera", "screen"] as const) {
        const kind = slot === "audio" ? "audio" : "video";
        const t = peer.pc.addTransceiver(tracks[slot] ?? kind, { direction: "sendrecv", streams: [] });
        peer.transceivers.set(slot, t);
        this.attachReceiver(peer, slot, t);
      }
      this.setCodecPreferences(peer);
      await this.sendOffer(peer, false);
    }
    this.emit("peer-added", peer);
  }

  /** Restarts ICE on a failed connection we offered (an earlier restart offer may have
   * been lost while signaling was down). The answerer waits for the offerer. */
  private recover(peer: RemotePeer): void {
    if (peer.offerer && ["failed", "disconnected"].includes(peer.pc.connectionState)) {
      peer.restarts++;
      void this.sendOffer(peer, true);
    }
  }

  private wire(peer: RemotePeer): void {
    const { pc } = peer;
    pc.onicecandidate = (ev) => {
      if (ev.candidate) this.signaling.send({ type: "signal", to: peer.id, data: { candidate: candidateInit(ev.candidate) } });
    };
    pc.onconnectionstatechange = () => {
      this.emit("peer-media", peer);
      if (pc.connectionState === "failed" && peer.offerer && this.peers.get(peer.id) === peer) {
        // Only the offerer restarts ICE; the answerer waits for its offer.
        peer.restarts++;
        void this.sendOffer(peer, true);
      }
    };
    pc.ontrack = () => this.emit("peer-media", peer);
    peer.chat.onopen = () => {
      peer.chat.send(JSON.stringify({ type: "state", ...this.state }));
      this.emit("channel-open", peer);
    };
    peer.chat.onmessage = (ev) => {
      if (typeof ev.data !== "string" || ev.data.length > 256 * 1024) return;
      let msg: ControlMessage;
      try {
        msg = JSON.parse(ev.data) as ControlMessage;
      } catch {
        return;
      }
      if (!msg || typeof msg.type !== "string") return;
      if (msg.type === "state") {
        peer.state = {
          audio: msg.audio !== false,
          video: msg.video !== false,
          screen: msg.screen === true,
          recording: msg.recording === true,
        };
        this.emit("peer-state", peer);
      }
      this.emit("control", { from: peer, msg });
    };
  }

  private attachReceiver(peer: RemotePeer, slot: TransceiverSlot, t: RTCRtpTransceiver): void {
    const track = t.receiver.track;
    if (slot === "screen") peer.screenStream.addTrack(track);
    else peer.cameraStream.addTrack(track);
  }

  private setCodecPreferences(peer: RemotePeer): void {
    const caps = RTCRtpReceiver.getCapabilities?.("video");
    if (!caps) return;
    const codecs = preferCodecs(caps.codecs as RTCRtpCodec[], this.opts.excludeH264 === true);
    for (const slot of ["camera", "screen"] as const) {
      try {
        peer.transceivers.get(slot)?.setCodecPreferences(codecs);
      } catch (e) {
        console.warn("setCodecPreferences failed", e);
      }
    }
  }

  private async sendOffer(peer: RemotePeer, iceRestart: boolean): Promise<void> {
    const offer = await peer.pc.createOffer({ iceRestart });
    await peer.pc.setLocalDescription(offer);
    const sdp = peer.pc.localDescription;
    if (sdp) this.signaling.send({ type: "signal", to: peer.id, data: { sdp: { type: "offer", sdp: sdp.sdp } } });
  }

  private async onRemoteSignal(from: PeerId, data: import("../gen/protocol").SignalData): Promise<void> {
    const peer = this.peers.get(from);
    if (!peer) return;
    const { pc } = peer;
    if ("sdp" in data) {
      const desc = data.sdp;
      if (desc.type === "offer") {
        if (peer.offerer) return; // we offer to this peer; a stray offer would flip roles
        await pc.setRemoteDescription({ type: "offer", sdp: desc.sdp });
        if (peer.transceivers.size === 0) this.adoptTransceivers(peer);
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        const local = pc.localDescription;
        if (local) this.signaling.send({ type: "signal", to: from, data: { sdp: { type: "answer", sdp: local.sdp } } });
      } else if (desc.type === "answer") {
        if (pc.signalingState !== "have-local-offer") return;
        await pc.setRemoteDescription({ type: "answer", sdp: desc.sdp });
      }
      for (const c of peer.pendingCandidates.splice(0)) await pc.addIceCandidate(c).catch(() => undefined);
    } else if ("candidate" in data) {
      const c = data.candidate;
      const init: RTCIceCandidateInit = { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null, ...(c.usernameFragment ? { usernameFragment: c.usernameFragment } : {}) };
      if (!pc.remoteDescription) peer.pendingCandidates.push(init);
      else await pc.addIceCandidate(init).catch((e) => console.warn("bad candidate", e));
    }
  }

  /** Answerer: the offer made the transceivers; put our tracks on them in slot order. */
  private adoptTransceivers(peer: RemotePeer): void {
    const slots: TransceiverSlot[] = ["audio", "camera", "screen"];
    const media = peer.pc.getTransceivers().filter((t) => t.receiver.track);
    media.slice(0, 3).forEach((t, i) => {
      const slot = slots[i];
      peer.transceivers.set(slot, t);
      t.direction = "sendrecv";
      const track = slot === "audio" ? this.local.audio : slot === "camera" ? this.local.video : this.local.screen;
      void t.sender.replaceTrack(track);
      this.attachReceiver(peer, slot, t);
    });
    this.setCodecPreferences(peer);
  }

  private removePeer(peer: RemotePeer): void {
    if (this.peers.get(peer.id) === peer) this.peers.delete(peer.id);
    peer.pc.close();
    this.emit("peer-removed", peer);
  }
}

function signalingUrl(): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

function toRtcIceServers(servers: IceServer[]): RTCIceServer[] {
  return servers.map((s) => ({ urls: s.urls, ...(s.username ? { username: s.username } : {}), ...(s.credential ? { credential: s.credential } : {}) }));
}

function candidateInit(c: RTCIceCandidate): { candidate: string; sdpMid?: string; sdpMLineIndex?: number; usernameFragment?: string } {
  return {
    candidate: c.candidate,
    ...(c.sdpMid !== null ? { sdpMid: c.sdpMid } : {}),
    ...(c.sdpMLineIndex !== null ? { sdpMLineIndex: c.sdpMLineIndex } : {}),
    ...(c.usernameFragment ? { usernameFragment: c.usernameFragment } : {}),
  };
}

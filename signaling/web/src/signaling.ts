// The signaling connection: one WebSocket to /ws speaking the generated protocol types.
// Reconnects with backoff and rejoins the room; keeps a clock offset from ping/pong.
// A connection may start without a room (a laptop paired with a kiosk) and join one later
// through `join`; several listeners may share it (the pairing and the call on it).

import { backoffDelay } from "./backoff";
import { ClockOffset } from "./clock";
import {
  PROTOCOL_VERSION,
  type ClientMessage,
  type ErrorCode,
  type IceServer,
  type PeerId,
  type Role,
  type ServerMessage,
} from "./gen/protocol";

export type ConnectionState = "connecting" | "open" | "closed";

/** Errors after which reconnecting cannot help. */
const FINAL_ERRORS: ReadonlySet<ErrorCode> = new Set(["unsupportedProtocol", "roomFull", "wrongPassword", "passwordMismatch", "invalidRoomName", "invalidName"]);

export interface SignalingOptions {
  url: string;
  name: string;
  role?: Role;
  /** The room to join after every `welcome`; none until `join` names one. */
  room: string | null;
  password?: string;
  onMessage?: (msg: ServerMessage) => void;
  onState?: (state: ConnectionState) => void;
  webSocket?: typeof WebSocket;
}

export interface SignalingListener {
  onMessage?: (msg: ServerMessage) => void;
  onState?: (state: ConnectionState) => void;
}

export class Signaling {
  readonly clock = new ClockOffset();
  peerId: PeerId | null = null;
  private ws: WebSocket | null = null;
  private attempt = 0;
  private stopped = false;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private nextPingId = 1;
  private pending = new Map<number, number>();
  /** From the last `welcome`: lets a reconnect keep our peer id (and everyone's calls). */
  private resumeToken: string | null = null;
  private room: string | null;
  private password: string | undefined;
  private welcomed = false;
  private readonly listeners = new Set<SignalingListener>();
  /** The ICE servers of the last `welcome` (a call started later on this connection needs them). */
  iceServers: IceServer[] = [];

  constructor(private readonly opts: SignalingOptions) {
    this.room = opts.room;
    this.password = opts.password;
    if (opts.onMessage || opts.onState) this.listeners.add({ ...(opts.onMessage ? { onMessage: opts.onMessage } : {}), ...(opts.onState ? { onState: opts.onState } : {}) });
  }

  /** Adds a listener for messages and state; answers the function that removes it. */
  listen(listener: SignalingListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Whether the server has welcomed this connection (and it is open). */
  get ready(): boolean {
    return this.welcomed && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Joins `room` now when welcomed, and again after every reconnect. */
  join(room: string, password?: string): void {
    this.room = room;
    this.password = password;
    this.stopped = false;
    if (this.ready) this.sendJoin();
  }

  /** Leaves the room but keeps the connection. */
  leaveRoom(): void {
    this.room = null;
    this.password = undefined;
    this.send({ type: "leave" });
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  send(msg: ClientMessage): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  stop(): void {
    this.stopped = true;
    this.send({ type: "leave" });
    this.clearPing();
    this.ws?.close(1000, "bye");
    this.ws = null;
    this.welcomed = false;
    this.emitState("closed");
  }

  private emitState(state: ConnectionState): void {
    for (const l of [...this.listeners]) l.onState?.(state);
  }

  private sendJoin(): void {
    if (this.room !== null) this.send({ type: "join", room: this.room, ...(this.password ? { password: this.password } : {}) });
  }

  private open(): void {
    const Ws = this.opts.webSocket ?? WebSocket;
    const ws = new Ws(this.opts.url);
    this.ws = ws;
    this.welcomed = false;
    this.emitState("connecting");
    ws.onopen = () => {
      this.send({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        name: this.opts.name,
        role: this.opts.role ?? "browser",
        ...(this.resumeToken ? { resume: this.resumeToken } : {}),
      });
    };
    ws.onmessage = (ev) => {
      let msg: ServerMessage;
      try {
        msg = JSON.parse(String(ev.data)) as ServerMessage;
      } catch {
        return;
      }
      this.handle(msg);
    };
    ws.onclose = () => {
      this.clearPing();
      if (this.ws !== ws) return;
      this.ws = null;
      this.welcomed = false;
      if (this.stopped) return;
      this.emitState("connecting");
      const delay = backoffDelay(this.attempt++);
      setTimeout(() => !this.stopped && this.open(), delay);
    };
  }

  private handle(msg: ServerMessage): void {
    switch (msg.type) {
      case "welcome":
        this.peerId = msg.peerId;
        this.resumeToken = msg.resumeToken;
        this.iceServers = msg.iceServers;
        this.welcomed = true;
        this.sendJoin();
        this.startPing();
        break;
      case "joined":
        this.attempt = 0;
        this.emitState("open");
        break;
      case "pong": {
        const sent = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (sent !== undefined) this.clock.add({ clientSend: sent, clientReceive: Date.now(), serverTime: msg.serverTime });
        return;
      }
      case "error":
        if (FINAL_ERRORS.has(msg.code)) this.stopped = true;
        break;
      default:
        break;
    }
    for (const l of [...this.listeners]) l.onMessage?.(msg);
  }

  private startPing(): void {
    this.clearPing();
    const ping = () => {
      const id = this.nextPingId++;
      const now = Date.now();
      this.pending.set(id, now);
      if (this.pending.size > 32) this.pending.delete(this.pending.keys().next().value as number);
      this.send({ type: "ping", id, clientTime: now });
    };
    for (let i = 0; i < 5; i++) setTimeout(ping, i * 200);
    this.pingTimer = setInterval(ping, 10_000);
  }

  private clearPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }
}

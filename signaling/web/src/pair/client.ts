// The laptop's half of a pairing, on its signaling connection: redeem a code, send the
// kiosk commands (each answered, or timed out here), follow the kiosk's state, and end.
// No DOM: the page renders what this reports.

import type { ClientMessage, CommandError, ErrorCode, KioskState, PeerId, RemoteCommand, ServerMessage } from "../gen/protocol";
import { normalizeCode } from "./code";
import type { EndReason } from "./text";

/** How long a `pair` or a command waits for its answer. */
export const ANSWER_TIMEOUT_MS = 10_000;

export type PairOutcome = { ok: true; kiosk: PeerId; kioskName: string; expiresAt: number } | { ok: false; code: ErrorCode | "malformed" | "noServer"; message: string };

/** A command's answer; `timedOut` when the kiosk said nothing within the timeout. */
export type CommandOutcome = { ok: true; room?: string } | { ok: false; error: CommandError; timedOut?: boolean };

export interface PairingEvents {
  state?: (state: KioskState) => void;
  ended?: (reason: EndReason, kioskName: string) => void;
}

interface Pending<T> {
  resolve: (outcome: T) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class Pairing {
  kiosk: { id: PeerId; name: string; expiresAt: number } | null = null;
  state: KioskState | null = null;
  private nextId = 1;
  private pendingPair: Pending<PairOutcome> | null = null;
  private readonly commands = new Map<number, Pending<CommandOutcome>>();

  constructor(
    private readonly send: (msg: ClientMessage) => boolean,
    private readonly events: PairingEvents = {},
    readonly timeoutMs = ANSWER_TIMEOUT_MS,
  ) {}

  get paired(): boolean {
    return this.kiosk !== null;
  }

  /** Redeems `typed` (any casing and spacing). A malformed code is not sent. */
  pair(typed: string): Promise<PairOutcome> {
    const code = normalizeCode(typed);
    if (code === null) return Promise.resolve({ ok: false, code: "malformed", message: "not a pairing code" });
    if (this.kiosk) return Promise.resolve({ ok: false, code: "alreadyPaired", message: "already paired" });
    this.settlePair({ ok: false, code: "noServer", message: "superseded" });
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settlePair({ ok: false, code: "noServer", message: "no answer" }), this.timeoutMs);
      this.pendingPair = { resolve, timer };
      if (!this.send({ type: "pair", code })) this.settlePair({ ok: false, code: "noServer", message: "not connected" });
    });
  }

  /** Sends `command` to the kiosk; resolves with its answer or a timeout. */
  command(command: RemoteCommand): Promise<CommandOutcome> {
    if (!this.kiosk) return Promise.resolve({ ok: false, error: { code: "notPaired", message: "" } });
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settleCommand(id, { ok: false, error: { code: "timeout", message: "" }, timedOut: true }), this.timeoutMs);
      this.commands.set(id, { resolve, timer });
      if (!this.send({ type: "command", id, command })) this.settleCommand(id, { ok: false, error: { code: "unavailable", message: "not connected to the server" } });
    });
  }

  /** Ends the pairing from this side. */
  unpair(): void {
    if (!this.kiosk) return;
    this.send({ type: "unpair" });
    this.end("laptopLeft");
  }

  /** The connection is gone for good (a reconnect that could not resume). */
  lost(): void {
    this.settlePair({ ok: false, code: "noServer", message: "connection lost" });
    if (this.kiosk) this.end("connectionLost");
  }

  /** Feeds a message from the server; answers whether it was about pairing. */
  handle(msg: ServerMessage): boolean {
    switch (msg.type) {
      case "pairAccepted":
        this.kiosk = { id: msg.kiosk, name: msg.kioskName, expiresAt: msg.expiresAt };
        this.state = null;
        this.settlePair({ ok: true, kiosk: msg.kiosk, kioskName: msg.kioskName, expiresAt: msg.expiresAt });
        return true;
      case "kioskState":
        if (!this.kiosk) return true;
        this.state = msg.state;
        this.events.state?.(msg.state);
        return true;
      case "commandResult":
        this.settleCommand(msg.id, msg.error ? { ok: false, error: msg.error } : { ok: true, ...(msg.room !== undefined ? { room: msg.room } : {}) });
        return true;
      case "unpaired":
        if (this.kiosk) this.end(msg.reason);
        return true;
      case "welcome":
        // A new peer id means the server forgot this connection, and its pairing with it.
        if (!msg.resumed) this.lost();
        return false;
      case "error":
        return this.onError(msg.code, msg.message);
      default:
        return false;
    }
  }

  private onError(code: ErrorCode, message: string): boolean {
    if (this.pendingPair) {
      this.settlePair({ ok: false, code, message });
      return true;
    }
    if (code === "notPaired") {
      for (const id of [...this.commands.keys()]) this.settleCommand(id, { ok: false, error: { code: "notPaired", message } });
      return true;
    }
    // The server refused a command before it reached the kiosk (errors carry no id: the
    // oldest command waiting is the one).
    const oldest = this.commands.keys().next();
    if ((code === "badRequest" || code === "rateLimited") && !oldest.done) {
      this.settleCommand(oldest.value, { ok: false, error: { code: code === "badRequest" ? "badRequest" : "unavailable", message } });
      return true;
    }
    return false;
  }

  private end(reason: EndReason): void {
    const name = this.kiosk?.name ?? "The display";
    this.kiosk = null;
    this.state = null;
    for (const id of [...this.commands.keys()]) this.settleCommand(id, { ok: false, error: { code: "notPaired", message: "" } });
    this.events.ended?.(reason, name);
  }

  private settlePair(outcome: PairOutcome): void {
    const p = this.pendingPair;
    if (!p) return;
    this.pendingPair = null;
    clearTimeout(p.timer);
    p.resolve(outcome);
  }

  private settleCommand(id: number, outcome: CommandOutcome): void {
    const p = this.commands.get(id);
    if (!p) return;
    this.commands.delete(id);
    clearTimeout(p.timer);
    p.resolve(outcome);
  }
}

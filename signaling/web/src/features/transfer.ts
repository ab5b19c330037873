// The file-transfer protocol of one `file` data channel, without any I/O.
//
// One `FileLink` per remote peer holds every transfer in both directions on that
// peer's channel and decides what each input means: the caller feeds it local actions
// (offer, accept, decline, cancel, the next chunk to send) and remote input (JSON
// messages, binary frames) and carries out the effects it returns — send this message,
// start streaming, keep these bytes, the file is verified. The wire format and the
// message sequence are the contract in signaling/proto/src/channel.rs, which the kiosk
// implements too:
//
//   S: offer -> R: accept | decline -> S: chunks..., end {sha256} -> R: complete | failed
//   either side: cancel {by} at any time before the end.
//
// Ids live in the sender's space, so an incoming and an outgoing transfer may share an
// id: every lookup is by (direction, id).

import { FILE_CHUNK_HEADER, FILE_CHUNK_PAYLOAD, FILE_FRAME_MAX, MAX_FILE_NAME, type DeclineReason, type FileMessage, type TransferSide } from "../gen/protocol";
import { Sha256 } from "./sha256";

/** "out": we send the file; "in": we receive it. */
export type Direction = "out" | "in";

/**
 * offered: waiting for the receiver's answer. active: bytes flowing. ending (out only):
 * every byte and `end` sent, waiting for the receiver's verdict. The rest are final.
 */
export type TransferState = "offered" | "active" | "ending" | "complete" | "declined" | "cancelled" | "failed";

export interface Transfer {
  readonly id: number;
  readonly direction: Direction;
  readonly name: string;
  readonly size: number;
  readonly mime: string;
  state: TransferState;
  /** Payload bytes sent (out) or received (in) so far. */
  bytes: number;
  /** Why it was declined, cancelled or failed. */
  reason: string;
  /** Which side cancelled it. */
  by: TransferSide | null;
}

export type Effect =
  /** Send this JSON message on the channel. */
  | { kind: "send"; msg: FileMessage }
  /** An incoming offer waits for a person's answer. */
  | { kind: "offered"; transfer: Transfer }
  /** Out: the receiver accepted; start streaming chunks (`FileLink.frame`). */
  | { kind: "start"; transfer: Transfer }
  /** In: keep these bytes (a view into the received frame). */
  | { kind: "data"; transfer: Transfer; payload: Uint8Array }
  /** The transfer succeeded: in, every byte arrived and the digest matched; out, the receiver said so. */
  | { kind: "complete"; transfer: Transfer }
  /** The transfer ended without success (declined, cancelled or failed): stop sending, drop kept bytes. */
  | { kind: "stopped"; transfer: Transfer };

export interface LinkOptions {
  /** Largest incoming file accepted; larger offers are declined with `tooLarge`. */
  maxBytes: number;
  /** "deny" declines every offer with `policy`. */
  policy?: "ask" | "deny";
}

export const FINAL_STATES: readonly TransferState[] = ["complete", "declined", "cancelled", "failed"];

export function isFinal(t: Transfer): boolean {
  return FINAL_STATES.includes(t.state);
}

const encoder = new TextEncoder();

/** Shortens a file name to fit the offer limit (MAX_FILE_NAME bytes of UTF-8), keeping its extension. */
export function fitFileName(name: string): string {
  const clean = name.replace(/[\u0000-\u001f\u007f]/g, "").trim() || "file";
  if (encoder.encode(clean).length <= MAX_FILE_NAME) return clean;
  const dot = clean.lastIndexOf(".");
  const ext = dot > 0 && clean.length - dot <= 16 ? clean.slice(dot) : "";
  let stem = [...clean.slice(0, clean.length - ext.length)];
  while (stem.length > 0 && encoder.encode(stem.join("") + "…" + ext).length > MAX_FILE_NAME) stem = stem.slice(0, -1);
  return stem.join("") + "…" + ext;
}

export class FileLink {
  private readonly outgoing = new Map<number, Transfer & { hash: Sha256 }>();
  private readonly incoming = new Map<number, Transfer & { hash: Sha256 }>();
  private nextId = 1;
  /** Everything that arrived on the channel as binary frames, valid or not. */
  framesIn = 0;
  bytesIn = 0;
  /** Frames built for sending. */
  framesOut = 0;
  bytesOut = 0;
  /** Remote input that fitted no transfer (unknown id, wrong state, malformed frame). */
  ignored = 0;

  constructor(readonly opts: LinkOptions) {}

  get(direction: Direction, id: number): Transfer | undefined {
    return (direction === "out" ? this.outgoing : this.incoming).get(id);
  }

  transfers(): Transfer[] {
    return [...this.outgoing.values(), ...this.incoming.values()];
  }

  // ---- local actions ----

  /** Offers a file to the peer. `name` must already fit (see `fitFileName`). */
  offer(name: string, size: number, mime = ""): { transfer: Transfer; effects: Effect[] } {
    if (!validName(name)) throw new Error(`file name does not fit an offer: ${JSON.stringify(name)}`);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`bad file size ${size}`);
    const id = this.nextId++;
    const t = { ...blank(id, "out", name, size, mime), hash: new Sha256() };
    this.outgoing.set(id, t);
    return { transfer: t, effects: [{ kind: "send", msg: { type: "offer", id, name, size, mime } }] };
  }

  accept(id: number): Effect[] {
    const t = this.incoming.get(id);
    if (!t || t.state !== "offered") return [];
    t.state = "active";
    return [{ kind: "send", msg: { type: "accept", id } }];
  }

  decline(id: number, reason: DeclineReason = "declined"): Effect[] {
    const t = this.incoming.get(id);
    if (!t || t.state !== "offered") return [];
    return [this.send({ type: "decline", id, reason }), this.end(t, "declined", reason)];
  }

  /** Stops a transfer from our side, in either direction. */
  cancel(direction: Direction, id: number, reason = ""): Effect[] {
    const t = this.get(direction, id);
    if (!t || isFinal(t)) return [];
    const by: TransferSide = direction === "out" ? "sender" : "receiver";
    t.by = by;
    return [this.send({ type: "cancel", id, by, reason }), this.end(t, "cancelled", reason)];
  }

  /**
   * Out: the binary frame carrying the next `payload` (at most FILE_CHUNK_PAYLOAD bytes)
   * of an accepted transfer, or null when the transfer is no longer sending.
   */
  frame(id: number, payload: Uint8Array): Uint8Array<ArrayBuffer> | null {
    const t = this.outgoing.get(id);
    if (!t || t.state !== "active") return null;
    if (payload.length > FILE_CHUNK_PAYLOAD) throw new Error(`chunk of ${payload.length} bytes is over ${FILE_CHUNK_PAYLOAD}`);
    if (t.bytes + payload.length > t.size) throw new Error(`transfer ${id} would send more than its ${t.size} bytes`);
    const frame = new Uint8Array(FILE_CHUNK_HEADER + payload.length);
    new DataView(frame.buffer).setUint32(0, id);
    frame.set(payload, FILE_CHUNK_HEADER);
    t.hash.update(payload);
    t.bytes += payload.length;
    this.framesOut++;
    this.bytesOut += frame.length;
    return frame;
  }

  /** Out: every byte is sent; says `end` with the digest. */
  finish(id: number): Effect[] {
    const t = this.outgoing.get(id);
    if (!t || t.state !== "active") return [];
    if (t.bytes !== t.size) throw new Error(`transfer ${id} finished after ${t.bytes} of ${t.size} bytes`);
    t.state = "ending";
    return [this.send({ type: "end", id, sha256: t.hash.hex() })];
  }

  /** The channel closed: every transfer still running is over. Nothing is sent. */
  close(reason = "connection lost"): Effect[] {
    const out: Effect[] = [];
    for (const t of this.transfers()) if (!isFinal(t)) out.push(this.end(t, "failed", reason));
    return out;
  }

  // ---- remote input ----

  handle(msg: FileMessage): Effect[] {
    switch (msg.type) {
      case "offer":
        return this.onOffer(msg);
      case "accept": {
        const t = this.outgoing.get(msg.id);
        if (!t || t.state !== "offered") return this.ignore();
        t.state = "active";
        return [{ kind: "start", transfer: t }];
      }
      case "decline": {
        const t = this.outgoing.get(msg.id);
        if (!t || t.state !== "offered") return this.ignore();
        return [this.end(t, "declined", msg.reason)];
      }
      case "end": {
        const t = this.incoming.get(msg.id);
        if (!t || t.state !== "active") return this.ignore();
        if (t.bytes !== t.size) return this.fail(t, `size: ${t.bytes} of ${t.size} bytes arrived`);
        const digest = t.hash.hex();
        if (digest !== String(msg.sha256).toLowerCase()) return this.fail(t, "sha256 mismatch");
        t.state = "complete";
        return [this.send({ type: "complete", id: t.id }), { kind: "complete", transfer: t }];
      }
      case "complete": {
        const t = this.outgoing.get(msg.id);
        if (!t || t.state !== "ending") return this.ignore();
        t.state = "complete";
        return [{ kind: "complete", transfer: t }];
      }
      case "failed": {
        const t = this.outgoing.get(msg.id);
        if (!t || (t.state !== "ending" && t.state !== "active")) return this.ignore();
        return [this.end(t, "failed", msg.reason)];
      }
      case "cancel": {
        // The sender cancels its outgoing transfer, which is our incoming one, and back.
        const t = msg.by === "sender" ? this.incoming.get(msg.id) : msg.by === "receiver" ? this.outgoing.get(msg.id) : undefined;
        if (!t || isFinal(t)) return this.ignore();
        t.by = msg.by;
        return [this.end(t, "cancelled", msg.reason ?? "")];
      }
      default:
        // Newer peers may say more; unknown types are not an error.
        return this.ignore();
    }
  }

  /** A binary frame from the channel: `[id: u32 BE][payload]`. */
  handleFrame(frame: ArrayBuffer): Effect[] {
    this.framesIn++;
    this.bytesIn += frame.byteLength;
    if (frame.byteLength < FILE_CHUNK_HEADER || frame.byteLength > FILE_FRAME_MAX) return this.ignore();
    const id = new DataView(frame).getUint32(0);
    const t = this.incoming.get(id);
    if (!t || t.state !== "active") return this.ignore();
    const payload = new Uint8Array(frame, FILE_CHUNK_HEADER);
    if (t.bytes + payload.length > t.size) return this.fail(t, `size: more than the ${t.size} bytes offered`);
    t.hash.update(payload);
    t.bytes += payload.length;
    return [{ kind: "data", transfer: t, payload }];
  }

  private onOffer(msg: Extract<FileMessage, { type: "offer" }>): Effect[] {
    const { id, name, size } = msg;
    const mime = typeof msg.mime === "string" ? msg.mime : "";
    const usable = Number.isInteger(id) && id >= 0 && id <= 0xffff_ffff && !this.incoming.has(id) && validName(name) && Number.isSafeInteger(size) && size >= 0;
    if (!usable) return [...this.ignore(), this.send({ type: "decline", id, reason: "invalid" })];
    const t = { ...blank(id, "in", name, size, mime.slice(0, 255)), hash: new Sha256() };
    this.incoming.set(id, t);
    if (this.opts.policy === "deny") return [this.send({ type: "decline", id, reason: "policy" }), this.end(t, "declined", "policy")];
    if (size > this.opts.maxBytes) return [this.send({ type: "decline", id, reason: "tooLarge" }), this.end(t, "declined", "tooLarge")];
    return [{ kind: "offered", transfer: t }];
  }

  private fail(t: Transfer, reason: string): Effect[] {
    return [this.send({ type: "failed", id: t.id, reason }), this.end(t, "failed", reason)];
  }

  private end(t: Transfer, state: "declined" | "cancelled" | "failed", reason: string): Effect {
    t.state = state;
    t.reason = reason;
    return { kind: "stopped", transfer: t };
  }

  private send(msg: FileMessage): Effect {
    return { kind: "send", msg };
  }

  private ignore(): Effect[] {
    this.ignored++;
    return [];
  }
}

function blank(id: number, direction: Direction, name: string, size: number, mime: string): Transfer {
  return { id, direction, name, size, mime, state: "offered", bytes: 0, reason: "", by: null };
}

function validName(name: unknown): name is string {
  return typeof name === "string" && name.length > 0 && encoder.encode(name).length <= MAX_FILE_NAME;
}

/** Parses a JSON text frame from the file channel; null for anything that is not an object with a `type`. */
export function parseFileMessage(text: string): FileMessage | null {
  if (text.length > 64 * 1024) return null;
  try {
    const msg: unknown = JSON.parse(text);
    if (!msg || typeof msg !== "object" || typeof (msg as { type?: unknown }).type !== "string") return null;
    const id = (msg as { id?: unknown }).id;
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xffff_ffff) return null;
    return msg as FileMessage;
  } catch {
    return null;
  }
}

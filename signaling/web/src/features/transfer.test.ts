import { webcrypto } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FILE_CHUNK_PAYLOAD, MAX_FILE_NAME, type FileMessage } from "../gen/protocol";
import { FileLink, fitFileName, parseFileMessage, type Effect } from "./transfer";
import { toHex } from "./sha256";

/** Two links joined by an in-memory channel: what one sends, the other handles. */
class Pair {
  readonly a = new FileLink({ maxBytes: 1 << 20 });
  readonly b = new FileLink({ maxBytes: 1 << 20 });
  /** Effects other than sends, per side, in order. */
  readonly seen: { a: Effect[]; b: Effect[] } = { a: [], b: [] };
  readonly wire: { from: "a" | "b"; msg: FileMessage }[] = [];
  readonly received: Uint8Array[] = [];

  run(side: "a" | "b", effects: Effect[]): void {
    const other = side === "a" ? "b" : "a";
    for (const fx of effects) {
      if (fx.kind === "send") {
        this.wire.push({ from: side, msg: fx.msg });
        // Through JSON, as on the channel.
        const msg = parseFileMessage(JSON.stringify(fx.msg));
        if (msg) this.run(other, this[other].handle(msg));
      } else {
        this.seen[side].push(fx);
        if (fx.kind === "data") this.received.push(fx.payload.slice());
      }
    }
  }

  /** Sends `data` from a to b in chunks, as files.ts does after `start`. */
  stream(id: number, data: Uint8Array, chunk = FILE_CHUNK_PAYLOAD): void {
    for (let p = 0; p < data.length; p += chunk) {
      const frame = this.a.frame(id, data.subarray(p, p + chunk));
      if (!frame) return;
      this.run("b", this.b.handleFrame(frame.buffer));
    }
    this.run("a", this.a.finish(id));
  }

  kinds(side: "a" | "b"): string[] {
    return this.seen[side].map((f) => f.kind);
  }

  types(from: "a" | "b"): string[] {
    return this.wire.filter((w) => w.from === from).map((w) => w.msg.type);
  }
}

function bytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7919 + 13) & 0xff;
  return out;
}

async function digest(data: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await webcrypto.subtle.digest("SHA-256", data)));
}

describe("FileLink", () => {
  it("offers, accepts, streams and completes with a matching digest", async () => {
    const p = new Pair();
    const data = bytes(3 * FILE_CHUNK_PAYLOAD + 100);
    const { transfer, effects } = p.a.offer("report.pdf", data.length, "application/pdf");
    p.run("a", effects);
    expect(p.kinds("b")).toEqual(["offered"]);
    const incoming = p.b.get("in", transfer.id);
    expect(incoming).toMatchObject({ name: "report.pdf", size: data.length, mime: "application/pdf", state: "offered" });
    // Nothing flows before the receiver says yes.
    expect(p.a.frame(transfer.id, data.subarray(0, 10))).toBeNull();

    p.run("b", p.b.accept(transfer.id));
    expect(p.kinds("a")).toEqual(["start"]);
    p.stream(transfer.id, data);

    expect(p.types("a")).toEqual(["offer", "end"]);
    expect(p.types("b")).toEqual(["accept", "complete"]);
    const end = p.wire.find((w) => w.msg.type === "end")?.msg as Extract<FileMessage, { type: "end" }>;
    expect(end.sha256).toBe(await digest(data));
    expect(p.b.get("in", transfer.id)?.state).toBe("complete");
    expect(p.a.get("out", transfer.id)?.state).toBe("complete");
    expect(p.kinds("b").at(-1)).toBe("complete");
    expect(p.kinds("a").at(-1)).toBe("complete");
    expect(Buffer.concat(p.received).equals(data)).toBe(true);
    expect(p.a.framesOut).toBe(4);
    expect(p.b.framesIn).toBe(4);
  });

  it("frames are the channel.rs format: u32 big-endian id, then the payload", () => {
    const p = new Pair();
    const { transfer, effects } = p.a.offer("x", 3);
    p.run("a", effects);
    p.run("b", p.b.accept(transfer.id));
    const frame = p.a.frame(transfer.id, new Uint8Array([7, 8, 9])) as Uint8Array;
    expect([...frame]).toEqual([0, 0, 0, transfer.id, 7, 8, 9]);
    expect(() => p.a.frame(transfer.id, new Uint8Array(1))).toThrow(/more than/);
    expect(() => p.a.frame(transfer.id, new Uint8Array(FILE_CHUNK_PAYLOAD + 1))).toThrow();
  });

  it("a zero-byte file completes with no chunk at all", () => {
    const p = new Pair();
    const { transfer, effects } = p.a.offer("empty.txt", 0);
    p.run("a", effects);
    p.run("b", p.b.accept(transfer.id));
    p.stream(transfer.id, new Uint8Array());
    expect(p.b.get("in", transfer.id)?.state).toBe("complete");
    expect(p.a.framesOut).toBe(0);
  });

  it("a declined offer sends no byte and says why", () => {
    const p = new Pair();
    const { transfer, effects } = p.a.offer("big.iso", 1000);
    p.run("a", effects);
    p.run("b", p.b.decline(transfer.id));
    expect(p.types("b")).toEqual(["decline"]);
    expect(p.a.get("out", transfer.id)).toMatchObject({ state: "declined", reason: "declined" });
    expect(p.kinds("a")).toEqual(["stopped"]);
    expect(p.a.frame(transfer.id, new Uint8Array(10))).toBeNull();
    expect(p.a.bytesOut).toBe(0);
    // A late accept changes nothing.
    expect(p.b.accept(transfer.id)).toEqual([]);
  });

  it("declines offers over the size cap by itself, with tooLarge", () => {
    const p = new Pair();
    const { transfer, effects } = p.a.offer("huge.bin", (1 << 20) + 1);
    p.run("a", effects);
    expect(p.kinds("b")).toEqual(["stopped"]);
    expect(p.b.get("in", transfer.id)).toMatchObject({ state: "declined", reason: "tooLarge" });
    expect(p.wire.at(-1)?.msg).toEqual({ type: "decline", id: transfer.id, reason: "tooLarge" });
    expect(p.a.get("out", transfer.id)).toMatchObject({ state: "declined", reason: "tooLarge" });
  });

  it("the deny policy declines every offer", () => {
    const r = new FileLink({ maxBytes: 1 << 30, policy: "deny" });
    const fx = r.handle({ type: "offer", id: 1, name: "a", size: 1, mime: "" });
    expect(fx[0]).toEqual({ kind: "send", msg: { type: "decline", id: 1, reason: "policy" } });
  });

  it("declines unusable offers as invalid: bad names, bad sizes, an id in use", () => {
    const r = new FileLink({ maxBytes: 1 << 30 });
    const reasons = (msg: FileMessage) => r.handle(msg).flatMap((f) => (f.kind === "send" && f.msg.type === "decline" ? [f.msg.reason] : []));
    expect(reasons({ type: "offer", id: 1, name: "", size: 1, mime: "" })).toEqual(["invalid"]);
    expect(reasons({ type: "offer", id: 2, name: "é".repeat(MAX_FILE_NAME), size: 1, mime: "" })).toEqual(["invalid"]);
    expect(reasons({ type: "offer", id: 3, name: "a", size: -1, mime: "" })).toEqual(["invalid"]);
    expect(reasons({ type: "offer", id: 4, name: "a", size: 1.5, mime: "" })).toEqual(["invalid"]);
    expect(reasons({ type: "offer", id: 5, name: "ok", size: 1, mime: "" })).toEqual([]);
    expect(reasons({ type: "offer", id: 5, name: "again", size: 1, mime: "" })).toEqual(["invalid"]);
    expect(r.get("in", 5)?.name).toBe("ok");
  });

  it("the receiver cancels mid-transfer: the sender stops and later chunks are dropped", () => {
    const p = new Pair();
    const data = bytes(5 * 1000);
    const { transfer, effects } = p.a.offer("clip.webm", data.length);
    p.run("a", effects);
    p.run("b", p.b.accept(transfer.id));
    const first = p.a.frame(transfer.id, data.subarray(0, 1000)) as Uint8Array;
    p.run("b", p.b.handleFrame(first.buffer as ArrayBuffer));
    // A chunk already in flight when the receiver cancels.
    const inFlight = p.a.frame(transfer.id, data.subarray(1000, 2000)) as Uint8Array;
    p.run("b", p.b.cancel("in", transfer.id, "changed my mind"));
    expect(p.wire.at(-1)?.msg).toEqual({ type: "cancel", id: transfer.id, by: "receiver", reason: "changed my mind" });
    expect(p.a.get("out", transfer.id)).toMatchObject({ state: "cancelled", by: "receiver" });
    expect(p.a.frame(transfer.id, data.subarray(2000, 3000))).toBeNull();
    const before = p.b.ignored;
    expect(p.b.handleFrame(inFlight.buffer as ArrayBuffer)).toEqual([]);
    expect(p.b.ignored).toBe(before + 1);
    expect(p.b.get("in", transfer.id)?.bytes).toBe(1000);
  });

  it("the sender cancels mid-transfer: the receiver drops what it kept", () => {
    const p = new Pair();
    const { transfer, effects } = p.a.offer("clip.webm", 5000);
    p.run("a", effects);
    p.run("b", p.b.accept(transfer.id));
    p.run("b", p.b.handleFrame((p.a.frame(transfer.id, bytes(1000)) as Uint8Array).buffer as ArrayBuffer));
    p.run("a", p.a.cancel("out", transfer.id));
    expect(p.b.get("in", transfer.id)).toMatchObject({ state: "cancelled", by: "sender" });
    expect(p.kinds("b").at(-1)).toBe("stopped");
    // Cancelling twice, or after the end, says nothing more.
    expect(p.a.cancel("out", transfer.id)).toEqual([]);
  });

  it("a cancel names its side, so opposite transfers with the same id never mix", () => {
    const p = new Pair();
    const ab = p.a.offer("from-a", 10);
    p.run("a", ab.effects);
    const ba = p.b.offer("from-b", 10);
    p.run("b", ba.effects);
    expect(ab.transfer.id).toBe(ba.transfer.id);
    p.run("b", p.b.cancel("in", ab.transfer.id));
    expect(p.a.get("out", ab.transfer.id)?.state).toBe("cancelled");
    expect(p.a.get("in", ba.transfer.id)?.state).toBe("offered");
    expect(p.b.get("out", ba.transfer.id)?.state).toBe("offered");
  });

  it("fails on a corrupted digest and keeps nothing", () => {
    const p = new Pair();
    const data = bytes(2000);
    const { transfer, effects } = p.a.offer("a.bin", data.length);
    p.run("a", effects);
    p.run("b", p.b.accept(transfer.id));
    p.run("b", p.b.handleFrame((p.a.frame(transfer.id, data) as Uint8Array).buffer as ArrayBuffer));
    p.run("b", p.b.handle({ type: "end", id: transfer.id, sha256: "00".repeat(32) }));
    expect(p.b.get("in", transfer.id)).toMatchObject({ state: "failed", reason: "sha256 mismatch" });
    expect(p.kinds("b").at(-1)).toBe("stopped");
    expect(p.types("b").at(-1)).toBe("failed");
    expect(p.a.get("out", transfer.id)).toMatchObject({ state: "failed", reason: "sha256 mismatch" });
  });

  it("fails when fewer bytes arrived than offered", () => {
    const r = new FileLink({ maxBytes: 1 << 20 });
    r.handle({ type: "offer", id: 9, name: "a", size: 10, mime: "" });
    r.accept(9);
    const frame = new Uint8Array([0, 0, 0, 9, 1, 2, 3]);
    r.handleFrame(frame.buffer);
    const fx = r.handle({ type: "end", id: 9, sha256: "x" });
    expect(fx[0]).toMatchObject({ kind: "send", msg: { type: "failed", id: 9 } });
    expect(r.get("in", 9)?.reason).toMatch(/^size/);
  });

  it("fails at once when more bytes arrive than offered", () => {
    const r = new FileLink({ maxBytes: 1 << 20 });
    r.handle({ type: "offer", id: 9, name: "a", size: 2, mime: "" });
    r.accept(9);
    const fx = r.handleFrame(new Uint8Array([0, 0, 0, 9, 1, 2, 3]).buffer);
    expect(fx[0]).toMatchObject({ kind: "send", msg: { type: "failed", id: 9 } });
    expect(r.get("in", 9)?.state).toBe("failed");
  });

  it("ignores chunks and messages for unknown ids or the wrong state, and malformed frames", () => {
    const r = new FileLink({ maxBytes: 1 << 20 });
    expect(r.handleFrame(new Uint8Array([0, 0, 0, 42, 1]).buffer)).toEqual([]);
    expect(r.handleFrame(new Uint8Array([0, 1]).buffer)).toEqual([]);
    expect(r.handleFrame(new ArrayBuffer(64 * 1024 + 1))).toEqual([]);
    expect(r.handle({ type: "accept", id: 42 })).toEqual([]);
    expect(r.handle({ type: "complete", id: 42 })).toEqual([]);
    expect(r.handle({ type: "end", id: 42, sha256: "" })).toEqual([]);
    expect(r.handle({ type: "cancel", id: 42, by: "sender", reason: "" })).toEqual([]);
    // A chunk before the offer was accepted is not kept.
    r.handle({ type: "offer", id: 1, name: "a", size: 5, mime: "" });
    expect(r.handleFrame(new Uint8Array([0, 0, 0, 1, 1]).buffer)).toEqual([]);
    expect(r.get("in", 1)?.bytes).toBe(0);
    // Unknown message types are not errors.
    expect(r.handle({ type: "shiny", id: 1 } as unknown as FileMessage)).toEqual([]);
    expect(r.ignored).toBe(9);
    expect(r.framesIn).toBe(4);
  });

  it("runs several transfers at once, interleaved", () => {
    const p = new Pair();
    const one = bytes(3000);
    const two = bytes(5000).map((x) => x ^ 0x55);
    const t1 = p.a.offer("one", one.length);
    const t2 = p.a.offer("two", two.length);
    p.run("a", [...t1.effects, ...t2.effects]);
    p.run("b", p.b.accept(t2.transfer.id));
    p.run("b", p.b.accept(t1.transfer.id));
    const sinks = new Map<number, number[]>();
    const feed = (id: number, chunk: Uint8Array) => {
      for (const fx of p.b.handleFrame((p.a.frame(id, chunk) as Uint8Array).buffer as ArrayBuffer)) if (fx.kind === "data") sinks.set(fx.transfer.id, [...(sinks.get(fx.transfer.id) ?? []), ...fx.payload]);
    };
    for (let i = 0; i < 5; i++) {
      if (i < 3) feed(t1.transfer.id, one.subarray(i * 1000, (i + 1) * 1000));
      feed(t2.transfer.id, two.subarray(i * 1000, (i + 1) * 1000));
    }
    p.run("a", p.a.finish(t1.transfer.id));
    p.run("a", p.a.finish(t2.transfer.id));
    expect(p.b.get("in", t1.transfer.id)?.state).toBe("complete");
    expect(p.b.get("in", t2.transfer.id)?.state).toBe("complete");
    expect(new Uint8Array(sinks.get(t1.transfer.id) ?? [])).toEqual(one);
    expect(new Uint8Array(sinks.get(t2.transfer.id) ?? [])).toEqual(two);
  });

  it("the receiver may report failure while the sender is still sending", () => {
    const p = new Pair();
    const { transfer, effects } = p.a.offer("a", 10);
    p.run("a", effects);
    p.run("b", p.b.accept(transfer.id));
    p.run("a", p.a.handle({ type: "failed", id: transfer.id, reason: "disk full" }));
    expect(p.a.get("out", transfer.id)).toMatchObject({ state: "failed", reason: "disk full" });
    expect(p.a.frame(transfer.id, new Uint8Array(1))).toBeNull();
  });

  it("a closed channel ends every running transfer without sending", () => {
    const p = new Pair();
    const t1 = p.a.offer("a", 10);
    const t2 = p.a.offer("b", 10);
    p.run("a", [...t1.effects, ...t2.effects]);
    p.run("b", p.b.accept(t1.transfer.id));
    const fx = p.a.close();
    expect(fx.map((f) => f.kind)).toEqual(["stopped", "stopped"]);
    expect(p.a.transfers().every((t) => t.state === "failed")).toBe(true);
  });
});

describe("parseFileMessage", () => {
  it("keeps objects with a type and a u32 id, drops the rest", () => {
    expect(parseFileMessage('{"type":"accept","id":3}')).toEqual({ type: "accept", id: 3 });
    expect(parseFileMessage("[]")).toBeNull();
    expect(parseFileMessage("nope")).toBeNull();
    expect(parseFileMessage('{"type":"accept"}')).toBeNull();
    expect(parseFileMessage('{"type":"accept","id":-1}')).toBeNull();
    expect(parseFileMessage('{"type":"accept","id":4294967296}')).toBeNull();
  });
});

describe("fitFileName", () => {
  it("keeps short names and the extension of long ones", () => {
    expect(fitFileName("notes.txt")).toBe("notes.txt");
    expect(fitFileName("  \u0007")).toBe("file");
    const long = fitFileName(`${"ä".repeat(300)}.tar.gz`);
    expect(new TextEncoder().encode(long).length).toBeLessThanOrEqual(MAX_FILE_NAME);
    expect(long.endsWith("….gz")).toBe(true);
  });
});

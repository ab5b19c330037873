import { describe, expect, it } from "vitest";
import {
  AUDIO_MIME_TYPES,
  VIDEO_MIME_TYPES,
  formatElapsed,
  formatSize,
  parseSource,
  pickMimeType,
  recordingFileName,
  recordingNotices,
} from "./recording";

describe("pickMimeType", () => {
  it("prefers VP8 with Opus in WebM", () => {
    expect(pickMimeType(true, () => true)).toBe("video/webm;codecs=vp8,opus");
    expect(VIDEO_MIME_TYPES[0]).toBe("video/webm;codecs=vp8,opus");
  });

  it("falls back to VP9, then plain WebM", () => {
    expect(pickMimeType(true, (t) => t !== "video/webm;codecs=vp8,opus")).toBe("video/webm;codecs=vp9,opus");
    expect(pickMimeType(true, (t) => t === "video/webm")).toBe("video/webm");
  });

  it("gives null when nothing is supported, or when the check throws", () => {
    expect(pickMimeType(true, () => false)).toBeNull();
    expect(
      pickMimeType(true, () => {
        throw new Error("no");
      }),
    ).toBeNull();
  });

  it("records audio alone as WebM audio", () => {
    const asked: string[] = [];
    expect(pickMimeType(false, (t) => (asked.push(t), true))).toBe("audio/webm;codecs=opus");
    expect(asked).toEqual(["audio/webm;codecs=opus"]);
    expect(pickMimeType(false, (t) => t === "audio/webm")).toBe("audio/webm");
    expect(AUDIO_MIME_TYPES.every((t) => t.startsWith("audio/webm"))).toBe(true);
  });
});

describe("recordingFileName", () => {
  it("names the room and the local start time", () => {
    expect(recordingFileName("team-sync", new Date(2024, 0, 5, 9, 3, 7))).toBe("portal-team-sync-20240105-090307.webm");
    expect(recordingFileName("a.b_c", new Date(2025, 11, 31, 23, 59, 59))).toBe("portal-a.b_c-20251231-235959.webm");
  });

  it("keeps only safe characters", () => {
    expect(recordingFileName("../etc/passwd", new Date(2024, 0, 1, 0, 0, 0))).toBe("portal-etc-passwd-20240101-000000.webm");
    expect(recordingFileName("Ünïcode room", new Date(2024, 0, 1, 0, 0, 0))).toBe("portal-n-code-room-20240101-000000.webm");
    expect(recordingFileName("", new Date(2024, 0, 1, 0, 0, 0))).toBe("portal-call-20240101-000000.webm");
    expect(recordingFileName("///", new Date(2024, 0, 1, 0, 0, 0))).toBe("portal-call-20240101-000000.webm");
  });
});

describe("formatting", () => {
  it("shows elapsed time as m:ss, then h:mm:ss", () => {
    expect(formatElapsed(0)).toBe("0:00");
    expect(formatElapsed(3_999)).toBe("0:03");
    expect(formatElapsed(62_000)).toBe("1:02");
    expect(formatElapsed(3_723_000)).toBe("1:02:03");
    expect(formatElapsed(-5)).toBe("0:00");
  });

  it("shows sizes in B, KB and MB", () => {
    expect(formatSize(512)).toBe("512 B");
    expect(formatSize(10 * 1024)).toBe("10 KB");
    expect(formatSize(Math.round(2.25 * 1024 * 1024))).toBe("2.3 MB");
  });

  it("announces each peer who records", () => {
    expect(recordingNotices([])).toEqual([]);
    expect(recordingNotices(["Ada", "Bo"])).toEqual(["Ada is recording", "Bo is recording"]);
  });
});

describe("parseSource", () => {
  it("reads the source select's values", () => {
    expect(parseSource("call")).toEqual({ kind: "call" });
    expect(parseSource("self")).toEqual({ kind: "self" });
    expect(parseSource("peer:12")).toEqual({ kind: "peer", id: 12 });
    expect(parseSource("peer:x")).toEqual({ kind: "call" });
    expect(parseSource("")).toEqual({ kind: "call" });
  });
});

import { describe, expect, it } from "vitest";
import { gridColumns, preferCodecs, shouldOffer } from "./rules";

describe("offer rule", () => {
  const b1 = { id: 1, role: "browser" as const };
  const b2 = { id: 2, role: "browser" as const };
  const k3 = { id: 3, role: "kiosk" as const };
  const k4 = { id: 4, role: "kiosk" as const };

  it("browser always offers to a kiosk, never the other way", () => {
    expect(shouldOffer(b1, k3, false)).toBe(true);
    expect(shouldOffer(b1, k3, true)).toBe(true);
    expect(shouldOffer(k3, b1, true)).toBe(false);
  });

  it("between browsers the newcomer offers, exactly one side", () => {
    expect(shouldOffer(b2, b1, true)).toBe(true);
    expect(shouldOffer(b1, b2, false)).toBe(false);
  });

  it("between kiosks the lower id offers, exactly one side", () => {
    expect(shouldOffer(k3, k4, true)).toBe(true);
    expect(shouldOffer(k4, k3, false)).toBe(false);
  });
});

describe("layout and codecs", () => {
  it("grid columns grow with the number of tiles", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map(gridColumns)).toEqual([1, 2, 2, 2, 3, 3, 3, 3, 3]);
  });

  it("prefers constrained-baseline H.264 mode 1, then H.264, then VP8", () => {
    const codecs = [
      { mimeType: "video/VP9" },
      { mimeType: "video/VP8" },
      { mimeType: "video/H264", sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f" },
      { mimeType: "video/H264", sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" },
    ];
    const ordered = preferCodecs(codecs).map((c) => `${c.mimeType} ${c.sdpFmtpLine ?? ""}`);
    expect(ordered[0]).toContain("packetization-mode=1");
    expect(ordered[1]).toContain("packetization-mode=0");
    expect(ordered[2]).toContain("VP8");
    expect(preferCodecs(codecs, true).map((c) => c.mimeType)).toEqual(["video/VP8", "video/VP9"]);
  });
});

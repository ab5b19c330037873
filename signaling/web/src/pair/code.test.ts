import { describe, expect, it } from "vitest";
import { codeFromPath, compactCode, groupCode, normalizeCode } from "./code";

describe("pairing codes", () => {
  it("are read as typed, in any case and spacing", () => {
    expect(normalizeCode("k7p 2xm")).toBe("K7P2XM");
    expect(normalizeCode("K7P-2XM")).toBe("K7P2XM");
    expect(normalizeCode("  k7p2xm\t")).toBe("K7P2XM");
    expect(compactCode("a b-c")).toBe("ABC");
  });

  it("refuse what cannot be a code", () => {
    expect(normalizeCode("K7P2X")).toBeNull();
    expect(normalizeCode("K7P2XMM")).toBeNull();
    expect(normalizeCode("K0P2XM")).toBeNull(); // 0 is not in the alphabet
    expect(normalizeCode("KOP2XM")).toBeNull(); // nor O
    expect(normalizeCode("K1P2XM")).toBeNull();
    expect(normalizeCode("K7P2XÄ")).toBeNull();
    expect(normalizeCode("A".repeat(100))).toBeNull();
    expect(normalizeCode("")).toBeNull();
  });

  it("are grouped as the kiosk shows them", () => {
    expect(groupCode("K7P2XM")).toBe("K7P 2XM");
    expect(groupCode("k7p2xm")).toBe("K7P 2XM");
    expect(groupCode("k7 p2-xm")).toBe("K7P 2XM");
    expect(groupCode("k7p")).toBe("K7P");
    expect(groupCode("k7p2")).toBe("K7P 2");
    expect(groupCode("")).toBe("");
    expect(groupCode("K7P2XMQQ")).toBe("K7P2XMQQ");
  });

  it("come from pairing links", () => {
    expect(codeFromPath("/p/K7P2XM")).toBe("K7P2XM");
    expect(codeFromPath("/p/k7p%202xm")).toBe("k7p 2xm");
    expect(codeFromPath("/p/")).toBe("");
    expect(codeFromPath("/p")).toBe("");
    expect(codeFromPath("/p/%E0%A4%A")).toBe("");
    expect(codeFromPath("/r/room")).toBeNull();
    expect(codeFromPath("/p/a/b")).toBeNull();
    expect(codeFromPath("/")).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import { cleanDisplayName } from "./names";

// The same cases as signaling/proto/src/names.rs: the two must agree.
const name = (raw: string): string | undefined => {
  const r = cleanDisplayName(raw);
  return "name" in r ? r.name : undefined;
};

describe("cleanDisplayName", () => {
  it("removes bidi and zero-width characters", () => {
    expect(name("Ada\u202Enimda")).toBe("Adanimda");
    expect(name("\u2066Room 4.01\u2069")).toBe("Room 4.01");
    expect(name("A\u200Bd\u200Ca\u200D\u2060\uFEFF")).toBe("Ada");
    expect(name("\u200E\u200F\u061CBo")).toBe("Bo");
    expect(name("\u202A\u202B\u202C\u202D\u2067\u2068x")).toBe("x");
  });

  it("collapses and trims white space", () => {
    expect(name("  Room \u3000\u00A0 4.01\t")).toBe("Room 4.01");
    expect(name("a\nb")).toBe("a b");
    expect(name("a\u2028b")).toBe("a b");
    expect(name("c1\u0085x")).toBe("c1 x");
  });

  it("refuses empty, invisible-only and control names", () => {
    for (const bad of ["", "   ", "\u200B\u200B", " \u202E \uFEFF ", "\u3164", "\u0301\u0301", "\u0007bell", "nul\u0000", "esc\u001b[31m", "del\u007f", "x\u009b", "lone\uD800"]) {
      expect(cleanDisplayName(bad), JSON.stringify(bad)).toHaveProperty("error");
    }
  });

  it("counts length after cleaning, in characters and bytes", () => {
    expect(name("é".repeat(64))).toBe("é".repeat(64));
    expect(name("é".repeat(65))).toBeUndefined();
    expect(name("😀".repeat(64))).toBe("😀".repeat(64));
    expect(name("😀".repeat(65))).toBeUndefined();
    expect(name(`Ada${"\u200B".repeat(300)}`)).toBe("Ada");
    expect(name("\u200B".repeat(400))).toBeUndefined();
  });

  it("refuses stacked combining marks", () => {
    expect(name("e\u0301\u0308")).toBe("e\u0301\u0308");
    expect(name(`Z${"\u0336".repeat(4)}`)).toBeDefined();
    expect(name(`Z${"\u0336".repeat(5)}`)).toBeUndefined();
  });

  it("is idempotent", () => {
    for (const raw of ["  a  b ", "\u202Ex\u200By", "Room 4.01", "😀 e\u0301"]) {
      const once = name(raw);
      expect(once).toBeDefined();
      expect(name(once!)).toBe(once);
    }
  });
});

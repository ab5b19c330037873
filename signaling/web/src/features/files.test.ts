import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_BYTES, createFilesFeature, formatBytes } from "./files";

describe("files feature", () => {
  it("formats sizes in binary units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1024)).toBe("1.0 KiB");
    expect(formatBytes(20 * 1024 * 1024)).toBe("20.0 MiB");
    expect(formatBytes(256 * 1024 * 1024)).toBe("256 MiB");
    expect(formatBytes(DEFAULT_MAX_BYTES)).toBe("2.0 GiB");
  });

  it("is a side-panel tab named Files", () => {
    const f = createFilesFeature({ maxBytes: 1 });
    expect([f.id, f.title]).toEqual(["files", "Files"]);
  });
});

import { webcrypto } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Sha256, sha256Hex, toHex } from "./sha256";

async function reference(data: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await webcrypto.subtle.digest("SHA-256", data)));
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe("Sha256", () => {
  it("matches the FIPS 180-4 examples", () => {
    expect(sha256Hex(new Uint8Array())).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256Hex(new TextEncoder().encode("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256Hex(new TextEncoder().encode("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
  });

  it("matches WebCrypto at every length around the padding boundaries", async () => {
    for (const n of [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000]) {
      const data = bytes(n, n);
      expect(sha256Hex(data), `length ${n}`).toBe(await reference(data));
    }
  });

  it("gives the same digest however the input is split", async () => {
    const data = bytes(300_000, 7);
    const want = await reference(data);
    for (const step of [1, 3, 63, 64, 65, 65_532, 100_000]) {
      const h = new Sha256();
      for (let i = 0; i < data.length; i += step) h.update(data.subarray(i, i + step));
      expect(h.hex(), `step ${step}`).toBe(want);
    }
  });

  it("refuses to be used after the digest", () => {
    const h = new Sha256();
    h.digest();
    expect(() => h.update(new Uint8Array(1))).toThrow();
    expect(() => h.digest()).toThrow();
  });
});

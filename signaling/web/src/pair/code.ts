// Pairing codes as people type them and as the kiosk shows them. The rules mirror
// `portal_proto::pairing::normalize_code`; the alphabet and length are generated from it.

import { PAIRING_CODE_ALPHABET, PAIRING_CODE_LEN } from "../gen/protocol";

/** Longest input looked at (as the server's normalizer). */
const MAX_TYPED = 64;

/** Upper case, spaces and dashes dropped: "k7p 2xm" → "K7P2XM" (not checked). */
export function compactCode(typed: string): string {
  return typed
    .slice(0, MAX_TYPED)
    .replace(/[\s-]/g, "")
    .toUpperCase();
}

/** The code in `typed`, or null when it cannot be one (length, a look-alike such as O or 1). */
export function normalizeCode(typed: string): string | null {
  if (typed.length > MAX_TYPED) return null;
  const code = compactCode(typed);
  return code.length === PAIRING_CODE_LEN && [...code].every((c) => PAIRING_CODE_ALPHABET.includes(c)) ? code : null;
}

/** As the kiosk shows it, in two groups of three: "K7P2XM" → "K7P 2XM". Any text is
 * compacted first; a partial code is grouped as far as it goes ("K7P2" → "K7P 2"). */
export function groupCode(typed: string): string {
  const code = compactCode(typed);
  if (code.length > PAIRING_CODE_LEN) return code;
  const half = PAIRING_CODE_LEN / 2;
  return code.length > half ? `${code.slice(0, half)} ${code.slice(half)}` : code;
}

/** The code in a pairing link's path (`/p/K7P2XM`), as typed there; null for other paths. */
export function codeFromPath(path: string): string | null {
  const m = /^\/p(?:\/([^/]*))?\/?$/.exec(path);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1] ?? "");
  } catch {
    return "";
  }
}

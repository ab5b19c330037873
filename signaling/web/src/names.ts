// Display names: the browser's copy of the rule in signaling/proto/src/names.rs, fed with
// the generated character ranges and limits, so what a person types is cleaned here as
// the server will clean it (and what they see as their own name is what others see).
// Invisible characters (bidi controls, zero-width characters, fillers) are removed, runs
// of white space become one space, the ends are trimmed; control characters, stacked
// combining marks, names with nothing visible and overlong names are refused.

import {
  MAX_COMBINING_RUN,
  MAX_NAME_BYTES,
  MAX_NAME_CHARS,
  MAX_RAW_NAME_BYTES,
  NAME_COMBINING_RANGES,
  NAME_CONTROL_RANGES,
  NAME_INVISIBLE_RANGES,
  NAME_SPACE_RANGES,
} from "./gen/protocol";

type Ranges = ReadonlyArray<readonly [number, number]>;

const within = (cp: number, ranges: Ranges): boolean => ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
const utf8Length = (s: string): number => new TextEncoder().encode(s).length;

/** The name others will see for `raw`, or the reason it cannot be one. */
export function cleanDisplayName(raw: string): { name: string } | { error: string } {
  if (utf8Length(raw) > MAX_RAW_NAME_BYTES) return { error: "far too long" };
  let out = "";
  let pendingSpace = false;
  let combining = 0;
  for (const ch of raw) {
    const cp = ch.codePointAt(0) ?? 0;
    // A lone surrogate cannot be sent as JSON text the server reads.
    if (cp >= 0xd800 && cp <= 0xdfff) return { error: "contains an unpaired surrogate" };
    if (within(cp, NAME_INVISIBLE_RANGES)) continue;
    if (within(cp, NAME_SPACE_RANGES)) {
      pendingSpace = out.length > 0;
      combining = 0;
      continue;
    }
    if (within(cp, NAME_CONTROL_RANGES)) return { error: "contains control characters" };
    if (within(cp, NAME_COMBINING_RANGES)) {
      combining += 1;
      if (combining > MAX_COMBINING_RUN) return { error: "too many combining marks" };
    } else {
      combining = 0;
    }
    if (pendingSpace) {
      out += " ";
      pendingSpace = false;
    }
    out += ch;
  }
  const chars = [...out];
  if (!chars.some((c) => !within(c.codePointAt(0) ?? 0, NAME_COMBINING_RANGES))) {
    return { error: "empty (only white space or invisible characters)" };
  }
  if (chars.length > MAX_NAME_CHARS) return { error: `longer than ${MAX_NAME_CHARS} characters` };
  if (utf8Length(out) > MAX_NAME_BYTES) return { error: `longer than ${MAX_NAME_BYTES} bytes` };
  return { name: out };
}

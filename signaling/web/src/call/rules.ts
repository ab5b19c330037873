// Pure rules of the call contract (ARCHITECTURE.md, "Peer connections"), kept apart from
// the browser APIs so they are unit-tested and shared by every feature.

import type { PeerId, Role } from "../gen/protocol";

/** Data channels are pre-negotiated with fixed ids on both sides. */
export const CHAT_CHANNEL = { label: "chat", id: 0 } as const;
export const FILE_CHANNEL = { label: "file", id: 1 } as const;

/** Transceivers in the order every offer carries them. */
export const TRANSCEIVER_ORDER = ["audio", "camera", "screen"] as const;
export type TransceiverSlot = (typeof TRANSCEIVER_ORDER)[number];

/** The kiosk's preferred H.264 (constrained baseline, packetization-mode 1). */
export const H264_FMTP = "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1";

export interface PeerSide {
  id: PeerId;
  role: Role;
}

/**
 * Who sends the offer between `self` and `other`.
 * - a browser always offers to a kiosk;
 * - between browsers the newcomer offers (the one that learned of the other from `joined`);
 * - between kiosks the lower peer id offers.
 * `selfIsNewcomer` is true when `other` was listed in our `joined`, false when it arrived
 * with `peerJoined`.
 */
export function shouldOffer(self: PeerSide, other: PeerSide, selfIsNewcomer: boolean): boolean {
  if (self.role === "browser" && other.role === "kiosk") return true;
  if (self.role === "kiosk" && other.role === "browser") return false;
  if (self.role === "kiosk" && other.role === "kiosk") return self.id < other.id;
  return selfIsNewcomer;
}

/** Columns for a grid of `n` tiles: near-square, wider than tall. */
export function gridColumns(n: number): number {
  if (n <= 1) return 1;
  if (n <= 2) return 2;
  if (n <= 4) return 2;
  if (n <= 6) return 3;
  return Math.ceil(Math.sqrt(n));
}

/** Orders codecs so H.264 42e01f with packetization-mode=1 comes first, then other H.264, then VP8, then the rest. */
export function preferCodecs<T extends { mimeType: string; sdpFmtpLine?: string }>(codecs: T[], excludeH264 = false): T[] {
  const rank = (c: T): number => {
    const mime = c.mimeType.toLowerCase();
    if (mime === "video/h264") {
      if (excludeH264) return 99;
      const fmtp = (c.sdpFmtpLine ?? "").toLowerCase();
      return fmtp.includes("42e01f") && fmtp.includes("packetization-mode=1") ? 0 : 1;
    }
    if (mime === "video/vp8") return 2;
    if (mime === "video/rtx" || mime === "video/red" || mime === "video/ulpfec") return 3;
    return 4;
  };
  return codecs.filter((c) => rank(c) !== 99).sort((a, b) => rank(a) - rank(b));
}

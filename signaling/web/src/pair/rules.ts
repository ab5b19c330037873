// Room-aware audio: a laptop in the same call as the kiosk it sits beside would echo
// (its microphone hears the room's speaker), so it turns its microphone and speaker off
// when it comes to share the kiosk's call, however that happens. Once: the person may
// turn them back on.

import type { KioskState } from "../gen/protocol";

/** Whether the laptop's call (in `laptopRoom`) is the kiosk's call. */
export function besideKiosk(laptopRoom: string | null, kiosk: KioskState | null): boolean {
  return laptopRoom !== null && kiosk?.room !== undefined && kiosk.room === laptopRoom;
}

/** Whether to turn audio off now: the laptop and the kiosk have just come together. */
export function shouldSilence(wasBeside: boolean, isBeside: boolean): boolean {
  return isBeside && !wasBeside;
}

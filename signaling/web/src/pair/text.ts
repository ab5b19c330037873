// What the Pair page and the remote say, in plain words: errors, results, the kiosk's
// state and the labels of the remote's toggles. Pure, so every string is tested.

import type { CommandError, ErrorCode, KioskState, PeerId, RemoteCommand, UnpairReason } from "../gen/protocol";

/** Shown when the typed text cannot be a code (nothing is sent). */
export const MALFORMED_CODE = "A pairing code has 6 letters and digits, as on the screen (like K7P 2XM)";
/** The server did not answer `pair` in time, or the connection could not be opened. */
export const NO_SERVER = "Cannot reach the server: check the network and try again";
/** The room-aware audio note (the kiosk's name goes after "with "). */
export const inRoomNote = (kiosk: string): string => `In the room with ${kiosk}: audio comes from the room`;

/** Why `pair` was refused. */
export function pairErrorText(code: ErrorCode, message: string): string {
  switch (code) {
    case "invalidCode":
      return "That code is not on any display — check the code on the screen";
    case "codeExpired":
      return "That code has expired — use the new code on the screen";
    case "rateLimited":
      return "Too many wrong codes: wait a minute";
    case "kioskOffline":
      return "That display is not connected to the server right now — check that it is on";
    case "alreadyPaired":
      return "This page is already paired with a display — unpair it first";
    default:
      return `Pairing failed: ${message}`;
  }
}

/** Why a pairing ended: the server's reason, or our connection was lost for good. */
export type EndReason = UnpairReason | "connectionLost";

export function unpairedText(reason: EndReason, kiosk: string): string {
  switch (reason) {
    case "connectionLost":
      return `The connection to the server was lost, so the pairing with ${kiosk} ended: pair again`;
    case "laptopLeft":
      return `Unpaired from ${kiosk}`;
    case "kioskEnded":
      return `${kiosk} ended the pairing`;
    case "kioskGone":
      return `${kiosk} went offline, so the pairing ended`;
    case "expired":
      return `The pairing with ${kiosk} expired: pair again with the code on the screen`;
    case "removed":
      return `${kiosk} was removed from this server, so the pairing ended`;
    default:
      return `The pairing with ${kiosk} ended`;
  }
}

/** A command's typed error; `timeout` with no error from the server is our own clock's. */
export function commandErrorText(error: CommandError, kiosk: string): string {
  const why = error.message ? `: ${error.message}` : "";
  switch (error.code) {
    case "notPaired":
      return `Not paired with ${kiosk} any more`;
    case "badRequest":
      return `${kiosk} could not do that${why}`;
    case "notInCall":
      return `${kiosk} is not in a call`;
    case "joinFailed":
      return `${kiosk} could not join the room${why}`;
    case "unavailable":
      return `${kiosk} cannot do that${why}`;
    case "timeout":
      return `${kiosk} did not answer in time`;
    default:
      return `${kiosk} could not do that${why}`;
  }
}

/** What a command did, once the kiosk said it is done. */
export function commandDoneText(command: RemoteCommand, kiosk: string, room?: string): string {
  switch (command.kind) {
    case "present":
      return room ? `Presenting on ${kiosk} in ${room}` : `Presenting on ${kiosk}`;
    case "stopPresenting":
      return "Stopped presenting";
    case "joinRoom":
      return `${kiosk} is joining ${command.room}`;
    case "leave":
      return `${kiosk} left the call`;
    case "setMicMuted":
      return command.muted ? "Room microphone muted" : "Room microphone on";
    case "setCameraOff":
      return command.off ? "Room camera off" : "Room camera on";
    case "setVolume":
      return `Room volume ${percent(command.volume)}`;
  }
}

/** "60%" for 0.6. */
export function percent(volume: number): string {
  return `${Math.round(Math.min(1, Math.max(0, volume)) * 100)}%`;
}

/** The remote's toggles: their accessible names follow the kiosk's reported state. */
export function micToggle(state: KioskState | null): { label: string; pressed: boolean } {
  const muted = state?.micMuted === true;
  return { label: muted ? "Unmute room microphone" : "Mute room microphone", pressed: muted };
}

export function cameraToggle(state: KioskState | null): { label: string; pressed: boolean } {
  const off = state?.cameraOff === true;
  return { label: off ? "Room camera on" : "Room camera off", pressed: off };
}

/** The kiosk's state as lines for the remote (`self` is this laptop's peer id). */
export function stateLines(state: KioskState | null, self: PeerId | null): string[] {
  if (!state) return ["Waiting for the display's state…"];
  const where = state.room ? (state.inCall ? `In the call in ${state.room}` : `Joining ${state.room}…`) : "Not in a call";
  const presenting = state.presenting === undefined ? "Nobody is presenting" : state.presenting === self ? "Showing this laptop's screen" : "Showing another laptop's screen";
  return [where, `Microphone ${state.micMuted ? "muted" : "on"}`, `Camera ${state.cameraOff ? "off" : "on"}`, `Volume ${percent(state.volume)}`, presenting];
}

import { describe, expect, it } from "vitest";
import type { KioskState } from "../gen/protocol";
import { cameraToggle, commandDoneText, commandErrorText, micToggle, pairErrorText, percent, stateLines, unpairedText } from "./text";

const state: KioskState = { room: "standup", inCall: true, micMuted: false, cameraOff: false, volume: 0.6 };

describe("pairing texts", () => {
  it("explain each refused code", () => {
    expect(pairErrorText("invalidCode", "x")).toBe("That code is not on any display — check the code on the screen");
    expect(pairErrorText("codeExpired", "x")).toBe("That code has expired — use the new code on the screen");
    expect(pairErrorText("rateLimited", "x")).toBe("Too many wrong codes: wait a minute");
    expect(pairErrorText("kioskOffline", "x")).toMatch(/not connected/);
    expect(pairErrorText("alreadyPaired", "x")).toMatch(/unpair it first/);
    expect(pairErrorText("internal", "boom")).toBe("Pairing failed: boom");
  });

  it("say why a pairing ended", () => {
    expect(unpairedText("kioskEnded", "Room 4.01")).toBe("Room 4.01 ended the pairing");
    expect(unpairedText("laptopLeft", "Room 4.01")).toBe("Unpaired from Room 4.01");
    expect(unpairedText("expired", "Room 4.01")).toMatch(/expired/);
    expect(unpairedText("kioskGone", "Room 4.01")).toMatch(/offline/);
    expect(unpairedText("removed", "Room 4.01")).toMatch(/removed/);
    expect(unpairedText("connectionLost", "Room 4.01")).toMatch(/pair again/);
  });

  it("explain command errors and results", () => {
    expect(commandErrorText({ code: "notInCall", message: "" }, "Room 4.01")).toBe("Room 4.01 is not in a call");
    expect(commandErrorText({ code: "joinFailed", message: "wrong password" }, "Room 4.01")).toBe("Room 4.01 could not join the room: wrong password");
    expect(commandErrorText({ code: "timeout", message: "" }, "Room 4.01")).toBe("Room 4.01 did not answer in time");
    expect(commandDoneText({ kind: "setVolume", volume: 0.25 }, "Room 4.01")).toBe("Room volume 25%");
    expect(commandDoneText({ kind: "present" }, "Room 4.01", "standup")).toBe("Presenting on Room 4.01 in standup");
    expect(commandDoneText({ kind: "joinRoom", room: "x" }, "Room 4.01")).toBe("Room 4.01 is joining x");
    expect(commandDoneText({ kind: "setMicMuted", muted: true }, "K")).toBe("Room microphone muted");
    expect(commandDoneText({ kind: "setCameraOff", off: false }, "K")).toBe("Room camera on");
  });

  it("name the toggles after the kiosk's state", () => {
    expect(micToggle(state)).toEqual({ label: "Mute room microphone", pressed: false });
    expect(micToggle({ ...state, micMuted: true })).toEqual({ label: "Unmute room microphone", pressed: true });
    expect(cameraToggle(state)).toEqual({ label: "Room camera off", pressed: false });
    expect(cameraToggle({ ...state, cameraOff: true })).toEqual({ label: "Room camera on", pressed: true });
    expect(micToggle(null).label).toBe("Mute room microphone");
  });

  it("describe the kiosk's state", () => {
    expect(stateLines(state, 7)).toEqual(["In the call in standup", "Microphone on", "Camera on", "Volume 60%", "Nobody is presenting"]);
    expect(stateLines({ ...state, room: undefined, inCall: false, presenting: 7 }, 7)).toContain("Showing this laptop's screen");
    expect(stateLines({ ...state, inCall: false }, 7)[0]).toBe("Joining standup…");
    expect(stateLines({ ...state, presenting: 8 }, 7)).toContain("Showing another laptop's screen");
    expect(stateLines(null, 7)).toHaveLength(1);
    expect(percent(1.4)).toBe("100%");
    expect(percent(-1)).toBe("0%");
  });
});

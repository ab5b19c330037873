// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";
import type { KioskState } from "../gen/protocol";
import { remoteView, type RemoteActions } from "./remote";

const state: KioskState = { room: "standup", inCall: true, micMuted: true, cameraOff: false, volume: 0.3 };

function setup() {
  const actions: RemoteActions = {
    present: vi.fn(),
    stopPresenting: vi.fn(),
    joinHere: vi.fn(),
    joinRoom: vi.fn(),
    leave: vi.fn(),
    toggleMic: vi.fn(),
    toggleCamera: vi.fn(),
    setVolume: vi.fn(),
    unpair: vi.fn(),
  };
  const view = remoteView("Room 4.01", actions);
  document.body.replaceChildren(view.root);
  const button = (name: string) => document.querySelector<HTMLButtonElement>(`button[aria-label="${name}"]`);
  return { actions, view, button };
}

describe("the remote", () => {
  it("names its controls and follows the kiosk's state", () => {
    const { view, button } = setup();
    view.render(state, 7, false, false);
    expect(document.querySelector("h1")?.textContent).toBe("Paired with Room 4.01");
    expect(button("Unmute room microphone")?.getAttribute("aria-pressed")).toBe("true");
    expect(button("Room camera off")?.getAttribute("aria-pressed")).toBe("false");
    expect(document.querySelector<HTMLInputElement>('input[aria-label="Room volume"]')?.value).toBe("30");
    expect(button("Present")?.hidden).toBe(false);
    expect(button("Stop presenting")?.hidden).toBe(true);
    expect(button("Join the call on this laptop")?.hidden).toBe(false);
    for (const name of ["Leave", "Join room", "Unpair"]) expect(button(name)).not.toBeNull();
    view.render({ ...state, presenting: 7 }, 7, false, true);
    expect(button("Present")?.hidden).toBe(true);
    expect(button("Stop presenting")?.hidden).toBe(false);
    expect(button("Join the call on this laptop")?.hidden).toBe(true);
  });

  it("sends through its actions and disables a control while busy", () => {
    const { actions, view, button } = setup();
    view.render(state, 7, false, false);
    button("Unmute room microphone")?.click();
    expect(actions.toggleMic).toHaveBeenCalled();
    view.busy("mic", true);
    expect(button("Unmute room microphone")?.disabled).toBe(true);
    view.busy("mic", false);
    expect(button("Unmute room microphone")?.disabled).toBe(false);
    const room = document.querySelector<HTMLInputElement>('input[name="kiosk-room"]') as HTMLInputElement;
    room.value = " board ";
    document.querySelector("form")?.dispatchEvent(new Event("submit", { cancelable: true }));
    expect(actions.joinRoom).toHaveBeenCalledWith("board", undefined);
    view.result("Room 4.01 is not in a call", true);
    expect(document.querySelector(".result")?.getAttribute("role")).toBe("alert");
    view.note("In the room with Room 4.01: audio comes from the room");
    expect(document.querySelector<HTMLElement>(".note")?.hidden).toBe(false);
    view.note(null);
    expect(document.querySelector<HTMLElement>(".note")?.hidden).toBe(true);
  });
});

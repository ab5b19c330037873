// The remote a paired laptop sees: the kiosk's state and a button for every command.
// Names are fixed strings (tests and screen readers find them); a toggle's name follows
// the kiosk's reported state and aria-pressed says it too. Nothing here sends: `actions`
// does, and `RemoteView` shows what happened.

import type { KioskState, PeerId } from "../gen/protocol";
import { el, field } from "../dom";
import { cameraToggle, micToggle, percent, stateLines } from "./text";

export type RemoteAction = "present" | "stopPresenting" | "joinHere" | "joinRoom" | "leave" | "mic" | "camera" | "volume" | "unpair";

export interface RemoteActions {
  present(): void;
  stopPresenting(): void;
  /** Join the kiosk's call from this laptop too. */
  joinHere(): void;
  joinRoom(room: string, password: string | undefined): void;
  leave(): void;
  toggleMic(): void;
  toggleCamera(): void;
  setVolume(volume: number): void;
  unpair(): void;
}

export interface RemoteView {
  root: HTMLElement;
  render(state: KioskState | null, self: PeerId | null, presenting: boolean, inKioskCall: boolean): void;
  /** Disables the control of `action` while its command is in flight. */
  busy(action: RemoteAction, busy: boolean): void;
  result(text: string, error?: boolean): void;
  /** The room-aware audio note; null hides it. */
  note(text: string | null): void;
}

export function remoteView(kioskName: string, actions: RemoteActions): RemoteView {
  const button = (label: string, onClick: () => void, className = ""): HTMLButtonElement => {
    const b = el("button", { type: "button", ariaLabel: label, className }, label);
    b.onclick = onClick;
    return b;
  };
  const present = button("Present", () => actions.present(), "primary");
  const stop = button("Stop presenting", () => actions.stopPresenting(), "primary");
  const joinHere = button("Join the call on this laptop", () => actions.joinHere());
  const leave = button("Leave", () => actions.leave());
  const mic = button("Mute room microphone", () => actions.toggleMic());
  const camera = button("Room camera off", () => actions.toggleCamera());
  const volume = el("input", { type: "range", min: "0", max: "100", step: "5", value: "100", ariaLabel: "Room volume" });
  const volumeText = el("output", {}, "");
  volume.onchange = () => actions.setVolume(Number(volume.value) / 100);
  volume.oninput = () => (volumeText.textContent = percent(Number(volume.value) / 100));
  const unpair = button("Unpair", () => actions.unpair(), "leave");

  const room = el("input", { name: "kiosk-room", required: true, maxLength: 64, pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}", autocomplete: "off" });
  const password = el("input", { name: "kiosk-room-password", type: "password", autocomplete: "off" });
  const join = el("button", { type: "submit", ariaLabel: "Join room" }, "Join room");
  const joinForm = el("form", { className: "remote-join" }, field("Room name", room), field("Room password (optional)", password), join);
  joinForm.onsubmit = (e) => {
    e.preventDefault();
    actions.joinRoom(room.value.trim(), password.value || undefined);
  };

  const lines = el("ul", { className: "kiosk-state", ariaLabel: "Room display state" });
  const noteEl = el("p", { className: "note", role: "status", hidden: true });
  const resultEl = el("p", { className: "result", role: "status" });
  const root = el(
    "section",
    { className: "remote", ariaLabel: "Room display remote" },
    el("h1", {}, `Paired with ${kioskName}`),
    lines,
    noteEl,
    el("div", { className: "remote-row" }, present, stop, joinHere),
    el("div", { className: "remote-row" }, mic, camera, leave),
    el("label", { className: "volume" }, el("span", {}, "Room volume"), volume, volumeText),
    joinForm,
    resultEl,
    el("div", { className: "remote-row" }, unpair),
  );

  const controls: Record<RemoteAction, (HTMLButtonElement | HTMLInputElement)[]> = {
    present: [present],
    stopPresenting: [stop],
    joinHere: [joinHere],
    joinRoom: [join, room, password],
    leave: [leave],
    mic: [mic],
    camera: [camera],
    volume: [volume],
    unpair: [unpair],
  };
  let dragging = false;
  volume.onpointerdown = () => (dragging = true);
  volume.onpointerup = () => (dragging = false);

  return {
    root,
    render(state, self, presenting, inKioskCall) {
      lines.replaceChildren(...stateLines(state, self).map((t) => el("li", {}, t)));
      const m = micToggle(state);
      setToggle(mic, m.label, m.pressed);
      const c = cameraToggle(state);
      setToggle(camera, c.label, c.pressed);
      if (state && !dragging && !volume.disabled) {
        volume.value = String(Math.round(state.volume * 100));
        volumeText.textContent = percent(state.volume);
      }
      const showingUs = presenting || (state?.presenting !== undefined && state.presenting === self);
      present.hidden = showingUs;
      stop.hidden = !showingUs;
      joinHere.hidden = inKioskCall || !state?.room;
    },
    busy(action, busy) {
      for (const c of controls[action]) c.disabled = busy;
      if (action === "present" || action === "stopPresenting") for (const c of [...controls.present, ...controls.stopPresenting]) c.disabled = busy;
    },
    result(text, error = false) {
      resultEl.textContent = text;
      resultEl.classList.toggle("error", error);
      resultEl.setAttribute("role", error ? "alert" : "status");
    },
    note(text) {
      noteEl.textContent = text ?? "";
      noteEl.hidden = text === null;
    },
  };
}

function setToggle(b: HTMLButtonElement, label: string, pressed: boolean): void {
  b.textContent = label;
  b.setAttribute("aria-label", label);
  b.setAttribute("aria-pressed", String(pressed));
}

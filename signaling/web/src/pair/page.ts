// The Pair page (`/p/{CODE}`, or "Pair with a room display" on the landing page): type
// the code a kiosk shows, then drive that kiosk from the remote, and present this
// laptop's screen on it. The pairing lives on this page's signaling connection; closing
// the page ends it.

import type { RemoteCommand } from "../gen/protocol";
import { captureScreen } from "../call/session";
import { el, field } from "../dom";
import { Signaling } from "../signaling";
import { PairedCall } from "./call";
import { Pairing, type CommandOutcome } from "./client";
import { groupCode, normalizeCode } from "./code";
import { remoteView, type RemoteAction, type RemoteView } from "./remote";
import { MALFORMED_CODE, NO_SERVER, commandDoneText, commandErrorText, inRoomNote, pairErrorText, unpairedText } from "./text";

const WELCOME_TIMEOUT_MS = 10_000;

export function pairPage(app: HTMLElement, typed: string): void {
  const code = el("input", { name: "code", required: true, autocomplete: "off", spellcheck: false, maxLength: 16, value: groupCode(typed), className: "pair-code" });
  code.setAttribute("autocapitalize", "characters");
  const name = el("input", { name: "name", maxLength: 64, value: localStorage.getItem("portal.name") ?? "" });
  const submit = el("button", { type: "submit", ariaLabel: "Pair" }, "Pair");
  const problem = el("p", { className: "error", role: "alert" });
  const form = el("form", {}, field("Pairing code", code), field("Your name (optional)", name), submit);
  const page = el("div", { className: "landing pair" }, el("h1", {}, "Pair with a room display"), el("p", {}, "Type the code shown on the room display."), form, problem);
  app.replaceChildren(page);
  (typed ? submit : code).focus();

  // Grouped as the kiosk shows it while typing at the end ("k7p2" → "K7P 2").
  code.oninput = () => {
    if (code.selectionStart !== code.value.length) return;
    const grouped = groupCode(code.value);
    if (grouped !== code.value && grouped.length <= 7) code.value = grouped;
  };

  let signaling: Signaling | null = null;
  let signalingName = "";
  let remote: Paired | null = null;
  const pairing = new Pairing((msg) => signaling?.send(msg) ?? false, {
    state: () => remote?.render(),
    ended: (reason, kiosk) => {
      remote?.close();
      remote = null;
      app.replaceChildren(page);
      problem.textContent = unpairedText(reason, kiosk);
      code.value = "";
      code.focus();
    },
  });
  window.addEventListener("pagehide", () => signaling?.stop());

  form.onsubmit = async (e) => {
    e.preventDefault();
    problem.textContent = "";
    if (normalizeCode(code.value) === null) {
      problem.textContent = MALFORMED_CODE;
      return;
    }
    submit.disabled = true;
    try {
      const who = name.value.trim() || "Laptop";
      if (name.value.trim()) localStorage.setItem("portal.name", who);
      if (!signaling || signalingName !== who) {
        signaling?.stop();
        signaling = connect(who);
        signalingName = who;
      }
      if (!(await welcomed(signaling))) {
        problem.textContent = NO_SERVER;
        return;
      }
      const outcome = await pairing.pair(code.value);
      if (!outcome.ok) {
        problem.textContent = outcome.code === "malformed" ? MALFORMED_CODE : outcome.code === "noServer" ? NO_SERVER : pairErrorText(outcome.code, outcome.message);
        return;
      }
      // A reload must not offer the used code again.
      history.replaceState(null, "", "/p/");
      remote = new Paired(app, signaling, pairing, who, outcome.kioskName);
    } finally {
      submit.disabled = false;
    }
  };

  function connect(who: string): Signaling {
    const s = new Signaling({ url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, name: who, room: null });
    s.listen({
      onMessage: (msg) => {
        pairing.handle(msg);
        if (msg.type === "welcome" && msg.resumed) remote?.connection(true);
      },
      onState: (state) => state === "connecting" && remote?.connection(false),
    });
    s.start();
    return s;
  }
}

/** Resolves true once the server has welcomed `s` (false after a while without). */
function welcomed(s: Signaling): Promise<boolean> {
  if (s.ready) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), WELCOME_TIMEOUT_MS);
    const off = s.listen({ onMessage: (msg) => msg.type === "welcome" && finish(true) });
    function finish(ok: boolean): void {
      clearTimeout(timer);
      off();
      resolve(ok);
    }
  });
}

/** The page while paired: the remote above, this laptop's call (when in one) below. */
class Paired {
  private readonly view: RemoteView;
  private readonly call: PairedCall;
  /** The kiosk shows our share (we asked, and have not stopped). */
  private presenting = false;

  constructor(
    app: HTMLElement,
    private readonly signaling: Signaling,
    private readonly pairing: Pairing,
    name: string,
    private readonly kioskName: string,
  ) {
    const callBox = el("section", { className: "paired-call", ariaLabel: "Call on this laptop", hidden: true });
    this.view = remoteView(kioskName, {
      present: () => void this.present(),
      stopPresenting: () => void this.stopPresenting(),
      joinHere: () => void this.joinHere(),
      joinRoom: (room, password) => void this.run("joinRoom", { kind: "joinRoom", room, ...(password ? { password } : {}) }),
      leave: () => void this.run("leave", { kind: "leave" }),
      toggleMic: () => void this.run("mic", { kind: "setMicMuted", muted: !(this.pairing.state?.micMuted ?? false) }),
      toggleCamera: () => void this.run("camera", { kind: "setCameraOff", off: !(this.pairing.state?.cameraOff ?? false) }),
      setVolume: (volume) => void this.run("volume", { kind: "setVolume", volume }),
      unpair: () => this.pairing.unpair(),
    });
    this.call = new PairedCall(signaling, callBox, name, {
      onBeside: (beside) => this.view.note(beside ? inRoomNote(kioskName) : null),
      onScreen: (sharing) => {
        // The share ended here (the browser's "Stop sharing", the call's own button, leaving).
        if (!sharing && this.presenting) void this.stopPresenting();
        this.render();
      },
      onLeft: () => this.render(),
    });
    app.replaceChildren(el("div", { className: "paired" }, this.view.root, callBox));
    this.render();
  }

  render(): void {
    this.call.kioskState(this.pairing.state);
    const kioskRoom = this.pairing.state?.room;
    this.view.render(this.pairing.state, this.signaling.peerId, this.presenting, kioskRoom !== undefined && this.call.room === kioskRoom);
  }

  /** The connection to the server dropped (false) or came back with the pairing (true). */
  connection(up: boolean): void {
    this.view.result(up ? "Reconnected" : "Connection to the server lost: reconnecting…", !up);
  }

  close(): void {
    this.presenting = false;
    this.call.leave();
  }

  /** Sends `command` with its control disabled meanwhile, and says how it went. */
  private async run(action: RemoteAction, command: RemoteCommand): Promise<CommandOutcome> {
    this.view.busy(action, true);
    this.view.result("Sending…");
    const outcome = await this.pairing.command(command);
    this.view.busy(action, false);
    this.report(command, outcome);
    this.render();
    return outcome;
  }

  private report(command: RemoteCommand, outcome: CommandOutcome): void {
    if (outcome.ok) this.view.result(commandDoneText(command, this.kioskName, outcome.room));
    else if (outcome.timedOut) this.view.result(`${this.kioskName} did not answer within 10 seconds`, true);
    else this.view.result(commandErrorText(outcome.error, this.kioskName), true);
  }

  /** Picks the screen first (the browser wants the click's gesture for that), then asks
   * the kiosk, joins its room with audio off unless already there, and shares. */
  private async present(): Promise<void> {
    this.view.busy("present", true);
    try {
      let track: MediaStreamTrack | null;
      try {
        track = await captureScreen();
      } catch (e) {
        this.view.result(e instanceof DOMException && e.name === "NotAllowedError" ? "Screen sharing was cancelled" : `Screen sharing failed: ${String(e)}`, true);
        return;
      }
      if (!track) return;
      this.view.result("Sending…");
      const outcome = await this.pairing.command({ kind: "present" });
      const room = outcome.ok ? (outcome.room ?? this.pairing.state?.room) : undefined;
      if (!outcome.ok || !room) {
        track.stop();
        if (outcome.ok) this.view.result(`${this.kioskName} did not say which room it is in`, true);
        else this.report({ kind: "present" }, outcome);
        return;
      }
      const why = await this.call.join(room, true);
      if (why) {
        track.stop();
        this.view.result(why, true);
        void this.pairing.command({ kind: "stopPresenting" });
        return;
      }
      await this.call.share(track);
      this.presenting = true;
      this.report({ kind: "present" }, outcome);
    } finally {
      this.view.busy("present", false);
      this.render();
    }
  }

  private async stopPresenting(): Promise<void> {
    this.presenting = false;
    if (this.call.sharing) await this.call.stopShare();
    await this.run("stopPresenting", { kind: "stopPresenting" });
  }

  private async joinHere(): Promise<void> {
    const room = this.pairing.state?.room;
    if (!room) return;
    this.view.busy("joinHere", true);
    const why = await this.call.join(room, true);
    this.view.busy("joinHere", false);
    this.view.result(why ?? `In the call in ${room} on this laptop`, why !== null);
    this.render();
  }
}

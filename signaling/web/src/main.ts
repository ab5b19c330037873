// Landing page (create or join a room), the room page at /r/{room} (a pre-join screen
// with name, password, device pickers and a preview, then the call) and the Pair page at
// /p/{code} (pair this laptop with a room display: pair/page.ts).

import { mountCall, type Feature } from "./call/view";
import { Session } from "./call/session";
import { el, field } from "./dom";
import { features } from "./features";
import { cleanDisplayName } from "./names";
import { codeFromPath } from "./pair/code";
import { pairPage } from "./pair/page";

const app = document.getElementById("app") as HTMLElement;

function landing(): void {
  const room = el("input", { name: "room", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}", value: randomRoom() });
  const form = el("form", {}, field("Room name", room), el("button", { type: "submit" }, "Join"));
  form.onsubmit = (e) => {
    e.preventDefault();
    location.assign(`/r/${encodeURIComponent(room.value.trim())}`);
  };
  const pair = el("a", { href: "/p/" }, "Pair with a room display");
  pair.onclick = (e) => {
    e.preventDefault();
    history.pushState(null, "", "/p/");
    pairPage(app, "");
  };
  app.replaceChildren(el("div", { className: "landing" }, el("h1", {}, "Portal"), el("p", {}, "Create a room or join one by name."), form, el("p", {}, pair)));
}

function randomRoom(): string {
  const words = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor"];
  const pick = () => words[Math.floor(Math.random() * words.length)];
  return `${pick()}-${pick()}-${Math.floor(Math.random() * 1000)}`;
}

async function roomPage(room: string): Promise<void> {
  const params = new URLSearchParams(location.search);
  const name = el("input", { name: "name", required: true, maxLength: 64, value: params.get("name") ?? localStorage.getItem("portal.name") ?? "" });
  const password = el("input", { name: "password", type: "password", autocomplete: "current-password" });
  const cameraSel = el("select", { name: "camera" });
  const micSel = el("select", { name: "microphone" });
  const speakerSel = el("select", { name: "speaker" });
  const preview = el("video", { autoplay: true, playsInline: true, muted: true, className: "preview" });
  const problem = el("p", { className: "error", role: "alert" });
  const join = el("button", { type: "submit" }, "Join");
  const form = el(
    "form",
    {},
    field("Your name", name),
    field("Password (optional)", password),
    field("Camera", cameraSel),
    field("Microphone", micSel),
    field("Speaker", speakerSel),
    join,
  );
  app.replaceChildren(el("div", { className: "prejoin" }, el("h1", {}, `Room ${room}`), el("div", { className: "prejoin-body" }, preview, form), problem));

  const session = new Session({ room, name: "", excludeH264: params.get("codec") === "vp8" });
  await session.local.open();
  preview.srcObject = session.local.stream;
  if (session.local.error) problem.textContent = session.local.error;
  await fillDevices(cameraSel, micSel, speakerSel, session);

  cameraSel.onchange = async () => {
    await session.local.open(micSel.value || undefined, cameraSel.value || undefined);
    preview.srcObject = session.local.stream;
  };
  micSel.onchange = cameraSel.onchange;

  const go = () => {
    // Cleaned as the server will (no invisible or bidi characters): the name shown here
    // for our own chat lines is the one the others see.
    const cleaned = cleanDisplayName(name.value);
    if ("error" in cleaned) {
      problem.textContent = name.value.trim() ? `Please choose another name: ${cleaned.error}.` : "Please enter your name.";
      return;
    }
    const who = cleaned.name;
    localStorage.setItem("portal.name", who);
    const call = new Session({ room, name: who, ...(password.value ? { password: password.value } : {}), excludeH264: params.get("codec") === "vp8" });
    // Hand the opened media over rather than asking for the devices twice.
    call.local.setTracks(session.local.audio, session.local.video);
    call.local.error = session.local.error;
    if (speakerSel.value) (window as unknown as { portalSpeaker?: string }).portalSpeaker = speakerSel.value;
    mountCall(app, call, features as Feature[], () => {
      history.pushState(null, "", "/");
      landing();
    });
    (window as unknown as { portal?: Session }).portal = call;
    call.start();
  };
  form.onsubmit = (e) => {
    e.preventDefault();
    go();
  };
  if (params.get("autojoin") === "1" && name.value.trim()) go();
}

async function fillDevices(camera: HTMLSelectElement, mic: HTMLSelectElement, speaker: HTMLSelectElement, session: Session): Promise<void> {
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => [] as MediaDeviceInfo[]);
  const fill = (sel: HTMLSelectElement, kind: MediaDeviceKind, current?: string) => {
    const list = devices.filter((d) => d.kind === kind);
    sel.replaceChildren(...list.map((d, i) => el("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || `${kind} ${i + 1}`)));
    sel.disabled = list.length === 0;
  };
  fill(camera, "videoinput", session.local.video?.getSettings().deviceId);
  fill(mic, "audioinput", session.local.audio?.getSettings().deviceId);
  fill(speaker, "audiooutput");
}

const match = /^\/r\/([^/]+)$/.exec(location.pathname);
const pairCode = codeFromPath(location.pathname);
if (match) void roomPage(decodeURIComponent(match[1]));
else if (pairCode !== null) pairPage(app, pairCode);
else landing();

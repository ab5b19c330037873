// Landing page (create or join a room) and the room page at /r/{room}.

import type { PeerInfo, ServerMessage } from "./gen/protocol";
import { Signaling } from "./signaling";

const app = document.getElementById("app") as HTMLElement;

const ERROR_TEXT: Record<string, string> = {
  roomFull: "This room is full.",
  wrongPassword: "Wrong password for this room.",
  invalidRoomName: "Room names use letters, digits, '-', '_' and '.'.",
  invalidName: "Please enter a name (up to 64 characters).",
  unsupportedProtocol: "This page is out of date; reload it.",
  shuttingDown: "The server is restarting; reconnecting…",
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function field(label: string, input: HTMLInputElement): HTMLLabelElement {
  return el("label", {}, label, input);
}

function landing(): void {
  const room = el("input", { name: "room", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value: randomRoom() });
  const form = el("form", {}, field("Room name", room), el("button", { type: "submit" }, "Join"));
  form.onsubmit = (e) => {
    e.preventDefault();
    location.assign(`/r/${encodeURIComponent(room.value.trim())}`);
  };
  app.replaceChildren(el("h1", {}, "Portal"), el("p", {}, "Create a room or join one by name."), form);
}

function randomRoom(): string {
  const words = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor"];
  const pick = () => words[Math.floor(Math.random() * words.length)];
  return `${pick()}-${pick()}-${Math.floor(Math.random() * 1000)}`;
}

function roomPage(room: string): void {
  const params = new URLSearchParams(location.search);
  const name = el("input", { name: "name", required: true, maxLength: 64, value: params.get("name") ?? localStorage.getItem("portal.name") ?? "" });
  const password = el("input", { name: "password", type: "password", autocomplete: "current-password" });
  const form = el("form", {}, field("Your name", name), field("Password (optional)", password), el("button", { type: "submit" }, "Join"));
  const status = el("p", { role: "status" });
  app.replaceChildren(el("h1", {}, `Room ${room}`), form, status);
  const go = () => {
    localStorage.setItem("portal.name", name.value.trim());
    inRoom(room, name.value.trim(), password.value);
  };
  form.onsubmit = (e) => {
    e.preventDefault();
    go();
  };
  if (params.get("autojoin") === "1" && name.value.trim()) go();
}

function inRoom(room: string, name: string, password: string): void {
  const peers = new Map<number, PeerInfo>();
  const list = el("ul", { className: "peers", ariaLabel: "People in the room" });
  const status = el("p", { role: "status" }, "Connecting…");
  const leave = el("button", { type: "button" }, "Leave");
  app.replaceChildren(el("h1", {}, `Room ${room}`), status, el("h2", {}, "People"), list, leave);
  const render = () => list.replaceChildren(...[...peers.values()].map((p) => el("li", {}, `${p.name}${p.role === "kiosk" ? " (room display)" : ""}`)));
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  const signaling = new Signaling({
    url,
    name,
    room,
    ...(password ? { password } : {}),
    onState: (s) => {
      if (s === "open") status.textContent = "Connected.";
      else if (s === "connecting") status.textContent = "Connecting…";
    },
    onMessage: (msg: ServerMessage) => {
      switch (msg.type) {
        case "joined":
          peers.clear();
          for (const p of msg.peers) peers.set(p.id, p);
          render();
          break;
        case "peerJoined":
          peers.set(msg.peer.id, msg.peer);
          render();
          break;
        case "peerLeft":
          peers.delete(msg.peerId);
          render();
          break;
        case "error":
          status.textContent = ERROR_TEXT[msg.code] ?? msg.message;
          status.className = "error";
          break;
        default:
          break;
      }
    },
  });
  leave.onclick = () => {
    signaling.stop();
    landing();
    history.pushState(null, "", "/");
  };
  signaling.start();
}

const match = /^\/r\/([^/]+)$/.exec(location.pathname);
if (match) roomPage(decodeURIComponent(match[1]));
else landing();

// The room's shared code document and its awareness states: the schema every client
// (browser editor, kiosk read-along view) agrees on, and pure helpers over it. No Monaco
// and no runtime Yjs import here, so this stays in the main bundle and unit-testable.
//
// Document (`/yjs/{room}`, y-websocket protocol; one Y.Doc a room):
// - `doc.getText("code")`: the code, a root Y.Text of plain text (no formatting
//   attributes, no embeds). Lines end in "\n" only (the editor's model is LF). Indices
//   are UTF-16 code units, as in Yjs: a yrs reader should create its Doc with
//   `OffsetKind::Utf16` so indices and relative positions agree with the browsers.
// - `doc.getMap("meta")`, key `"language"`: a string, one of `LANGUAGE_IDS` (Monaco
//   language ids: c, cpp, java, python, javascript, typescript, go, rust, plaintext).
//   Writers write exactly one of these ids. Readers trim and lower-case the value; a
//   missing key, a non-string or any other value is shown as "plaintext"
//   (`normaliseLanguage`). Nothing writes a default: an untouched document has no key.
//
// Awareness (y-protocols, JSON per client; the key is the client's Y.Doc clientID):
//   {
//     user: { name: string,          // display name, 1..64 characters
//             color: "#rrggbb",      // cursor and list colour
//             colorLight: "#rrggbbaa" },  // selection background (colour + alpha 0x33)
//     presenter: boolean,            // true while this client presents
//     presenterSince?: number,       // when presenting started: server time in ms since
//                                    // the Unix epoch (signaling clock); present only
//                                    // while `presenter` is true
//     selection?: { anchor: RelPos, head: RelPos }  // written by y-monaco on every cursor
//                                    // move: `anchor` where the selection started, `head`
//                                    // where the caret is (equal for a bare caret)
//   }
//   RelPos is a Y.RelativePosition as JSON.stringify writes it:
//     { type: {client, clock} | null, tname: string | null,
//       item: {client, clock} | null, assoc: number }
//   For the code text `tname` is "code" and `type` null; `item` null means "end of text".
//   Remote states are untrusted: every reader here validates (`readPeer`).
//
// Which presenter to follow (`followedPresenter`): among states with `presenter === true`,
// the one with the largest `presenterSince`; on a tie the lower clientID. A start time
// that is missing, not a finite number, negative, or later than now (server time) plus
// `PRESENTER_SKEW_MS` counts as 0: nobody wins the follow by claiming to start in the
// future (`1e308`). The server strips `presenter` from read-only viewers' states. Several people may present at once; the kiosk follows the
// most recent one and falls back to the previous one when it stops. No presenter: the
// kiosk shows the top of the document.

/** The root Y.Text holding the code. */
export const CODE_TEXT = "code";
/** The root Y.Map holding document settings. */
export const META_MAP = "meta";
/** Key of the language in `META_MAP`. */
export const LANGUAGE_KEY = "language";

export const LANGUAGE_IDS = ["c", "cpp", "java", "python", "javascript", "typescript", "go", "rust", "plaintext"] as const;
export type LanguageId = (typeof LANGUAGE_IDS)[number];
export const DEFAULT_LANGUAGE: LanguageId = "plaintext";

/** Names shown in the language picker, in picker order. */
export const LANGUAGE_LABELS: Record<LanguageId, string> = {
  plaintext: "Plain text",
  c: "C",
  cpp: "C++",
  go: "Go",
  java: "Java",
  javascript: "JavaScript",
  python: "Python",
  rust: "Rust",
  typescript: "TypeScript",
};

export function isLanguageId(value: unknown): value is LanguageId {
  return typeof value === "string" && (LANGUAGE_IDS as readonly string[]).includes(value);
}

/** What a reader shows for a stored language value (see the header). */
export function normaliseLanguage(value: unknown): LanguageId {
  if (typeof value !== "string") return DEFAULT_LANGUAGE;
  const v = value.trim().toLowerCase();
  return isLanguageId(v) ? v : DEFAULT_LANGUAGE;
}

/** Distinct on a dark background; `colorLight` is the colour with alpha 0x33. */
export const PALETTE = ["#e5484d", "#f76b15", "#ffc53d", "#46a758", "#12a594", "#0090ff", "#8e4ec6", "#d6409f", "#a18072", "#5eb1ef"] as const;

export interface EditorUser {
  name: string;
  color: string;
  colorLight: string;
}

/** A selection as y-monaco writes it (Y.RelativePosition objects, or their JSON). */
export interface EditorSelection {
  anchor: unknown;
  head: unknown;
}

export interface EditorAwareness {
  user: EditorUser;
  presenter: boolean;
  presenterSince?: number;
  selection?: EditorSelection;
}

const MAX_NAME = 64;

/** A display name: trimmed, at most 64 characters, "Anonymous" when empty. */
export function cleanName(name: unknown): string {
  const n = typeof name === "string" ? name.trim() : "";
  return n ? [...n].slice(0, MAX_NAME).join("") : "Anonymous";
}

/** FNV-1a over the UTF-16 code units: a stable, cheap string hash. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The colour for a name: the same name gets the same colour everywhere, every time. */
export function colorFor(name: string): { color: string; colorLight: string } {
  const color = PALETTE[hash(cleanName(name)) % PALETTE.length];
  return { color, colorLight: `${color}33` };
}

export function userFor(name: string): EditorUser {
  const clean = cleanName(name);
  return { name: clean, ...colorFor(clean) };
}

/** The local awareness state a client starts with. */
export function initialAwareness(name: string): EditorAwareness {
  return { user: userFor(name), presenter: false };
}

/**
 * The local state with presenting turned on (since `now`, server ms) or off. Other fields
 * (the selection) are kept; turning it on again while on keeps the original start.
 */
export function withPresenter<T extends Partial<EditorAwareness>>(state: T, on: boolean, now: number): T & { presenter: boolean } {
  const { presenterSince, ...rest } = state;
  if (!on) return { ...(rest as T), presenter: false };
  const since = state.presenter === true && typeof presenterSince === "number" && Number.isFinite(presenterSince) ? presenterSince : now;
  return { ...(rest as T), presenter: true, presenterSince: since };
}

/** How far in the future (server ms) a `presenterSince` may be: clocks differ a little. */
export const PRESENTER_SKEW_MS = 60_000;

/**
 * A remote `presenterSince` as it ranks: the value when it is a plausible start time
 * (finite, not negative, at most `now + PRESENTER_SKEW_MS`), else 0.
 */
export function sanePresenterSince(value: unknown, now: number): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= now + PRESENTER_SKEW_MS ? value : 0;
}

/** What a display needs from one (untrusted) awareness state. */
export interface PeerView {
  clientID: number;
  name: string;
  color: string;
  colorLight: string;
  presenter: boolean;
  /** 0 when not presenting, not given or not plausible (see `sanePresenterSince`). */
  presenterSince: number;
  hasSelection: boolean;
}

const COLOR = /^#[0-9a-fA-F]{6}$/;
const COLOR_LIGHT = /^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Reads one awareness state, validating every field; `null` for an empty state (a
 * client that is going away). Bad colours fall back to the name's colour. `now` is the
 * server time in ms (the signaling clock), against which `presenterSince` is judged.
 */
export function readPeer(clientID: number, state: unknown, now: number = Date.now()): PeerView | null {
  if (!isRecord(state) || Object.keys(state).length === 0) return null;
  const user = isRecord(state.user) ? state.user : {};
  const name = cleanName(user.name);
  const fallback = colorFor(name);
  const color = typeof user.color === "string" && COLOR.test(user.color) ? user.color : fallback.color;
  const colorLight = typeof user.colorLight === "string" && COLOR_LIGHT.test(user.colorLight) ? user.colorLight : `${color}33`;
  const presenter = state.presenter === true;
  const since = state.presenterSince;
  const sel = state.selection;
  return {
    clientID,
    name,
    color,
    colorLight,
    presenter,
    presenterSince: presenter ? sanePresenterSince(since, now) : 0,
    hasSelection: isRecord(sel) && sel.anchor != null && sel.head != null,
  };
}

type States = ReadonlyMap<number, unknown> | Iterable<readonly [number, unknown]>;

/** Everyone with a state, sorted by name then clientID. */
export function peers(states: States, now: number = Date.now()): PeerView[] {
  const out: PeerView[] = [];
  for (const [id, state] of states) {
    const p = readPeer(id, state, now);
    if (p) out.push(p);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.clientID - b.clientID);
}

/** Presenters in follow order: the one to follow first (see the header's rule). */
export function presenters(states: States, now: number = Date.now()): PeerView[] {
  const list: PeerView[] = [];
  for (const [id, state] of states) {
    const p = readPeer(id, state, now);
    if (p?.presenter) list.push(p);
  }
  return list.sort((a, b) => b.presenterSince - a.presenterSince || a.clientID - b.clientID);
}

/** The clientID the read-along view follows, or null when nobody presents. */
export function followedPresenter(states: States, now: number = Date.now()): number | null {
  return presenters(states, now)[0]?.clientID ?? null;
}

/**
 * What the editor says when the server ended its document connection for good (the
 * 44xx close codes, which y-websocket does not retry; see the README's close codes).
 */
export function docClosedMessage(code: number): string {
  switch (code) {
    case 4413:
      return "The document is too large: new changes are not saved.";
    case 4404:
      return "The room's document is gone; it comes back when you rejoin the room.";
    case 4401:
      return "The room is protected now: rejoin it with its password to edit.";
    default:
      return `Disconnected from the document (${code}).`;
  }
}

/** `text` as a CSS string literal: anything but plain characters becomes a hex escape. */
export function cssString(text: string): string {
  let out = '"';
  for (const ch of text) out += /^[A-Za-z0-9 _.,:;!?()@#+-]$/.test(ch) ? ch : `\\${(ch.codePointAt(0) ?? 0).toString(16)} `;
  return `${out}"`;
}

/**
 * The rules colouring one remote client's selection and caret (the class names y-monaco
 * puts on its decorations) and labelling the caret with the name.
 */
export function remoteCursorCss(peer: Pick<PeerView, "clientID" | "name" | "color" | "colorLight">): string {
  const id = Number.isSafeInteger(peer.clientID) && peer.clientID >= 0 ? peer.clientID : 0;
  const color = COLOR.test(peer.color) ? peer.color : colorFor(peer.name).color;
  const light = COLOR_LIGHT.test(peer.colorLight) ? peer.colorLight : `${color}33`;
  return [
    `.yRemoteSelection-${id} { background-color: ${light}; }`,
    `.yRemoteSelectionHead-${id} { border-color: ${color}; }`,
    `.yRemoteSelectionHead-${id}::after { content: ${cssString(cleanName(peer.name))}; background-color: ${color}; }`,
  ].join("\n");
}

import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from "y-protocols/awareness";
import {
  CODE_TEXT,
  LANGUAGE_IDS,
  LANGUAGE_KEY,
  LANGUAGE_LABELS,
  META_MAP,
  PALETTE,
  PRESENTER_SKEW_MS,
  cleanName,
  colorFor,
  cssString,
  docClosedMessage,
  followedPresenter,
  initialAwareness,
  isLanguageId,
  normaliseLanguage,
  peers,
  presenters,
  readPeer,
  remoteCursorCss,
  sanePresenterSince,
  userFor,
  withPresenter,
} from "./editor-doc";

describe("language", () => {
  it("offers exactly the nine Monaco ids, each with a label", () => {
    expect([...LANGUAGE_IDS].sort()).toEqual(["c", "cpp", "go", "java", "javascript", "plaintext", "python", "rust", "typescript"]);
    for (const id of LANGUAGE_IDS) expect(LANGUAGE_LABELS[id]).toBeTruthy();
  });

  it("accepts the known ids, trimmed and case-insensitively", () => {
    for (const id of LANGUAGE_IDS) expect(normaliseLanguage(id)).toBe(id);
    expect(normaliseLanguage("  Python ")).toBe("python");
    expect(normaliseLanguage("RUST")).toBe("rust");
  });

  it("shows anything else as plain text", () => {
    for (const v of [undefined, null, 3, {}, ["c"], "", "c++", "py", "haskell", "javascript;", "plaintext2"]) expect(normaliseLanguage(v)).toBe("plaintext");
  });

  it("validates only canonical ids for writing", () => {
    expect(isLanguageId("go")).toBe(true);
    expect(isLanguageId("Go")).toBe(false);
    expect(isLanguageId(" go")).toBe(false);
    expect(isLanguageId(undefined)).toBe(false);
  });

  it("reads the language from the documented place in a Y.Doc", () => {
    const a = new Y.Doc();
    const b = new Y.Doc();
    a.getText(CODE_TEXT).insert(0, "fn main() {}\n");
    a.getMap(META_MAP).set(LANGUAGE_KEY, "rust");
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
    expect(b.getText("code").toString()).toBe("fn main() {}\n");
    expect(normaliseLanguage(b.getMap("meta").get("language"))).toBe("rust");
    expect(normaliseLanguage(new Y.Doc().getMap(META_MAP).get(LANGUAGE_KEY))).toBe("plaintext");
  });
});

describe("colours", () => {
  it("are deterministic per name and from the palette", () => {
    for (const name of ["Ada", "Bo", "Grace Hopper", "李雷", ""]) {
      const c = colorFor(name);
      expect(colorFor(name)).toEqual(c);
      expect(PALETTE).toContain(c.color);
      expect(c.colorLight).toBe(`${c.color}33`);
    }
    expect(colorFor("  Ada  ")).toEqual(colorFor("Ada"));
    expect(colorFor("")).toEqual(colorFor("Anonymous"));
    // Pinned: clients of different versions in one room agree on colours.
    expect(["Ada", "Bo", "Grace Hopper", "Anonymous"].map((n) => colorFor(n).color)).toEqual(["#0090ff", "#e5484d", "#46a758", "#a18072"]);
  });

  it("spread over the palette", () => {
    const used = new Set(Array.from({ length: 200 }, (_, i) => colorFor(`user ${i}`).color));
    expect(used.size).toBe(PALETTE.length);
  });
});

describe("awareness state", () => {
  it("starts as a named, coloured, non-presenting user", () => {
    const s = initialAwareness("  Ada ");
    expect(s).toEqual({ user: { name: "Ada", ...colorFor("Ada") }, presenter: false });
    expect("presenterSince" in s).toBe(false);
    expect("selection" in s).toBe(false);
  });

  it("cleans names", () => {
    expect(cleanName("")).toBe("Anonymous");
    expect(cleanName("   ")).toBe("Anonymous");
    expect(cleanName(42)).toBe("Anonymous");
    expect(cleanName("x".repeat(100))).toHaveLength(64);
    expect([...cleanName("😀".repeat(70))]).toHaveLength(64);
    expect(userFor("").name).toBe("Anonymous");
  });

  it("turns presenting on with a start time and off without one, keeping the rest", () => {
    const selection = { anchor: { tname: "code" }, head: { tname: "code" } };
    const base = { ...initialAwareness("Ada"), selection };
    const on = withPresenter(base, true, 1000);
    expect(on).toEqual({ ...base, presenter: true, presenterSince: 1000 });
    // Pressing again while presenting keeps the original start.
    expect(withPresenter(on, true, 5000).presenterSince).toBe(1000);
    const off = withPresenter(on, false, 6000);
    expect(off).toEqual({ ...base, presenter: false });
    expect("presenterSince" in off).toBe(false);
    expect(withPresenter(off, true, 7000).presenterSince).toBe(7000);
  });

  it("survives the awareness wire format with y-monaco's selection shape", () => {
    const doc = new Y.Doc();
    const text = doc.getText(CODE_TEXT);
    text.insert(0, "print('hi')\n");
    const local = new Awareness(doc);
    local.setLocalState(withPresenter(initialAwareness("Ada"), true, 1_700_000_000_000));
    // What y-monaco writes on a cursor move.
    local.setLocalStateField("selection", { anchor: Y.createRelativePositionFromTypeIndex(text, 2), head: Y.createRelativePositionFromTypeIndex(text, 12) });
    const remote = new Awareness(new Y.Doc());
    applyAwarenessUpdate(remote, encodeAwarenessUpdate(local, [doc.clientID]), "test");
    const state = remote.getStates().get(doc.clientID) as Record<string, unknown>;
    expect(state.user).toEqual({ name: "Ada", ...colorFor("Ada") });
    expect(state.presenter).toBe(true);
    expect(state.presenterSince).toBe(1_700_000_000_000);
    const sel = state.selection as { anchor: Record<string, unknown>; head: Record<string, unknown> };
    expect(sel.anchor).toEqual({ type: null, tname: "code", item: { client: doc.clientID, clock: 2 }, assoc: 0 });
    expect(sel.head).toEqual({ type: null, tname: "code", item: null, assoc: 0 });
    // The JSON form resolves against the document like the original.
    const abs = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(sel.anchor), doc);
    expect(abs?.index).toBe(2);
    expect(readPeer(doc.clientID, state)).toMatchObject({ name: "Ada", presenter: true, presenterSince: 1_700_000_000_000, hasSelection: true });
    local.destroy();
    remote.destroy();
  });
});

describe("reading untrusted states", () => {
  it("skips empty states and fills in bad fields", () => {
    expect(readPeer(1, null)).toBeNull();
    expect(readPeer(1, {})).toBeNull();
    expect(readPeer(1, "x")).toBeNull();
    const p = readPeer(7, { user: { name: "Eve", color: "red; background: url(x)", colorLight: "#12345" }, presenter: "yes", presenterSince: 5 });
    expect(p).toEqual({ clientID: 7, name: "Eve", ...colorFor("Eve"), presenter: false, presenterSince: 0, hasSelection: false });
    expect(readPeer(8, { presenter: true })).toMatchObject({ name: "Anonymous", presenter: true, presenterSince: 0 });
    expect(readPeer(9, { user: { name: "Kim", color: "#AbCdEf" } })).toMatchObject({ color: "#AbCdEf", colorLight: "#AbCdEf33" });
  });

  it("lists people by name", () => {
    const states = new Map<number, unknown>([
      [3, { user: { name: "Bo" } }],
      [1, { user: { name: "Ada" } }],
      [2, {}],
      [0, { user: { name: "Ada" } }],
    ]);
    expect(peers(states).map((p) => [p.clientID, p.name])).toEqual([
      [0, "Ada"],
      [1, "Ada"],
      [3, "Bo"],
    ]);
  });
});

describe("which presenter the read-along view follows", () => {
  const st = (presenter: boolean, presenterSince?: unknown) => ({ user: { name: "x" }, presenter, ...(presenterSince !== undefined ? { presenterSince } : {}) });

  it("is nobody when nobody presents", () => {
    expect(followedPresenter(new Map())).toBeNull();
    expect(followedPresenter(new Map([[1, st(false)]]))).toBeNull();
    expect(followedPresenter(new Map([[1, st(false, 99)]]))).toBeNull();
  });

  it("is the latest to start presenting", () => {
    const states = new Map<number, unknown>([
      [10, st(true, 1000)],
      [20, st(true, 3000)],
      [30, st(false, 9000)],
      [40, st(true, 2000)],
    ]);
    expect(followedPresenter(states)).toBe(20);
    expect(presenters(states).map((p) => p.clientID)).toEqual([20, 40, 10]);
    // The latest stops: the previous one is followed again.
    states.set(20, st(false));
    expect(followedPresenter(states)).toBe(40);
  });

  it("breaks ties by the lower clientID, whatever the order of the states", () => {
    expect(
      followedPresenter([
        [9, st(true, 500)],
        [4, st(true, 500)],
        [6, st(true, 100)],
      ]),
    ).toBe(4);
  });

  it("ignores a start time in the future or out of range", () => {
    const now = 1_700_000_000_000;
    // Everyone following whoever claims the furthest future is what this prevents.
    const states = new Map<number, unknown>([
      [1, st(true, now - 5000)],
      [2, st(true, 1e308)],
      [3, st(true, Number.MAX_VALUE)],
      [4, st(true, now + PRESENTER_SKEW_MS + 1)],
      [5, st(true, -1)],
    ]);
    expect(followedPresenter(states, now)).toBe(1);
    expect(presenters(states, now).map((p) => [p.clientID, p.presenterSince])).toEqual([
      [1, now - 5000],
      [2, 0],
      [3, 0],
      [4, 0],
      [5, 0],
    ]);
    // A little clock skew is fine: a start up to a minute ahead still ranks.
    states.set(6, st(true, now + PRESENTER_SKEW_MS));
    expect(followedPresenter(states, now)).toBe(6);
    expect(readPeer(2, st(true, 1e308), now)?.presenterSince).toBe(0);
  });

  it("judges start times against the given clock", () => {
    expect(sanePresenterSince(PRESENTER_SKEW_MS + 1, 0)).toBe(0);
    expect(sanePresenterSince(PRESENTER_SKEW_MS, 0)).toBe(PRESENTER_SKEW_MS);
    expect(sanePresenterSince(5000, 5000 - PRESENTER_SKEW_MS)).toBe(5000);
    expect(sanePresenterSince(5000, 4999 - PRESENTER_SKEW_MS)).toBe(0);
    for (const bad of [Number.NaN, Infinity, -Infinity, -0.5, "1", null, undefined, {}]) expect(sanePresenterSince(bad, 1e12)).toBe(0);
    // Without a clock, now.
    expect(readPeer(1, st(true, Date.now() + 10 * PRESENTER_SKEW_MS))?.presenterSince).toBe(0);
    expect(readPeer(1, st(true, Date.now() - 1000))?.presenterSince).toBeGreaterThan(0);
  });

  it("ranks a missing or bad start time as 0", () => {
    expect(followedPresenter(new Map([[5, st(true)], [6, st(true, 1)]]))).toBe(6);
    expect(followedPresenter(new Map([[5, st(true, "soon")], [3, st(true, Number.NaN)]]))).toBe(3);
    expect(followedPresenter(new Map([[5, st(true, Infinity)], [6, st(true, 1)]]))).toBe(6);
  });
});

describe("document close codes", () => {
  it("says why the document stopped for the codes that are not retried", () => {
    expect(docClosedMessage(4404)).toMatch(/gone/);
    expect(docClosedMessage(4401)).toMatch(/password/);
    expect(docClosedMessage(4413)).toMatch(/too large/);
    expect(docClosedMessage(4400)).toBe("Disconnected from the document (4400).");
  });
});

describe("remote cursor CSS", () => {
  it("escapes names into a CSS string", () => {
    expect(cssString("Ada")).toBe('"Ada"');
    expect(cssString('a"b\\c')).toBe('"a\\22 b\\5c c"');
    expect(cssString("x}\n.y{")).toBe('"x\\7d \\a .y\\7b "');
    expect(cssString("李")).toBe('"\\674e "');
    expect(cssString("😀")).toBe('"\\1f600 "');
  });

  it("colours one client's selection and caret and labels the caret", () => {
    const css = remoteCursorCss({ clientID: 1234, name: "Ada", color: "#0090ff", colorLight: "#0090ff33" });
    expect(css).toContain(".yRemoteSelection-1234 { background-color: #0090ff33; }");
    expect(css).toContain(".yRemoteSelectionHead-1234 { border-color: #0090ff; }");
    expect(css).toContain('.yRemoteSelectionHead-1234::after { content: "Ada"; background-color: #0090ff; }');
  });

  it("never lets a state inject rules", () => {
    const css = remoteCursorCss({ clientID: 1, name: 'x"; } body { display: none', color: "#fff; } *{", colorLight: "url(x)" });
    expect(css.split("{").length).toBe(4);
    expect(css).not.toContain("body {");
    expect(css).toContain(colorFor('x"; } body { display: none').color);
  });
});

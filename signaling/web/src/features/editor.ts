/// <reference types="vite/client" />
// The room's collaborative code editor: Monaco bound to the room's shared document
// (`/yjs/{room}`, y-websocket) with y-monaco, remote cursors in each person's colour, a
// language picker, who is here, and a Present toggle the kiosk's read-along view follows.
// The document and awareness schema is in editor-doc.ts.
//
// Monaco, Yjs and the provider load the first time the panel opens, so the call page's
// main bundle carries none of them. The provider connects once the room is joined, with
// the `docToken` from `joined` (protected rooms need it); a rejoin refreshes the token.

import "./editor.css";
import type { WebsocketProvider } from "y-websocket";
import type { CallUi, Feature } from "../call/view";
import type { Session } from "../call/session";
import { el, field } from "../dom";
import {
  CODE_TEXT,
  DEFAULT_LANGUAGE,
  LANGUAGE_IDS,
  LANGUAGE_KEY,
  LANGUAGE_LABELS,
  META_MAP,
  docClosedMessage,
  followedPresenter,
  initialAwareness,
  isLanguageId,
  normaliseLanguage,
  peers,
  presenters,
  remoteCursorCss,
  withPresenter,
  type EditorAwareness,
  type PeerView,
} from "./editor-doc";

/** A read-only view for tests and diagnostics, set while the editor is connected. */
export interface EditorHook {
  /** The shared code as this client has it. */
  text(): string;
  /** The shared language (normalised). */
  language(): string;
  /** The language of the Monaco model. */
  modelLanguage(): string;
  clientID(): number;
  synced(): boolean;
  peers(): PeerView[];
  /** ClientIDs presenting, in follow order. */
  presenters(): number[];
  /** The clientID the read-along view follows, or null. */
  followed(): number | null;
}

declare global {
  interface Window {
    portalEditor?: EditorHook;
  }
}

/** Everything the editor needs that is too big for the main bundle. */
async function loadRuntime() {
  const [monaco, Y, { WebsocketProvider }, { MonacoBinding }, { default: EditorWorker }] = await Promise.all([
    import("monaco-editor/esm/vs/editor/editor.api.js"),
    import("yjs"),
    import("y-websocket"),
    import("y-monaco"),
    import("monaco-editor/esm/vs/editor/editor.worker?worker"),
    // The editing aids people expect, not the whole editor.all (no language services).
    import("monaco-editor/esm/vs/editor/contrib/find/browser/findController.js"),
    import("monaco-editor/esm/vs/editor/contrib/comment/browser/comment.js"),
    import("monaco-editor/esm/vs/editor/contrib/linesOperations/browser/linesOperations.js"),
    import("monaco-editor/esm/vs/editor/contrib/bracketMatching/browser/bracketMatching.js"),
    import("monaco-editor/esm/vs/editor/contrib/folding/browser/folding.js"),
    import("monaco-editor/esm/vs/editor/contrib/multicursor/browser/multicursor.js"),
    import("monaco-editor/esm/vs/editor/contrib/wordOperations/browser/wordOperations.js"),
    import("monaco-editor/esm/vs/editor/contrib/indentation/browser/indentation.js"),
    import("monaco-editor/esm/vs/editor/contrib/contextmenu/browser/contextmenu.js"),
    // Syntax highlighting (Monarch) for the languages on offer; "plaintext" is built in.
    import("monaco-editor/esm/vs/basic-languages/cpp/cpp.contribution.js"),
    import("monaco-editor/esm/vs/basic-languages/java/java.contribution.js"),
    import("monaco-editor/esm/vs/basic-languages/python/python.contribution.js"),
    import("monaco-editor/esm/vs/basic-languages/javascript/javascript.contribution.js"),
    import("monaco-editor/esm/vs/basic-languages/typescript/typescript.contribution.js"),
    import("monaco-editor/esm/vs/basic-languages/go/go.contribution.js"),
    import("monaco-editor/esm/vs/basic-languages/rust/rust.contribution.js"),
  ]);
  // Only the editor worker: no language services run here, highlighting is on the main thread.
  self.MonacoEnvironment = { getWorker: () => new EditorWorker() };
  return { monaco, Y, WebsocketProvider, MonacoBinding };
}

type Runtime = Awaited<ReturnType<typeof loadRuntime>>;

function docServer(): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/yjs`;
}

/** One call's editor panel. */
class EditorPanel {
  private readonly language: HTMLSelectElement;
  private readonly present: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly people: HTMLUListElement;
  private readonly host: HTMLElement;
  private readonly cursorStyle: HTMLStyleElement;
  private started = false;
  private destroyed = false;
  private teardown: (() => void)[] = [];
  private provider: WebsocketProvider | null = null;

  constructor(
    private readonly session: Session,
    private readonly panel: HTMLElement,
    private readonly ui: CallUi,
  ) {
    this.language = el("select", { name: "language", disabled: true }, ...languageOrder().map((id) => el("option", { value: id }, LANGUAGE_LABELS[id])));
    this.language.value = DEFAULT_LANGUAGE;
    this.present = el("button", { type: "button", className: "editor-present", ariaLabel: "Present", title: "Let the room display follow your cursor", disabled: true }, "Present");
    this.present.setAttribute("aria-pressed", "false");
    this.status = el("p", { className: "editor-status", role: "status" });
    this.people = el("ul", { className: "editor-people", ariaLabel: "In the editor" });
    this.host = el("div", { className: "editor-host" });
    this.cursorStyle = el("style");
    panel.classList.add("editor-panel");
    panel.append(el("div", { className: "editor-bar" }, field("Language", this.language), this.present, this.status), this.people, this.host, this.cursorStyle);

    // Load on first open: the panel's `hidden` flips when its tab is chosen.
    const observer = new MutationObserver(() => {
      if (!panel.hidden) ui.setBadge("editor", 0);
      this.maybeStart();
    });
    observer.observe(panel, { attributes: true, attributeFilter: ["hidden"] });
    this.teardown.push(() => observer.disconnect());
    this.teardown.push(
      session.on("joined", () => this.onJoined()),
      session.on("status", ({ state }) => {
        if (state === "closed") this.destroy();
      }),
    );
    this.maybeStart();
  }

  private maybeStart(): void {
    if (this.started || this.destroyed || this.panel.hidden) return;
    this.started = true;
    this.status.textContent = "Loading the editor…";
    loadRuntime().then(
      (rt) => {
        if (!this.destroyed) this.build(rt);
      },
      (e: unknown) => {
        this.started = false;
        this.status.textContent = "The editor could not load.";
        this.ui.notify(`The code editor could not load: ${String(e)}`);
      },
    );
  }

  /**
   * A (re)join hands out a fresh document token: the next connection uses it. A
   * connection the server ended for good (the room went, or was protected since) is
   * opened again: being in the room again is what the document needs.
   */
  private onJoined(): void {
    const p = this.provider;
    if (!p) return;
    if (this.session.docToken) p.params = { ...p.params, token: this.session.docToken };
    if (!p.shouldConnect) p.connect();
  }

  private build({ monaco, Y, WebsocketProvider, MonacoBinding }: Runtime): void {
    const doc = new Y.Doc();
    const text = doc.getText(CODE_TEXT);
    const meta = doc.getMap<unknown>(META_MAP);
    const provider = new WebsocketProvider(docServer(), encodeURIComponent(this.session.opts.room), doc, {
      connect: false,
      // The server is the one path between clients (it checks access and persists).
      disableBc: true,
      params: this.session.docToken ? { token: this.session.docToken } : {},
    });
    this.provider = provider;
    const awareness = provider.awareness;
    awareness.setLocalState(initialAwareness(this.session.opts.name));

    const model = monaco.editor.createModel("", normaliseLanguage(meta.get(LANGUAGE_KEY)));
    model.setEOL(monaco.editor.EndOfLineSequence.LF);
    const editor = monaco.editor.create(this.host, {
      model,
      theme: "vs-dark",
      automaticLayout: true,
      minimap: { enabled: false },
      scrollBeyondLastLine: false,
      fixedOverflowWidgets: true,
      fontSize: 14,
      // Room above the first line for a remote caret's name label.
      padding: { top: 14 },
      tabSize: 4,
      // Editable once the shared text has arrived, so nothing is typed into a stale view.
      readOnly: true,
      ariaLabel: "Shared code",
    });
    const binding = new MonacoBinding(text, model, new Set([editor]), awareness);

    const applyLanguage = () => {
      const lang = normaliseLanguage(meta.get(LANGUAGE_KEY));
      if (this.language.value !== lang) this.language.value = lang;
      if (model.getLanguageId() !== lang) monaco.editor.setModelLanguage(model, lang);
    };
    meta.observe(applyLanguage);
    this.language.onchange = () => {
      const lang = this.language.value;
      if (isLanguageId(lang)) doc.transact(() => meta.set(LANGUAGE_KEY, lang));
    };

    this.present.onclick = () => {
      const on = this.present.getAttribute("aria-pressed") !== "true";
      const current = (awareness.getLocalState() as Partial<EditorAwareness> | null) ?? initialAwareness(this.session.opts.name);
      awareness.setLocalState(withPresenter(current, on, this.session.serverNow()));
      this.present.setAttribute("aria-pressed", String(on));
      if (on) editor.focus();
    };

    const renderPeople = () => this.renderPeople(awareness.getStates(), doc.clientID);
    awareness.on("change", renderPeople);
    renderPeople();

    const showStatus = () => {
      this.status.textContent = provider.synced ? "Connected" : provider.wsconnected ? "Syncing…" : this.session.docToken === null ? "Waiting for the room…" : "Connecting…";
    };
    provider.on("status", showStatus);
    provider.on("sync", (synced: boolean) => {
      if (synced) {
        editor.updateOptions({ readOnly: false });
        this.language.disabled = false;
        this.present.disabled = false;
        applyLanguage();
      }
      showStatus();
    });
    provider.on("closed", ({ code }: { code: number }) => {
      this.status.textContent = docClosedMessage(code);
    });
    showStatus();

    window.portalEditor = {
      text: () => text.toString(),
      language: () => normaliseLanguage(meta.get(LANGUAGE_KEY)),
      modelLanguage: () => model.getLanguageId(),
      clientID: () => doc.clientID,
      synced: () => provider.synced,
      peers: () => peers(awareness.getStates(), this.session.serverNow()),
      presenters: () => presenters(awareness.getStates(), this.session.serverNow()).map((p) => p.clientID),
      followed: () => followedPresenter(awareness.getStates(), this.session.serverNow()),
    };

    this.teardown.push(() => {
      if (window.portalEditor?.clientID() === doc.clientID) delete window.portalEditor;
      this.provider = null;
      provider.destroy();
      binding.destroy();
      editor.dispose();
      model.dispose();
      doc.destroy();
    });

    // Open rooms take any connection, protected ones need the token from `joined`.
    if (this.session.docToken !== null) provider.connect();
    else {
      const off = this.session.on("joined", () => {
        off();
        provider.connect();
      });
      this.teardown.push(off);
    }
  }

  private renderPeople(states: Map<number, unknown>, self: number): void {
    const now = this.session.serverNow();
    const list = peers(states, now);
    const followed = followedPresenter(states, now);
    this.people.replaceChildren(
      ...list.map((p) => {
        const you = p.clientID === self;
        const flags = [you ? "you" : "", p.presenter ? (p.clientID === followed ? "presenting" : "presenting (not followed)") : ""].filter(Boolean);
        const label = flags.length ? `${p.name} (${flags.join(", ")})` : p.name;
        const item = el("li", { className: p.presenter ? "presenter" : "" }, el("span", { className: "editor-swatch" }), el("span", {}, label));
        item.style.setProperty("--peer-color", p.color);
        item.dataset.client = String(p.clientID);
        item.setAttribute("aria-label", label);
        return item;
      }),
    );
    this.cursorStyle.textContent = list
      .filter((p) => p.clientID !== self)
      .map(remoteCursorCss)
      .join("\n");
    // Someone else presenting shows on the tab while the panel is closed.
    const others = list.filter((p) => p.presenter && p.clientID !== self).length;
    this.ui.setBadge("editor", this.ui.isOpen("editor") ? 0 : others);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const f of this.teardown.splice(0).reverse()) {
      try {
        f();
      } catch (e) {
        console.warn("editor teardown failed", e);
      }
    }
  }
}

/** Plain text first, then alphabetical by label. */
function languageOrder(): (typeof LANGUAGE_IDS)[number][] {
  return [DEFAULT_LANGUAGE, ...LANGUAGE_IDS.filter((id) => id !== DEFAULT_LANGUAGE).sort((a, b) => LANGUAGE_LABELS[a].localeCompare(LANGUAGE_LABELS[b]))];
}

export const editorFeature: Feature = {
  id: "editor",
  title: "Code",
  mount(session: Session, panel: HTMLElement, ui: CallUi): void {
    new EditorPanel(session, panel, ui);
  },
};

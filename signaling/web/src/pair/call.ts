// The laptop's own call while paired: joined on the pairing's connection (the server lets
// a paired laptop into its kiosk's room without the password, and the kiosk knows the
// share by this peer id), with room-aware audio (`rules.ts`).

import type { KioskState } from "../gen/protocol";
import type { Signaling } from "../signaling";
import { Session } from "../call/session";
import { mountCall, type Feature } from "../call/view";
import { features } from "../features";
import { besideKiosk, shouldSilence } from "./rules";

/** How long a join may take before the page says so. */
const JOIN_TIMEOUT_MS = 15_000;

export interface PairedCallHooks {
  /** The laptop came to share the kiosk's call and turned its audio off (or left). */
  onBeside: (beside: boolean) => void;
  /** The laptop's screen share started or stopped. */
  onScreen: (sharing: boolean) => void;
  /** The person left the call from the call's own controls. */
  onLeft: () => void;
}

export class PairedCall {
  session: Session | null = null;
  private beside = false;
  private kiosk: KioskState | null = null;

  constructor(
    private readonly signaling: Signaling,
    private readonly container: HTMLElement,
    private readonly name: string,
    private readonly hooks: PairedCallHooks,
  ) {}

  get room(): string | null {
    return this.session?.opts.room ?? null;
  }

  get sharing(): boolean {
    return this.session?.local.screen != null;
  }

  /** Joins `room`, leaving another first; resolves with null once in, else with why not.
   * `kioskThere` says the kiosk is (or is about to be) in that room. */
  async join(room: string, kioskThere: boolean): Promise<string | null> {
    if (this.room === room) return null;
    this.leave();
    const session = new Session({ room, name: this.name, signaling: this.signaling });
    this.session = session;
    if (kioskThere) this.silence(session);
    await session.local.open();
    if (this.session !== session) return "Left before joining";
    session.on("local", () => this.hooks.onScreen(session.local.screen !== null));
    mountCall(this.container, session, features as Feature[], () => {
      if (this.session === session) this.session = null;
      this.container.replaceChildren();
      this.setBeside(false);
      this.hooks.onScreen(false);
      this.hooks.onLeft();
    });
    this.container.hidden = false;
    (window as unknown as { portal?: Session }).portal = session;
    const joined = new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => done(`Could not join ${room}: no answer from the server`), JOIN_TIMEOUT_MS);
      const offJoined = session.on("joined", () => done(null));
      const offError = session.on("error", ({ code, message }) => {
        if (["roomFull", "wrongPassword", "passwordMismatch", "invalidRoomName", "notInRoom", "alreadyInRoom"].includes(code)) done(`Could not join ${room}: ${message}`);
      });
      function done(why: string | null): void {
        clearTimeout(timer);
        offJoined();
        offError();
        resolve(why);
      }
    });
    session.start();
    const why = await joined;
    if (why) this.leave();
    else if (kioskThere || besideKiosk(room, this.kiosk)) this.setBeside(true);
    return why;
  }

  /** Shares `track` in the call (after `join`). */
  async share(track: MediaStreamTrack): Promise<void> {
    if (!this.session) throw new Error("not in a call");
    await this.session.shareTrack(track);
  }

  async stopShare(): Promise<void> {
    await this.session?.stopScreen();
  }

  /** The kiosk's state changed: coming together with it turns the audio off. */
  kioskState(state: KioskState | null): void {
    this.kiosk = state;
    const now = besideKiosk(this.room, state);
    if (this.session && shouldSilence(this.beside, now)) this.silence(this.session);
    this.setBeside(now);
  }

  leave(): void {
    const session = this.session;
    this.session = null;
    if (session) {
      session.leave();
      this.container.replaceChildren();
      this.container.hidden = true;
      this.hooks.onScreen(false);
    }
    this.setBeside(false);
  }

  private silence(session: Session): void {
    session.local.audioEnabled = false;
    session.setAudioEnabled(false);
    session.setSpeakerEnabled(false);
  }

  private setBeside(beside: boolean): void {
    if (beside === this.beside) return;
    this.beside = beside;
    this.hooks.onBeside(beside);
  }
}

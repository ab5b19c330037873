// Estimates the offset between this client's clock and the server's from ping/pong
// round trips (NTP-style): offset = serverTime - (clientSend + rtt / 2). The sample
// with the smallest round trip is the least disturbed by queueing, so the estimate is
// the median offset of the fastest third of recent samples.

export interface ClockSample {
  clientSend: number;
  clientReceive: number;
  serverTime: number;
}

export class ClockOffset {
  private samples: { rtt: number; offset: number }[] = [];

  constructor(private readonly keep = 16) {}

  add(sample: ClockSample): void {
    const rtt = sample.clientReceive - sample.clientSend;
    if (!(rtt >= 0) || !Number.isFinite(sample.serverTime)) return;
    const offset = sample.serverTime - (sample.clientSend + rtt / 2);
    this.samples.push({ rtt, offset });
    if (this.samples.length > this.keep) this.samples.shift();
  }

  /** Milliseconds to add to a local time to get server time; 0 before any sample. */
  get offset(): number {
    if (this.samples.length === 0) return 0;
    const fastest = [...this.samples].sort((a, b) => a.rtt - b.rtt);
    const best = fastest.slice(0, Math.max(1, Math.ceil(fastest.length / 3)));
    const offsets = best.map((s) => s.offset).sort((a, b) => a - b);
    return offsets[Math.floor(offsets.length / 2)];
  }

  /** Smallest round trip seen, in ms (Infinity before any sample). */
  get bestRtt(): number {
    return this.samples.reduce((min, s) => Math.min(min, s.rtt), Infinity);
  }

  serverNow(localNow: number): number {
    return localNow + this.offset;
  }
}

/**
 * Which ring neighbours have gone silent: a neighbour is alive while
 * bytes keep arriving from it (heartbeats or anything else, chunk by
 * chunk, so a long transfer counts), and silent once nothing arrived for
 * `timeoutMs`. Checked by polling byte counters on a timer; the clock is
 * injectable, so the rule is tested without waiting.
 *
 * TensorFlow.js blocks the event loop while it computes: during a long
 * synchronous step no timer fires and no received byte is handed over.
 * A tick that comes much later than its period means this peer was not
 * listening, so the silence it would measure is its own: every
 * neighbour's clock starts afresh instead. The other way round, a
 * neighbour that blocks longer than `timeoutMs` sends nothing meanwhile
 * and counts as gone, as the signaling server's socket.io ping counts it
 * (its interval and timeout add up to the same peerTimeoutMs): a step
 * must compute in less than peerTimeoutMs.
 */

/** A neighbour being watched. */
interface Watched<S> {
  readonly side: S;
  readonly bytes: () => number;
  lastBytes: number;
  lastLifeMs: number;
  reported: boolean;
}

/** Settings of a {@link Liveness}. */
export interface LivenessOptions {
  /** Silence after which a neighbour counts as gone. */
  readonly timeoutMs: number;
  /** The period {@link Liveness.tick} is called with. */
  readonly tickMs: number;
  readonly now?: () => number;
}

/** Silence detection for a link's neighbours; see the module comment. */
export class Liveness<S extends string> {
  readonly #watched: Watched<S>[] = [];
  readonly #timeoutMs: number;
  readonly #stallMs: number;
  readonly #now: () => number;
  #lastTickMs: number;

  constructor(options: LivenessOptions) {
    this.#timeoutMs = options.timeoutMs;
    // Twice the period plus some slack: later than that, this peer's own
    // event loop was blocked.
    this.#stallMs = 2 * options.tickMs + 100;
    this.#now = options.now ?? (() => performance.now());
    this.#lastTickMs = this.#now();
  }

  /** Starts watching `side`, whose received byte count `bytes` reads. */
  watch(side: S, bytes: () => number): void {
    this.#watched.push({
      side,
      bytes,
      lastBytes: bytes(),
      lastLifeMs: this.#now(),
      reported: false,
    });
  }

  /** Stops watching `side` (its channel ended). */
  unwatch(side: S): void {
    const at = this.#watched.findIndex((w) => w.side === side);
    if (at >= 0) this.#watched.splice(at, 1);
  }

  /**
   * Looks at every neighbour; returns those that became silent now, each
   * with how long it has been silent (reported once per neighbour).
   */
  tick(): { side: S; silentMs: number }[] {
    const nowMs = this.#now();
    const stalled = nowMs - this.#lastTickMs > this.#stallMs;
    this.#lastTickMs = nowMs;
    const silent: { side: S; silentMs: number }[] = [];
    for (const watched of this.#watched) {
      const bytes = watched.bytes();
      if (bytes !== watched.lastBytes || stalled) {
        watched.lastBytes = bytes;
        watched.lastLifeMs = nowMs;
        continue;
      }
      const silentMs = nowMs - watched.lastLifeMs;
      if (silentMs >= this.#timeoutMs && !watched.reported) {
        watched.reported = true;
        silent.push({ side: watched.side, silentMs });
      }
    }
    return silent;
  }
}

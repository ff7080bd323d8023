/**
 * P peers in one process: in-memory ring links that behave like a network
 * (every message is encoded by the codec and decoded at the receiver, so
 * byte counts are real wire bytes), with optional latency and bandwidth per
 * link and a fault hook that may drop, delay, duplicate, reorder or replace
 * any message. Used by tests and by `topk-ring bench allreduce`.
 */
import {
  decodeMessage,
  DEFAULT_DECODE_LIMITS,
  encodeMessage,
  type DecodeLimits,
} from './codec.ts';
import { isTopkError, topkError, type TopkRingError } from './errors.ts';
import type { MessageKey, RingLink } from './link.ts';
import { Mailbox } from './mailbox.ts';
import type { PeerMessage } from './protocol.ts';

/** One message on the wire, as a fault hook sees it. */
export interface WireEvent {
  /** Ring index of the sender. */
  readonly from: number;
  /** Ring index of the receiver (`from + 1` modulo P). */
  readonly to: number;
  /** The message as sent. */
  readonly message: PeerMessage;
  /** Its encoded bytes. */
  readonly bytes: Uint8Array;
}

/**
 * What happens to one message: delivered (the default), lost, delayed by
 * `delayMs` more, delivered twice, held back until the next message on the
 * same link has arrived (`reorder`: hold only a message whose successor
 * does not depend on it, or the ring stalls), or replaced by other `bytes`
 * (a corrupt or lying message).
 */
export type FaultAction =
  | 'deliver'
  | 'drop'
  | 'duplicate'
  | 'reorder'
  | { readonly delayMs: number }
  | { readonly bytes: Uint8Array };

/** Decides the fate of each message; `undefined` means deliver. */
export type FaultHook = (event: WireEvent) => FaultAction | undefined;

/** Settings of a simulated ring. */
export interface SimulatorOptions {
  /** P, at least 1. */
  readonly peers: number;
  /** One-way delay of every link, in milliseconds (default 0). */
  readonly latencyMs?: number;
  /** Bytes per second of every link (default: unlimited). */
  readonly bandwidthBytesPerSecond?: number;
  /** Early messages a peer's mailbox holds (default 1024). */
  readonly maxPending?: number;
  /** What a receiver's decoder accepts. */
  readonly decodeLimits?: DecodeLimits;
  /** Fault injection; may be replaced later with {@link RingSimulator.setFaultHook}. */
  readonly fault?: FaultHook;
}

/** The id the simulator gives the peer at `ringIndex`. */
export function simulatedPeerId(ringIndex: number): string {
  return `peer-${ringIndex}`;
}

/** An in-memory ring of P peers; `links[i]` is peer i's {@link RingLink}. */
export class RingSimulator {
  /** The links, by ring index. */
  readonly links: readonly SimulatedLink[];
  readonly #options: SimulatorOptions;
  readonly #dead = new Set<number>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #fault: FaultHook | undefined;
  #closed = false;

  constructor(options: SimulatorOptions) {
    if (!Number.isSafeInteger(options.peers) || options.peers < 1) {
      throw topkError(
        'ERR_BAD_CONFIG',
        `RingSimulator: expected peers >= 1, got ${String(options.peers)}`,
        { setting: 'peers', received: options.peers },
      );
    }
    const { latencyMs = 0, bandwidthBytesPerSecond = Infinity } = options;
    if (!(latencyMs >= 0 && latencyMs < Infinity)) {
      throw topkError(
        'ERR_BAD_CONFIG',
        `RingSimulator: expected latencyMs >= 0, got ${String(latencyMs)}`,
        { setting: 'latencyMs', received: latencyMs },
      );
    }
    if (!(bandwidthBytesPerSecond > 0)) {
      throw topkError(
        'ERR_BAD_CONFIG',
        'RingSimulator: expected bandwidthBytesPerSecond > 0, got ' +
          String(bandwidthBytesPerSecond),
        {
          setting: 'bandwidthBytesPerSecond',
          received: bandwidthBytesPerSecond,
        },
      );
    }
    this.#options = options;
    this.#fault = options.fault;
    this.links = Array.from(
      { length: options.peers },
      (_, i) => new SimulatedLink(this, i, options.maxPending ?? 1024),
    );
  }

  /** P. */
  get peers(): number {
    return this.links.length;
  }

  /** The peer id of `ringIndex`, see {@link simulatedPeerId}. */
  peerId(ringIndex: number): string {
    return simulatedPeerId(ringIndex);
  }

  /** Timers of messages still on the wire, plus messages held back. */
  get inFlightCount(): number {
    let held = 0;
    for (const link of this.links) held += link.heldCount;
    return this.#timers.size + held;
  }

  /** Installs (or, with `undefined`, removes) the fault hook. */
  setFaultHook(hook: FaultHook | undefined): void {
    this.#fault = hook;
  }

  /** True when peer `ringIndex` was killed. */
  isDead(ringIndex: number): boolean {
    return this.#dead.has(ringIndex);
  }

  /**
   * Kills peer `ringIndex` as a crashed process would die: its own and its
   * next peer's receives fail with `ERR_PEER_GONE`, sends to or from it
   * fail, and whatever it still had on the wire is lost.
   */
  kill(ringIndex: number): void {
    if (this.#dead.has(ringIndex)) return;
    this.#dead.add(ringIndex);
    const gone = (what: string): TopkRingError =>
      topkError('ERR_PEER_GONE', `simulator: ${what}`, { ringIndex });
    this.links[ringIndex].failAll(gone(`peer ${ringIndex} was killed`));
    const next = (ringIndex + 1) % this.peers;
    if (next !== ringIndex) {
      this.links[next].failReceive(gone(`previous peer ${ringIndex} is gone`));
    }
    const previous = (ringIndex - 1 + this.peers) % this.peers;
    if (previous !== ringIndex) {
      this.links[previous].failSends(gone(`next peer ${ringIndex} is gone`));
    }
  }

  /**
   * Drops every held message of steps before (generation, step) and
   * refuses late ones, on every peer: call it once a step is over.
   */
  advanceFloor(generation: number, step: number): void {
    for (const link of this.links) link.mailbox.advanceFloor(generation, step);
  }

  /**
   * Stops every timer and fails every pending receive and send with
   * `ERR_CHANNEL_CLOSED`, so that nothing keeps the process alive.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const closed = topkError('ERR_CHANNEL_CLOSED', 'simulator: closed', {});
    for (const link of this.links) link.failAll(closed);
  }

  /** @internal Carries `bytes` from `from` to its next peer. */
  transmit(from: number, message: PeerMessage, bytes: Uint8Array): number {
    const to = (from + 1) % this.peers;
    const action = this.#fault?.({ from, to, message, bytes }) ?? 'deliver';
    const link = this.links[from];
    const txMs = link.reserveWire(bytes.byteLength, this.#bandwidth());
    const latencyMs = this.#options.latencyMs ?? 0;
    if (action === 'drop') return txMs;
    const arrive = (payload: Uint8Array, extraMs: number): void =>
      this.#schedule(txMs + latencyMs + extraMs, () =>
        this.#arrive(from, to, payload),
      );
    if (action === 'deliver') arrive(bytes, 0);
    else if (action === 'duplicate') {
      arrive(bytes, 0);
      arrive(bytes, 0);
    } else if (action === 'reorder') link.hold(bytes);
    else if ('delayMs' in action) arrive(bytes, action.delayMs);
    else arrive(action.bytes, 0);
    return txMs;
  }

  /** @internal Runs `task` after `delayMs` (at once when 0), tracked. */
  schedule(delayMs: number, task: () => void): void {
    this.#schedule(delayMs, task);
  }

  #schedule(delayMs: number, task: () => void): void {
    if (this.#closed) return;
    if (delayMs <= 0) {
      task();
      return;
    }
    // Node's timers count in whole milliseconds of the loop's clock, so
    // one can fire up to a millisecond early (a unit test saw a delivery
    // come before its latency plus wire time). Latency and bandwidth are
    // lower bounds: an early timer waits again for the rest.
    const dueMs = performance.now() + delayMs;
    const arm = (waitMs: number): void => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        const leftMs = dueMs - performance.now();
        if (leftMs > 0) arm(leftMs);
        else task();
      }, Math.ceil(waitMs));
      this.#timers.add(timer);
    };
    arm(delayMs);
  }

  #bandwidth(): number {
    return this.#options.bandwidthBytesPerSecond ?? Number.POSITIVE_INFINITY;
  }

  // A receiver's failure to decode or file a message goes to one place:
  // its mailbox fails, as a real link would be torn down.
  #arrive(from: number, to: number, bytes: Uint8Array): void {
    if (this.#closed || this.#dead.has(from) || this.#dead.has(to)) return;
    const receiver = this.links[to];
    receiver.countReceived(bytes.byteLength);
    try {
      const limits = this.#options.decodeLimits ?? DEFAULT_DECODE_LIMITS;
      receiver.mailbox.put(decodeMessage(bytes, limits));
    } catch (error) {
      receiver.mailbox.fail(
        isTopkError(error)
          ? error
          : topkError('ERR_INTERNAL', 'simulator: delivery failed', {}, error),
      );
    }
    const sender = this.links[from];
    for (const held of sender.releaseHeld()) this.#arrive(from, to, held);
  }
}

interface PendingSend {
  reject(error: TopkRingError): void;
}

/** Peer i's end of the simulated ring. */
export class SimulatedLink implements RingLink {
  /** Messages from the previous peer, waiting to be asked for. */
  readonly mailbox: Mailbox;
  readonly #ring: RingSimulator;
  readonly #ringIndex: number;
  readonly #pendingSends = new Set<PendingSend>();
  #held: Uint8Array[] = [];
  #busyUntilMs = 0;
  #sendFailure: TopkRingError | undefined;
  #bytesSent = 0;
  #bytesReceived = 0;

  /** @internal Made by {@link RingSimulator} only. */
  constructor(ring: RingSimulator, ringIndex: number, maxPending: number) {
    this.#ring = ring;
    this.#ringIndex = ringIndex;
    this.mailbox = new Mailbox({ maxPending });
  }

  /** Encoded bytes this peer sent to the next one. */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Encoded bytes that reached this peer from the previous one. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** Messages this link's sender holds back for a `reorder` fault. */
  get heldCount(): number {
    return this.#held.length;
  }

  /**
   * Encodes `message` and puts it on the wire to the next peer; resolves
   * when its last byte has left (at once with unlimited bandwidth).
   */
  sendNext(message: PeerMessage, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(aborted('send', signal));
    if (this.#sendFailure !== undefined) {
      return Promise.reject(this.#sendFailure);
    }
    const bytes = encodeMessage(message);
    this.#bytesSent += bytes.byteLength;
    const txMs = this.#ring.transmit(this.#ringIndex, message, bytes);
    if (txMs <= 0) return Promise.resolve();
    // Resolve when the last byte left: the sender feels the bandwidth.
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const pending: PendingSend = {
        reject: (error) => {
          if (settled) return;
          settled = true;
          this.#pendingSends.delete(pending);
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const onAbort = (): void => pending.reject(aborted('send', signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pendingSends.add(pending);
      this.#ring.schedule(txMs, () => {
        if (settled) return;
        settled = true;
        this.#pendingSends.delete(pending);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** The decoded message of `key` from the previous peer (its mailbox). */
  receivePrev(key: MessageKey, signal?: AbortSignal): Promise<PeerMessage> {
    return this.mailbox.take(key, signal);
  }

  /** @internal Books the wire for `byteCount` bytes; returns the wait in ms. */
  reserveWire(byteCount: number, bytesPerSecond: number): number {
    if (!Number.isFinite(bytesPerSecond)) return 0;
    const nowMs = performance.now();
    const startMs = Math.max(nowMs, this.#busyUntilMs);
    this.#busyUntilMs = startMs + (1000 * byteCount) / bytesPerSecond;
    return this.#busyUntilMs - nowMs;
  }

  /** @internal Counts bytes that reached this peer. */
  countReceived(byteCount: number): void {
    this.#bytesReceived += byteCount;
  }

  /** @internal Holds `bytes` back until the next message has arrived. */
  hold(bytes: Uint8Array): void {
    this.#held.push(bytes);
  }

  /** @internal Returns and forgets the held messages. */
  releaseHeld(): Uint8Array[] {
    const held = this.#held;
    this.#held = [];
    return held;
  }

  /** @internal Fails current and future sends with `error`. */
  failSends(error: TopkRingError): void {
    this.#sendFailure ??= error;
    this.#held = [];
    for (const pending of [...this.#pendingSends]) pending.reject(error);
  }

  /** @internal Fails current and future receives with `error`. */
  failReceive(error: TopkRingError): void {
    this.mailbox.fail(error);
  }

  /** @internal Fails both directions. */
  failAll(error: TopkRingError): void {
    this.failSends(error);
    this.failReceive(error);
  }
}

function aborted(what: string, signal?: AbortSignal): TopkRingError {
  return topkError('ERR_RING_ABORTED', `simulator: ${what} aborted`, {
    reason: String(signal?.reason ?? 'aborted'),
  });
}

/**
 * Holds messages that arrived from the previous ring peer until the
 * all-reduce asks for them (case 11: fast peers talk before slow peers
 * listen), and hands a message straight to a waiting receiver otherwise.
 *
 * The protocol sends exactly one message per (generation, step, phase):
 * every hop of the all-reduce and of the handshake receives one segment
 * (or origin) from the previous peer. The mailbox holds that slot, not
 * the full key, so a message filed under another segment of the phase
 * (a lying peer) is refused with `ERR_BAD_MESSAGE` as soon as both it and
 * the receive for the phase are known, instead of waiting unseen for a
 * receive that never comes.
 */
import { topkError, type TopkRingError } from './errors.ts';
import { keyOf, keyString, type MessageKey } from './link.ts';
import type { PeerMessage } from './protocol.ts';

/** Limits of one mailbox. */
export interface MailboxOptions {
  /** Most messages held before anyone asked for them. */
  readonly maxPending: number;
}

interface Waiter {
  /** The segment the receiver asked for. */
  readonly segment: number;
  resolve(message: PeerMessage): void;
  reject(error: TopkRingError): void;
}

/** A keyed buffer between a link's receive side and the all-reduce. */
export class Mailbox {
  readonly #pending = new Map<string, PeerMessage>();
  readonly #waiters = new Map<string, Waiter>();
  readonly #maxPending: number;
  #floor = { generation: 0, step: 0 };
  #failure: TopkRingError | undefined;

  constructor(options: MailboxOptions = { maxPending: 1024 }) {
    this.#maxPending = options.maxPending;
  }

  /** Messages held that nobody has asked for yet. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Delivers `message`. A message below the floor (an older generation or
   * step) is dropped silently: it belongs to an aborted or finished step.
   * So is any message after {@link fail}: the link is known to be gone,
   * and what was still on its way must not be used. Throws
   * `ERR_BAD_MESSAGE` for a second message of the same (generation,
   * step, phase) and `ERR_MESSAGE_TOO_LARGE` when too many are held; the
   * mailbox is left unchanged in both cases. A message under another
   * segment than the one a receiver waits for in its phase fails that
   * receiver and throws, both with `ERR_BAD_MESSAGE`.
   */
  put(message: PeerMessage): void {
    if (this.#failure !== undefined || this.#isStale(message)) return;
    const slot = slotString(message);
    const waiter = this.#waiters.get(slot);
    if (waiter !== undefined) {
      this.#waiters.delete(slot);
      if (waiter.segment === message.segment) {
        waiter.resolve(message);
        return;
      }
      const error = wrongSegment(message, waiter.segment);
      waiter.reject(error);
      throw error;
    }
    if (this.#pending.has(slot)) {
      const key = keyString(message);
      throw topkError(
        'ERR_BAD_MESSAGE',
        `Mailbox: a second message for ${key} (one per phase)`,
        { key: keyOf(message), sender: message.sender },
      );
    }
    if (this.#pending.size >= this.#maxPending) {
      throw topkError(
        'ERR_MESSAGE_TOO_LARGE',
        `Mailbox: more than ${this.#maxPending} early messages held`,
        { limit: this.#maxPending, sender: message.sender },
      );
    }
    this.#pending.set(slot, message);
  }

  /**
   * Resolves with the message of `key`, at once if it already arrived.
   * Rejects with `ERR_RING_ABORTED` when `signal` aborts, with the
   * failure given to {@link fail} if the link failed, and with
   * `ERR_BAD_MESSAGE` when the message of the phase came under another
   * segment.
   */
  take(key: MessageKey, signal?: AbortSignal): Promise<PeerMessage> {
    const id = slotString(key);
    const held = this.#pending.get(id);
    if (held !== undefined) {
      this.#pending.delete(id);
      if (held.segment !== key.segment) {
        return Promise.reject(wrongSegment(held, key.segment));
      }
      return Promise.resolve(held);
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (signal?.aborted) return Promise.reject(aborted(key, signal));
    if (this.#waiters.has(id)) {
      return Promise.reject(
        topkError('ERR_INTERNAL', `Mailbox: two receivers for ${id}`, { key }),
      );
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiters.delete(id);
        reject(aborted(key, signal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.set(id, {
        segment: key.segment,
        resolve: (message) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(message);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      });
    });
  }

  /**
   * Drops every held message below (generation, step) and refuses such
   * messages from now on: they belong to aborted or completed steps.
   */
  advanceFloor(generation: number, step: number): void {
    this.#floor = { generation, step };
    for (const [id, message] of this.#pending) {
      if (this.#isStale(message)) this.#pending.delete(id);
    }
  }

  /**
   * Fails every waiting and future `take` with `error` (the link is gone).
   * After a crash (the default) what is held is dropped too: nothing a
   * departed peer sent is used once it is known to be gone. A peer that
   * said goodbye finished its steps before leaving, so with `keepHeld` its
   * complete messages stay available to a slower receiver.
   */
  fail(error: TopkRingError, options: { keepHeld?: boolean } = {}): void {
    this.#failure = error;
    if (options.keepHeld !== true) this.#pending.clear();
    const waiters = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  #isStale(key: MessageKey): boolean {
    const floor = this.#floor;
    return (
      key.generation < floor.generation ||
      (key.generation === floor.generation && key.step < floor.step)
    );
  }
}

/** The slot of a key: one message per (generation, step, phase). */
function slotString(key: MessageKey): string {
  return `${key.generation}/${key.step}/${key.phase}`;
}

function wrongSegment(message: PeerMessage, expected: number): TopkRingError {
  return topkError(
    'ERR_BAD_MESSAGE',
    `Mailbox: expected segment ${expected} in ${slotString(message)}, got ` +
      `${keyString(message)} from ${message.sender}`,
    { key: keyOf(message), expected, sender: message.sender },
  );
}

function aborted(key: MessageKey, signal?: AbortSignal): TopkRingError {
  return topkError(
    'ERR_RING_ABORTED',
    `Mailbox: receive of ${keyString(key)} aborted`,
    { key, reason: String(signal?.reason ?? 'aborted') },
  );
}

/**
 * One peer's side of one all-reduce call: builds the envelope of every
 * message, runs a hop (send to the next peer while receiving from the
 * previous one), keeps the skip flag learnt so far, and owns an abort
 * controller so that a failure anywhere cancels whatever is still pending
 * on the link.
 */
import createDebug from 'debug';

import { isTopkError, topkError, type TopkRingError } from '../errors.ts';
import { keyString } from '../link.ts';
import { PROTOCOL_VERSION, type PeerMessage } from '../protocol.ts';
import { hopKey, phaseOf } from './layout.ts';
import { EMPTY_SLICE, type SliceValue } from './slice-sum.ts';
import type { AllReduceAlgorithm, RingContext } from './types.ts';
import { acceptSlice, type ReceivedSlice } from './validate.ts';

const log = createDebug('topk:ring');

/** What one hop sends: a slice of `length` coordinates under `segment`. */
export interface Outgoing {
  readonly segment: number;
  readonly length: number;
  readonly value: SliceValue;
}

/** What one hop expects from the previous peer. */
export interface Incoming {
  readonly segment: number;
  readonly length: number;
  /** The hop in words, for error messages. */
  readonly hop: string;
}

/** The per-call state of one peer's all-reduce. */
export class RingSession {
  /** The caller's context of the step. */
  readonly context: RingContext;
  /** The algorithm that runs (never `auto`); part of every message key. */
  readonly algorithm: AllReduceAlgorithm;
  readonly #controller = new AbortController();
  readonly #onCallerAbort: () => void;
  readonly #sentBefore: number;
  readonly #receivedBefore: number;
  #skip: boolean;

  constructor(
    context: RingContext,
    algorithm: AllReduceAlgorithm,
    skip: boolean,
  ) {
    this.context = context;
    this.algorithm = algorithm;
    this.#skip = skip;
    this.#sentBefore = context.link.bytesSent;
    this.#receivedBefore = context.link.bytesReceived;
    this.#onCallerAbort = () => this.#controller.abort(context.signal?.reason);
    if (context.signal?.aborted) this.#onCallerAbort();
    context.signal?.addEventListener('abort', this.#onCallerAbort, {
      once: true,
    });
  }

  /** True once this peer or any message so far said to skip the step. */
  get skip(): boolean {
    return this.#skip;
  }

  /** Wire bytes sent and received by the link since the call began. */
  get bytes(): { sent: number; received: number } {
    const { link } = this.context;
    return {
      sent: link.bytesSent - this.#sentBefore,
      received: link.bytesReceived - this.#receivedBefore,
    };
  }

  /**
   * Hop `hop`: sends `outgoing` to the next peer and, at the same time,
   * receives and validates the slice `incoming` from the previous one.
   * Once the step is known to be skipped, slices travel empty: their
   * values will not be used by anyone.
   */
  async exchange(
    hop: number,
    outgoing: Outgoing,
    incoming: Incoming,
  ): Promise<ReceivedSlice> {
    const { context } = this;
    const signal = this.#controller.signal;
    const message = this.#message(hop, outgoing);
    const key = hopKey(context, this.algorithm, hop, incoming.segment);
    if (log.enabled) {
      log(
        '%s step %d: hop %d sends %s, awaits %s',
        context.peerId,
        context.step,
        hop,
        keyString(message),
        keyString(key),
      );
    }
    // A slice under another segment of this hop (allgather: another
    // origin) is refused by the mailbox, which holds one message per
    // (generation, step, phase): ERR_BAD_MESSAGE, not a stall.
    const [, raw] = await Promise.all([
      context.link.sendNext(message, signal),
      context.link.receivePrev(key, signal),
    ]);
    const received = acceptSlice(raw, {
      key,
      room: context.room,
      length: incoming.length,
      hop: `${this.algorithm} step ${context.step} ${incoming.hop}`,
    });
    if (received.skip) this.#skip = true;
    return received;
  }

  #message(hop: number, outgoing: Outgoing): PeerMessage {
    const { context } = this;
    const value = this.#skip ? EMPTY_SLICE : outgoing.value;
    const envelope = {
      v: PROTOCOL_VERSION,
      room: context.room,
      generation: context.generation,
      step: context.step,
      phase: phaseOf(this.algorithm, hop),
      segment: outgoing.segment,
      sender: context.peerId,
    };
    const skip = this.#skip;
    if (value.kind === 'dense') {
      return {
        ...envelope,
        type: 'dense',
        payload: { values: value.values, skip },
      };
    }
    return {
      ...envelope,
      type: 'sparse',
      payload: {
        length: outgoing.length,
        indices: value.indices,
        values: value.values,
        skip,
      },
    };
  }

  /**
   * Cancels whatever is still pending on the link and turns `error` into
   * the error the call rejects with: the error itself when it is typed,
   * `ERR_RING_ABORTED` when the caller aborted (a link may reject with a
   * plain AbortError), `ERR_INTERNAL` otherwise.
   */
  fail(error: unknown): TopkRingError {
    this.#controller.abort(error);
    if (isTopkError(error)) return error;
    const { context } = this;
    if (context.signal?.aborted) {
      return topkError(
        'ERR_RING_ABORTED',
        `all-reduce: step ${context.step} aborted by the caller`,
        { step: context.step, reason: String(context.signal.reason) },
        error,
      );
    }
    return topkError(
      'ERR_INTERNAL',
      `all-reduce: step ${context.step} failed unexpectedly`,
      { step: context.step },
      error,
    );
  }

  /** Detaches from the caller's signal; call once, on every path. */
  close(): void {
    this.context.signal?.removeEventListener('abort', this.#onCallerAbort);
  }
}

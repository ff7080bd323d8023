/**
 * What the ring all-reduce needs from a network: a way to send a message to
 * the next peer in the ring and to receive, from the previous peer, the
 * message for a given (generation, step, phase, segment). The same
 * all-reduce code runs over in-memory links (tests, simulator) and over
 * WebRTC data channels.
 */
import type { PeerMessage } from './protocol.ts';

/** Identifies one message of one all-reduce hop. */
export interface MessageKey {
  readonly generation: number;
  readonly step: number;
  readonly phase: number;
  readonly segment: number;
}

/** A duplex link of one peer to its ring neighbours. */
export interface RingLink {
  /**
   * Sends `message` to the next peer in the ring. Resolves once the
   * transport accepted it (after any backpressure wait); rejects with
   * `ERR_PEER_GONE`/`ERR_CHANNEL_CLOSED` when it cannot be delivered, or
   * `ERR_RING_ABORTED` when `signal` aborts.
   */
  sendNext(message: PeerMessage, signal?: AbortSignal): Promise<void>;

  /**
   * Resolves with the message of `key` from the previous peer, including
   * one that arrived before it was asked for. Rejects with
   * `ERR_RING_ABORTED` when `signal` aborts and with `ERR_PEER_GONE` when
   * the previous peer departs.
   */
  receivePrev(key: MessageKey, signal?: AbortSignal): Promise<PeerMessage>;

  /** Wire bytes this link has sent so far (encoded messages). */
  readonly bytesSent: number;

  /** Wire bytes this link has received so far. */
  readonly bytesReceived: number;
}

/** The key of `message`, for matching it to a {@link RingLink.receivePrev}. */
export function keyOf(message: MessageKey): MessageKey {
  return {
    generation: message.generation,
    step: message.step,
    phase: message.phase,
    segment: message.segment,
  };
}

/** A string form of a key, for maps and logs. */
export function keyString(key: MessageKey): string {
  return `${key.generation}/${key.step}/${key.phase}/${key.segment}`;
}

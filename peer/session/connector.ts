/**
 * Builds the ring link of one generation: WebRTC data channels to the next
 * and the previous peer, negotiated through the signaling server's relay.
 * This peer makes the offer to its next peer and answers its previous one,
 * so every pair has exactly one offerer; in a ring of two the single
 * channel carries both directions and ring index 0 offers.
 *
 * Negotiation data can arrive before this peer has seen the membership
 * that pairs it (the neighbour saw it first): it is held, per generation
 * and sender, until the channel for that sender exists.
 */
import createDebug from 'debug';

import { isTopkError, topkError } from '../../shared/errors.ts';
import type { RingLink } from '../../shared/link.ts';
import type { SignalingClient } from '../../shared/signaling-client.ts';
import type {
  RelayedSignal,
  RingPosition,
  SignalData as RelayedSignalData,
} from '../../shared/signaling-protocol.ts';
import { RingSimulator } from '../../shared/simulator.ts';
import type { WebRtcBinding } from '../webrtc/bindings.ts';
import { FramedChannel } from '../webrtc/framed-channel.ts';
import { PeerChannel, type SignalData } from '../webrtc/peer-channel.ts';
import {
  WebRtcRingLink,
  type InjectedFault,
  type LinkSide,
} from '../webrtc/ring-link.ts';

const log = createDebug('topk:session:connector');

/** Most negotiation messages held for channels that do not exist yet. */
const MAX_HELD_SIGNALS = 256;

/** Settings of a {@link RingConnector}. */
export interface RingConnectorOptions {
  readonly client: SignalingClient;
  readonly binding: WebRtcBinding;
  readonly iceServers?: readonly RTCIceServer[];
  /** Give up on a neighbour that does not connect within this time. */
  readonly connectTimeoutMs: number;
  /** Largest logical message accepted from a neighbour. */
  readonly maxMessageBytes: number;
  /** Heartbeats on the data channels, and the silence that is a departure. */
  readonly heartbeatMs: number;
  readonly peerTimeoutMs: number;
  /** The room, carried by heartbeats. */
  readonly room: string;
  /** Test only: a fault the links of this peer inject (test-fault.ts). */
  readonly fault?: InjectedFault;
}

/** A ring link plus what is needed to close it. */
export interface GenerationLink {
  readonly generation: number;
  readonly link: RingLink;
  /** The WebRTC link, absent when the peer is alone. */
  readonly webrtc?: WebRtcRingLink;
  /** Leaves gracefully: goodbye on every channel, then close. */
  close(): Promise<void>;
}

/** Connects a peer to its ring neighbours, one generation at a time. */
export class RingConnector {
  readonly #options: RingConnectorOptions;
  readonly #channels = new Map<string, PeerChannel>();
  #held: RelayedSignal[] = [];
  #generation = -1;
  readonly #unsubscribe: () => void;

  constructor(options: RingConnectorOptions) {
    this.#options = options;
    this.#unsubscribe = options.client.on('signal', (signal) =>
      this.#route(signal),
    );
  }

  /**
   * Opens the channels of `generation` for a peer at `position`. Rejects
   * with `ERR_PEER_GONE` when a neighbour does not connect in time (its
   * `context.unopened` names the sides that did not open); every channel
   * opened by the failed attempt is closed.
   */
  async connect(
    generation: number,
    position: RingPosition,
    signal?: AbortSignal,
  ): Promise<GenerationLink> {
    this.#generation = generation;
    this.#held = this.#held.filter((s) => s.generation >= generation);
    const label = this.#options.client.peerId;
    if (position.size === 1) {
      return {
        generation,
        link: new RingSimulator({ peers: 1 }).links[0],
        close: async () => {},
      };
    }

    const pair = position.size === 2;
    const toNext = this.#open(
      position.next,
      pair ? position.ringIndex === 0 : true,
    );
    const fromPrev = pair ? toNext : this.#open(position.prev, false);
    // The link listens from the start: a neighbour whose side opened first
    // may send (its handshake hello) before this side's other channel is
    // open, and a message with nobody listening would be lost.
    const limits = { maxMessageBytes: this.#options.maxMessageBytes };
    const next = new FramedChannel(toNext, limits);
    const prev = pair ? next : new FramedChannel(fromPrev, limits);
    const webrtc = new WebRtcRingLink({
      next,
      prev,
      label,
      decodeLimits: {
        maxMessageBytes: this.#options.maxMessageBytes,
        maxLength: 2 ** 28,
      },
      heartbeat: {
        room: this.#options.room,
        generation,
        peerId: label,
        heartbeatMs: this.#options.heartbeatMs,
        peerTimeoutMs: this.#options.peerTimeoutMs,
      },
      fault: this.#options.fault,
    });
    try {
      await withTimeout(
        Promise.all([toNext.waitOpen(), fromPrev.waitOpen()]),
        this.#options.connectTimeoutMs,
        `${label}: neighbours of generation ${generation} did not connect`,
        signal,
      );
    } catch (error) {
      const unopened: LinkSide[] = [];
      if (toNext.state !== 'open') unopened.push('next');
      if (!pair && fromPrev.state !== 'open') unopened.push('prev');
      toNext.destroy();
      fromPrev.destroy();
      this.#channels.clear();
      if (!isTopkError(error, 'ERR_PEER_GONE')) throw error;
      throw topkError(
        error.code,
        error.message,
        { ...error.context, unopened },
        error,
      );
    }
    log('%s: generation %d connected', label, generation);

    return {
      generation,
      link: webrtc,
      webrtc,
      close: async () => {
        await webrtc.close();
        this.#channels.clear();
      },
    };
  }

  /** Stops listening to the signaling client and ends every channel. */
  dispose(): void {
    this.#unsubscribe();
    for (const channel of this.#channels.values()) channel.destroy();
    this.#channels.clear();
    this.#held = [];
  }

  #open(remote: string, initiator: boolean): PeerChannel {
    const channel = new PeerChannel({
      binding: this.#options.binding,
      initiator,
      iceServers: this.#options.iceServers,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      label: `${this.#options.client.peerId}->${remote}`,
    });
    const generation = this.#generation;
    channel.on('signal', (data: SignalData) =>
      this.#options.client.signal(remote, toRelayed(data), generation),
    );
    this.#channels.set(remote, channel);
    const held = this.#held.filter(
      (s) => s.from === remote && s.generation === generation,
    );
    this.#held = this.#held.filter((s) => !held.includes(s));
    for (const signal of held) channel.signal(fromRelayed(signal.data));
    return channel;
  }

  #route(signal: RelayedSignal): void {
    if (signal.generation < this.#generation) return;
    const channel =
      signal.generation === this.#generation
        ? this.#channels.get(signal.from)
        : undefined;
    if (channel !== undefined) {
      channel.signal(fromRelayed(signal.data));
      return;
    }
    if (this.#held.length >= MAX_HELD_SIGNALS) this.#held.shift();
    this.#held.push(signal);
  }
}

async function withTimeout<T>(
  work: Promise<T>,
  timeoutMs: number,
  message: string,
  signal?: AbortSignal,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(topkError('ERR_PEER_GONE', message, { timeoutMs })),
      timeoutMs,
    );
    onAbort = () =>
      reject(
        topkError('ERR_RING_ABORTED', `${message}: aborted`, {
          reason: String(signal?.reason ?? 'aborted'),
        }),
      );
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}

// simple-peer's negotiation objects are plain JSON (type, sdp, candidate);
// the relay checks them against its own JSON schema on the way, and
// simple-peer rejects what it cannot use through the channel's error path.
function toRelayed(data: SignalData): RelayedSignalData {
  return data as unknown as RelayedSignalData;
}

function fromRelayed(data: RelayedSignalData): SignalData {
  return data as unknown as SignalData;
}

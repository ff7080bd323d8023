/**
 * Logical messages over a {@link PeerChannel}: each message is cut into
 * chunks by shared/framing.ts on the way out and reassembled on the way
 * in, and a graceful close sends the framing's goodbye first, so the
 * remote can tell a peer that left from a connection that broke.
 */
import { EventEmitter } from 'node:events';

import createDebug from 'debug';

import {
  isTopkError,
  topkError,
  type TopkRingError,
} from '../../shared/errors.ts';
import {
  Framer,
  Reassembler,
  type FramerOptions,
  type ReassemblerOptions,
} from '../../shared/framing.ts';
import type { ChannelCloseInfo, PeerChannel } from './peer-channel.ts';

const debug = createDebug('topk:webrtc');

/** Options of a {@link FramedChannel}: the framing's, both directions. */
export type FramedChannelOptions = FramerOptions &
  Pick<ReassemblerOptions, 'maxPartialMessages' | 'maxPartialBytes'>;

/** How a framed channel ended. */
export interface FramedCloseInfo extends ChannelCloseInfo {
  /** True when the remote said goodbye before the channel closed. */
  readonly remoteSaidBye: boolean;
}

/** Events of a {@link FramedChannel}. */
export interface FramedChannelEvents {
  /** One reassembled message. Listeners must not throw. */
  message: [bytes: Uint8Array];
  /** A chunk that broke the format or a limit; its message is dropped. */
  fault: [error: TopkRingError];
  /** The channel ended; emitted exactly once. */
  close: [info: FramedCloseInfo];
}

/** A message channel to one remote peer. */
export class FramedChannel extends EventEmitter<FramedChannelEvents> {
  /** The underlying data channel. */
  readonly channel: PeerChannel;
  readonly #framer: Framer;
  readonly #reassembler: Reassembler;
  readonly #closed: Promise<FramedCloseInfo>;
  #remoteSaidBye = false;
  #sendTail: Promise<void> = Promise.resolve();
  #onClose: (info: ChannelCloseInfo) => void = () => {};
  #messagesSent = 0;
  #messagesReceived = 0;

  constructor(channel: PeerChannel, options: FramedChannelOptions = {}) {
    super();
    this.channel = channel;
    this.#framer = new Framer(options);
    this.#reassembler = new Reassembler({
      maxMessageBytes: options.maxMessageBytes,
      maxPartialMessages: options.maxPartialMessages,
      maxPartialBytes: options.maxPartialBytes,
    });
    this.#closed = new Promise((resolve) => {
      this.#onClose = (info) => {
        // Nothing a departed peer sent half-way is ever completed.
        this.#reassembler.clear();
        const framed = { ...info, remoteSaidBye: this.#remoteSaidBye };
        resolve(framed);
        this.emit('close', framed);
      };
    });
    channel.once('close', this.#onClose);
    channel.on('message', this.#onChunk);
  }

  /** Messages handed to the channel in full so far. */
  get messagesSent(): number {
    return this.#messagesSent;
  }

  /** Messages reassembled so far. */
  get messagesReceived(): number {
    return this.#messagesReceived;
  }

  /**
   * Sends one message as chunks, each after the backpressure wait of the
   * channel. Messages go out whole and in call order, never interleaved,
   * so the remote holds at most one partial message from us. Rejects with
   * `ERR_MESSAGE_TOO_LARGE` above the cap, `ERR_CHANNEL_CLOSED` /
   * `ERR_PEER_GONE` when the channel ends first, and `ERR_RING_ABORTED`
   * when `signal` is aborted before the first chunk. A message once
   * started is sent whole: a half-sent one would sit in the remote's
   * reassembly until the channel closes.
   */
  sendMessage(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const result = this.#sendTail.then(() => this.#sendWhole(bytes, signal));
    this.#sendTail = result.catch(() => {});
    return result;
  }

  async #sendWhole(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) {
      throw topkError('ERR_RING_ABORTED', 'FramedChannel: send aborted', {
        reason: String(signal.reason ?? 'aborted'),
      });
    }
    const framed = this.#framer.frame(bytes);
    for (let sequence = 0; sequence < framed.chunkCount; sequence++) {
      await this.channel.send(framed.chunkAt(sequence));
    }
    this.#messagesSent++;
  }

  /** Closes gracefully: goodbye, drain, then channel and connection. */
  async close(): Promise<FramedCloseInfo> {
    await this.channel.close({ goodbye: this.#framer.bye() });
    return this.#closed;
  }

  /** Resolves when the channel has ended, with how it ended. */
  waitClosed(): Promise<FramedCloseInfo> {
    return this.#closed;
  }

  /**
   * Stops reading the channel and drops partial messages, leaving the
   * channel open for another reader. This object reports nothing more.
   */
  detach(): void {
    this.channel.off('message', this.#onChunk);
    this.channel.off('close', this.#onClose);
    this.#reassembler.clear();
  }

  readonly #onChunk = (chunk: Uint8Array): void => {
    let result;
    try {
      result = this.#reassembler.accept(chunk);
    } catch (error) {
      this.#fault(error);
      return;
    }
    if (result.kind === 'bye') {
      this.#remoteSaidBye = true;
      debug('%s: remote said goodbye', this.channel.state);
      void this.channel.close({ remoteLeft: true });
      return;
    }
    if (result.kind !== 'message') return;
    this.#messagesReceived++;
    try {
      this.emit('message', result.bytes);
    } catch (error) {
      // A listener broke its promise not to throw; keep the channel alive.
      this.#fault(error);
    }
  };

  #fault(error: unknown): void {
    const typed = isTopkError(error)
      ? error
      : topkError('ERR_INTERNAL', `FramedChannel: ${String(error)}`, {}, error);
    debug('fault: %s', typed.message);
    this.emit('fault', typed);
  }
}

/**
 * A {@link RingLink} over WebRTC: messages to the next ring peer go out on
 * one framed channel, messages from the previous peer come in on another
 * and wait in a {@link Mailbox} until the all-reduce asks for them (case
 * 11). In a ring of two, next and previous are the same peer and the same
 * channel, which carries both directions.
 *
 * Failures never escape a listener: a message that does not decode, or
 * that the mailbox refuses, is reported as a `fault` event; a departed
 * previous peer fails every pending and later receive with
 * `ERR_PEER_GONE`, a departed next peer every later send.
 */
import { EventEmitter } from 'node:events';

import createDebug from 'debug';

import {
  DEFAULT_DECODE_LIMITS,
  decodeMessage,
  encodeMessage,
  type DecodeLimits,
} from '../../shared/codec.ts';
import {
  isTopkError,
  topkError,
  type TopkRingError,
} from '../../shared/errors.ts';
import type { MessageKey, RingLink } from '../../shared/link.ts';
import { Mailbox, type MailboxOptions } from '../../shared/mailbox.ts';
import type { PeerMessage } from '../../shared/protocol.ts';
import type { FramedChannel, FramedCloseInfo } from './framed-channel.ts';

const debug = createDebug('topk:ring-link');

/** Which side of the link an event concerns. */
export type LinkSide = 'next' | 'prev';

/** Options of a {@link WebRtcRingLink}. */
export interface WebRtcRingLinkOptions {
  /** The channel to the next ring peer. */
  readonly next: FramedChannel;
  /** The channel from the previous ring peer; may be `next` itself. */
  readonly prev: FramedChannel;
  /** Limits for decoding incoming messages. */
  readonly decodeLimits?: DecodeLimits;
  /** Limits of the mailbox of early messages. */
  readonly mailbox?: MailboxOptions;
  /** A name for log lines, e.g. this peer's id. */
  readonly label?: string;
}

/** Events of a {@link WebRtcRingLink}. */
export interface WebRtcRingLinkEvents {
  /** A message from the wire was dropped (bad bytes, duplicate, ...). */
  fault: [error: TopkRingError, side: LinkSide];
  /** A neighbour's channel ended (reported once per channel). */
  departed: [side: LinkSide, info: FramedCloseInfo];
}

/** The RingLink of one peer, over its neighbours' data channels. */
export class WebRtcRingLink
  extends EventEmitter<WebRtcRingLinkEvents>
  implements RingLink
{
  /** Messages from the previous peer that nobody asked for yet. */
  readonly mailbox: Mailbox;
  readonly #next: FramedChannel;
  readonly #prev: FramedChannel;
  readonly #decodeLimits: DecodeLimits;
  readonly #label: string;
  #bytesSent = 0;
  #bytesReceived = 0;

  constructor(options: WebRtcRingLinkOptions) {
    super();
    this.#next = options.next;
    this.#prev = options.prev;
    this.#decodeLimits = options.decodeLimits ?? DEFAULT_DECODE_LIMITS;
    this.#label = options.label ?? 'link';
    this.mailbox = new Mailbox(options.mailbox);
    this.#listen();
  }

  /** Encoded message bytes sent to the next peer (chunk headers not included). */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Encoded message bytes received from the previous peer. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** Data-channel bytes sent, chunk headers included. */
  get wireBytesSent(): number {
    return this.#next.channel.bytesSent;
  }

  /** Data-channel bytes received, chunk headers included. */
  get wireBytesReceived(): number {
    return this.#prev.channel.bytesReceived;
  }

  /** {@inheritDoc RingLink.sendNext} */
  async sendNext(message: PeerMessage, signal?: AbortSignal): Promise<void> {
    const bytes = encodeMessage(message);
    try {
      await this.#next.sendMessage(bytes, signal);
    } catch (error) {
      throw isTopkError(error)
        ? error
        : topkError('ERR_INTERNAL', `sendNext: ${String(error)}`, {}, error);
    }
    this.#bytesSent += bytes.byteLength;
  }

  /** {@inheritDoc RingLink.receivePrev} */
  receivePrev(key: MessageKey, signal?: AbortSignal): Promise<PeerMessage> {
    return this.mailbox.take(key, signal);
  }

  /**
   * Leaves gracefully: says goodbye on both channels (once when they are
   * the same) and resolves when they have closed.
   */
  async close(): Promise<void> {
    const channels = new Set([this.#next, this.#prev]);
    await Promise.all([...channels].map((channel) => channel.close()));
  }

  #listen(): void {
    this.#prev.on('message', (bytes) => this.#onPrevMessage(bytes));
    this.#prev.on('fault', (error) => this.#fault(error, 'prev'));
    this.#prev.once('close', (info) => this.#onPrevClose(info));
    if (this.#next === this.#prev) return;

    // The next peer sends us nothing in the ring protocol; what arrives is
    // dropped and logged. TODO(#6): no application heartbeat yet: a
    // silent crash is seen by the server's ping (peerTimeoutMs) or the
    // channel closing, not by heartbeats on the channel.
    this.#next.on('message', (bytes) =>
      debug(
        '%s: %d bytes from the next peer dropped',
        this.#label,
        bytes.length,
      ),
    );
    this.#next.on('fault', (error) => this.#fault(error, 'next'));
    this.#next.once('close', (info) => this.emit('departed', 'next', info));
  }

  #onPrevMessage(bytes: Uint8Array): void {
    this.#bytesReceived += bytes.byteLength;
    try {
      this.mailbox.put(decodeMessage(bytes, this.#decodeLimits));
    } catch (error) {
      this.#fault(error, 'prev');
    }
  }

  #onPrevClose(info: FramedCloseInfo): void {
    const reason = info.remoteSaidBye
      ? 'said goodbye'
      : info.initiatedLocally
        ? 'was closed by this peer'
        : 'closed without goodbye';
    this.mailbox.fail(
      topkError(
        'ERR_PEER_GONE',
        `WebRtcRingLink ${this.#label}: expected messages from the previous ` +
          `peer, its channel ${reason}`,
        { label: this.#label, remoteSaidBye: info.remoteSaidBye },
        info.error,
      ),
    );
    this.emit('departed', 'prev', info);
    if (this.#next === this.#prev) this.emit('departed', 'next', info);
  }

  #fault(error: unknown, side: LinkSide): void {
    const typed = isTopkError(error)
      ? error
      : topkError(
          'ERR_INTERNAL',
          `WebRtcRingLink: ${String(error)}`,
          {},
          error,
        );
    debug('%s: %s fault: %s', this.#label, side, typed.message);
    this.emit('fault', typed, side);
  }
}

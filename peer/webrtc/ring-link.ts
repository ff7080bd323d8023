/**
 * A {@link RingLink} over WebRTC: messages to the next ring peer go out on
 * one framed channel, messages from the previous peer come in on another
 * and wait in a {@link Mailbox} until the all-reduce asks for them (case
 * 11). In a ring of two, next and previous are the same peer and the same
 * channel, which carries both directions.
 *
 * Failures never escape a listener: a message that does not decode, or
 * that the mailbox refuses, is reported as a `fault` event (and a fault
 * from the previous peer fails its receives: nothing more it sends is
 * trusted); a departed previous peer fails every pending and later
 * receive with `ERR_PEER_GONE`, a departed next peer every later send.
 *
 * Liveness (with `heartbeat`): every `heartbeatMs` a heartbeat goes to
 * both neighbours, and a neighbour from which no byte arrived for
 * `peerTimeoutMs` is reported `silent` and its channel destroyed, so it
 * departs like a crashed peer (liveness.ts: how a blocked event loop is
 * told apart).
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
import { PROTOCOL_VERSION, type PeerMessage } from '../../shared/protocol.ts';
import type { FramedChannel, FramedCloseInfo } from './framed-channel.ts';
import { Liveness } from './liveness.ts';

const debug = createDebug('topk:ring-link');

/** Which side of the link an event concerns. */
export type LinkSide = 'next' | 'prev';

/** What heartbeats carry and how often they go. */
export interface HeartbeatOptions {
  readonly room: string;
  readonly generation: number;
  /** This peer's id, the heartbeat's sender. */
  readonly peerId: string;
  readonly heartbeatMs: number;
  readonly peerTimeoutMs: number;
}

/**
 * A fault this link injects, for tests of the ring's fault handling
 * (set through TOPK_TEST_FAULT, see session/test-fault.ts): from its
 * first all-reduce message of step `step` or later, `silent` sends
 * nothing more (heartbeats included) while still receiving, `garbage`
 * replaces that one message with bytes that do not decode, `drop` never
 * sends one message after the step's first hop (phase 1 or later), and `slow`
 * sends the first message of every step `delayMs` late (a straggler),
 * for the rest of that generation. `fired` is shared by the links of one
 * process, so it happens in one generation only.
 */
export interface InjectedFault {
  readonly kind: 'silent' | 'garbage' | 'slow' | 'drop';
  readonly step: number;
  /** `slow`: the delay of each step's first message. */
  readonly delayMs?: number;
  fired: boolean;
}

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
  /** Heartbeats and silence detection; none when absent. */
  readonly heartbeat?: HeartbeatOptions;
  /** Test only: a fault to inject. */
  readonly fault?: InjectedFault;
}

/** Events of a {@link WebRtcRingLink}. */
export interface WebRtcRingLinkEvents {
  /** A message from the wire was dropped (bad bytes, duplicate, ...). */
  fault: [error: TopkRingError, side: LinkSide];
  /** A neighbour's channel ended (reported once per channel). */
  departed: [side: LinkSide, info: FramedCloseInfo];
  /**
   * No byte from a neighbour for peerTimeoutMs; its channel is destroyed
   * right after (so `departed` follows).
   */
  silent: [side: LinkSide, silentMs: number];
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
  readonly #heartbeat: HeartbeatOptions | undefined;
  readonly #fault: InjectedFault | undefined;
  readonly #liveness: Liveness<LinkSide> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastHeartbeatMs = -Infinity;
  readonly #heartbeatsInFlight = new Set<FramedChannel>();
  /** The injected fault `silent` took effect on this link. */
  #mute = false;
  /** The injected fault `slow` took effect on this link. */
  #slow = false;
  #bytesSent = 0;
  #bytesReceived = 0;

  constructor(options: WebRtcRingLinkOptions) {
    super();
    this.#next = options.next;
    this.#prev = options.prev;
    this.#decodeLimits = options.decodeLimits ?? DEFAULT_DECODE_LIMITS;
    this.#label = options.label ?? 'link';
    this.mailbox = new Mailbox(options.mailbox);
    this.#heartbeat = options.heartbeat;
    this.#fault = options.fault;
    const heartbeat = this.#heartbeat;
    if (heartbeat !== undefined) {
      // Ticks at a quarter of the heartbeat period (at most 250 ms): a
      // silent neighbour is seen within peerTimeoutMs plus one tick.
      const tickMs = Math.min(250, heartbeat.heartbeatMs / 4);
      this.#liveness = new Liveness({
        timeoutMs: heartbeat.peerTimeoutMs,
        tickMs,
      });
      this.#timer = setInterval(() => this.#tick(), tickMs);
    }
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
    let bytes = encodeMessage(message);
    const fault = this.#fault;
    if (
      fault !== undefined &&
      !fault.fired &&
      message.step >= fault.step &&
      (message.type === 'sparse' || message.type === 'dense') &&
      (fault.kind !== 'drop' || message.phase >= 1)
    ) {
      fault.fired = true;
      debug('%s: injecting fault %s', this.#label, fault.kind);
      // Pretends to have sent it: the message goes nowhere.
      if (fault.kind === 'drop') return;
      if (fault.kind === 'silent') this.#mute = true;
      else if (fault.kind === 'slow') this.#slow = true;
      else bytes = garbage(bytes.byteLength);
    }
    // A muted link pretends to send: the message goes nowhere.
    if (this.#mute) return;
    if (this.#slow && message.phase < 3) {
      await new Promise((resolve) => setTimeout(resolve, fault?.delayMs));
    }
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
    this.#stopTimer();
    const channels = new Set([this.#next, this.#prev]);
    await Promise.all([...channels].map((channel) => channel.close()));
  }

  /** The distinct channels of this link with their sides. */
  #sides(): [LinkSide, FramedChannel][] {
    return this.#next === this.#prev
      ? [['prev', this.#prev]]
      : [
          ['next', this.#next],
          ['prev', this.#prev],
        ];
  }

  /** Heartbeats out, silence in; see the module comment. */
  #tick(): void {
    const heartbeat = this.#heartbeat!;
    const liveness = this.#liveness!;
    const nowMs = performance.now();
    const open = this.#sides().filter(([, c]) => c.channel.state === 'open');
    if (open.length === 0) {
      if (this.#sides().every(([, c]) => c.channel.state === 'closed')) {
        this.#stopTimer();
      }
      return;
    }
    if (nowMs - this.#lastHeartbeatMs >= heartbeat.heartbeatMs) {
      this.#lastHeartbeatMs = nowMs;
      for (const [, channel] of open) this.#sendHeartbeat(channel, nowMs);
    }
    for (const { side, silentMs } of liveness.tick()) {
      const [, channel] = this.#sides().find(([s]) => s === side)!;
      const error = topkError(
        'ERR_PEER_GONE',
        `WebRtcRingLink ${this.#label}: no byte from the ${side} peer for ` +
          `${Math.round(silentMs)} ms (peerTimeoutMs ${heartbeat.peerTimeoutMs})`,
        { label: this.#label, side, silentMs },
      );
      debug('%s', error.message);
      this.emit('silent', side, silentMs);
      channel.channel.destroy(error);
    }
  }

  #sendHeartbeat(channel: FramedChannel, nowMs: number): void {
    // One at a time per channel: a channel that cannot take a few bytes
    // is not helped by more, and its backlog is no life sign.
    if (this.#mute || this.#heartbeatsInFlight.has(channel)) return;
    const heartbeat = this.#heartbeat!;
    const bytes = encodeMessage({
      v: PROTOCOL_VERSION,
      type: 'heartbeat',
      room: heartbeat.room,
      generation: heartbeat.generation,
      step: 0,
      phase: 0,
      segment: 0,
      sender: heartbeat.peerId,
      payload: { sentAtMs: nowMs },
    });
    this.#heartbeatsInFlight.add(channel);
    channel
      .sendMessage(bytes)
      .catch((error: unknown) =>
        debug('%s: heartbeat not sent: %s', this.#label, String(error)),
      )
      .finally(() => this.#heartbeatsInFlight.delete(channel));
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #listen(): void {
    // A channel is watched from when it opens: connecting has its own
    // timeout.
    for (const [side, channel] of this.#sides()) {
      const liveness = this.#liveness;
      if (liveness === undefined) break;
      channel.channel.waitOpen().then(
        () => liveness.watch(side, () => channel.channel.bytesReceived),
        () => {},
      );
    }
    this.#prev.on('message', (bytes) => this.#onPrevMessage(bytes));
    this.#prev.on('fault', (error) => this.#onFault(error, 'prev'));
    this.#prev.once('close', (info) => this.#onPrevClose(info));
    if (this.#next === this.#prev) return;

    // The next peer sends us nothing but heartbeats.
    this.#next.on('message', (bytes) => this.#onNextMessage(bytes));
    this.#next.on('fault', (error) => this.#onFault(error, 'next'));
    this.#next.once('close', (info) => {
      this.#liveness?.unwatch('next');
      this.emit('departed', 'next', info);
    });
  }

  #onPrevMessage(bytes: Uint8Array): void {
    let message: PeerMessage;
    try {
      message = decodeMessage(bytes, this.#decodeLimits);
      // A heartbeat is a life sign only (the bytes already counted).
      if (message.type === 'heartbeat') return;
      this.#bytesReceived += bytes.byteLength;
      this.mailbox.put(message);
    } catch (error) {
      this.#onFault(error, 'prev');
    }
  }

  #onNextMessage(bytes: Uint8Array): void {
    try {
      const message = decodeMessage(bytes, this.#decodeLimits);
      if (message.type === 'heartbeat') return;
      throw topkError(
        'ERR_BAD_MESSAGE',
        `WebRtcRingLink ${this.#label}: the next peer sends only ` +
          `heartbeats, got a '${message.type}'`,
        { type: message.type, sender: message.sender },
      );
    } catch (error) {
      this.#onFault(error, 'next');
    }
  }

  #onPrevClose(info: FramedCloseInfo): void {
    this.#liveness?.unwatch('prev');
    if (this.#next === this.#prev) this.#stopTimer();
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

  #onFault(error: unknown, side: LinkSide): void {
    const typed = isTopkError(error)
      ? error
      : topkError(
          'ERR_INTERNAL',
          `WebRtcRingLink: ${String(error)}`,
          {},
          error,
        );
    debug('%s: %s fault: %s', this.#label, side, typed.message);
    // Nothing more the previous peer sends is trusted: the receives of
    // this link fail at once instead of waiting for the step deadline.
    if (side === 'prev') this.mailbox.fail(typed);
    this.emit('fault', typed, side);
  }
}

/** Bytes that are no message: msgpack of a bare string. */
function garbage(length: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(Math.max(8, Math.min(length, 4096)));
  bytes[0] = 0xa5; // a fixstr of 5 characters, then junk
  for (let i = 1; i < bytes.length; i++) bytes[i] = (i * 131 + 7) & 0xff;
  return bytes;
}

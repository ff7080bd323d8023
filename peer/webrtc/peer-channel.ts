/**
 * One WebRTC connection to one remote peer: simple-peer over a chosen
 * binding, one ordered, reliable, binary data channel. Adds what simple-peer
 * leaves to its user:
 *
 * - Backpressure: a send waits while the channel buffers more than the
 *   high-water mark, woken by `bufferedamountlow` and by polling (one
 *   binding never fires the event, case 3). Sends leave in call order.
 *   Nothing is dropped silently: a send either reaches the channel or
 *   rejects with `ERR_CHANNEL_CLOSED` (we closed) / `ERR_PEER_GONE` (the
 *   remote left or the connection failed) (case 5).
 * - One end: every failure and every close goes through `#finish`, which
 *   releases every timer and reports `close` exactly once (simple-peer
 *   style); no `error` event exists that could go unhandled.
 * - Graceful close: an optional goodbye frame, a bounded wait for the
 *   buffer to drain, then channel and connection closed (case 6), with
 *   simple-peer's leftover ICE timer cleared so the process exits at once.
 *
 * Signaling is abstract: `signal` events carry data out, {@link signal}
 * takes the remote's data in; the owner relays them however it likes.
 */
import { EventEmitter } from 'node:events';

import createDebug from 'debug';
import SimplePeer from 'simple-peer';

import { topkError, type TopkRingError } from '../../shared/errors.ts';
import type { WebRtcBinding } from './bindings.ts';

const debug = createDebug('topk:webrtc');

/** Signal data to relay to the remote peer (offer, answer, candidate). */
export type SignalData = SimplePeer.SignalData;

/** Highest high-water mark: far below the 16 MiB where roamhq drops data. */
export const MAX_HIGH_WATER_MARK_BYTES = 4 * 1024 * 1024;

/** Period of the idle timer that keeps the process alive while open. */
const KEEP_ALIVE_PERIOD_MS = 60 * 60 * 1000;

/** Options of a {@link PeerChannel}. */
export interface PeerChannelOptions {
  /** The loaded WebRTC binding. */
  readonly binding: WebRtcBinding;
  /** True on the side that makes the offer; exactly one side is. */
  readonly initiator: boolean;
  /** STUN/TURN servers; none are needed on loopback. Default none. */
  readonly iceServers?: readonly RTCIceServer[];
  /** Sends wait while more than this is buffered; default 1 MiB. */
  readonly highWaterMarkBytes?: number;
  /** A waiting send resumes at or below this; default a quarter of high. */
  readonly lowWaterMarkBytes?: number;
  /** How often a waiting send polls the buffer; default 2 ms. */
  readonly pollIntervalMs?: number;
  /** Give up when not connected after this long; default 20 s. */
  readonly connectTimeoutMs?: number;
  /** Longest wait for the buffer to drain on a graceful close; 2 s. */
  readonly closeTimeoutMs?: number;
  /** A name for log lines, e.g. the remote peer id. */
  readonly label?: string;
}

/** How a channel ended. */
export interface ChannelCloseInfo {
  /** Set when it ended by a failure rather than a close by either side. */
  readonly error?: TopkRingError;
  /** True when this side closed it. */
  readonly initiatedLocally: boolean;
}

/** Events of a {@link PeerChannel}. */
export interface PeerChannelEvents {
  /** Signal data to relay to the remote peer. */
  signal: [data: SignalData];
  /** The data channel is open. */
  open: [];
  /** One data-channel message from the remote peer. */
  message: [bytes: Uint8Array];
  /** The channel ended; emitted exactly once. */
  close: [info: ChannelCloseInfo];
}

type State = 'connecting' | 'open' | 'closing' | 'closed';

/**
 * The parts of simple-peer 9 this module reaches into, in one place: the
 * raw data channel (to send without its silent drop while "destroying",
 * read the buffer, set the low-water threshold), the ICE timer its
 * destroy() forgets, and its getStats (see the constructor).
 */
interface SimplePeerInternals {
  _channel: RTCDataChannel | null;
  _iceCompleteTimer: ReturnType<typeof setTimeout> | null;
  getStats(callback: (error: Error | null, reports: object[]) => void): void;
}

/** A WebRTC data channel to one remote peer. */
export class PeerChannel extends EventEmitter<PeerChannelEvents> {
  readonly #peer: SimplePeer.Instance;
  readonly #internals: SimplePeerInternals;
  readonly #label: string;
  readonly #highWaterMarkBytes: number;
  readonly #lowWaterMarkBytes: number;
  readonly #pollIntervalMs: number;
  readonly #closeTimeoutMs: number;
  readonly #opened: Promise<void>;
  readonly #closed: Promise<ChannelCloseInfo>;
  #resolveOpened!: () => void;
  #rejectOpened!: (error: TopkRingError) => void;
  #resolveClosed!: (info: ChannelCloseInfo) => void;
  #state: State = 'connecting';
  #everOpened = false;
  #closeInfo: ChannelCloseInfo | undefined;
  #peerError: TopkRingError | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #wake: (() => void) | undefined;
  #sendTail: Promise<void> = Promise.resolve();
  readonly #ignoreSdpCandidates: boolean;
  /** Offerer only: candidates kept until the answer is applied. */
  #heldCandidates: SignalData[] | undefined;
  #maxBufferedBytes = 0;
  #bytesSent = 0;
  #bytesReceived = 0;

  constructor(options: PeerChannelOptions) {
    super();
    this.#label = options.label ?? (options.initiator ? 'offerer' : 'answerer');
    this.#highWaterMarkBytes = options.highWaterMarkBytes ?? 1024 * 1024;
    this.#lowWaterMarkBytes =
      options.lowWaterMarkBytes ?? Math.floor(this.#highWaterMarkBytes / 4);
    this.#pollIntervalMs = options.pollIntervalMs ?? 2;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 2000;
    checkOptions(this.#highWaterMarkBytes, this.#lowWaterMarkBytes, options);

    this.#opened = new Promise((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    // Nobody may be waiting for the open; a failure is reported by `close`.
    this.#opened.catch(() => {});
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));

    this.#ignoreSdpCandidates = options.binding.ignoreSdpCandidates === true;
    if (this.#ignoreSdpCandidates && options.initiator) {
      this.#heldCandidates = [];
    }
    this.#peer = new SimplePeer({
      initiator: options.initiator,
      wrtc: options.binding.wrtc,
      config: { iceServers: [...(options.iceServers ?? [])] },
      channelConfig: { ordered: true },
    });
    this.#internals = this.#peer as unknown as SimplePeerInternals;
    // After connecting, simple-peer polls getStats() every 100 ms until it
    // finds the selected candidate pair, only to fill in remoteAddress and
    // the like, which we never read. On roamhq getStats() blocks the event
    // loop (measured: up to 2.8 s with 20 connections in one process). One
    // synthetic, unselected pair ends that poll at once.
    this.#internals.getStats = (callback) =>
      callback(null, [{ type: 'candidate-pair', id: 'unused' }]);
    this.#listen();

    const connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
    // node-datachannel's callbacks hold no handle on the event loop: a
    // process waiting only for data would exit mid-transfer (seen in the
    // churn test). Like an open socket, a live channel keeps the process
    // alive until it ends.
    this.#keepAlive = setInterval(() => {}, KEEP_ALIVE_PERIOD_MS);
    this.#connectTimer = setTimeout(() => {
      this.destroy(
        topkError(
          'ERR_PEER_GONE',
          `PeerChannel ${this.#label}: expected a connection within ` +
            `${connectTimeoutMs} ms, none was made`,
          { connectTimeoutMs, label: this.#label },
        ),
      );
    }, connectTimeoutMs);
  }

  /** 'connecting', 'open', 'closing' or 'closed'. */
  get state(): State {
    return this.#state;
  }

  /** Bytes the data channel holds that are not sent yet. */
  get bufferedAmount(): number {
    return this.#internals._channel?.bufferedAmount ?? 0;
  }

  /**
   * The underlying data channel, for benchmarks that measure it bare.
   * Sending on it directly skips backpressure and send order: don't.
   */
  get dataChannel(): RTCDataChannel | null {
    return this.#internals._channel;
  }

  /** The most bytes ever buffered right after a send (for tests, stats). */
  get maxBufferedBytes(): number {
    return this.#maxBufferedBytes;
  }

  /** The configured high-water mark. */
  get highWaterMarkBytes(): number {
    return this.#highWaterMarkBytes;
  }

  /** Data-channel payload bytes sent so far. */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Data-channel payload bytes received so far. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** How the channel ended, once it has. */
  get closeInfo(): ChannelCloseInfo | undefined {
    return this.#closeInfo;
  }

  /** Hands the remote peer's signal data to the connection. */
  signal(data: SignalData): void {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    try {
      // node-datachannel fails a few negotiations in a hundred ("Got a
      // remote candidate without ICE transport") when the answerer reaches
      // the offerer, and starts DTLS, before the offerer has applied the
      // answer. So the answerer must not learn where the offerer is until
      // then: candidates inside descriptions are dropped here (they are
      // trickled as well), and an offerer holds its trickled candidates
      // until its answer is applied (see #listen). One more signaling
      // round trip, no race. Every peer here trickles (simple-peer's
      // default), so no candidate is lost.
      this.#peer.signal(
        this.#ignoreSdpCandidates ? withoutCandidates(data) : data,
      );
    } catch (cause) {
      this.destroy(failure('ERR_PEER_GONE', 'signal() failed', cause));
    }
  }

  /**
   * Resolves once the channel is open; rejects with the channel's error
   * (or `ERR_CHANNEL_CLOSED`) if it ends first.
   */
  waitOpen(): Promise<void> {
    return this.#opened;
  }

  /** Resolves when the channel has ended, with how it ended. */
  waitClosed(): Promise<ChannelCloseInfo> {
    return this.#closed;
  }

  /**
   * Sends one data-channel message (at most the negotiated maximum size;
   * callers send framed chunks). Waits for the open and for room under the
   * high-water mark; sends leave in call order. Rejects with
   * `ERR_CHANNEL_CLOSED` or `ERR_PEER_GONE` when it cannot be delivered.
   */
  send(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    const result = this.#sendTail.then(() => this.#sendInOrder(bytes));
    this.#sendTail = result.catch(() => {});
    return result;
  }

  /**
   * Closes gracefully: new sends are refused, `goodbye` (if any) is sent
   * after what is already queued in the channel and the buffer drains;
   * then, so the goodbye is not lost in a connection torn down under it,
   * the remote is given the chance to close its side first. Both waits
   * together last at most `closeTimeoutMs`; then channel and connection
   * close. With `remoteLeft` (the remote said goodbye) nothing is sent or
   * awaited and the close counts as the remote's.
   */
  async close(
    options: { goodbye?: Uint8Array<ArrayBuffer>; remoteLeft?: boolean } = {},
  ): Promise<ChannelCloseInfo> {
    if (this.#state === 'closing' && options.remoteLeft === true) {
      // Both sides said goodbye at once: nobody is left to wait for.
      this.#finish({ initiatedLocally: true });
    }
    if (this.#state === 'closing' || this.#state === 'closed') {
      return this.#closed;
    }
    const wasOpen = this.#state === 'open';
    this.#state = 'closing';
    this.#wakeSender();
    const channel = this.#internals._channel;
    if (options.remoteLeft !== true && wasOpen && channel !== null) {
      await this.#flush(channel, options.goodbye);
    }
    this.#finish({ initiatedLocally: options.remoteLeft !== true });
    return this.#closed;
  }

  /** Ends the channel at once; `error` is reported as the cause. */
  destroy(error?: TopkRingError): void {
    this.#finish(
      error === undefined
        ? { initiatedLocally: true }
        : { error, initiatedLocally: true },
    );
  }

  #listen(): void {
    const peer = this.#peer;
    peer.on('signal', (data: SignalData) => {
      if (this.#state === 'closed') return;
      if (this.#heldCandidates !== undefined && data.type === 'candidate') {
        this.#heldCandidates.push(data);
      } else {
        this.emit('signal', data);
      }
    });
    peer.on('signalingStateChange', (state: string) => {
      // 'stable' after our offer: the answer is applied.
      if (state !== 'stable' || this.#heldCandidates === undefined) return;
      const held = this.#heldCandidates;
      this.#heldCandidates = undefined;
      for (const data of held) {
        if (this.#state !== 'closed') this.emit('signal', data);
      }
    });
    peer.on('connect', () => this.#onConnect());
    peer.on('data', (data: Uint8Array) => {
      this.#bytesReceived += data.byteLength;
      this.emit('message', data);
    });
    // simple-peer emits 'error' then 'close'; keep the first error.
    peer.on('error', (cause: Error & { code?: string }) => {
      this.#peerError ??= failure(
        'ERR_PEER_GONE',
        `connection failed (${cause.code ?? 'no code'})`,
        cause,
      );
    });
    peer.on('close', () => {
      // While we close, the remote closing its side is the expected end.
      if (this.#state === 'closing') {
        this.#finish({ initiatedLocally: true });
        return;
      }
      const error = this.#peerError;
      this.#finish(
        error === undefined
          ? { initiatedLocally: false }
          : { error, initiatedLocally: false },
      );
    });
  }

  #onConnect(): void {
    if (this.#state !== 'connecting') return;
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#state = 'open';
    this.#everOpened = true;
    const channel = this.#internals._channel;
    if (channel !== null) {
      // simple-peer sets its own 64 KiB threshold; ours decides when a
      // waiting sender resumes.
      channel.bufferedAmountLowThreshold = this.#lowWaterMarkBytes;
      channel.addEventListener('bufferedamountlow', () => this.#wakeSender());
    }
    debug('%s: open', this.#label);
    this.#resolveOpened();
    this.emit('open');
  }

  async #sendInOrder(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    if (this.#state === 'connecting') await this.#opened;
    for (;;) {
      const channel = this.#openChannel();
      if (channel.bufferedAmount <= this.#highWaterMarkBytes) {
        try {
          channel.send(bytes);
        } catch (cause) {
          const error = failure('ERR_PEER_GONE', 'send failed', cause);
          this.destroy(error);
          throw error;
        }
        this.#bytesSent += bytes.byteLength;
        const buffered = channel.bufferedAmount;
        if (buffered > this.#maxBufferedBytes)
          this.#maxBufferedBytes = buffered;
        return;
      }
      await this.#drained(channel);
    }
  }

  /** The open data channel, or throws the reason there is none. */
  #openChannel(): RTCDataChannel {
    const channel = this.#internals._channel;
    if (this.#state === 'open' && channel?.readyState !== 'open') {
      // The remote closed the channel; simple-peer reports it a moment
      // later. Nothing more can be sent: end now, as the remote's close.
      this.#finish({ initiatedLocally: false });
    }
    if (this.#state === 'open' && channel !== null) return channel;
    throw this.#notOpenError();
  }

  #notOpenError(): TopkRingError {
    const info = this.#closeInfo;
    const gone =
      info !== undefined &&
      (!info.initiatedLocally || info.error?.code === 'ERR_PEER_GONE');
    if (gone) {
      return topkError(
        'ERR_PEER_GONE',
        `PeerChannel ${this.#label}: expected an open channel, the remote ` +
          `peer is gone`,
        { label: this.#label },
        info.error,
      );
    }
    return topkError(
      'ERR_CHANNEL_CLOSED',
      `PeerChannel ${this.#label}: expected an open channel, it is ` +
        this.#state,
      { label: this.#label, state: this.#state },
      info?.error,
    );
  }

  /**
   * Resolves when the buffer is at or below the low-water mark (event or
   * poll) or the channel is no longer open; the caller checks again.
   */
  #drained(channel: RTCDataChannel): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const poll = (): void => {
        if (
          this.#state !== 'open' ||
          channel.bufferedAmount <= this.#lowWaterMarkBytes
        ) {
          done();
        } else {
          timer = setTimeout(poll, this.#pollIntervalMs);
        }
      };
      this.#wake = done;
      timer = setTimeout(poll, this.#pollIntervalMs);
    });
  }

  #wakeSender(): void {
    this.#wake?.();
  }

  /**
   * Sends `goodbye` (if any), waits for the buffer to drain and then, if a
   * goodbye went out, for the remote to close, all within
   * `closeTimeoutMs`. Never throws: a goodbye that cannot be sent only
   * makes the close less polite.
   */
  async #flush(
    channel: RTCDataChannel,
    goodbye: Uint8Array<ArrayBuffer> | undefined,
  ): Promise<void> {
    const deadline = performance.now() + this.#closeTimeoutMs;
    if (channel.readyState !== 'open') return;
    try {
      if (goodbye !== undefined) channel.send(goodbye);
    } catch (cause) {
      debug('%s: goodbye not sent: %s', this.#label, String(cause));
      return;
    }
    while (
      channel.bufferedAmount > 0 &&
      channel.readyState === 'open' &&
      performance.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, this.#pollIntervalMs));
    }
    if (goodbye === undefined) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#closed,
      new Promise((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
      }),
    ]);
    clearTimeout(timer);
  }

  /** The one place a channel ends: release everything, report once. */
  #finish(info: ChannelCloseInfo): void {
    if (this.#closeInfo !== undefined) return;
    this.#closeInfo = info;
    this.#state = 'closed';
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
    this.#wakeSender();
    if (!this.#everOpened)
      this.#rejectOpened(info.error ?? this.#notOpenError());

    // destroy() closes the channel, then the connection. It leaves its
    // ICE-complete timer running (~5 s), which would keep the process alive.
    this.#peer.destroy();
    this.#peer.once('close', () => {
      clearTimeout(this.#internals._iceCompleteTimer ?? undefined);
    });
    clearTimeout(this.#internals._iceCompleteTimer ?? undefined);

    debug(
      '%s: closed (%s%s)',
      this.#label,
      info.initiatedLocally ? 'local' : 'remote',
      info.error === undefined ? '' : `, ${info.error.message}`,
    );
    this.#resolveClosed(info);
    this.emit('close', info);
  }
}

function checkOptions(
  highWaterMarkBytes: number,
  lowWaterMarkBytes: number,
  options: PeerChannelOptions,
): void {
  const ok =
    Number.isSafeInteger(highWaterMarkBytes) &&
    highWaterMarkBytes >= 0 &&
    highWaterMarkBytes <= MAX_HIGH_WATER_MARK_BYTES &&
    Number.isSafeInteger(lowWaterMarkBytes) &&
    lowWaterMarkBytes >= 0 &&
    lowWaterMarkBytes <= highWaterMarkBytes;
  if (!ok) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `PeerChannel: expected 0 <= lowWaterMarkBytes <= highWaterMarkBytes ` +
        `<= ${MAX_HIGH_WATER_MARK_BYTES}, got ${lowWaterMarkBytes} and ` +
        `${highWaterMarkBytes}`,
      { highWaterMarkBytes, lowWaterMarkBytes },
    );
  }
  for (const [name, value] of [
    ['pollIntervalMs', options.pollIntervalMs],
    ['connectTimeoutMs', options.connectTimeoutMs],
    ['closeTimeoutMs', options.closeTimeoutMs],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw topkError(
        'ERR_BAD_CONFIG',
        `PeerChannel: expected ${name} to be a positive number, got ` +
          String(value),
        { [name]: value },
      );
    }
  }
}

/** `data` without candidates embedded in its SDP (they are trickled). */
function withoutCandidates(data: SignalData): SignalData {
  if (!('sdp' in data) || data.sdp === undefined) return data;
  const sdp = data.sdp
    .split('\r\n')
    .filter(
      (line) =>
        !line.startsWith('a=candidate:') && line !== 'a=end-of-candidates',
    )
    .join('\r\n');
  return { ...data, sdp };
}

function failure(
  code: 'ERR_PEER_GONE' | 'ERR_CHANNEL_CLOSED',
  what: string,
  cause: unknown,
): TopkRingError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return topkError(code, `PeerChannel: ${what}: ${detail}`, {}, cause);
}

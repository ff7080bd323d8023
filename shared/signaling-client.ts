/**
 * The peer side of the signaling protocol, for Node peers and browser tabs
 * alike: connect, join a room, follow its membership, exchange WebRTC
 * negotiation with ring neighbours, report progress, leave.
 *
 * Reconnection (case 8): when the connection to the server drops (the
 * server restarted, the network blinked), socket.io reconnects and this
 * client joins again with the same peer id, its resume key and the last
 * membership it saw, so a restarted server puts the ring back as it was
 * and training over existing data channels goes on meanwhile.
 *
 * Browser-safe: no node: imports.
 */
import debugFactory from 'debug';
import { io } from 'socket.io-client';

import type { RoomConfig, RoomConfigInput } from './config.ts';
import { topkError, type TopkRingError } from './errors.ts';
import type { ModelFingerprint } from './fingerprint.ts';
import {
  EjectionSchema,
  MembershipSchema,
  RelayedSignalSchema,
  ringPosition,
  type Ejection,
  type HashMismatch,
  type Membership,
  type PeerKind,
  type PeerReport,
  type Rejection,
  type RelayedSignal,
  type RingPosition,
  type SignalData,
  type ClientToServerEvents,
  type FinishReply,
  type FinishRequest,
  type StalledReply,
  type StalledRequest,
  type SuspectReply,
  type SuspectRequest,
} from './signaling-protocol.ts';
import {
  fromWire,
  joinRequest,
  requestJoin,
  waitForConnection,
  type ClientSocket,
  type JoinedState,
} from './signaling-join.ts';

/** The reply the server acknowledges request event `E` with. */
type AckReply<E extends keyof ClientToServerEvents> = Parameters<
  Extract<Parameters<ClientToServerEvents[E]>[1], (reply: never) => void>
>[0];

const log = debugFactory('topk:signaling:client');

/** How to reach and join a room. */
export interface SignalingClientOptions {
  /** The server's URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly room: string;
  readonly token?: string;
  readonly kind: PeerKind;
  /** The TensorFlow.js backend this peer trains on. */
  readonly backend: string;
  /** The config to create the room with (where the server allows it), or
   * the config this peer expects; a room with another one refuses it. */
  readonly config?: RoomConfigInput;
  readonly fingerprint?: ModelFingerprint;
  /** The step of the checkpoint this peer resumed from, if any. */
  readonly holdsStep?: number;
  /** Rejoin as this peer (with its resume key), e.g. after a crash. */
  readonly peerId?: string;
  readonly resumeKey?: string;
  /** Connecting and every acknowledged request; default 10 s. */
  readonly timeoutMs?: number;
  /** Rejoin by itself after the connection drops; default true. */
  readonly reconnect?: boolean;
  /** At most one progress report per this period; default 250 ms. */
  readonly reportIntervalMs?: number;
}

/** What a client tells its listeners. */
export interface SignalingClientEvents {
  /** The ring changed, or a member reconnected. `position` is null when
   * this peer is not in the membership. */
  membership: (membership: Membership, position: RingPosition | null) => void;
  /** Negotiation data from a ring neighbour (sender stamped by server). */
  signal: (signal: RelayedSignal) => void;
  /** Peers' weights disagree at a step. */
  mismatch: (mismatch: HashMismatch) => void;
  /** The server took this peer out of the ring for a while, and why. */
  ejected: (ejection: Ejection) => void;
  /** The server refused one of this client's events. */
  rejected: (rejection: Rejection) => void;
  /** The connection dropped; a rejoin follows if reconnecting is on. */
  disconnected: (reason: string) => void;
  /** Joined again after a drop, with the same peer id. */
  rejoined: (membership: Membership) => void;
  /** Final: closed by {@link SignalingClient.close} (no error) or by a
   * failure that ends the session (refused rejoin, removed by server). */
  closed: (error: TopkRingError | undefined) => void;
}

type Listener<E extends keyof SignalingClientEvents> = SignalingClientEvents[E];

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_REPORT_INTERVAL_MS = 250;
const LEAVE_TIMEOUT_MS = 2000;

/** A peer's session with the signaling server. */
export class SignalingClient {
  readonly #socket: ClientSocket;
  readonly #options: SignalingClientOptions;
  readonly #listeners = new Map<string, Set<(...args: never[]) => void>>();
  #peerId = '';
  #resumeKey = '';
  #config: RoomConfig | undefined;
  #membership: Membership | undefined;
  /** True while a join (first or after a reconnect) awaits its reply. */
  #joining = false;
  /**
   * The newest membership that arrived while a join awaited its reply:
   * the server may announce a newer generation (another peer joined) in
   * the same breath as its reply, before the reply is applied.
   */
  #heldMembership: Membership | undefined;
  #closed = false;
  #lastReportMs = -Infinity;
  #pendingReport: PeerReport | undefined;
  #reportTimer: ReturnType<typeof setTimeout> | undefined;
  #lastRejection: Rejection | undefined;

  private constructor(options: SignalingClientOptions) {
    this.#options = options;
    this.#socket = io(options.url, {
      transports: ['websocket'],
      reconnection: options.reconnect ?? true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 2000,
      timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      autoConnect: false,
    });
  }

  /**
   * Connects and joins. Rejects with `ERR_UNREACHABLE` when the server
   * does not answer within `timeoutMs`, or with the server's refusal
   * (`ERR_ADMISSION`, `ERR_MISMATCH`, `ERR_BAD_CONFIG`, ...).
   */
  static async connect(
    options: SignalingClientOptions,
  ): Promise<SignalingClient> {
    const client = new SignalingClient(options);
    try {
      await client.#connectFirst();
      return client;
    } catch (error) {
      client.#shutdown(undefined, false);
      throw error;
    }
  }

  /** This peer's server-assigned id. */
  get peerId(): string {
    return this.#peerId;
  }

  /** Present with {@link peerId} to take this peer's place back later. */
  get resumeKey(): string {
    return this.#resumeKey;
  }

  /** The room's config, fixed by the server. */
  get config(): RoomConfig {
    return this.#config!;
  }

  /** The latest membership. */
  get membership(): Membership {
    return this.#membership!;
  }

  /** This peer's ring index and neighbours, or null when not a member. */
  get position(): RingPosition | null {
    return ringPosition(this.membership, this.#peerId);
  }

  /** True while the socket is connected to the server. */
  get connected(): boolean {
    return this.#socket.connected;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof SignalingClientEvents>(
    event: E,
    listener: Listener<E>,
  ): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Sends negotiation data to `to`, a ring neighbour in `generation` (the
   * current one by default). The server drops it if the generation is
   * stale by the time it arrives.
   */
  signal(to: string, data: SignalData, generation?: number): void {
    this.#socket.emit('signal', {
      to,
      generation: generation ?? this.membership.generation,
      data,
    });
  }

  /**
   * Reports progress. Reports are coalesced to one per `reportIntervalMs`
   * (the latest wins), except those carrying a model hash, which go at
   * once so the server can compare hashes of the same step.
   */
  report(report: PeerReport): void {
    if (this.#closed) return;
    const nowMs = performance.now();
    const interval =
      this.#options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS;
    if (
      report.modelHash !== undefined ||
      nowMs - this.#lastReportMs >= interval
    ) {
      this.#sendReport(report);
      return;
    }
    this.#pendingReport = report;
    this.#reportTimer ??= setTimeout(
      () => {
        this.#reportTimer = undefined;
        const pending = this.#pendingReport;
        if (pending !== undefined && !this.#closed) this.#sendReport(pending);
      },
      interval - (nowMs - this.#lastReportMs),
    );
  }

  /**
   * Accuses a ring neighbour of this generation (silent, malformed,
   * unreachable, straggler). Resolves with the server's verdict, or its
   * refusal; never rejects: a server that does not answer within the
   * timeout gives `ERR_UNREACHABLE`.
   */
  async suspect(request: SuspectRequest): Promise<SuspectReply> {
    return this.#ask('suspect', request);
  }

  /**
   * Tells the server that this peer's step in a generation ran out of
   * time with no neighbour to blame; the server restarts the ring in a
   * new generation of the same members, once per generation. Resolves
   * with its verdict or refusal; never rejects (`ERR_UNREACHABLE` when
   * nobody answers in time).
   */
  async stalled(request: StalledRequest): Promise<StalledReply> {
    return this.#ask('stalled', request);
  }

  /**
   * Tells the server that this peer completed the run (signaling/
   * finish.ts). Resolves with `done` (leave) or `wait` (follow the new
   * generation first), or a refusal; never rejects (`ERR_UNREACHABLE`
   * when nobody answers in time).
   */
  async finish(request: FinishRequest): Promise<FinishReply> {
    return this.#ask('finish', request);
  }

  /**
   * Sends `event` and resolves with the server's reply, or with an
   * `ERR_UNREACHABLE` refusal when the client is closed or nobody answers
   * within the timeout; never rejects.
   */
  async #ask<E extends 'suspect' | 'stalled' | 'finish'>(
    event: E,
    request: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<AckReply<E>> {
    const unanswered = (reason: string): AckReply<E> =>
      ({
        ok: false,
        error: {
          code: 'ERR_UNREACHABLE',
          message: `${event}: no answer from the server (${reason})`,
        },
      }) as AckReply<E>;
    if (this.#closed) return unanswered('closed');
    try {
      // socket.io's typings cannot follow a generic event name; the
      // signature of #ask ties `request` and the reply to `event`.
      const socket = this.#socket.timeout(
        this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      ) as unknown as {
        emitWithAck(event: E, request: unknown): Promise<AckReply<E>>;
      };
      return await socket.emitWithAck(event, request);
    } catch (error) {
      return unanswered(String(error));
    }
  }

  /**
   * Leaves the room gracefully (the ring re-forms without this peer), then
   * closes. Resolves even if the server does not answer in time.
   */
  async leave(reason = 'leaving'): Promise<void> {
    if (this.#closed) return;
    if (this.#pendingReport !== undefined)
      this.#sendReport(this.#pendingReport);
    if (this.#socket.connected) {
      try {
        await this.#socket
          .timeout(LEAVE_TIMEOUT_MS)
          .emitWithAck('leave', { reason });
      } catch (error) {
        log('%s: leave not acknowledged: %O', this.#peerId, error);
      }
    }
    this.close();
  }

  /** Disconnects without a goodbye (the server notices at once). */
  close(): void {
    this.#shutdown(undefined, true);
  }

  async #connectFirst(): Promise<void> {
    const timeoutMs = this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // Before connecting: a server that is full says so straight away.
    this.#socket.on('rejected', (r) => {
      this.#lastRejection = r;
      this.#emit('rejected', r);
    });
    await waitForConnection(
      this.#socket,
      { url: this.#options.url, timeoutMs },
      this.#options.reconnect !== false,
    );

    // Listening before the join is sent: a membership that follows the
    // reply at once (a peer admitted right after this one) is kept.
    this.#socket.on('membership', (m) => this.#onMembership(m));
    this.#applyJoin(await this.#requestJoin(this.#options.config));
    this.#socket.on('signal', (s) => this.#onSignal(s));
    this.#socket.on('mismatch', (m) => this.#emit('mismatch', m));
    this.#socket.on('ejected', (e) => this.#onEjected(e));
    this.#socket.on('disconnect', (reason) => this.#onDisconnect(reason));
    this.#socket.on('connect', () => void this.#rejoin());
  }

  /** Sends `join` and waits for the reply; throws the refusal. */
  async #requestJoin(config: unknown): Promise<JoinedState> {
    this.#joining = true;
    this.#heldMembership = undefined;
    try {
      return await this.#sendJoin(config);
    } finally {
      this.#joining = false;
    }
  }

  #sendJoin(config: unknown): Promise<JoinedState> {
    const o = this.#options;
    const request = joinRequest({
      ...o,
      config,
      peerId: this.#peerId || o.peerId,
      resumeKey: this.#resumeKey || o.resumeKey,
      previous: this.#membership,
    });
    return requestJoin(this.#socket, request, {
      url: o.url,
      timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      lastRejection: () => this.#lastRejection,
    });
  }

  #applyJoin(joined: JoinedState): void {
    this.#peerId = joined.peerId;
    this.#resumeKey = joined.resumeKey;
    this.#config = joined.config;
    const held = this.#heldMembership;
    this.#heldMembership = undefined;
    this.#membership =
      held !== undefined && held.generation > joined.membership.generation
        ? held
        : joined.membership;
    log(
      '%s joined %s, generation %d',
      joined.peerId,
      this.#options.room,
      this.#membership.generation,
    );
  }

  async #rejoin(): Promise<void> {
    if (this.#closed) return;
    try {
      // The room's own config, so a restarted server that lets peers set
      // configs recreates the same room, and one that differs refuses.
      const joined = await this.#requestJoin(this.#config);
      if (this.#closed) return;
      this.#applyJoin(joined);
      const membership = this.#membership as Membership;
      this.#emit('rejoined', membership);
      this.#emit('membership', membership, this.position);
    } catch (error) {
      const typed = error as TopkRingError;
      if (typed.code !== 'ERR_UNREACHABLE') {
        this.#shutdown(typed, true);
        return;
      }
      // No answer. Dropped again: socket.io reconnects by itself; still
      // connected but unanswered: start over rather than give up.
      if (!this.#socket.connected) return;
      log('%s: rejoin unanswered, reconnecting', this.#peerId);
      this.#socket.disconnect().connect();
    }
  }

  #onMembership(raw: unknown): void {
    const parsed = MembershipSchema.safeParse(raw);
    if (!parsed.success) {
      log('%s: malformed membership ignored', this.#peerId);
      return;
    }
    const membership = parsed.data;
    if (this.#joining || this.#membership === undefined) {
      // Applied with the join's reply (#applyJoin), when newer.
      const held = this.#heldMembership;
      if (held === undefined || membership.generation > held.generation) {
        this.#heldMembership = membership;
      }
      return;
    }
    const current = this.#membership;
    if (current !== undefined && membership.generation < current.generation) {
      return;
    }
    this.#membership = membership;
    this.#emit('membership', membership, this.position);
  }

  #onEjected(raw: unknown): void {
    const parsed = EjectionSchema.safeParse(raw);
    if (!parsed.success) {
      log('%s: malformed ejection notice ignored', this.#peerId);
      return;
    }
    log(
      '%s: ejected from the ring by %s (%s: %s), benched %d ms',
      this.#peerId,
      parsed.data.accuser,
      parsed.data.reason,
      parsed.data.detail,
      parsed.data.benchMs,
    );
    this.#emit('ejected', parsed.data);
  }

  #onSignal(raw: unknown): void {
    const parsed = RelayedSignalSchema.safeParse(raw);
    if (!parsed.success) {
      log('%s: malformed signal ignored', this.#peerId);
      return;
    }
    this.#emit('signal', parsed.data);
  }

  #onDisconnect(reason: string): void {
    if (this.#closed) return;
    log('%s disconnected: %s', this.#peerId, reason);
    if (reason === 'io server disconnect') {
      // The server ended this session (replaced, timed out, refused):
      // socket.io does not reconnect after that, and neither do we.
      const r = this.#lastRejection;
      this.#shutdown(
        r === undefined
          ? topkError(
              'ERR_PEER_GONE',
              'the signaling server closed the session',
              {},
            )
          : fromWire(r),
        false,
      );
      return;
    }
    this.#emit('disconnected', reason);
    if (this.#options.reconnect === false) {
      this.#shutdown(
        topkError('ERR_UNREACHABLE', `lost the signaling server (${reason})`, {
          reason,
        }),
        false,
      );
    }
  }

  #sendReport(report: PeerReport): void {
    this.#pendingReport = undefined;
    this.#lastReportMs = performance.now();
    // Volatile: a report is stale by the next one; none are queued while
    // the connection is down.
    this.#socket.volatile.emit('report', report);
  }

  #shutdown(error: TopkRingError | undefined, announce: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reportTimer);
    this.#reportTimer = undefined;
    this.#socket.removeAllListeners();
    this.#socket.disconnect();
    if (announce || error !== undefined) this.#emit('closed', error);
    this.#listeners.clear();
  }

  #emit<E extends keyof SignalingClientEvents>(
    event: E,
    ...args: Parameters<Listener<E>>
  ): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        (listener as unknown as (...a: unknown[]) => void)(...args);
      } catch (error) {
        // A listener's bug must not break the socket's packet handling;
        // surface it as an uncaught error, as an EventEmitter would.
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }
}

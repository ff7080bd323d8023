/**
 * A peer's life in a room's ring, from the first generation to the last
 * step, for Node peers and browser tabs alike (no Node imports): connect
 * to the ring neighbours of each generation over WebRTC, agree on the
 * start step and weights (the handshake, sync.ts), run Algorithm 1 step
 * after step, report progress and weights hashes to the server, evaluate
 * at every epoch end, and finish together with the others.
 *
 * Membership changes take effect between steps: after each step the
 * session looks at the latest generation, and when it changed the links
 * of the old one are closed and those of the new one opened. A step in
 * flight is aborted when a ring member departs.
 *
 * Faults of a neighbour are told to the server as accusations
 * (`suspect`, signaling/ejection.ts), which takes the accused out of the
 * ring for a while: a neighbour silent on the data channel for
 * peerTimeoutMs, one whose channel closed without a goodbye or never
 * opened, one that sent a message the codec, framing or all-reduce
 * refused, and a previous peer that missed the step's straggler deadline
 * (straggler.ts). The step in flight is aborted (its selection goes back
 * into the residual) except for a straggler, which is only slow. A peer
 * that is itself taken out waits, benched, until the server puts it back
 * in the ring, and gets the ring's weights in the next handshake.
 *
 * What differs by platform comes in through {@link RingSessionOptions}:
 * the WebRTC binding, checkpoints (Node), and the data of a generation
 * (a tab downloads its shard).
 *
 * The Node peer (session.ts) is a thin wrapper around this class, so
 * both kinds of peer speak exactly the same protocol.
 */
import createDebug from 'debug';

import {
  isTopkError,
  topkError,
  type TopkRingError,
} from '../../shared/errors.ts';
import type { SignalingClient } from '../../shared/signaling-client.ts';
import type {
  Membership,
  RingPosition,
  SuspectReason,
} from '../../shared/signaling-protocol.ts';
import type { Trainer } from '../training/trainer.ts';
import type { WebRtcBinding } from '../webrtc/bindings.ts';
import type { InjectedFault, LinkSide } from '../webrtc/ring-link.ts';
import { RingConnector, type GenerationLink } from './connector.ts';
import {
  waitForMembership,
  waitForNewGeneration,
  waitForRing,
} from './membership.ts';
import { reportStep, type Totals } from './reports.ts';
import { finishTogether, openGeneration } from './generation-start.ts';
import { StragglerDeadline, watchFirstHop } from './straggler.ts';
import type {
  Placement,
  RingSessionEvent,
  RingSessionOptions,
  RingSessionResult,
} from './ring-session-types.ts';

const log = createDebug('topk:session:ring');

/**
 * The ring connector of a peer that has just joined: it starts listening
 * for its neighbours' negotiation at once (the relay keeps nothing for a
 * peer that is not listening), with the room's ICE servers and limits.
 */
export function ringConnector(
  client: SignalingClient,
  binding: WebRtcBinding,
  options: { fault?: InjectedFault } = {},
): RingConnector {
  const config = client.config;
  return new RingConnector({
    client,
    binding,
    iceServers: config.iceServers as RTCIceServer[],
    connectTimeoutMs: Math.max(10_000, config.limits.peerTimeoutMs * 4),
    maxMessageBytes: config.limits.maxMessageBytes,
    heartbeatMs: config.limits.heartbeatMs,
    peerTimeoutMs: config.limits.peerTimeoutMs,
    room: client.membership.room,
    fault: options.fault,
  });
}

/** One peer's training in a room's ring; see the module comment. */
export class RingSession {
  readonly #options: RingSessionOptions;
  readonly #client: SignalingClient;
  readonly #trainer: Trainer;
  readonly #connector: RingConnector;
  readonly #stop = new AbortController();
  #link: GenerationLink | undefined;
  #placement: Placement & { firstStep: number } = {
    generation: -1,
    ringIndex: 0,
    peers: 1,
    firstStep: 0,
  };
  #totals: Totals = { bytesSent: 0, bytesReceived: 0, denseBytes: 0 };
  #generations = 0;
  /** True until this peer holds the ring's weights (a newcomer). */
  #fresh: boolean;
  /** A new run whose ring is still smaller than the room's `minPeers`. */
  #waiting = false;
  /** Aborts the step in flight when a ring member departs. */
  #stepAbort: AbortController | undefined;
  /** The last generation this peer tried to join. */
  #attempted = -1;
  /** The data of this generation, being readied: its failure, if any. */
  #prepared: Promise<unknown> | undefined;
  /** This peer's neighbours in the generation it last tried to join. */
  #position: RingPosition | undefined;
  /** Accusations made, `generation/peer` (and `/step` for stragglers). */
  readonly #accused = new Set<string>();
  readonly #deadline: StragglerDeadline;
  /** The next step follows an evaluation or checkpoint: no deadline. */
  #afterPause = false;
  #closed = false;

  constructor(options: RingSessionOptions) {
    this.#options = options;
    this.#client = options.client;
    this.#trainer = options.trainer;
    this.#fresh = options.fresh;
    this.#connector = options.connector;
    this.#deadline = new StragglerDeadline(options.trainer.config.limits);
    options.signal?.addEventListener('abort', () => this.#stop.abort(), {
      once: true,
    });
  }

  /** Trains to the end of the run (or a stop); does not leave the room. */
  async run(): Promise<RingSessionResult> {
    const trainer = this.#trainer;
    const config = trainer.config;
    // The length of the run is the room's, the same for every peer and
    // for peers that join later: epochs of a ring of `minPeers`.
    const totalSteps = config.epochs * trainer.stepsPerEpoch(config.minPeers);
    const offMembership = this.#client.on('membership', (m) =>
      this.#abortIfSuperseded(m),
    );
    const offEjected = this.#client.on('ejected', (ejection) => {
      log(
        'taken out of the ring by %s (%s: %s); benched %d ms',
        ejection.accuser,
        ejection.reason,
        ejection.detail,
        ejection.benchMs,
      );
      this.#emit({ type: 'ejected', ejection });
    });
    let stopped = false;
    let dataFailure: unknown;
    try {
      for (;;) {
        if (this.#stop.signal.aborted) {
          stopped = true;
          break;
        }
        try {
          await this.#follow(totalSteps);
          if (this.#waiting) {
            this.#emit({ type: 'waiting', minPeers: config.minPeers });
            await waitForNewGeneration(this.#client, this.#stop.signal);
            continue;
          }
          if (trainer.step >= totalSteps) {
            if (await this.#finish()) break;
            continue;
          }
          // Data that cannot be had is no ring failure: no new ring helps.
          dataFailure = await this.#prepared;
          if (dataFailure !== undefined) break;
          await this.#step(totalSteps);
          // Alone in the ring a step never waits for the network, so the
          // loop would starve the event loop: the page would not redraw,
          // and socket.io's pings would go unanswered.
          await yieldToEventLoop();
        } catch (error) {
          if (this.#stop.signal.aborted) {
            stopped = true;
            break;
          }
          if (isTopkError(error, 'ERR_RUN_FINISHED')) throw error;
          await this.#recover(error);
        }
      }
    } finally {
      offMembership();
      offEjected();
    }
    if (dataFailure !== undefined) throw dataFailure;

    const evaluation = trainer.evaluate();
    if (this.#options.checkpoint !== undefined) {
      await this.#options.checkpoint(this.#placement);
    }
    const modelHash = trainer.modelHash();
    this.#client.report({
      step: trainer.step,
      generation: this.#placement.generation,
      loss: evaluation.loss,
      accuracy: evaluation.accuracy ?? null,
      ...this.#totals,
      modelHash,
      backend: this.#options.backend,
    });
    return {
      steps: trainer.step,
      testLoss: evaluation.loss,
      testAccuracy: evaluation.accuracy,
      testSamples: evaluation.samples,
      modelHash,
      ...this.#totals,
      generations: this.#generations,
      stopped,
    };
  }

  /**
   * Leaves the ring and the room. The goodbyes on the data channels and
   * the `leave` to the server go out before the first await, so a page
   * that is being torn down (see {@link leaveNow}) still sends them.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort('leaving');
    const closing = this.#link?.close();
    const leaving = this.#client.leave('training finished');
    try {
      await closing;
    } catch (error) {
      log('closing the ring link: %s', String(error));
    }
    this.#connector.dispose();
    try {
      await leaving;
    } catch (error) {
      log('leaving the room: %s', String(error));
    }
    this.#client.close();
  }

  /** Leaves at once (a closing page): nothing is awaited. */
  leaveNow(): void {
    void this.close();
  }

  /**
   * Stops after the step in flight (or at once while waiting for a ring);
   * {@link run} then returns with `stopped`.
   */
  stop(): void {
    this.#stop.abort('stopped');
  }

  /** Runs one step in the current generation and reports it. */
  async #step(totalSteps: number): Promise<void> {
    const trainer = this.#trainer;
    const config = trainer.config;
    const abort = new AbortController();
    this.#stepAbort = abort;
    // A stop lets the step in flight finish; the others would fail it.
    const timeout = AbortSignal.timeout(config.limits.stepTimeoutMs);
    const signal = AbortSignal.any([abort.signal, timeout]);
    const step = trainer.step;
    let link = (this.#link as GenerationLink).link;
    const deadlineMs = this.#deadline.deadlineMs();
    const position = this.#position;
    // No deadline for a generation's first step (the handshake and any
    // weights transfer skew the start) nor after an evaluation or
    // checkpoint (each peer takes its own time over them).
    if (
      deadlineMs !== undefined &&
      position !== undefined &&
      position.size > 1 &&
      step > this.#placement.firstStep &&
      !this.#afterPause
    ) {
      const generation = this.#placement.generation;
      link = watchFirstHop(link, deadlineMs, (waitedMs) =>
        this.#accuse(
          generation,
          position.prev,
          'straggler',
          `waited ${Math.round(waitedMs)} ms for its first message of ` +
            `step ${step} (deadline ${Math.round(deadlineMs)} ms, own ` +
            `compute ${Math.round(this.#deadline.medianMs() ?? 0)} ms)`,
          step,
        ),
      );
    }
    this.#afterPause = false;
    let record;
    try {
      record = await trainer.runStep({ ...this.#placement, link }, signal);
    } catch (error) {
      // Out of time, and no neighbour failed or was accused meanwhile
      // (that aborts the step, or the liveness fails it first): a message
      // will never come. The server restarts the ring.
      if (timeout.aborted && !abort.signal.aborted) {
        this.#reportStall(this.#placement.generation, step);
      }
      throw error;
    } finally {
      this.#stepAbort = undefined;
    }
    this.#deadline.record(record.computeMs + record.selectMs);
    this.#totals = {
      bytesSent: this.#totals.bytesSent + record.bytesSent,
      bytesReceived: this.#totals.bytesReceived + record.bytesReceived,
      denseBytes: this.#totals.denseBytes + record.denseBytes,
    };
    this.#emit({ type: 'step', record, totals: this.#totals, totalSteps });

    const done = trainer.step;
    // Epochs of the run's own unit (a ring of minPeers), whatever the ring
    // is now: one evaluation per epoch, never the same epoch twice when
    // the ring grows or shrinks.
    const perEpoch = trainer.stepsPerEpoch(config.minPeers);
    let evaluation: { loss: number; accuracy?: number } | undefined;
    if (done % perEpoch === 0 && done !== totalSteps) {
      this.#afterPause = true;
      evaluation = trainer.evaluate();
      this.#emit({
        type: 'evaluation',
        step: done,
        epoch: done / perEpoch,
        ...evaluation,
      });
    }
    const every = config.checkpointEvery;
    if (this.#options.checkpoint !== undefined && every > 0) {
      if (done % every === 0) {
        this.#afterPause = true;
        await this.#options.checkpoint(this.#placement);
      }
    }
    reportStep(this.#client, trainer, {
      record,
      totals: this.#totals,
      generation: this.#placement.generation,
      epoch: Math.floor(done / perEpoch),
      accuracy: evaluation?.accuracy,
      backend: this.#options.backend,
    });
  }

  /**
   * The run is complete here: the end-of-run barrier with the ring (no
   * peer leaves before every peer completed the last step), then `finish`
   * to the server (signaling/finish.ts). Returns true when this peer may
   * leave; false when the ring changed meanwhile (a benched member was
   * put back to receive the final weights, a peer left or joined), once
   * the new generation is known: the session follows it, hands the
   * weights on in its handshake, and finishes again.
   */
  async #finish(): Promise<boolean> {
    const trainer = this.#trainer;
    const link = this.#link;
    const generation = this.#placement.generation;
    if (link !== undefined && this.#placement.peers > 1) {
      await finishTogether(
        {
          room: this.#options.room,
          peerId: this.#client.peerId,
          ...this.#placement,
          link: link.link,
        },
        trainer,
      );
    }
    const reply = await this.#client.finish({
      generation,
      step: trainer.step,
      modelHash: trainer.modelHash(),
    });
    if (!reply.ok) {
      // An older server, or none: nobody to wait for that it knows of.
      log('finish refused: %s', reply.error.message);
      return true;
    }
    log('finish in generation %d: %s', generation, reply.verdict);
    if (reply.verdict === 'done') return true;
    this.#emit({ type: 'handing-on', generation: reply.generation });
    try {
      await waitForMembership(this.#client, (m) => m.generation > generation, {
        timeoutMs: trainer.config.limits.peerTimeoutMs * 4,
        signal: this.#stop.signal,
      });
    } catch (error) {
      log('no new generation after finish: %s', String(error));
      return true;
    }
    return false;
  }

  /**
   * A ring in which nobody holds the weights of the run's last step, in a
   * room whose run finished (`membership.finished`): its members were out
   * of the ring (benched, reconnecting) while the others finished and
   * left. Training the remaining steps from their weights would end with
   * another model than the others', so they stop instead.
   */
  #checkNotStale(newestHeld: number | undefined, generation: number): void {
    const finished = this.#client.membership.finished;
    if (finished === undefined || newestHeld === undefined) return;
    if (newestHeld >= finished.step) return;
    throw topkError(
      'ERR_RUN_FINISHED',
      `room ${this.#options.room}: the run finished at step ` +
        `${finished.step} (model ${finished.modelHash}) while this peer ` +
        `was out of the ring; the ring of generation ${generation} holds ` +
        `weights of step ${newestHeld} at best, so it stops instead of ` +
        `training the last steps on its own`,
      {
        room: this.#options.room,
        finishedStep: finished.step,
        finishedHash: finished.modelHash,
        step: this.#trainer.step,
        newestHeld,
      },
    );
  }

  /**
   * Makes sure the link belongs to the latest generation this peer is a
   * member of, reconnecting when the membership changed.
   */
  async #follow(totalSteps: number): Promise<void> {
    if (this.#link?.generation === this.#client.membership.generation) return;
    this.#waiting = false;
    const position = await waitForRing(this.#client, 1, this.#stop.signal);
    const generation = this.#client.membership.generation;
    await this.#link?.close();
    this.#link = undefined;
    this.#attempted = generation;
    this.#position = position;
    const placement: Placement = {
      generation,
      ringIndex: position.ringIndex,
      peers: position.size,
    };
    this.#prepared = undefined;
    const minPeers = this.#trainer.config.minPeers;
    if (position.size >= minPeers || !this.#fresh) this.#prepare(placement);

    // A newer generation, or a neighbour that departs, aborts the connect
    // and the handshake, as it aborts a step.
    const abort = new AbortController();
    this.#stepAbort = abort;
    const signal = AbortSignal.any([abort.signal, this.#stop.signal]);
    const timeoutMs = this.#trainer.config.limits.stepTimeoutMs;
    let link: GenerationLink | undefined;
    let startStep: number;
    try {
      this.#emitNeighbours(generation, position, 'connecting');
      link = await this.#connector.connect(generation, position, signal);
      this.#emitNeighbours(generation, position, 'open');
      this.#watchNeighbours(link, generation, position);
      const opened = await openGeneration(
        {
          room: this.#options.room,
          peerId: this.#client.peerId,
          ...placement,
          link: link.link,
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        },
        this.#trainer,
        this.#fresh,
      );
      startStep = opened.startStep;
      this.#waiting = opened.waiting;
      if (!opened.waiting) this.#checkNotStale(opened.newestHeld, generation);
      if (!opened.waiting) this.#fresh = false;
    } catch (error) {
      // Without a handshake the generation is not joined: the link goes.
      await link?.close().catch(() => {});
      this.#blameConnect(error, generation, position);
      throw error;
    } finally {
      this.#stepAbort = undefined;
    }
    this.#link = link;
    if (!this.#waiting && this.#prepared === undefined) {
      this.#prepare(placement);
    }
    this.#placement = { ...placement, firstStep: startStep };
    this.#generations++;
    this.#emit({ type: 'generation', ...placement, totalSteps });
  }

  /**
   * Turns what the link sees of its neighbours into step aborts, events
   * and accusations (see the module comment).
   */
  #watchNeighbours(
    link: GenerationLink,
    generation: number,
    position: RingPosition,
  ): void {
    const webrtc = link.webrtc;
    if (webrtc === undefined) return;
    const peerOf = (side: LinkSide) =>
      side === 'next' ? position.next : position.prev;
    webrtc.on('departed', (side, info) => {
      this.#stepAbort?.abort(`the ${side} ring neighbour departed`);
      this.#emit({ type: 'departed', generation, side, peerId: peerOf(side) });
      // A goodbye, or this peer's own close (or silence verdict), is no
      // fault of the neighbour's.
      if (info.remoteSaidBye || info.initiatedLocally) return;
      this.#accuse(
        generation,
        peerOf(side),
        'unreachable',
        `its channel closed without a goodbye` +
          (info.error === undefined ? '' : `: ${info.error.message}`),
      );
    });
    webrtc.on('silent', (side, silentMs) => {
      this.#stepAbort?.abort(`the ${side} ring neighbour is silent`);
      this.#accuse(
        generation,
        peerOf(side),
        'silent',
        `no byte on the data channel for ${Math.round(silentMs)} ms`,
      );
    });
    webrtc.on('fault', (error, side) => {
      this.#stepAbort?.abort(`the ${side} ring neighbour sent a bad message`);
      this.#accuse(generation, peerOf(side), 'malformed', error.message);
    });
  }

  /** A connect that failed on a side accuses the neighbour there. */
  #blameConnect(
    error: unknown,
    generation: number,
    position: RingPosition,
  ): void {
    if (!isTopkError(error, 'ERR_PEER_GONE')) return;
    const unopened = error.context['unopened'];
    if (!Array.isArray(unopened)) return;
    for (const side of unopened as LinkSide[]) {
      this.#accuse(
        generation,
        side === 'next' ? position.next : position.prev,
        'unreachable',
        `its data channel did not open: ${error.message}`,
      );
    }
  }

  /**
   * Tells the server, once per generation and neighbour (per step for a
   * straggler), that `peerId` misbehaves. The verdict is logged and
   * reported as an event; a refusal (the ring changed meanwhile, the
   * accuser's budget is spent) changes nothing here.
   */
  /** Asks the server to restart a ring whose step `step` stalled. */
  #reportStall(generation: number, step: number): void {
    if (this.#closed || this.#placement.peers < 2) return;
    log('step %d stalled in generation %d', step, generation);
    void this.#client.stalled({ generation, step }).then((reply) => {
      if (!reply.ok) {
        log('stall report refused: %s', reply.error.message);
      } else {
        log(
          'stall report: %s (generation %d)',
          reply.verdict,
          reply.generation,
        );
      }
    });
  }

  #accuse(
    generation: number,
    peerId: string,
    reason: SuspectReason,
    detail: string,
    step?: number,
  ): void {
    if (peerId === this.#client.peerId || this.#closed) return;
    const key =
      `${generation}/${peerId}` + (step === undefined ? '' : `/${step}`);
    if (this.#accused.has(key)) return;
    this.#accused.add(key);
    if (this.#accused.size > 256) {
      this.#accused.delete(this.#accused.values().next().value as string);
    }
    log(
      'accusing %s in generation %d (%s: %s)',
      peerId,
      generation,
      reason,
      detail,
    );
    void this.#client
      .suspect({
        generation,
        peerId,
        reason,
        detail: detail.slice(0, 200),
        ...(step === undefined ? {} : { step }),
      })
      .then((reply) => {
        const verdict = reply.ok ? reply.verdict : reply.error.code;
        log('accusation of %s (%s): %s', peerId, reason, verdict);
        this.#emit({
          type: 'suspected',
          generation,
          peerId,
          reason,
          verdict,
        });
      });
  }

  // TODO(#5): a shard that downloads slower than the others' step timeout
  // (a big data set on a slow link) fails the first step of the
  // generation for everyone; a tab should say when its data is ready.
  #prepare(placement: Placement): void {
    const prepare = this.#options.prepareGeneration;
    if (prepare === undefined) return;
    this.#prepared = prepare(placement).then(
      () => undefined,
      (error: unknown) =>
        error ??
        topkError('ERR_INTERNAL', 'readying the data failed', {
          ...placement,
        }),
    );
  }

  /**
   * Aborts the connect, handshake or step in flight when a newer
   * generation appears: its members, some of which already moved on, will
   * not take part in the old one. A step that some peers completed before
   * the abort is taken back by them in the next handshake.
   */
  #abortIfSuperseded(membership: Membership): void {
    if (membership.generation > this.#attempted) {
      this.#stepAbort?.abort(`generation ${membership.generation} began`);
    }
  }

  /**
   * A step failed: its selection is already back in the residual. Waits
   * for the membership to change (the ring re-forms without the peer
   * that failed) and goes on in the new generation; gives up with
   * `ERR_RING_TIMEOUT` after four peer timeouts.
   */
  async #recover(error: unknown): Promise<void> {
    if (!isTopkError(error)) throw error;
    const failed = Math.max(this.#placement.generation, this.#attempted);
    log('step failed in generation %d: %s', failed, error.message);
    this.#blameMessage(error, failed);
    this.#emit({ type: 'step-failed', generation: failed, error });
    // The links of a failed generation are not used again.
    await this.#link?.close().catch(() => {});
    this.#link = undefined;
    await waitForMembership(this.#client, (m) => m.generation > failed, {
      timeoutMs: this.#trainer.config.limits.peerTimeoutMs * 4,
      cause: error,
      signal: this.#stop.signal,
    });
  }

  /**
   * A step or handshake refused a message (`ERR_BAD_MESSAGE`: a lie or a
   * malformed message): every message comes from the previous peer.
   */
  #blameMessage(error: TopkRingError, generation: number): void {
    const position = this.#position;
    if (error.code !== 'ERR_BAD_MESSAGE' || position === undefined) return;
    if (generation !== this.#attempted || position.size < 2) return;
    this.#accuse(generation, position.prev, 'malformed', error.message);
  }

  #emitNeighbours(
    generation: number,
    position: RingPosition,
    state: 'connecting' | 'open',
  ): void {
    this.#emit({
      type: 'neighbours',
      generation,
      prev: position.prev,
      next: position.next,
      alone: position.size === 1,
      state,
    });
  }

  #emit(event: RingSessionEvent): void {
    try {
      this.#options.onEvent?.(event);
    } catch (error) {
      log('a session event listener threw: %s', String(error));
    }
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

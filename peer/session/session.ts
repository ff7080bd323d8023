/**
 * One Node peer's training session: join a room through the signaling
 * server, wait until the ring has the room's `minPeers`, connect to the
 * ring neighbours over WebRTC, run Algorithm 1 step after step, report
 * progress and weights hashes to the server, evaluate at every epoch end,
 * checkpoint, and leave gracefully.
 *
 * Membership changes take effect between steps: after each step the
 * session looks at the latest generation, and when it changed the links
 * of the old one are closed and those of the new one opened.
 */
import path from 'node:path';

import createDebug from 'debug';

import type { RoomConfig, RoomConfigInput } from '../../shared/config.ts';
import { isTopkError, topkError } from '../../shared/errors.ts';
import { SignalingClient } from '../../shared/signaling-client.ts';
import type {
  Membership,
  RingPosition,
} from '../../shared/signaling-protocol.ts';
import { loadDataset } from '../data/registry.ts';
import { initBackend } from '../tf/backend.ts';
import { loadCheckpoint, saveCheckpoint } from '../training/checkpoint.ts';
import { Trainer, type StepRecord } from '../training/trainer.ts';
import { loadBinding, type WebRtcBindingName } from '../webrtc/bindings.ts';
import { RingConnector, type GenerationLink } from './connector.ts';
import {
  DONE_PHASE,
  exchangeStandings,
  planGeneration,
  transferState,
  type HandshakeContext,
} from './sync.ts';

const log = createDebug('topk:session');

/** Steps between two weights hashes sent to the server for comparison. */
const HASH_EVERY_STEPS = 25;

/** Settings of {@link runPeerSession}. */
export interface PeerSessionOptions {
  /** The signaling server's URL. */
  readonly server: string;
  readonly room: string;
  readonly token?: string;
  readonly webrtc: WebRtcBindingName;
  /** A `--backend` choice; an unknown one is refused by name. */
  readonly backend: string;
  /** Config to create the room with, where the server lets peers. */
  readonly config?: RoomConfigInput;
  /** Write checkpoints here (every `checkpointEvery` steps and at the end). */
  readonly checkpointDir?: string;
  /** Continue from the checkpoint in this folder. */
  readonly resume?: string;
  /** Use only the first N training / test samples (quick runs, tests). */
  readonly maxTrain?: number;
  readonly maxTest?: number;
  /** Stops the session between steps, leaving gracefully. */
  readonly signal?: AbortSignal;
  /** Receives progress. Must not throw. */
  readonly onEvent?: (event: SessionEvent) => void;
}

/** What a session tells its owner (the CLI or the launcher). */
export type SessionEvent =
  | {
      readonly type: 'ready';
      readonly peerId: string;
      readonly backend: string;
      readonly n: number;
      readonly k: number;
      readonly config: RoomConfig;
    }
  | {
      readonly type: 'generation';
      readonly generation: number;
      readonly ringIndex: number;
      readonly peers: number;
      readonly totalSteps: number;
    }
  | { readonly type: 'step'; readonly record: StepRecord }
  | {
      readonly type: 'evaluation';
      readonly step: number;
      readonly epoch: number;
      readonly loss: number;
      readonly accuracy?: number;
    };

/** How a session ended. */
export interface SessionSummary {
  readonly peerId: string;
  readonly backend: string;
  /** Steps completed. */
  readonly steps: number;
  readonly n: number;
  readonly k: number;
  readonly testLoss: number;
  readonly testAccuracy?: number;
  readonly modelHash: string;
  /** Wire bytes of the all-reduce, this peer's. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** What a dense ring all-reduce would have sent in the same steps. */
  readonly denseBytes: number;
  readonly generations: number;
  readonly wallMs: number;
  /** True when stopped early through `signal`. */
  readonly stopped: boolean;
}

/** Runs a peer from joining to leaving; see the module comment. */
export async function runPeerSession(
  options: PeerSessionOptions,
): Promise<SessionSummary> {
  const startMs = performance.now();
  const backend = await initBackend(options.backend);
  const binding = await loadBinding(options.webrtc);
  const client = await SignalingClient.connect({
    url: options.server,
    room: options.room,
    token: options.token,
    kind: 'node',
    backend,
    config: options.config,
  });
  const session = new Session(client, backend, options);
  try {
    return await session.run(binding, startMs);
  } finally {
    await session.close();
  }
}

class Session {
  readonly #client: SignalingClient;
  readonly #backend: string;
  readonly #options: PeerSessionOptions;
  #trainer: Trainer | undefined;
  #connector: RingConnector | undefined;
  #link: GenerationLink | undefined;
  #placement = { generation: -1, ringIndex: 0, peers: 1, firstStep: 0 };
  #totals = { bytesSent: 0, bytesReceived: 0, denseBytes: 0 };
  #generations = 0;
  /** True until this peer holds the ring's weights (a newcomer). */
  #fresh = true;
  /**
   * A new run whose ring is still smaller than the room's `minPeers`:
   * the readiness barrier, so fast peers do not train alone while slow
   * ones connect.
   */
  #waiting = false;
  /** The last generation this peer tried to join. */
  #attempted = -1;
  /** Aborts the step in flight when a ring member departs. */
  #stepAbort: AbortController | undefined;

  constructor(
    client: SignalingClient,
    backend: string,
    options: PeerSessionOptions,
  ) {
    this.#client = client;
    this.#backend = backend;
    this.#options = options;
  }

  async run(
    binding: Awaited<ReturnType<typeof loadBinding>>,
    startMs: number,
  ): Promise<SessionSummary> {
    const config = this.#client.config;
    const dataset = await loadDataset(config.dataset, {
      seed: config.seed,
      maxTrain: this.#options.maxTrain,
      maxTest: this.#options.maxTest,
    });
    const trainer = new Trainer({
      config,
      dataset,
      room: this.#options.room,
      peerId: this.#client.peerId,
    });
    this.#trainer = trainer;
    if (this.#options.resume !== undefined) {
      const loaded = await loadCheckpoint(this.#options.resume);
      trainer.restoreState({ ...loaded, step: loaded.state.step });
      this.#fresh = false;
      log('resumed at step %d', trainer.step);
    }
    this.#emit({
      type: 'ready',
      peerId: this.#client.peerId,
      backend: this.#backend,
      n: trainer.n,
      k: trainer.compressor.config.totalK,
      config,
    });
    this.#connector = new RingConnector({
      client: this.#client,
      binding,
      iceServers: config.iceServers as RTCIceServer[],
      connectTimeoutMs: Math.max(10_000, config.limits.peerTimeoutMs * 4),
      maxMessageBytes: config.limits.maxMessageBytes,
    });

    // The length of the run is the room's, the same for every peer and
    // for peers that join later: epochs of a ring of `minPeers`.
    const totalSteps = config.epochs * trainer.stepsPerEpoch(config.minPeers);
    const offMembership = this.#client.on('membership', (m) =>
      this.#abortIfSuperseded(m),
    );
    let stopped = false;
    while (trainer.step < totalSteps) {
      if (this.#options.signal?.aborted) {
        stopped = true;
        break;
      }
      try {
        await this.#follow(totalSteps);
        if (this.#waiting) {
          await this.#waitForNewGeneration();
          continue;
        }
        await this.#step(totalSteps);
        // Alone in the ring a step never waits for the network, so the
        // loop would starve the event loop: socket.io's pings would go
        // unanswered and the server would drop this peer.
        await yieldToEventLoop();
      } catch (error) {
        await this.#recover(error);
      }
    }
    offMembership();
    if (!stopped) await this.#finishTogether();

    const evaluation = trainer.evaluate();
    if (this.#options.checkpointDir !== undefined) await this.#checkpoint();
    const modelHash = trainer.modelHash();
    this.#client.report({
      step: trainer.step,
      generation: this.#placement.generation,
      loss: evaluation.loss,
      accuracy: evaluation.accuracy ?? null,
      bytesSent: this.#totals.bytesSent,
      bytesReceived: this.#totals.bytesReceived,
      modelHash,
      backend: this.#backend,
    });
    return {
      peerId: this.#client.peerId,
      backend: this.#backend,
      steps: trainer.step,
      n: trainer.n,
      k: trainer.compressor.config.totalK,
      testLoss: evaluation.loss,
      testAccuracy: evaluation.accuracy,
      modelHash,
      ...this.#totals,
      generations: this.#generations,
      wallMs: performance.now() - startMs,
      stopped,
    };
  }

  /** Leaves the ring and the room, releasing every resource. */
  async close(): Promise<void> {
    try {
      await this.#link?.close();
    } catch (error) {
      log('closing the ring link: %s', String(error));
    }
    this.#connector?.dispose();
    try {
      await this.#client.leave('training finished');
    } catch (error) {
      log('leaving the room: %s', String(error));
    }
    this.#client.close();
    this.#trainer?.dispose();
  }

  /** Runs one step in the current generation and reports it. */
  async #step(totalSteps: number): Promise<void> {
    const trainer = this.#trainer as Trainer;
    const link = this.#link as GenerationLink;
    const config = trainer.config;
    const abort = new AbortController();
    this.#stepAbort = abort;
    const signal = AbortSignal.any([
      abort.signal,
      AbortSignal.timeout(config.limits.stepTimeoutMs),
    ]);
    let record: StepRecord;
    try {
      record = await trainer.runStep(
        { ...this.#placement, link: link.link },
        signal,
      );
    } finally {
      this.#stepAbort = undefined;
    }
    this.#totals.bytesSent += record.bytesSent;
    this.#totals.bytesReceived += record.bytesReceived;
    this.#totals.denseBytes += record.denseBytes;
    this.#emit({ type: 'step', record });

    const done = trainer.step;
    const last = done === totalSteps;
    const perEpoch = trainer.stepsPerEpoch(this.#placement.peers);
    let evaluation: { loss: number; accuracy?: number } | undefined;
    if (done % perEpoch === 0 && !last) {
      evaluation = trainer.evaluate();
      this.#emit({
        type: 'evaluation',
        step: done,
        epoch: done / perEpoch,
        ...evaluation,
      });
    }
    const every = config.checkpointEvery;
    if (
      this.#options.checkpointDir !== undefined &&
      every > 0 &&
      done % every === 0
    ) {
      await this.#checkpoint();
    }
    this.#client.report({
      step: done,
      generation: this.#placement.generation,
      epoch: Math.floor(done / perEpoch),
      loss: Number.isFinite(record.loss) ? record.loss : null,
      ...(evaluation?.accuracy !== undefined
        ? { accuracy: evaluation.accuracy }
        : {}),
      bytesSent: this.#totals.bytesSent,
      bytesReceived: this.#totals.bytesReceived,
      backend: this.#backend,
      ...(done % HASH_EVERY_STEPS === 0
        ? { modelHash: trainer.modelHash() }
        : {}),
      timing: {
        computeMs: record.computeMs,
        selectMs: record.selectMs,
        communicateMs: record.communicateMs,
      },
    });
  }

  /**
   * Makes sure the link belongs to the latest generation this peer is a
   * member of, reconnecting when the membership changed.
   */
  async #follow(totalSteps: number): Promise<void> {
    const membership = this.#client.membership;
    if (this.#link?.generation === membership.generation) return;
    this.#waiting = false;
    const { position } = await this.#waitForRing(1);
    const current = this.#client.membership;
    await this.#link?.close();
    this.#link = undefined;
    this.#attempted = current.generation;
    // A newer generation, or a neighbour that departs, aborts the connect
    // and the handshake, as it aborts a step.
    const abort = new AbortController();
    this.#stepAbort = abort;
    const timeoutMs = (this.#trainer as Trainer).config.limits.stepTimeoutMs;
    let link: GenerationLink | undefined;
    let startStep: number;
    try {
      link = await (this.#connector as RingConnector).connect(
        current.generation,
        position,
        abort.signal,
      );
      link.webrtc?.on('departed', (side) =>
        this.#stepAbort?.abort(`the ${side} ring neighbour departed`),
      );
      startStep = await this.#handshake({
        room: this.#options.room,
        peerId: this.#client.peerId,
        generation: current.generation,
        ringIndex: position.ringIndex,
        peers: position.size,
        link: link.link,
        signal: AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]),
      });
    } catch (error) {
      // Without a handshake the generation is not joined: the link goes.
      await link?.close().catch(() => {});
      throw error;
    } finally {
      this.#stepAbort = undefined;
    }
    this.#link = link;
    this.#placement = {
      generation: current.generation,
      ringIndex: position.ringIndex,
      peers: position.size,
      firstStep: startStep,
    };
    this.#generations++;
    this.#emit({
      type: 'generation',
      generation: current.generation,
      ringIndex: position.ringIndex,
      peers: position.size,
      totalSteps,
    });
  }

  /**
   * The opening handshake of a generation (sync.ts): agree on the start
   * step, take back a step the others aborted, fetch the weights when new.
   */
  async #handshake(context: HandshakeContext): Promise<number> {
    const trainer = this.#trainer as Trainer;
    const standings = await exchangeStandings(context, {
      step: trainer.step,
      fresh: this.#fresh,
      modelHash: this.#fresh ? '' : trainer.modelHash(),
      previousHash: this.#fresh ? '' : trainer.previousHash(),
    });
    const plan = planGeneration(standings);
    const minPeers = trainer.config.minPeers;
    this.#waiting = standings.every((s) => s.fresh) && context.peers < minPeers;
    if (this.#waiting) {
      log('%d of %d peers; waiting', context.peers, minPeers);
      return plan.startStep;
    }
    if (plan.rollback[context.ringIndex]) trainer.rollback();
    await transferState(context, plan, trainer);
    this.#fresh = false;
    log(
      '%s: generation %d starts at step %d (%d peers)',
      context.peerId,
      context.generation,
      plan.startStep,
      context.peers,
    );
    return plan.startStep;
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
   * The end-of-run barrier: a last round of standings, so no peer leaves
   * (and makes a slower one abort its last step) before every peer has
   * completed the last step. A failure here only ends the run early.
   */
  async #finishTogether(): Promise<void> {
    const trainer = this.#trainer as Trainer;
    const link = this.#link;
    if (link === undefined || this.#placement.peers === 1) return;
    try {
      await exchangeStandings(
        {
          room: this.#options.room,
          peerId: this.#client.peerId,
          generation: this.#placement.generation,
          ringIndex: this.#placement.ringIndex,
          peers: this.#placement.peers,
          link: link.link,
          signal: AbortSignal.timeout(trainer.config.limits.stepTimeoutMs),
        },
        {
          step: trainer.step,
          fresh: false,
          modelHash: trainer.modelHash(),
          previousHash: '',
        },
        DONE_PHASE,
      );
    } catch (error) {
      log('end-of-run barrier: %s', String(error));
    }
  }

  /**
   * A step failed: its selection is already back in the residual. Waits
   * for the membership to change (the ring re-forms without the peer
   * that failed) and goes on in the new generation.
   */
  async #recover(error: unknown): Promise<void> {
    if (!isTopkError(error)) throw error;
    const failed = Math.max(this.#placement.generation, this.#attempted);
    log('step failed in generation %d: %s', failed, error.message);
    // The links of a failed generation are not used again.
    await this.#link?.close().catch(() => {});
    this.#link = undefined;
    const config = (this.#trainer as Trainer).config;
    // TODO(#6): two peers that both reach the server but not each other
    // get no new generation; renegotiating within a generation needs
    // attempt numbers on relayed signals.
    await this.#waitForMembership(
      (m) => m.generation > failed,
      config.limits.peerTimeoutMs * 4,
      error,
    );
  }

  /** Waits for the next membership of the room. */
  #waitForNewGeneration(): Promise<void> {
    const seen = this.#client.membership.generation;
    return this.#waitForMembership((m) => m.generation > seen);
  }

  /** Waits until this peer is in a ring of at least `minPeers`. */
  async #waitForRing(
    minPeers: number,
  ): Promise<{ membership: Membership; position: RingPosition }> {
    const ok = (m: Membership): boolean => {
      const position = this.#client.position;
      return (
        position !== null &&
        m.members.length >= minPeers &&
        m.members.every((member) => member.connected)
      );
    };
    await this.#waitForMembership(ok);
    return {
      membership: this.#client.membership,
      position: this.#client.position as RingPosition,
    };
  }

  #waitForMembership(
    ok: (membership: Membership) => boolean,
    timeoutMs?: number,
    cause?: unknown,
  ): Promise<void> {
    if (ok(this.#client.membership)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (error?: unknown): void => {
        clearTimeout(timer);
        offMembership();
        offClosed();
        if (error === undefined) resolve();
        else reject(error);
      };
      const offMembership = this.#client.on('membership', (m) => {
        if (ok(m)) finish();
      });
      const offClosed = this.#client.on('closed', (error) =>
        finish(
          error ??
            topkError('ERR_PEER_GONE', 'the signaling session closed', {}),
        ),
      );
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            finish(
              topkError(
                'ERR_RING_TIMEOUT',
                `no new ring formed within ${timeoutMs} ms after a failed step`,
                { timeoutMs },
                cause,
              ),
            ),
          timeoutMs,
        );
      }
    });
  }

  async #checkpoint(): Promise<void> {
    const trainer = this.#trainer as Trainer;
    const dir = path.join(
      this.#options.checkpointDir as string,
      `step-${String(trainer.step).padStart(7, '0')}`,
    );
    await saveCheckpoint(dir, trainer, {
      room: this.#options.room,
      ...this.#placement,
    });
  }

  #emit(event: SessionEvent): void {
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

/**
 * One peer's side of training: the paper's Algorithm 1 (ALGORITHM.md) on a
 * TensorFlow.js model, with the sum over peers delegated to the ring
 * all-reduce. Independent of the transport: a step takes the ring link of
 * the current generation, so the same trainer runs over in-memory links
 * (tests) and WebRTC data channels.
 *
 * The weights live in a Float32Array owned here (the master copy); the
 * model's variables are written from it after every update. The update is
 * applied in plain JavaScript float32 arithmetic, so peers on different
 * backends (wasm, cpu, a browser's WebGL) keep bit-identical weights.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';
import createDebug from 'debug';

import {
  addScaledInto,
  allReduce,
  AutoPlanner,
  type AllReduceResult,
} from '../../shared/allreduce/index.ts';
import { Compressor } from '../../shared/compressor.ts';
import { learningRateAt, type RoomConfig } from '../../shared/config.ts';
import { topkError } from '../../shared/errors.ts';
import type { RingLink } from '../../shared/link.ts';
import type { SparseVector } from '../../shared/sparse.ts';
import type { Dataset } from '../data/dataset.ts';
import { evaluate, type Evaluation } from '../models/evaluate.ts';
import { modelHash } from '../models/fingerprint.ts';
import { bytesOf, fnv1a64 } from '../models/hash.ts';
import type { LossKind } from '../models/loss.ts';
import { createModelForDataset } from '../models/registry.ts';
import { batchTensors } from '../models/tensors.ts';
import {
  lossAndGradients,
  parameterCount,
  readWeights,
  writeWeights,
} from '../models/weights.ts';
import { BatchPlan, stepsPerEpoch } from './batches.ts';

const log = createDebug('topk:trainer');

/** Where the peer stands in the ring for the steps of one generation. */
export interface RingPlacement {
  /** The ring membership. */
  readonly generation: number;
  /** This peer's position, 0 to `peers - 1`. */
  readonly ringIndex: number;
  /** P. */
  readonly peers: number;
  /** The link to the ring neighbours of this generation. */
  readonly link: RingLink;
  /** The first step of this generation (its batches count from here). */
  readonly firstStep: number;
}

/** What one step did, as reported to the launcher and the server. */
export interface StepRecord {
  readonly step: number;
  readonly generation: number;
  readonly peers: number;
  /** Mean loss of this peer's batch before the update. */
  readonly loss: number;
  /** The learning rate of this step. */
  readonly learningRate: number;
  /** Entries this peer sent into the all-reduce (K, or 0 when skipped). */
  readonly k: number;
  /** Coordinates of the model. */
  readonly n: number;
  /** Wire bytes this peer sent and received in the all-reduce. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** What a dense ring all-reduce would have sent: 2(P-1)/P * 4n. */
  readonly denseBytes: number;
  /** The algorithm that ran. */
  readonly algorithm: string;
  /** Non-zeros in the summed update. */
  readonly unionSize: number;
  /** Every peer skipped this step (some gradient was not finite). */
  readonly skipped: boolean;
  /** The measured `||acc - TopK(acc)|| / ||acc||` and the bound gamma. */
  readonly compressionError: number;
  readonly gamma: number;
  /** Time in gradient computation, TopK selection and the all-reduce. */
  readonly computeMs: number;
  readonly selectMs: number;
  readonly communicateMs: number;
}

/** Settings of a {@link Trainer}. */
export interface TrainerOptions {
  /** The room's config (model, density, learning rate, batch size...). */
  readonly config: RoomConfig;
  /** The loaded data set. */
  readonly dataset: Dataset;
  /** The room name, carried by every message. */
  readonly room: string;
  /** This peer's id, carried by every message. */
  readonly peerId: string;
}

/** One peer's model, residual and step counter. */
export class Trainer {
  readonly config: RoomConfig;
  readonly dataset: Dataset;
  readonly model: tfl.LayersModel;
  readonly compressor: Compressor;
  /** Coordinates of the flattened model. */
  readonly n: number;
  readonly #lossKind: LossKind;
  readonly #room: string;
  readonly #peerId: string;
  readonly #weights: Float32Array;
  readonly #gradients: Float32Array<ArrayBuffer>;
  readonly #planner = new AutoPlanner();
  #plan: BatchPlan | undefined;
  #step = 0;
  #undo: UndoRecord | undefined;

  constructor(options: TrainerOptions) {
    const { config, dataset } = options;
    this.config = config;
    this.dataset = dataset;
    this.#room = options.room;
    this.#peerId = options.peerId;
    const built = createModelForDataset(config.model, dataset, config.seed);
    this.model = built.model;
    this.#lossKind = built.lossKind;
    this.n = parameterCount(this.model);
    this.#weights = readWeights(this.model);
    this.#gradients = new Float32Array(this.n);
    this.compressor = new Compressor({
      n: this.n,
      ...(config.k !== undefined
        ? { k: config.k }
        : { density: config.density }),
      scope: config.topkScope,
      tensorSizes: this.model.trainableWeights.map((w) =>
        w.shape.reduce<number>((a, b) => a * (b ?? 1), 1),
      ),
      selection: config.selection,
      seed: config.seed,
    });
  }

  /** The next step to run (steps completed so far). */
  get step(): number {
    return this.#step;
  }

  /** The master copy of the weights; read-only for callers. */
  get weights(): Float32Array {
    return this.#weights;
  }

  /** A hash of every weight bit; equal on every replica at a step. */
  modelHash(): string {
    return modelHash(this.model);
  }

  /** Steps in one epoch with `peers` peers in the ring. */
  stepsPerEpoch(peers: number): number {
    return stepsPerEpoch(this.dataset.train.size, peers, this.config.batchSize);
  }

  /**
   * Runs step {@link step} in `placement`'s ring: Algorithm 1,
   * 1. `acc = residual + lr * grad` on a batch of this peer's shard;
   * 2. `S = TopK(acc)`; 3. `residual = acc - S` (both in the compressor);
   * 4. `g = (1/P) * sum of every peer's S` (the ring all-reduce);
   * 5. `v = v - g`, the same on every peer.
   *
   * When the all-reduce fails (a peer left, the step was aborted, a bad
   * message), what this peer sent goes back into its residual, the step
   * is not counted, and the error is rethrown: the caller redoes the step
   * in the next generation and no gradient is lost.
   */
  async runStep(
    placement: RingPlacement,
    signal?: AbortSignal,
  ): Promise<StepRecord> {
    const step = this.#step;
    const lr = learningRateAt(this.config, step);

    // Step 1: the local gradient (the compressor scales and accumulates).
    const computeStart = performance.now();
    const loss = this.#computeGradients(placement, step);
    const computeMs = performance.now() - computeStart;

    // Steps 2-3.
    const selectStart = performance.now();
    const { sent, stats } = this.compressor.compress(this.#gradients, lr);
    const selectMs = performance.now() - selectStart;

    // Step 4.
    const communicateStart = performance.now();
    let result: AllReduceResult;
    try {
      result = await allReduce(
        {
          room: this.#room,
          peerId: this.#peerId,
          generation: placement.generation,
          step,
          ringIndex: placement.ringIndex,
          peers: placement.peers,
          link: placement.link,
          signal,
        },
        { vector: sent, skip: stats.skipped },
        {
          algorithm: this.config.algorithm,
          planner: this.#planner,
          k: this.compressor.config.totalK,
        },
      );
    } catch (error) {
      if (!stats.skipped) this.compressor.restore(sent);
      throw error;
    }
    const communicateMs = performance.now() - communicateStart;

    // Step 5. A step every peer skips changes no weight; what this peer
    // selected goes back into its residual.
    if (result.skip) {
      if (!stats.skipped) this.compressor.restore(sent);
      log('%s step %d skipped (non-finite gradient)', this.#peerId, step);
      this.#undo = { step, sent: undefined, touched: [] };
    } else {
      const touched = saveTouched(this.#weights, result);
      addScaledInto(this.#weights, result, -1 / placement.peers);
      writeWeights(this.model, this.#weights);
      this.#undo = { step, sent, touched };
    }
    this.#step = step + 1;

    const p = placement.peers;
    return {
      step,
      generation: placement.generation,
      peers: p,
      loss,
      learningRate: lr,
      k: stats.k,
      n: this.n,
      bytesSent: result.bytesSent,
      bytesReceived: result.bytesReceived,
      denseBytes: p === 1 ? 0 : Math.round((2 * (p - 1) * 4 * this.n) / p),
      algorithm: result.algorithm,
      unionSize: result.unionSize,
      skipped: result.skip,
      compressionError: stats.ratio,
      gamma: stats.gamma,
      computeMs,
      selectMs,
      communicateMs,
    };
  }

  /**
   * Takes back the last completed step, so this peer agrees with peers
   * whose copy of that step was aborted: the weights it touched get their
   * old values back, and what this peer sent goes back into its residual,
   * exactly the state of a peer whose all-reduce failed. Only the last
   * step can be taken back; throws `ERR_INTERNAL` otherwise.
   */
  rollback(): void {
    const undo = this.#undo;
    if (undo === undefined || undo.step !== this.#step - 1) {
      throw topkError(
        'ERR_INTERNAL',
        `rollback: step ${this.#step - 1} cannot be taken back`,
        { step: this.#step, undoStep: undo?.step },
      );
    }
    restoreTouched(this.#weights, undo.touched);
    if (undo.touched.length > 0) writeWeights(this.model, this.#weights);
    if (undo.sent !== undefined) this.compressor.restore(undo.sent);
    this.#undo = undefined;
    this.#step = undo.step;
    log('%s rolled back to step %d', this.#peerId, this.#step);
  }

  /**
   * The hash {@link modelHash} would give after {@link rollback}, or ''
   * when the last step cannot be taken back. Costs a copy of the weights.
   */
  previousHash(): string {
    const undo = this.#undo;
    if (undo === undefined || undo.step !== this.#step - 1) return '';
    const before = this.#weights.slice();
    restoreTouched(before, undo.touched);
    return fnv1a64(bytesOf(before));
  }

  /** The weights and step a newcomer needs, with their hash. */
  exportState(): { step: number; modelHash: string; weights: Float32Array } {
    return {
      step: this.#step,
      modelHash: this.modelHash(),
      weights: this.#weights.slice(),
    };
  }

  /**
   * Starts from a ring neighbour's weights at `state.step`, with an empty
   * residual. Throws `ERR_MISMATCH` (and keeps its own weights) when the
   * weights do not have the announced hash, or have the wrong length.
   */
  importState(state: {
    step: number;
    modelHash: string;
    weights: Float32Array;
  }): void {
    if (state.weights.length !== this.n) {
      throw topkError(
        'ERR_MISMATCH',
        `importState: expected ${this.n} weights, got ${state.weights.length}`,
        { expected: this.n, received: state.weights.length },
      );
    }
    const own = this.#weights.slice();
    this.#weights.set(state.weights);
    writeWeights(this.model, this.#weights);
    const hash = this.modelHash();
    if (hash !== state.modelHash) {
      this.#weights.set(own);
      writeWeights(this.model, this.#weights);
      throw topkError(
        'ERR_MISMATCH',
        `importState: weights hash to ${hash}, announced ${state.modelHash}`,
        { expected: state.modelHash, received: hash },
      );
    }
    this.#step = state.step;
    this.#undo = undefined;
    this.compressor.reset();
  }

  /** Loss and accuracy on the test set (the first `maxSamples`). */
  evaluate(maxSamples?: number): Evaluation {
    return evaluate(this.model, this.dataset, { maxSamples });
  }

  /**
   * Takes over weights, step and (optionally) residual from a checkpoint or
   * a ring neighbour. The residual of a newcomer starts empty.
   */
  restoreState(state: {
    step: number;
    weights: Float32Array;
    residual?: Float32Array;
  }): void {
    this.#weights.set(state.weights);
    writeWeights(this.model, this.#weights);
    this.#step = state.step;
    this.#undo = undefined;
    if (state.residual !== undefined) {
      this.compressor.loadResidual(state.residual);
    } else {
      this.compressor.reset();
    }
  }

  /** Releases the model's tensors. */
  dispose(): void {
    this.model.dispose();
  }

  /** Fills the gradient buffer from this step's batch; returns the loss. */
  #computeGradients(placement: RingPlacement, step: number): number {
    const plan = this.#planFor(placement);
    const indices = plan.batch(step - placement.firstStep);
    if (indices.length === 0) {
      this.#gradients.fill(0);
      return Number.NaN;
    }
    const batch = this.dataset.train.gather(indices);
    const { x, y } = batchTensors(this.dataset, batch);
    try {
      return lossAndGradients(this.model, this.#lossKind, x, y, this.#gradients)
        .loss;
    } finally {
      tf.dispose([x, y]);
    }
  }

  #planFor(placement: RingPlacement): BatchPlan {
    let plan = this.#plan;
    if (
      plan === undefined ||
      plan.spec.generation !== placement.generation ||
      plan.spec.ringIndex !== placement.ringIndex ||
      plan.spec.peers !== placement.peers
    ) {
      plan = new BatchPlan({
        datasetSize: this.dataset.train.size,
        batchSize: this.config.batchSize,
        seed: this.config.seed,
        generation: placement.generation,
        ringIndex: placement.ringIndex,
        peers: placement.peers,
      });
      this.#plan = plan;
    }
    return plan;
  }
}

/** Old values of some weights: a dense slice, or scattered coordinates. */
type SavedWeights =
  | { readonly kind: 'dense'; readonly offset: number; values: Float32Array }
  | {
      readonly kind: 'sparse';
      readonly indices: Uint32Array;
      readonly values: Float32Array;
    };

/** What taking back one step needs. */
interface UndoRecord {
  readonly step: number;
  /** What this peer sent (undefined when the step was skipped). */
  readonly sent: SparseVector | undefined;
  /** Old values of the weights the update changed. */
  readonly touched: readonly SavedWeights[];
}

/** Copies the weights an all-reduce result is about to change. */
function saveTouched(
  weights: Float32Array,
  result: AllReduceResult,
): SavedWeights[] {
  return result.parts.map((part): SavedWeights => {
    if (part.kind === 'dense') {
      const end = part.offset + part.values.length;
      return {
        kind: 'dense',
        offset: part.offset,
        values: weights.slice(part.offset, end),
      };
    }
    const indices = new Uint32Array(part.indices.length);
    const values = new Float32Array(part.indices.length);
    for (let i = 0; i < indices.length; i++) {
      indices[i] = part.offset + part.indices[i];
      values[i] = weights[indices[i]];
    }
    return { kind: 'sparse', indices, values };
  });
}

/** Writes saved values back into `weights`. */
function restoreTouched(
  weights: Float32Array,
  saved: readonly SavedWeights[],
): void {
  for (const part of saved) {
    if (part.kind === 'dense') {
      weights.set(part.values, part.offset);
      continue;
    }
    for (let i = 0; i < part.indices.length; i++) {
      weights[part.indices[i]] = part.values[i];
    }
  }
}

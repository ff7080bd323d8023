/**
 * The ring all-reduce: every peer brings its TopK sparse vector, every
 * peer gets back the same SUM (bit for bit), over any {@link RingLink}.
 *
 * `allReduce` checks the call, resolves `auto`, runs one algorithm and
 * returns a result only when the whole step completed: any failure
 * (a bad message, an abort, a departed peer) rejects with a typed error,
 * cancels what is pending on the link and applies nothing.
 */
import { topkError } from '../errors.ts';
import { allgatherRing } from './allgather.ts';
import { AutoPlanner } from './planner.ts';
import { countPartsNonZero } from './result.ts';
import { RingSession } from './session.ts';
import { segmentedRing } from './sparse-ring.ts';
import type {
  AllReduceAlgorithm,
  AllReduceChoice,
  AllReduceInput,
  AllReduceResult,
  ReducedPart,
  RingContext,
} from './types.ts';
import { checkCall } from './validate.ts';

export * from './types.ts';
export { AutoPlanner, predictBytes, type StepShape } from './planner.ts';
export { addScaledInto, resultToDense } from './result.ts';
export { phaseOf, segmentLength, segmentStart } from './layout.ts';

/** How to run one all-reduce. */
export interface AllReduceOptions {
  /** The algorithm, or `auto` (which needs `planner` and `k`). */
  readonly algorithm: AllReduceChoice;
  /** With `auto`: this peer's planner, kept across the steps of a ring. */
  readonly planner?: AutoPlanner;
  /** With `auto`: the room's K, the same on every peer. */
  readonly k?: number;
}

/**
 * Sums `input.vector` over the P peers of `context`'s ring. Every peer of
 * the step must call it with the same algorithm (or `auto`, with the same
 * `k`). Rejects with `ERR_BAD_MESSAGE` (a received message is malformed or
 * lies), `ERR_RING_ABORTED` (the signal aborted or a peer sent `abort`),
 * `ERR_PEER_GONE`/`ERR_CHANNEL_CLOSED` (from the link), `ERR_BAD_CONFIG`
 * (a bad context or options). With P = 1 it returns the input.
 */
export async function allReduce(
  context: RingContext,
  input: AllReduceInput,
  options: AllReduceOptions,
): Promise<AllReduceResult> {
  checkCall(context, input);
  const algorithm = resolve(context, input, options);
  if (context.peers === 1) {
    const result = alone(input, algorithm);
    options.planner?.record(context.generation, context.step, result);
    return result;
  }

  const session = new RingSession(context, algorithm, input.skip);
  let parts: ReducedPart[];
  try {
    parts =
      algorithm === 'allgather'
        ? await allgatherRing(session, input.vector)
        : await segmentedRing(session, input.vector);
  } catch (error) {
    throw session.fail(error);
  } finally {
    session.close();
  }

  const skip = session.skip;
  const result: AllReduceResult = {
    n: input.vector.n,
    parts: skip ? [] : parts,
    algorithm,
    unionSize: skip ? 0 : countPartsNonZero(parts),
    skip,
    bytesSent: session.bytes.sent,
    bytesReceived: session.bytes.received,
  };
  options.planner?.record(context.generation, context.step, result);
  return result;
}

function resolve(
  context: RingContext,
  input: AllReduceInput,
  options: AllReduceOptions,
): AllReduceAlgorithm {
  if (options.algorithm !== 'auto') return options.algorithm;
  const { planner, k } = options;
  if (planner === undefined) {
    throw topkError(
      'ERR_BAD_CONFIG',
      "all-reduce: algorithm 'auto' needs a planner, got none",
      { setting: 'planner' },
    );
  }
  if (k === undefined || !Number.isSafeInteger(k) || k < 0) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `all-reduce: algorithm 'auto' needs k as an integer >= 0, got ${String(k)}`,
      { setting: 'k', received: k },
    );
  }
  return planner.choose(context.generation, context.step, {
    n: input.vector.n,
    peers: context.peers,
    k,
  });
}

function alone(
  input: AllReduceInput,
  algorithm: AllReduceAlgorithm,
): AllReduceResult {
  const { vector, skip } = input;
  const parts: ReducedPart[] = skip
    ? []
    : [
        {
          kind: 'sparse',
          offset: 0,
          indices: vector.indices.slice(),
          values: vector.values.slice(),
        },
      ];
  return {
    n: vector.n,
    parts,
    algorithm,
    unionSize: countPartsNonZero(parts),
    skip,
    bytesSent: 0,
    bytesReceived: 0,
  };
}

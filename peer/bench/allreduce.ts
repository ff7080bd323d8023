/**
 * `topk-ring bench allreduce`: P peers sum random sparse vectors with one
 * all-reduce algorithm, in the spirit of nccl-tests, and report bytes
 * against the lower bound, exactness and time. The core,
 * {@link runAllReduceBench}, takes the links from a factory, so the same
 * benchmark runs over the simulator here and over WebRTC elsewhere.
 */
import { Command, Option } from 'commander';

import {
  ALL_REDUCE_ALGORITHMS,
  AutoPlanner,
  resultToDense,
  type AllReduceAlgorithm,
  type AllReduceChoice,
  type AllReduceResult,
} from '../../shared/allreduce/index.ts';
import { isTopkError, topkError } from '../../shared/errors.ts';
import { RingSimulator } from '../../shared/simulator.ts';
import {
  runSimulatedStep,
  type LocalRing,
} from '../../shared/simulator-step.ts';
import type { SparseVector } from '../../shared/sparse.ts';
import { seededRandom, syntheticVectors } from './gradients.ts';
import { parseBindingName } from '../webrtc/bindings.ts';

/** What to run. */
export interface AllReduceBenchOptions {
  /** P, the number of peers. */
  readonly peers: number;
  /** n, the vector length. */
  readonly size: number;
  /** K / n. */
  readonly density: number;
  /** The algorithm every peer runs, or `auto`. */
  readonly algorithm: AllReduceChoice;
  /** Fraction of each peer's indices drawn from a set shared by all. */
  readonly overlap: number;
  /** Steps measured; `auto` learns from each step for the next. */
  readonly steps: number;
  /** Seed of the random vectors. */
  readonly seed: number;
}

/** Links for P local peers, plus how to release them. */
export interface BenchTransport extends LocalRing {
  /** Closes every link; the benchmark calls it once, on every path. */
  close(): void | Promise<void>;
}

/** Makes the links of a ring of `peers` peers. */
export type MakeLinks = (
  peers: number,
) => BenchTransport | Promise<BenchTransport>;

/** One benchmark's figures (the `--json` object). */
export interface AllReduceBenchReport {
  /** The algorithm requested. */
  readonly algorithm: AllReduceChoice;
  /** The algorithm that ran at each step (what `auto` chose). */
  readonly chosen: readonly AllReduceAlgorithm[];
  /** P. */
  readonly peers: number;
  /** n. */
  readonly size: number;
  /** K / n as asked. */
  readonly density: number;
  /** K, entries per peer: round(density * n). */
  readonly k: number;
  /** Fraction of each peer's indices shared by all. */
  readonly overlap: number;
  /** Steps measured. */
  readonly steps: number;
  /** Every peer's sum had the same bits, at every step. */
  readonly identical: boolean;
  /** Largest |sum - float64 reference sum| over all steps and peers. */
  readonly maxAbsError: number;
  /** Wire bytes sent by the busiest peer, per step. */
  readonly bytesPerPeer: number;
  /** Non-zeros of the sum, mean over steps. */
  readonly unionSize: number;
  /** What the busiest peer must at least receive, mean over steps. */
  readonly lowerBoundBytes: number;
  /** bytesPerPeer / lowerBoundBytes. */
  readonly ratioToLowerBound: number;
  /** Wall time of the all-reduces, all steps. */
  readonly ms: number;
  /** ms / steps. */
  readonly msPerStep: number;
}

/** Links of an in-memory {@link RingSimulator}. */
export const simulatedLinks: MakeLinks = (peers) =>
  new RingSimulator({ peers });

/**
 * Runs the benchmark over the links `makeLinks` gives: `steps` steps of
 * fresh random vectors, every peer with its own planner, each result
 * checked against a float64 reference sum and against the other peers'.
 */
export async function runAllReduceBench(
  options: AllReduceBenchOptions,
  makeLinks: MakeLinks = simulatedLinks,
): Promise<AllReduceBenchReport> {
  checkOptions(options);
  const { peers, size: n, steps, algorithm } = options;
  const k = Math.min(n, Math.round(options.density * n));
  const random = seededRandom(options.seed);
  const planners = Array.from({ length: peers }, () => new AutoPlanner());
  const ring = await makeLinks(peers);
  const chosen: AllReduceAlgorithm[] = [];
  const sentByPeer = new Float64Array(peers);
  let identical = true;
  let maxAbsError = 0;
  let unionTotal = 0;
  let lowerBoundTotal = 0;
  let ms = 0;
  try {
    for (let step = 0; step < steps; step++) {
      const vectors = syntheticVectors({ ...options, n, k, random });
      const startMs = performance.now();
      const results = await runSimulatedStep(ring, {
        room: 'bench',
        step,
        inputs: vectors.map((vector) => ({ vector, skip: false })),
        options: (i) => ({ algorithm, planner: planners[i], k }),
      });
      ms += performance.now() - startMs;

      chosen.push(results[0].algorithm);
      results.forEach((result, i) => (sentByPeer[i] += result.bytesSent));
      const check = checkResults(vectors, results);
      identical &&= check.identical;
      maxAbsError = Math.max(maxAbsError, check.maxAbsError);
      unionTotal += results[0].unionSize;
      lowerBoundTotal += lowerBoundBytes(vectors);
    }
  } finally {
    await ring.close();
  }
  const bytesPerPeer = Math.max(...sentByPeer) / steps;
  const lowerBound = lowerBoundTotal / steps;
  return {
    algorithm,
    chosen,
    peers,
    size: n,
    density: options.density,
    k,
    overlap: options.overlap,
    steps,
    identical,
    maxAbsError,
    bytesPerPeer,
    unionSize: unionTotal / steps,
    lowerBoundBytes: lowerBound,
    ratioToLowerBound: lowerBound > 0 ? bytesPerPeer / lowerBound : 0,
    ms,
    msPerStep: ms / steps,
  };
}

/**
 * What the busiest peer must at least receive to learn the sum exactly,
 * with 4-byte indices and values: 8 bytes for each coordinate of the sum
 * where it has no entry of its own, 4 for each of its own entries that
 * another peer also has. The maximum over peers.
 */
export function lowerBoundBytes(vectors: readonly SparseVector[]): number {
  if (vectors.length === 0) return 0;
  const counts = new Uint16Array(vectors[0].n);
  for (const { indices } of vectors) {
    for (let i = 0; i < indices.length; i++) counts[indices[i]]++;
  }
  let union = 0;
  for (let i = 0; i < counts.length; i++) if (counts[i] > 0) union++;
  let most = 0;
  for (const { indices } of vectors) {
    let shared = 0;
    for (let i = 0; i < indices.length; i++) {
      if (counts[indices[i]] > 1) shared++;
    }
    most = Math.max(most, 8 * (union - indices.length) + 4 * shared);
  }
  return most;
}

/** Replicas bit-equal, and the largest error against a float64 sum. */
export function checkResults(
  vectors: readonly SparseVector[],
  results: readonly AllReduceResult[],
): { identical: boolean; maxAbsError: number } {
  const n = vectors[0].n;
  const reference = new Float64Array(n);
  for (const { indices, values } of vectors) {
    for (let i = 0; i < indices.length; i++) reference[indices[i]] += values[i];
  }
  const first = new Uint32Array(resultToDense(results[0]).buffer);
  let identical = true;
  for (const result of results.slice(1)) {
    const bits = new Uint32Array(resultToDense(result).buffer);
    for (let i = 0; i < n && identical; i++) identical = bits[i] === first[i];
  }
  const sum = new Float32Array(first.buffer);
  let maxAbsError = 0;
  for (let i = 0; i < n; i++) {
    maxAbsError = Math.max(maxAbsError, Math.abs(sum[i] - reference[i]));
  }
  return { identical, maxAbsError };
}

function checkOptions(options: AllReduceBenchOptions): void {
  const { peers, size, density, overlap, steps, algorithm } = options;
  const fail = (setting: string, expected: string, value: unknown): never => {
    throw topkError(
      'ERR_BAD_CONFIG',
      `bench allreduce: expected --${setting} ${expected}, got ${String(value)}`,
      { setting, received: value },
    );
  };
  if (!Number.isSafeInteger(peers) || peers < 1 || peers > 1000) {
    fail('peers', 'to be an integer from 1 to 1000', peers);
  }
  if (!Number.isSafeInteger(size) || size < 0 || size > 2 ** 28) {
    fail('size', 'to be an integer from 0 to 2^28', size);
  }
  if (!(density >= 0 && density <= 1)) fail('density', 'in [0, 1]', density);
  if (!(overlap >= 0 && overlap <= 1)) fail('overlap', 'in [0, 1]', overlap);
  if (!Number.isSafeInteger(steps) || steps < 1) {
    fail('steps', 'to be an integer >= 1', steps);
  }
  if (algorithm !== 'auto' && !ALL_REDUCE_ALGORITHMS.includes(algorithm)) {
    fail('algorithm', 'to be auto, sparse-ring, allgather or dense', algorithm);
  }
}

interface AllReduceBenchFlags extends AllReduceBenchOptions {
  readonly transport: 'sim' | 'webrtc';
  readonly webrtc: string;
  readonly latencyMs?: number;
  readonly bandwidth?: number;
  readonly json?: boolean;
}

/** Adds `allreduce` to the `bench` command. */
export function registerAllReduceBench(bench: Command): void {
  bench
    .command('allreduce')
    .description(
      'sum random sparse vectors over P simulated peers, or P peer ' +
        'processes over WebRTC',
    )
    .addOption(
      new Option('--transport <kind>', 'simulated links or real WebRTC')
        .choices(['sim', 'webrtc'])
        .default('sim'),
    )
    .option(
      '--webrtc <binding>',
      'with webrtc: roamhq or node-datachannel',
      'roamhq',
    )
    .requiredOption('--peers <P>', 'number of peers', Number)
    .requiredOption('--size <N>', 'vector length n', Number)
    .requiredOption('--density <D>', 'K / n, from 0 to 1', Number)
    .addOption(
      new Option('--algorithm <name>', 'all-reduce algorithm')
        .choices(['auto', ...ALL_REDUCE_ALGORITHMS])
        .default('auto'),
    )
    .option('--overlap <F>', 'fraction of indices shared by all', Number, 0)
    .option('--steps <S>', 'steps to measure', Number, 3)
    .option('--seed <seed>', 'seed of the random vectors', Number, 1)
    .option('--latency-ms <ms>', 'one-way delay of each simulated link', Number)
    .option(
      '--bandwidth <bytesPerSecond>',
      'bytes per second of each simulated link (default: unlimited)',
      Number,
    )
    .option('--json', 'print one JSON object')
    .action(async (flags: AllReduceBenchFlags) => {
      try {
        if (flags.transport === 'webrtc') {
          const { runWebRtcAllReduceBench } =
            await import('./allreduce-webrtc.ts');
          const report = await runWebRtcAllReduceBench({
            ...flags,
            webrtc: parseBindingName(flags.webrtc),
          });
          console.log(
            flags.json ? JSON.stringify(report) : formatReport(report),
          );
          return;
        }
        const report = await runAllReduceBench(flags, (peers) => {
          return new RingSimulator({
            peers,
            latencyMs: flags.latencyMs,
            bandwidthBytesPerSecond: flags.bandwidth,
          });
        });
        console.log(flags.json ? JSON.stringify(report) : formatReport(report));
      } catch (error) {
        if (!isTopkError(error)) throw error;
        console.error(`error ${error.code}: ${error.message}`);
        process.exitCode = 1;
      }
    });
}

function formatReport(report: AllReduceBenchReport): string {
  const bytes = (value: number): string => Math.round(value).toLocaleString();
  return [
    `all-reduce ${report.algorithm} (ran: ${[...new Set(report.chosen)].join(', ')})`,
    `  peers ${report.peers}, n ${report.size.toLocaleString()}, ` +
      `density ${report.density}, K ${report.k}, overlap ${report.overlap}, ` +
      `steps ${report.steps}`,
    `  bytes sent by busiest peer per step: ${bytes(report.bytesPerPeer)}`,
    `  lower bound: ${bytes(report.lowerBoundBytes)} ` +
      `(ratio ${report.ratioToLowerBound.toFixed(2)})`,
    `  union size: ${bytes(report.unionSize)}`,
    `  identical replicas: ${report.identical}, ` +
      `max abs error: ${report.maxAbsError.toExponential(2)}`,
    `  time: ${report.msPerStep.toFixed(1)} ms per step`,
  ].join('\n');
}

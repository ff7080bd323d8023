/**
 * The room config: everything about a training job that every peer of a
 * room must agree on (model, data set, sparsity, learning rate, the
 * all-reduce algorithm, limits, ICE servers). It is fixed when the room is
 * created and handed to each peer that joins. Validated here, once, with
 * defaults filled in, so a typo or an out-of-range value is caught when the
 * config is read, not half-way through training (case 14).
 *
 * Browser-safe: no node: imports.
 */
import { z } from 'zod';

import { kForDensity } from './compressor-config.ts';
import { topkError } from './errors.ts';
import { parseWithSchema } from './schema-errors.ts';

/** Models a room can train, by name. */
export const MODEL_NAMES = ['linreg', 'logreg', 'mlp', 'cnn'] as const;
/** Data sets a room can train on, by name. */
export const DATASET_NAMES = [
  'mnist',
  'fashion-mnist',
  'spam',
  'synthetic-linreg',
] as const;
/** How the sparse vectors are summed around the ring. */
export const ALGORITHM_NAMES = [
  'auto',
  'sparse-ring',
  'allgather',
  'dense',
] as const;

/** The density the main job uses when neither density nor k is given. */
export const DEFAULT_DENSITY = 0.01;

const positiveInt = (expected: string) =>
  z.number({ error: expected }).int().min(1);

/** How the learning rate changes with the step. */
const LrScheduleSchema = z.discriminatedUnion('kind', [
  /** The same rate at every step. */
  z.strictObject({ kind: z.literal('constant') }),
  /** Multiply the rate by `factor` every `every` steps. */
  z.strictObject({
    kind: z.literal('step'),
    every: positiveInt('an integer >= 1 (steps)'),
    factor: z.number({ error: 'a number in (0, 1]' }).gt(0).max(1),
  }),
  /** `learningRate * t^-theta` with t = step + 1 (the paper's decay). */
  z.strictObject({
    kind: z.literal('inverse-power'),
    theta: z.number({ error: 'a number in (0, 1]' }).gt(0).max(1),
  }),
]);

const LimitsSchema = z
  .strictObject({
    /** Most peers in the room's ring. */
    maxPeers: z
      .number({ error: 'an integer in [1, 1024]' })
      .int()
      .min(1)
      .max(1024)
      .default(32),
    /** Period of the application heartbeat on data channels. */
    heartbeatMs: z
      .number({ error: 'an integer in [50, 60000] (milliseconds)' })
      .int()
      .min(50)
      .max(60_000)
      .default(1000),
    /** Silence after which a peer counts as gone (case 9: not 45 s). */
    peerTimeoutMs: z
      .number({ error: 'an integer in [200, 600000] (milliseconds)' })
      .int()
      .min(200)
      .max(600_000)
      .default(5000),
    /** Longest one all-reduce step may take before it is aborted. */
    stepTimeoutMs: z
      .number({ error: 'an integer in [100, 3600000] (milliseconds)' })
      .int()
      .min(100)
      .max(3_600_000)
      .default(30_000),
    /** Largest logical peer-to-peer message accepted. */
    maxMessageBytes: z
      .number({ error: 'an integer in [1024, 1073741824] (bytes)' })
      .int()
      .min(1024)
      .max(2 ** 30)
      .default(64 * 1024 * 1024),
    /**
     * How long a peer ejected from the ring (silent, malformed,
     * unreachable, straggler) stays benched before the server puts it
     * back; doubled for each further ejection of the same peer, up to
     * 16 times. 0 puts it back at once.
     */
    benchMs: z
      .number({ error: 'an integer in [0, 3600000] (milliseconds)' })
      .int()
      .min(0)
      .max(3_600_000)
      .default(10_000),
    /**
     * The straggler deadline of a step: a peer waits for its previous
     * peer's first all-reduce message (which depends on nothing but that
     * peer's own gradient) at most this many times its own recent median
     * compute time...
     */
    stragglerFactor: z
      .number({ error: 'a number in [1.5, 1000]' })
      .min(1.5)
      .max(1000)
      .default(4),
    /** ...and at least this long; never longer than stepTimeoutMs. */
    stragglerMinMs: z
      .number({ error: 'an integer in [10, 3600000] (milliseconds)' })
      .int()
      .min(10)
      .max(3_600_000)
      .default(1000),
    /** Missed straggler deadlines that drop a peer from the ring... */
    stragglerStrikes: z
      .number({ error: 'an integer in [1, 100]' })
      .int()
      .min(1)
      .max(100)
      .default(3),
    /** ...when they fall within this many steps. */
    stragglerWindowSteps: z
      .number({ error: 'an integer in [1, 100000] (steps)' })
      .int()
      .min(1)
      .max(100_000)
      .default(20),
  })
  .refine((l) => l.peerTimeoutMs >= 2 * l.heartbeatMs, {
    path: ['peerTimeoutMs'],
    error: 'at least twice heartbeatMs, so one lost heartbeat is no timeout',
  })
  .refine((l) => l.stragglerWindowSteps >= l.stragglerStrikes, {
    path: ['stragglerWindowSteps'],
    error: 'at least stragglerStrikes, or no peer could collect them',
  });

const ICE_URL = /^(stun|stuns|turn|turns):\S{1,500}$/;
const iceUrl = z
  .string({ error: 'a stun:, stuns:, turn: or turns: URL' })
  .regex(ICE_URL);

const IceServerSchema = z.strictObject({
  urls: z.union([iceUrl, z.array(iceUrl).min(1).max(8)], {
    error: 'a stun:, stuns:, turn: or turns: URL, or a list of 1-8 of them',
  }),
  username: z.string().max(256).optional(),
  credential: z.string().max(256).optional(),
});

/** The room config schema; parse with {@link parseRoomConfig}. */
export const RoomConfigSchema = z
  .strictObject({
    model: z.enum(MODEL_NAMES).default('mlp'),
    dataset: z.enum(DATASET_NAMES).default('mnist'),
    /** Fraction K/n of coordinates each peer sends; exclusive with `k`. */
    density: z.number({ error: 'a number in [0, 1]' }).min(0).max(1).optional(),
    /** Absolute K; clamped to the vector's length (case 14). */
    k: z.number({ error: 'an integer >= 0' }).int().min(0).optional(),
    learningRate: z
      .number({ error: 'a number > 0' })
      .gt(0)
      .max(1e6)
      .default(0.1),
    lrSchedule: LrScheduleSchema.default({ kind: 'constant' }),
    batchSize: z
      .number({ error: 'an integer in [1, 65536]' })
      .int()
      .min(1)
      .max(65_536)
      .default(64),
    epochs: z
      .number({ error: 'an integer in [1, 100000]' })
      .int()
      .min(1)
      .max(100_000)
      .default(1),
    /**
     * Peers that must be in the ring before step 0 runs: a readiness
     * barrier, so fast peers do not train alone while slow ones connect.
     */
    minPeers: z
      .number({ error: 'an integer in [1, 1024]' })
      .int()
      .min(1)
      .max(1024)
      .default(1),
    algorithm: z.enum(ALGORITHM_NAMES).default('auto'),
    /** 'exact' is the true TopK; 'fast' may pick by a sampled threshold. */
    selection: z.enum(['fast', 'exact']).default('fast'),
    /** TopK over the whole flattened model, or per model variable. */
    topkScope: z.enum(['global', 'per-tensor']).default('global'),
    /**
     * Train on the first N samples of the data set only (all of them when
     * unset). Part of the room so that every peer, and the shards the
     * server serves to tabs, cut the same training set.
     */
    trainSamples: z
      .number({ error: 'an integer in [1, 1000000000] (samples)' })
      .int()
      .min(1)
      .max(1_000_000_000)
      .optional(),
    seed: z
      .number({ error: 'an integer in [0, 4294967295]' })
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(1),
    limits: LimitsSchema.prefault({}),
    iceServers: z.array(IceServerSchema).max(16).default([]),
    /** Checkpoint every N steps; 0 means only at the end. */
    checkpointEvery: z
      .number({ error: 'an integer >= 0 (steps)' })
      .int()
      .min(0)
      .default(0),
  })
  .refine((c) => c.density === undefined || c.k === undefined, {
    path: ['k'],
    error: 'no k when density is given (set one of them)',
  })
  .transform((c) =>
    c.density === undefined && c.k === undefined
      ? { ...c, density: DEFAULT_DENSITY }
      : c,
  );

/** A validated room config with every default filled in. */
export type RoomConfig = z.output<typeof RoomConfigSchema>;
/** What a user may write: every setting optional. */
export type RoomConfigInput = z.input<typeof RoomConfigSchema>;
/** A learning-rate schedule. */
export type LrSchedule = z.output<typeof LrScheduleSchema>;
/** The limits part of a room config. */
export type RoomLimits = z.output<typeof LimitsSchema>;
/** One STUN or TURN server, in the shape RTCPeerConnection takes. */
export type IceServer = z.output<typeof IceServerSchema>;

/**
 * Validates `input` and fills in defaults. Throws `ERR_BAD_CONFIG` whose
 * message names each bad setting, what it expected and what it got
 * ("density: expected a number in [0, 1], got 1.5").
 */
export function parseRoomConfig(input: unknown = {}): RoomConfig {
  return parseWithSchema(RoomConfigSchema, input, 'ERR_BAD_CONFIG', 'config');
}

/** The main job's config: `mlp` on `mnist` at density 0.01. */
export function defaultRoomConfig(): RoomConfig {
  return parseRoomConfig({});
}

/**
 * K for a vector of `n` coordinates: the absolute `k`, or the density rule
 * of the compressor (`kForDensity`: rounded, at least 1 for a density above
 * zero), clamped to `[0, n]` so a K above the vector's length means dense
 * (case 14).
 */
export function topkCount(
  config: Pick<RoomConfig, 'density' | 'k'>,
  n: number,
): number {
  if (config.k !== undefined) return Math.min(n, Math.max(0, config.k));
  return kForDensity(config.density ?? DEFAULT_DENSITY, n);
}

/**
 * The learning rate at 0-based `step` under the config's schedule. Step
 * decay multiplies by `factor` once per `every` steps; inverse power is
 * `learningRate * (step + 1)^-theta`.
 */
export function learningRateAt(
  config: Pick<RoomConfig, 'learningRate' | 'lrSchedule'>,
  step: number,
): number {
  const schedule = config.lrSchedule;
  switch (schedule.kind) {
    case 'constant':
      return config.learningRate;
    case 'step':
      return (
        config.learningRate *
        schedule.factor ** Math.floor(step / schedule.every)
      );
    case 'inverse-power':
      return config.learningRate * (step + 1) ** -schedule.theta;
  }
}

/**
 * The first setting in which two configs differ, as "path: a vs b", or
 * null when they are equal. Used to name the difference when a joining
 * peer brings a config other than the room's.
 */
export function describeConfigDifference(
  roomConfig: RoomConfig,
  other: RoomConfig,
): string | null {
  return firstDifference(roomConfig, other, '');
}

function firstDifference(a: unknown, b: unknown, path: string): string | null {
  if (Object.is(a, b)) return null;
  const bothObjects =
    typeof a === 'object' && a !== null && typeof b === 'object' && b !== null;
  if (!bothObjects || Array.isArray(a) !== Array.isArray(b)) {
    return (
      `${path || 'config'}: room has ${JSON.stringify(a)}, ` +
      `peer has ${JSON.stringify(b)}`
    );
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of [...keys].sort()) {
    const sub = Array.isArray(a)
      ? `${path}[${key}]`
      : path
        ? `${path}.${key}`
        : key;
    const found = firstDifference(
      (a as Record<string, unknown>)[key],
      (b as Record<string, unknown>)[key],
      sub,
    );
    if (found !== null) return found;
  }
  return null;
}

/**
 * The training samples a peer of `room` uses: the room's `trainSamples`
 * when it has one, else the peer's own `--max-train` (all when neither).
 * A peer whose `--max-train` differs from the room's would cut another
 * training set, and shards with it: `ERR_MISMATCH`, before training.
 */
export function trainSamplesFor(
  config: RoomConfig,
  room: string,
  maxTrain: number | undefined,
): number | undefined {
  if (
    config.trainSamples !== undefined &&
    maxTrain !== undefined &&
    maxTrain !== config.trainSamples
  ) {
    throw topkError(
      'ERR_MISMATCH',
      `room ${room} trains on the first ${config.trainSamples} samples, ` +
        `this peer's --max-train is ${maxTrain}: drop the flag or make it ` +
        'equal',
      {
        setting: 'trainSamples',
        expected: config.trainSamples,
        received: maxTrain,
      },
    );
  }
  return config.trainSamples ?? maxTrain;
}

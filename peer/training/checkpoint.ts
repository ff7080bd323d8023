/**
 * Checkpoints of one peer: the model in TensorFlow.js format (model.json
 * plus weights.bin, loadable by `tf.loadLayersModel` in any TF.js
 * program) and what resuming needs besides: the step, the generation, the
 * residual and the config. The batch order is a pure function of (seed,
 * generation, ring index, step), so those numbers are the whole generator
 * state. Node-only (files).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { parseRoomConfig, type RoomConfig } from '../../shared/config.ts';
import { describeValue, topkError } from '../../shared/errors.ts';
import { modelHash } from '../models/fingerprint.ts';
import { readWeights } from '../models/weights.ts';
import type { Trainer } from './trainer.ts';

/** Format version of state.json. */
const CHECKPOINT_VERSION = 1;

/** What state.json holds. */
export interface CheckpointState {
  readonly version: number;
  readonly room: string;
  /** The next step to run. */
  readonly step: number;
  /** The generation the checkpoint was written in. */
  readonly generation: number;
  /** Ring index and P then (the batch order depends on them). */
  readonly ringIndex: number;
  readonly peers: number;
  /** Hash of the weights, checked on load. */
  readonly modelHash: string;
  /** Coordinates of the model. */
  readonly n: number;
  readonly config: RoomConfig;
}

/** A checkpoint read back. */
export interface LoadedCheckpoint {
  readonly state: CheckpointState;
  readonly weights: Float32Array;
  readonly residual: Float32Array;
}

/**
 * Writes `trainer`'s checkpoint into `dir` (created if needed). Files are
 * written under temporary names and renamed, so a crash mid-write never
 * leaves a checkpoint that looks whole but is not.
 */
export async function saveCheckpoint(
  dir: string,
  trainer: Trainer,
  where: { room: string; generation: number; ringIndex: number; peers: number },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await trainer.model.save(
    tf.io.withSaveHandler(async (saved) => {
      artifacts = saved;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(saved) };
    }),
  );
  if (artifacts?.weightData === undefined) {
    throw topkError(
      'ERR_INTERNAL',
      'saveCheckpoint: the model saved no weights',
    );
  }
  const modelJson = {
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [
      { paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] },
    ],
  };
  const state: CheckpointState = {
    version: CHECKPOINT_VERSION,
    room: where.room,
    step: trainer.step,
    generation: where.generation,
    ringIndex: where.ringIndex,
    peers: where.peers,
    modelHash: trainer.modelHash(),
    n: trainer.n,
    config: trainer.config,
  };
  const weightData = tf.io.concatenateArrayBuffers(
    Array.isArray(artifacts.weightData)
      ? artifacts.weightData
      : [artifacts.weightData],
  );
  await writeAtomically(dir, 'weights.bin', new Uint8Array(weightData));
  await writeAtomically(dir, 'model.json', JSON.stringify(modelJson));
  await writeAtomically(
    dir,
    'residual.bin',
    new Uint8Array(trainer.compressor.saveResidual().buffer),
  );
  await writeAtomically(dir, 'state.json', JSON.stringify(state, null, 2));
}

/**
 * Reads the checkpoint in `dir`. Throws `ERR_BAD_CHECKPOINT` naming the
 * file and the problem when anything is missing, malformed or does not
 * match (weights hash, lengths).
 */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const state = await readState(dir);
  const modelJson = JSON.parse(
    await readCheckpointFile(dir, 'model.json', 'utf8'),
  ) as { modelTopology: object; weightsManifest: { weights: unknown[] }[] };
  const weightBytes = await readCheckpointFile(dir, 'weights.bin');
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest.flatMap(
        (group) => group.weights,
      ) as tf.io.WeightsManifestEntry[],
      weightData: toArrayBuffer(weightBytes),
    }),
  );
  try {
    const hash = modelHash(model);
    if (hash !== state.modelHash) {
      throw bad(dir, 'weights.bin', `weights hash ${state.modelHash}`, hash);
    }
    const weights = readWeights(model);
    const residualBytes = await readCheckpointFile(dir, 'residual.bin');
    if (residualBytes.byteLength !== state.n * 4) {
      throw bad(
        dir,
        'residual.bin',
        `${state.n * 4} bytes`,
        `${residualBytes.byteLength}`,
      );
    }
    const residual = new Float32Array(toArrayBuffer(residualBytes));
    return { state, weights, residual };
  } finally {
    model.dispose();
  }
}

async function readState(dir: string): Promise<CheckpointState> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readCheckpointFile(dir, 'state.json', 'utf8'));
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw bad(dir, 'state.json', 'JSON', 'text that does not parse');
    }
    throw error;
  }
  const state = raw as Partial<CheckpointState>;
  if (state.version !== CHECKPOINT_VERSION) {
    throw bad(
      dir,
      'state.json',
      `version ${CHECKPOINT_VERSION}`,
      describeValue(state.version),
    );
  }
  for (const field of ['step', 'generation', 'ringIndex', 'peers', 'n']) {
    const value = (state as Record<string, unknown>)[field];
    if (!Number.isSafeInteger(value) || (value as number) < 0) {
      throw bad(
        dir,
        'state.json',
        `${field} as an integer >= 0`,
        describeValue(value),
      );
    }
  }
  if (typeof state.modelHash !== 'string' || typeof state.room !== 'string') {
    throw bad(dir, 'state.json', 'modelHash and room', 'missing fields');
  }
  return {
    ...(state as CheckpointState),
    config: parseRoomConfig(state.config),
  };
}

async function readCheckpointFile(
  dir: string,
  name: string,
): Promise<Uint8Array>;
async function readCheckpointFile(
  dir: string,
  name: string,
  encoding: 'utf8',
): Promise<string>;
async function readCheckpointFile(
  dir: string,
  name: string,
  encoding?: 'utf8',
): Promise<Uint8Array | string> {
  try {
    return encoding === undefined
      ? new Uint8Array(await readFile(path.join(dir, name)))
      : await readFile(path.join(dir, name), encoding);
  } catch (error) {
    throw topkError(
      'ERR_BAD_CHECKPOINT',
      `checkpoint ${dir}: cannot read ${name} (${(error as Error).message})`,
      { dir, file: name },
      error,
    );
  }
}

async function writeAtomically(
  dir: string,
  name: string,
  data: Uint8Array | string,
): Promise<void> {
  const target = path.join(dir, name);
  await writeFile(`${target}.tmp`, data);
  await rename(`${target}.tmp`, target);
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(
    bytes.byteOffset,
    bytes.byteOffset + bytes.byteLength,
  ) as ArrayBuffer;
}

function bad(dir: string, file: string, expected: string, received: string) {
  return topkError(
    'ERR_BAD_CHECKPOINT',
    `checkpoint ${dir}: expected ${expected} in ${file}, got ${received}`,
    { dir, file, expected, received },
  );
}

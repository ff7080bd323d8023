/**
 * `topk-ring run` (and `npm start`, which runs it with no flags): an
 * embedded signaling server and N peer processes training one model over
 * WebRTC on loopback. The defaults are the main job: 3 peers, `mlp` on
 * `mnist` at density 0.01.
 */
import type { Command } from 'commander';

import { ALGORITHM_NAMES, type RoomConfigInput } from '../../shared/config.ts';
import { describeRun, launch } from '../launcher/launcher.ts';
import { createProgressDisplay } from './progress.ts';
import { BACKEND_CHOICES } from '../tf/backend.ts';
import { DEFAULT_WEBRTC_BINDING, WEBRTC_BINDINGS } from '../webrtc/bindings.ts';
import {
  choiceOption,
  integerOption,
  numberOption,
  reportFailure,
  roomOption,
  stopSignal,
} from './options.ts';

interface RunOptions {
  token?: string;
  peers: number;
  minPeers?: number;
  model: string;
  dataset: string;
  density?: number;
  k?: number;
  epochs: number;
  batchSize?: number;
  lr?: number;
  algorithm?: string;
  seed?: number;
  port: number;
  host: string;
  room: string;
  webrtc: string;
  backend: string;
  maxTrain?: number;
  maxTest?: number;
  runsDir: string;
  json?: boolean;
}

/**
 * Learning rates for models whose gradients the room's default (0.1)
 * blows up: linreg on synthetic-linreg's 1,024 features diverges at 0.1
 * (test loss 1e13 after 5 epochs) and reaches ~0.015 at 0.01.
 */
const MODEL_LEARNING_RATES: Partial<Record<string, number>> = {
  linreg: 0.01,
};

/** The main job's settings, tuned on the dense baseline. */
export const MAIN_JOB = {
  peers: 3,
  model: 'mlp',
  dataset: 'mnist',
  density: 0.01,
  epochs: 5,
  batchSize: 32,
  learningRate: 0.1,
} as const;

/** Adds `run` to `program`. */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description(
      'train with N local peers over WebRTC (the main job by default)',
    )
    .option(
      '--peers <n>',
      'peer processes',
      integerOption(1, 64),
      MAIN_JOB.peers,
    )
    .option(
      '--min-peers <n>',
      'ring size to wait for before training (default --peers); more ' +
        'waits for peers from elsewhere, e.g. browser tabs',
      integerOption(1, 1024),
    )
    .option('--model <name>', 'linreg, logreg, mlp or cnn', MAIN_JOB.model)
    .option(
      '--dataset <name>',
      'mnist, fashion-mnist, spam or synthetic-linreg',
      MAIN_JOB.dataset,
    )
    .option('--density <d>', 'K/n, in [0, 1]', numberOption(0, 1))
    .option('--k <k>', 'K as a count (instead of --density)', integerOption(0))
    .option(
      '--epochs <e>',
      'length of the run: passes over the training set by a ring of ' +
        '--min-peers (more peers make more passes in as many steps)',
      integerOption(1),
      MAIN_JOB.epochs,
    )
    .option('--batch-size <b>', 'samples per peer per step', integerOption(1))
    .option('--lr <rate>', 'learning rate', numberOption(Number.MIN_VALUE, 1e6))
    .option('--algorithm <name>', ALGORITHM_NAMES.join(', '))
    .option(
      '--seed <seed>',
      'seed of weights, shards and batches',
      integerOption(0),
    )
    .option(
      '--port <port>',
      'port of the embedded server (0: any free)',
      integerOption(0, 65535),
      0,
    )
    .option('--host <host>', 'interface of the embedded server', '127.0.0.1')
    .option(
      '--room <name>',
      'room name, so more peers can join',
      roomOption,
      'main',
    )
    .option(
      '--token <secret>',
      'peers joining the room (local ones included) must present it',
    )
    .option(
      '--webrtc <binding>',
      'roamhq or node-datachannel',
      choiceOption(WEBRTC_BINDINGS),
      DEFAULT_WEBRTC_BINDING,
    )
    .option(
      '--backend <name>',
      'auto, wasm, cpu or tensorflow',
      choiceOption(BACKEND_CHOICES),
      'auto',
    )
    .option(
      '--max-train <n>',
      "train on the first n training samples (the room's trainSamples)",
      integerOption(1),
    )
    .option(
      '--max-test <n>',
      'use only the first n test samples',
      integerOption(1),
    )
    .option('--runs-dir <dir>', 'where run folders are written', 'runs')
    .option('--json', 'print the summary as JSON, no live display')
    .action(async (options: RunOptions) => {
      const stop = stopSignal();
      try {
        const summary = await launch({
          peers: options.peers,
          minPeers: options.minPeers,
          config: roomConfig(options),
          port: options.port,
          host: options.host,
          token: options.token,
          room: options.room,
          webrtc: options.webrtc,
          backend: options.backend,
          maxTrain: options.maxTrain,
          maxTest: options.maxTest,
          runsDir: options.runsDir,
          display: createProgressDisplay(options.peers, {
            quiet: options.json === true,
          }),
          signal: stop.signal,
        });
        if (options.json === true) {
          console.log(JSON.stringify(summary, null, 2));
        } else {
          for (const line of describeRun(summary)) console.log(line);
        }
        if (!summary.identical) process.exitCode = 2;
      } catch (error) {
        reportFailure(error);
      } finally {
        stop.dispose();
      }
    });
}

function roomConfig(options: RunOptions): RoomConfigInput {
  const isMainModel =
    options.model === MAIN_JOB.model && options.dataset === MAIN_JOB.dataset;
  const density =
    options.k === undefined
      ? (options.density ?? MAIN_JOB.density)
      : options.density;
  return {
    model: options.model as RoomConfigInput['model'],
    dataset: options.dataset as RoomConfigInput['dataset'],
    ...(density === undefined ? {} : { density }),
    ...(options.k === undefined ? {} : { k: options.k }),
    epochs: options.epochs,
    ...(options.batchSize !== undefined
      ? { batchSize: options.batchSize }
      : isMainModel
        ? { batchSize: MAIN_JOB.batchSize }
        : {}),
    ...(options.lr !== undefined
      ? { learningRate: options.lr }
      : isMainModel
        ? { learningRate: MAIN_JOB.learningRate }
        : MODEL_LEARNING_RATES[options.model] !== undefined
          ? { learningRate: MODEL_LEARNING_RATES[options.model] }
          : {}),
    ...(options.algorithm === undefined
      ? {}
      : { algorithm: options.algorithm as RoomConfigInput['algorithm'] }),
    ...(options.seed === undefined ? {} : { seed: options.seed }),
  };
}

/**
 * `topk-ring chaos` (`npm run chaos`): a signaling server and 4 peer
 * processes train mlp on mnist while, every 20-40 s for 5 minutes, a
 * random peer is killed (SIGKILL) and restarted 3 s later; then checks
 * that every live peer ends with the same weights and, with `--baseline`
 * (a run of the same job without faults first), that the test accuracy is
 * within one point of the baseline's. Prints the faults, the recoveries
 * and how long they took. As root on Linux it re-executes itself in a
 * network namespace of its own with loopback only (`--no-isolate` keeps
 * the host's loopback). Exits 2 when the replicas differ, 3 when the
 * accuracy is off by more than a point, 4 when no fault was injected.
 */
import type { Command } from 'commander';

import { topkError } from '../../shared/errors.ts';
import { formatBytes } from '../../shared/format.ts';
import {
  ACCURACY_TOLERANCE_POINTS,
  compareAccuracy,
  runChaos,
} from '../launcher/chaos.ts';
import {
  isIsolated,
  isolationUnavailable,
  reexecIsolated,
} from '../launcher/isolation.ts';
import { launch } from '../launcher/launcher.ts';
import { BACKEND_CHOICES } from '../tf/backend.ts';
import { DEFAULT_WEBRTC_BINDING, WEBRTC_BINDINGS } from '../webrtc/bindings.ts';
import {
  choiceOption,
  integerOption,
  numberOption,
  reportFailure,
} from './options.ts';

interface ChaosCliOptions {
  peers: number;
  duration: number;
  killMin: number;
  killMax: number;
  restartAfter: number;
  epochs: number;
  density: number;
  seed: number;
  webrtc: string;
  backend: string;
  maxTrain?: number;
  baseline?: boolean;
  logDir?: string;
  json?: boolean;
  isolate: boolean;
}

/** Adds `chaos` to `program`. */
export function registerChaosCommand(program: Command): void {
  program
    .command('chaos')
    .description('train while peers are killed and restarted; check agreement')
    .option('--peers <n>', 'peer processes', integerOption(2, 16), 4)
    .option(
      '--duration <s>',
      'seconds during which faults are injected',
      integerOption(1),
      300,
    )
    .option(
      '--kill-min <s>',
      'shortest time between two kills',
      numberOption(0.5, 3600),
      20,
    )
    .option(
      '--kill-max <s>',
      'longest time between two kills',
      numberOption(0.5, 3600),
      40,
    )
    .option(
      '--restart-after <s>',
      'a killed peer comes back after this long',
      numberOption(0, 3600),
      3,
    )
    .option(
      '--epochs <e>',
      'length of the run (mlp on mnist); it must outlast the fault window',
      integerOption(1),
      // About 12 s an epoch with 4 peers on 2 cores: some 6 minutes.
      28,
    )
    .option('--density <d>', 'K/n', numberOption(0, 1), 0.01)
    .option(
      '--seed <seed>',
      'seed of the run and of the fault schedule',
      integerOption(0),
      1,
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
      'use only the first n training samples',
      integerOption(1),
    )
    .option('--baseline', 'first run the same job without faults')
    .option('--log-dir <dir>', "write each peer's log (stderr) here")
    .option(
      '--no-isolate',
      "run on the host's loopback, not in a network namespace of its own",
    )
    .option('--json', 'print the summary as JSON')
    .action(async (options: ChaosCliOptions) => {
      try {
        await chaos(options);
      } catch (error) {
        reportFailure(error);
      }
    });
}

async function chaos(options: ChaosCliOptions): Promise<void> {
  if (options.killMin > options.killMax) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `--kill-min ${options.killMin} is above --kill-max ${options.killMax}`,
      { setting: 'kill-min' },
    );
  }
  const say = (line: string): void => {
    if (options.json !== true) console.log(line);
  };
  let network: string;
  if (isIsolated()) {
    network = 'isolated: own network namespace, loopback only';
  } else {
    const unavailable = options.isolate ? isolationUnavailable() : 'asked';
    if (unavailable === null) {
      say('network: re-running in a network namespace of its own');
      process.exitCode = await reexecIsolated();
      return;
    }
    network =
      unavailable === 'asked'
        ? "not isolated (--no-isolate): the host's loopback"
        : `not isolated (${unavailable}): the host's loopback`;
  }
  say(`network: ${network}`);
  const config = {
    model: 'mlp' as const,
    dataset: 'mnist' as const,
    density: options.density,
    epochs: options.epochs,
    batchSize: 32,
    learningRate: 0.1,
    seed: options.seed,
  };
  let baselineAccuracy: number | undefined;
  if (options.baseline === true) {
    say('baseline run without faults...');
    const baseline = await launch({
      peers: options.peers,
      config,
      port: 0,
      host: '127.0.0.1',
      room: 'baseline',
      webrtc: options.webrtc,
      backend: options.backend,
      maxTrain: options.maxTrain,
      runsDir: 'runs',
    });
    baselineAccuracy = baseline.testAccuracy;
    say(
      `baseline: accuracy ${percent(baselineAccuracy)}, ${formatBytes(baseline.bytesSent)} sent`,
    );
  }
  const summary = await runChaos({
    peers: options.peers,
    config,
    faultWindowMs: options.duration * 1000,
    killEveryMs: [options.killMin * 1000, options.killMax * 1000],
    restartAfterMs: options.restartAfter * 1000,
    seed: options.seed,
    webrtc: options.webrtc,
    backend: options.backend,
    maxTrain: options.maxTrain,
    logDir: options.logDir,
    onLog: say,
  });
  const { accuracyDifferencePoints, accuracyWithinTolerance } = compareAccuracy(
    summary.testAccuracy,
    baselineAccuracy,
  );
  const result = {
    ...summary,
    network,
    baselineAccuracy,
    accuracyDifferencePoints,
    accuracyWithinTolerance,
  };
  if (options.json === true) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    say(
      `faults for ${(summary.faultsForMs / 1000).toFixed(0)} s ` +
        `(window ${options.duration} s): ${summary.kills} kills, ` +
        `${summary.restarts} restarts; ` +
        `${summary.recoveryMs.length} recoveries, median ` +
        `${(summary.medianRecoveryMs / 1000).toFixed(1)} s, max ` +
        `${(summary.maxRecoveryMs / 1000).toFixed(1)} s`,
    );
    say(
      `${summary.finished} peers finished ${summary.steps} steps` +
        (summary.lateJoiners > 0
          ? ` (${summary.lateJoiners} restarted after the run ended, stopped)`
          : '') +
        `; replicas ` +
        `${summary.identical ? 'identical' : 'DIFFER'}: ${summary.modelHashes.join(' ')}`,
    );
    if (summary.faultsForMs < options.duration * 1000) {
      say(
        `the run ended ${((options.duration * 1000 - summary.faultsForMs) / 1000).toFixed(0)} s ` +
          'before the fault window did: raise --epochs for a longer run',
      );
    }
    say(
      `steps kept rising: longest stall ${(summary.longestStallMs / 1000).toFixed(1)} s`,
    );
    say(
      `test accuracy ${percent(summary.testAccuracy)}` +
        (accuracyDifferencePoints === undefined
          ? ' (no baseline: run with --baseline to compare)'
          : `, without faults ${percent(baselineAccuracy)}: ` +
            `${accuracyDifferencePoints >= 0 ? '+' : ''}` +
            `${accuracyDifferencePoints.toFixed(2)} points, ` +
            (accuracyWithinTolerance === true
              ? `within ${ACCURACY_TOLERANCE_POINTS} point`
              : `MORE than ${ACCURACY_TOLERANCE_POINTS} point off`)),
    );
  }
  if (!summary.identical) process.exitCode = 2;
  else if (accuracyWithinTolerance === false) process.exitCode = 3;
  else if (summary.kills === 0) {
    // Nothing was put to the test: the run ended before the first kill.
    say('no fault was injected: raise --epochs or lower --kill-min');
    process.exitCode = 4;
  }
}

function percent(value: number | undefined): string {
  return value === undefined ? '-' : `${(value * 100).toFixed(2)}%`;
}

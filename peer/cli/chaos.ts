/**
 * `topk-ring chaos`: trains with N local peers while random peers are
 * killed (SIGKILL) and restarted, then checks that every live peer ends
 * with the same weights; prints the faults, the recoveries and how long
 * they took. With `--baseline`, a run without faults of the same job
 * comes first, for the accuracy to compare with.
 */
import type { Command } from 'commander';

import { formatBytes } from '../../shared/format.ts';
import { runChaos } from '../launcher/chaos.ts';
import { launch } from '../launcher/launcher.ts';
import { DEFAULT_WEBRTC_BINDING } from '../webrtc/bindings.ts';
import { integerOption, numberOption, reportFailure } from './options.ts';

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
      'length of the run (mlp on mnist)',
      integerOption(1),
      12,
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
      DEFAULT_WEBRTC_BINDING,
    )
    .option('--backend <name>', 'auto, wasm, cpu or tensorflow', 'auto')
    .option(
      '--max-train <n>',
      'use only the first n training samples',
      integerOption(1),
    )
    .option('--baseline', 'first run the same job without faults')
    .option('--log-dir <dir>', "write each peer's log (stderr) here")
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
  const config = {
    model: 'mlp' as const,
    dataset: 'mnist' as const,
    density: options.density,
    epochs: options.epochs,
    batchSize: 32,
    learningRate: 0.1,
    seed: options.seed,
  };
  const say = (line: string): void => {
    if (options.json !== true) console.log(line);
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
  const result = { ...summary, baselineAccuracy };
  if (options.json === true) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    say(
      `faults: ${summary.kills} kills, ${summary.restarts} restarts; ` +
        `${summary.recoveryMs.length} recoveries, median ` +
        `${(summary.medianRecoveryMs / 1000).toFixed(1)} s, max ` +
        `${(summary.maxRecoveryMs / 1000).toFixed(1)} s`,
    );
    say(
      `${summary.finished} peers finished ${summary.steps} steps; replicas ` +
        `${summary.identical ? 'identical' : 'DIFFER'}: ${summary.modelHashes.join(' ')}`,
    );
    say(
      `test accuracy ${percent(summary.testAccuracy)}` +
        (baselineAccuracy === undefined
          ? ''
          : ` (without faults ${percent(baselineAccuracy)})`),
    );
  }
  if (!summary.identical) process.exitCode = 2;
}

function percent(value: number | undefined): string {
  return value === undefined ? '-' : `${(value * 100).toFixed(2)}%`;
}

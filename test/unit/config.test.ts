import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  DEFAULT_DENSITY,
  describeConfigDifference,
  learningRateAt,
  parseRoomConfig,
  topkCount,
  trainSamplesFor,
} from '../../shared/config.ts';
import { isTopkError, type TopkRingError } from '../../shared/errors.ts';
import type { SchemaProblem } from '../../shared/schema-errors.ts';

// The room config: defaults for the main job, and every bad setting
// refused when the config is read, naming the setting (case 14).

function refusal(input: unknown): TopkRingError {
  try {
    parseRoomConfig(input);
  } catch (error) {
    assert.ok(isTopkError(error, 'ERR_BAD_CONFIG'), String(error));
    return error;
  }
  assert.fail(`accepted ${JSON.stringify(input)}`);
}

function problems(error: TopkRingError): SchemaProblem[] {
  return error.context.problems as SchemaProblem[];
}

describe('defaults', () => {
  it('an empty config is the main job: mlp on mnist at density 0.01', () => {
    const config = parseRoomConfig({});
    assert.equal(config.model, 'mlp');
    assert.equal(config.dataset, 'mnist');
    assert.equal(config.density, 0.01);
    assert.equal(config.k, undefined);
    assert.equal(config.algorithm, 'auto');
    assert.equal(config.selection, 'fast');
    assert.equal(config.topkScope, 'global');
    assert.deepEqual(config.lrSchedule, { kind: 'constant' });
    assert.deepEqual(config.iceServers, []);
    assert.ok(config.limits.peerTimeoutMs <= 5000);
    assert.ok(config.learningRate > 0);
  });

  it('fills nested defaults when only some limits are given', () => {
    const config = parseRoomConfig({ limits: { maxPeers: 4 } });
    assert.equal(config.limits.maxPeers, 4);
    assert.equal(config.limits.heartbeatMs, 1000);
    assert.equal(config.limits.maxMessageBytes, 64 * 1024 * 1024);
    assert.equal(config.limits.benchMs, 10_000);
    assert.equal(config.limits.stragglerFactor, 4);
    assert.equal(config.limits.stragglerMinMs, 1000);
    assert.equal(config.limits.stragglerStrikes, 3);
    assert.equal(config.limits.stragglerWindowSteps, 20);
  });

  it('an absolute k replaces the default density', () => {
    const config = parseRoomConfig({ k: 1000 });
    assert.equal(config.k, 1000);
    assert.equal(config.density, undefined);
  });

  it('a parsed config parses to itself (it travels in join replies)', () => {
    const config = parseRoomConfig({
      k: 5,
      lrSchedule: { kind: 'step', every: 100, factor: 0.5 },
      iceServers: [{ urls: ['stun:a.example:3478'], username: 'u' }],
    });
    const again = parseRoomConfig(JSON.parse(JSON.stringify(config)));
    assert.deepEqual(again, config);
  });
});

describe('bad settings are refused, naming the setting', () => {
  const cases: [string, unknown, string][] = [
    ['density above 1', { density: 1.5 }, 'density'],
    ['density below 0', { density: -0.1 }, 'density'],
    ['density NaN', { density: NaN }, 'density'],
    ['density Infinity', { density: Infinity }, 'density'],
    ['density as text', { density: '0.1' }, 'density'],
    ['negative k', { k: -1 }, 'k'],
    ['fractional k', { k: 2.5 }, 'k'],
    ['both density and k', { density: 0.1, k: 3 }, 'k'],
    ['zero learning rate', { learningRate: 0 }, 'learningRate'],
    ['unknown model', { model: 'resnet' }, 'model'],
    ['unknown data set', { dataset: 'cifar10' }, 'dataset'],
    ['unknown algorithm', { algorithm: 'tree' }, 'algorithm'],
    ['zero batch size', { batchSize: 0 }, 'batchSize'],
    ['zero training samples', { trainSamples: 0 }, 'trainSamples'],
    ['fractional training samples', { trainSamples: 2.5 }, 'trainSamples'],
    ['unknown schedule', { lrSchedule: { kind: 'cosine' } }, 'lrSchedule.kind'],
    [
      'step decay without every',
      { lrSchedule: { kind: 'step', factor: 0.5 } },
      'lrSchedule.every',
    ],
    [
      'theta above 1',
      { lrSchedule: { kind: 'inverse-power', theta: 2 } },
      'lrSchedule.theta',
    ],
    [
      'peer timeout below two heartbeats',
      { limits: { heartbeatMs: 1000, peerTimeoutMs: 1500 } },
      'limits.peerTimeoutMs',
    ],
    ['zero max peers', { limits: { maxPeers: 0 } }, 'limits.maxPeers'],
    [
      'a straggler factor of 1',
      { limits: { stragglerFactor: 1 } },
      'limits.stragglerFactor',
    ],
    [
      'more straggler strikes than the window has steps',
      { limits: { stragglerStrikes: 5, stragglerWindowSteps: 4 } },
      'limits.stragglerWindowSteps',
    ],
    ['a negative bench', { limits: { benchMs: -1 } }, 'limits.benchMs'],
    [
      'ICE URL of another scheme',
      { iceServers: [{ urls: 'http://x' }] },
      'iceServers[0].urls',
    ],
    ['a misspelt setting', { densty: 0.1 }, 'densty'],
    ['a misspelt limit', { limits: { maxPeer: 3 } }, 'limits.maxPeer'],
    ['negative checkpoint period', { checkpointEvery: -1 }, 'checkpointEvery'],
    ['not an object', 7, '(root)'],
  ];
  for (const [name, input, path] of cases) {
    it(name, () => {
      const error = refusal(input);
      assert.deepEqual(
        problems(error).map((p) => p.path),
        [path],
      );
      const problemPath = path === '(root)' ? 'config' : path;
      assert.ok(error.message.startsWith(`${problemPath}: `), error.message);
    });
  }

  it('says what was expected and what arrived', () => {
    const [problem] = problems(refusal({ density: 1.5 }));
    assert.deepEqual(problem, {
      path: 'density',
      expected: 'a number in [0, 1]',
      received: '1.5',
    });
    assert.equal(problems(refusal({ density: NaN }))[0]?.received, 'NaN');
    assert.equal(
      problems(refusal({ lrSchedule: { kind: 'step', factor: 0.5 } }))[0]
        ?.received,
      'nothing',
    );
  });

  it('lists several problems at once', () => {
    const error = refusal({ density: 2, batchSize: -1, model: 'x' });
    assert.equal(problems(error).length, 3);
  });

  it('anything at all is either a config or ERR_BAD_CONFIG', () => {
    fc.assert(
      fc.property(fc.anything(), (input) => {
        try {
          parseRoomConfig(input);
        } catch (error) {
          assert.ok(isTopkError(error, 'ERR_BAD_CONFIG'), String(error));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('random settings near the valid ones are refused or accepted whole', () => {
    const value = fc.oneof(
      fc.double(),
      fc.integer(),
      fc.string(),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(
        fc.record({ density: value, k: value, batchSize: value }),
        (input) => {
          try {
            const config = parseRoomConfig(
              Object.fromEntries(
                Object.entries(input).filter(([, v]) => v !== undefined),
              ),
            );
            assert.ok(config.density === undefined || config.density <= 1);
            assert.ok(config.k === undefined || config.k >= 0);
          } catch (error) {
            assert.ok(isTopkError(error, 'ERR_BAD_CONFIG'));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('topkCount', () => {
  it('clamps an absolute K to the vector (case 14)', () => {
    assert.equal(topkCount(parseRoomConfig({ k: 1000 }), 10), 10);
    assert.equal(topkCount(parseRoomConfig({ k: 3 }), 10), 3);
    assert.equal(topkCount(parseRoomConfig({ k: 3 }), 0), 0);
  });

  it('rounds a density, to at least 1 when it is positive', () => {
    assert.equal(topkCount(parseRoomConfig({ density: 0.01 }), 100), 1);
    assert.equal(topkCount(parseRoomConfig({ density: 0.01 }), 150), 2);
    assert.equal(topkCount(parseRoomConfig({ density: 0.01 }), 140), 1);
    assert.equal(topkCount(parseRoomConfig({ density: 0.001 }), 10), 1);
    assert.equal(topkCount(parseRoomConfig({ density: 0 }), 10), 0);
    assert.equal(topkCount(parseRoomConfig({ density: 1 }), 10), 10);
    assert.equal(topkCount({}, 1000), 1000 * DEFAULT_DENSITY);
  });
});

describe('learningRateAt', () => {
  it('constant', () => {
    const config = parseRoomConfig({ learningRate: 0.5 });
    assert.equal(learningRateAt(config, 0), 0.5);
    assert.equal(learningRateAt(config, 1000), 0.5);
  });

  it('step decay multiplies once per period', () => {
    const config = parseRoomConfig({
      learningRate: 1,
      lrSchedule: { kind: 'step', every: 10, factor: 0.5 },
    });
    assert.equal(learningRateAt(config, 9), 1);
    assert.equal(learningRateAt(config, 10), 0.5);
    assert.equal(learningRateAt(config, 25), 0.25);
  });

  it('inverse power is (step + 1)^-theta', () => {
    const config = parseRoomConfig({
      learningRate: 2,
      lrSchedule: { kind: 'inverse-power', theta: 0.5 },
    });
    assert.equal(learningRateAt(config, 0), 2);
    assert.equal(learningRateAt(config, 3), 1);
  });
});

describe('describeConfigDifference', () => {
  it('names the first setting that differs', () => {
    const room = parseRoomConfig({});
    assert.equal(describeConfigDifference(room, parseRoomConfig({})), null);
    const difference = describeConfigDifference(
      room,
      parseRoomConfig({ limits: { maxPeers: 3 } }),
    );
    assert.match(difference ?? '', /^limits\.maxPeers: /);
    assert.match(
      describeConfigDifference(room, parseRoomConfig({ k: 5 })) ?? '',
      /^density: |^k: /,
    );
  });
});

describe('trainSamplesFor', () => {
  const room = parseRoomConfig({ trainSamples: 1200 });
  const open = parseRoomConfig({});

  it("takes the room's value, else the peer's --max-train, else all", () => {
    assert.equal(trainSamplesFor(room, 'r', undefined), 1200);
    assert.equal(trainSamplesFor(room, 'r', 1200), 1200);
    assert.equal(trainSamplesFor(open, 'r', 300), 300);
    assert.equal(trainSamplesFor(open, 'r', undefined), undefined);
  });

  it('refuses a --max-train that would cut another training set', () => {
    assert.throws(
      () => trainSamplesFor(room, 'main', 600),
      (error) =>
        isTopkError(error, 'ERR_MISMATCH') &&
        error.context['setting'] === 'trainSamples' &&
        /room main trains on the first 1200 samples, this peer's --max-train is 600/.test(
          error.message,
        ),
    );
  });
});

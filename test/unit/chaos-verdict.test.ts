import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { compareAccuracy } from '../../peer/launcher/chaos.ts';

describe('chaos accuracy verdict', () => {
  it('is within tolerance up to exactly one point either way', () => {
    const up = compareAccuracy(0.9712, 0.9612);
    assert.ok(Math.abs((up.accuracyDifferencePoints ?? NaN) - 1) < 1e-9);
    assert.equal(up.accuracyWithinTolerance, true);
    assert.equal(compareAccuracy(0.9612, 0.9712).accuracyWithinTolerance, true);
    assert.equal(compareAccuracy(0.975, 0.975).accuracyWithinTolerance, true);
  });

  it('fails a run more than a point below or above the baseline', () => {
    const down = compareAccuracy(0.9601, 0.9712);
    assert.equal(down.accuracyWithinTolerance, false);
    assert.ok(Math.abs((down.accuracyDifferencePoints ?? NaN) + 1.11) < 1e-9);
    assert.equal(compareAccuracy(0.99, 0.97).accuracyWithinTolerance, false);
  });

  it('never passes a NaN accuracy', () => {
    assert.equal(compareAccuracy(NaN, 0.97).accuracyWithinTolerance, false);
  });

  it('gives no verdict without a baseline or an accuracy', () => {
    assert.deepEqual(compareAccuracy(0.97, undefined), {
      accuracyDifferencePoints: undefined,
      accuracyWithinTolerance: undefined,
    });
    assert.equal(
      compareAccuracy(undefined, 0.97).accuracyWithinTolerance,
      undefined,
    );
  });
});

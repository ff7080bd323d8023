import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { AllReduceBenchReport } from '../../peer/bench/allreduce.ts';
import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
} from './helpers/isolated-child.ts';
import { testedBindings } from './helpers/webrtc-expect.ts';

describe(`all-reduce between 4 peer processes over WebRTC (${isolationNote()})`, () => {
  for (const binding of testedBindings()) {
    it(`20 steps of n = 1e6 at density 0.01 on ${binding}: bit-identical sums equal to the reference`, async () => {
      const run = await runChild<AllReduceBenchReport>(
        fixturePath('allreduce-webrtc.ts'),
        [binding, 'auto'],
        { timeoutMs: 180_000 },
      );
      assert.equal(run.code, 0, describeRun(run));
      const report = run.result as AllReduceBenchReport;
      assert.equal(report.steps, 20);
      assert.ok(report.identical);
      // Four float32 additions of values in (-1, 1).
      assert.ok(report.maxAbsError < 1e-6, `${report.maxAbsError}`);
      assert.ok(report.unionSize > 10_000);
      assert.ok(
        report.ratioToLowerBound < 2.5,
        `${report.ratioToLowerBound}x the lower bound`,
      );
    });
  }
});

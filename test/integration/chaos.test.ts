import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { ChaosSummary } from '../../peer/launcher/chaos.ts';
import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
} from './helpers/isolated-child.ts';

describe(`peers killed and restarted mid-run (${isolationNote()})`, () => {
  it('every kill is recovered from and the live replicas end identical', async () => {
    const run = await runChild<ChaosSummary>(fixturePath('chaos-run.ts'), [], {
      timeoutMs: 300_000,
    });
    assert.equal(run.code, 0, describeRun(run));
    const summary = run.result as ChaosSummary;
    assert.ok(summary.kills >= 2, `${summary.kills} kills`);
    assert.equal(summary.recoveryMs.length, summary.kills);
    // Detected within the room's peer timeout (5 s), not socket.io's 45 s.
    assert.ok(summary.maxRecoveryMs < 10_000, `${summary.maxRecoveryMs} ms`);
    // The step count kept rising: no pause longer than a recovery.
    assert.ok(summary.longestStallMs < 10_000, `${summary.longestStallMs} ms`);
    assert.ok(summary.finished >= 2, `${summary.finished} peers finished`);
    assert.ok(summary.identical, summary.modelHashes.join(' '));
    // 1,200 samples over 3 peers x 16 per step: 25 steps an epoch.
    assert.equal(summary.steps, 40 * 25);
    assert.ok(
      summary.testAccuracy !== undefined && summary.testAccuracy > 0.7,
      `accuracy ${summary.testAccuracy}`,
    );
  });
});

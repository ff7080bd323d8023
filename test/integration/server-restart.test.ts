import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { SessionSummary } from '../../peer/session/session.ts';
import type { RoomStatus } from '../../shared/signaling-protocol.ts';
import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
} from './helpers/isolated-child.ts';

// Issue 6: a restart of the signaling server does not stop training over
// existing links, and peers re-register when it is back (case 8 with real
// training peers; signaling-recovery.test.ts checks the protocol alone).

interface Result {
  readonly ids: readonly string[];
  readonly before: { generation: number; peers: string[] };
  readonly after: {
    generation?: number;
    peers?: string[];
    restoring?: boolean;
  };
  readonly downAtSteps: readonly number[];
  readonly stepsWhileDown: number;
  readonly stepsAtRejoin: readonly number[];
  readonly rejoinMs: number;
  readonly hashCheck: RoomStatus['hashCheck'] | undefined;
  readonly newRings: readonly number[];
  readonly summaries: readonly (SessionSummary | { failed: string })[];
}

const DOWN_MS = 3000;
/** The run's length in the fixture (30 epochs of 50 steps). */
const STEPS = 1500;

describe(`the signaling server restarts mid-training (${isolationNote()})`, () => {
  it('training goes on over the data channels and the peers re-register', async () => {
    const run = await runChild<Result>(
      fixturePath('server-restart-run.ts'),
      ['roamhq', String(DOWN_MS)],
      { timeoutMs: 240_000 },
    );
    assert.equal(run.code, 0, describeRun(run));
    const result = run.result as Result;
    for (const s of result.summaries) {
      assert.ok(!('failed' in s), JSON.stringify(s));
    }
    const summaries = result.summaries as SessionSummary[];

    // While the server was down every peer kept completing steps.
    assert.ok(
      result.stepsWhileDown >= 10,
      `${result.stepsWhileDown} steps while down, from ${result.downAtSteps}`,
    );
    // Back: the same peers in the same ring, same generation, nobody
    // waiting for a place, within a few seconds.
    assert.deepEqual(result.after.peers, result.before.peers);
    assert.equal(result.after.generation, result.before.generation);
    assert.equal(result.after.restoring, false);
    assert.ok(result.rejoinMs < 10_000, `${result.rejoinMs} ms`);
    assert.ok(
      Math.max(...result.stepsAtRejoin) < STEPS,
      `re-registered only at steps ${result.stepsAtRejoin}`,
    );

    // Everyone finished the whole run in that ring (no new generation
    // ever), identical, and the server compared their hashes again.
    assert.deepEqual(result.newRings, []);
    assert.deepEqual(
      summaries.map((s) => [s.steps, s.stopped]),
      summaries.map(() => [STEPS, false]),
    );
    assert.equal(
      new Set(summaries.map((s) => s.modelHash)).size,
      1,
      summaries.map((s) => s.modelHash).join(' '),
    );
    assert.ok(
      result.hashCheck?.agreed === true && result.hashCheck.peers === 3,
      JSON.stringify(result.hashCheck),
    );
  });
});

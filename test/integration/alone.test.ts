import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { SessionSummary } from '../../peer/session/session.ts';
import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
} from './helpers/isolated-child.ts';

// Case 16: when every other peer has left, the last one keeps training on
// its own, and others can join it later (fixtures/alone-run.ts).

interface Result {
  readonly stepsAlone: number;
  readonly stepsTogetherAfter: number;
  readonly ringsOfA: { generation: number; peers: number }[];
  readonly summaries: (SessionSummary | string)[];
}

describe(`alone in the room (${isolationNote()})`, () => {
  it('the last peer trains on alone and a newcomer joins it, both ending identical', async (t) => {
    const run = await runChild<Result>(fixturePath('alone-run.ts'), [], {
      timeoutMs: 240_000,
    });
    assert.equal(run.code, 0, describeRun(run));
    const result = run.result as Result;
    const [a, b, c] = result.summaries.map((s) =>
      typeof s === 'string' ? assert.fail(s) : s,
    ) as [SessionSummary, SessionSummary, SessionSummary];
    t.diagnostic(
      `A ran ${result.stepsAlone} steps alone, then ` +
        `${result.stepsTogetherAfter} with the newcomer; rings of A: ` +
        result.ringsOfA.map((r) => `g${r.generation}x${r.peers}`).join(' '),
    );
    // B left gracefully: stopped, not failed.
    assert.equal(b.stopped, true);
    // A never stopped: it trained alone, then in a ring of two again.
    assert.ok(result.stepsAlone >= 1, `${result.stepsAlone} steps alone`);
    const sizes = result.ringsOfA.map((r) => r.peers);
    assert.deepEqual(
      [sizes[0], sizes.includes(1), sizes.at(-1)],
      [2, true, 2],
      JSON.stringify(result.ringsOfA),
    );
    assert.ok(result.stepsTogetherAfter >= 1);
    // The run's length is the room's: 12 epochs of 1,200 / (2 x 16).
    assert.equal(a.steps, 12 * 37);
    assert.equal(c.steps, a.steps);
    assert.equal(c.modelHash, a.modelHash, 'A and the newcomer identical');
    assert.ok((a.testAccuracy ?? 0) > 0.7, `accuracy ${a.testAccuracy}`);
    assert.ok((run.exitAfterResultMs ?? Infinity) < 10_000);
  });
});

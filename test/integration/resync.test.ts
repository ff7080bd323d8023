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

// Issue 6, agreement: the weights hash of every peer is compared every 25
// steps; a peer that disagrees is resynchronised from a neighbour and the
// event is reported (status API, metrics, the server's warning).

interface Result {
  readonly summaries: readonly (SessionSummary | { failed: string })[];
  readonly perturbed: string;
  readonly status: RoomStatus;
  readonly resyncMetric: string | undefined;
  readonly warnings: readonly string[];
}

describe(`weights that drift on one peer (${isolationNote()})`, () => {
  it('are found at the next hash check and resynchronised from a neighbour', async () => {
    const run = await runChild<Result>(
      fixturePath('resync-run.ts'),
      ['roamhq'],
      {
        timeoutMs: 240_000,
      },
    );
    assert.equal(run.code, 0, describeRun(run));
    const result = run.result as Result;
    const summaries = result.summaries as SessionSummary[];
    for (const s of result.summaries) {
      assert.ok(!('failed' in s), JSON.stringify(s));
    }

    // Every peer finished the whole run with the same weights.
    assert.deepEqual(
      summaries.map((s) => [s.steps, s.stopped]),
      summaries.map(() => [100, false]),
    );
    assert.equal(
      new Set(summaries.map((s) => s.modelHash)).size,
      1,
      summaries.map((s) => s.modelHash).join(' '),
    );

    // Found at step 50 (nudged after 30), the perturbed peer named, one
    // resync for it, reported by status, metrics and a warning.
    const { status } = result;
    assert.deepEqual(
      status.mismatches.map((m) => m.step),
      [50],
    );
    assert.deepEqual(
      status.resyncs.map((r) => [r.step, r.peers]),
      [[50, [result.perturbed]]],
    );
    assert.equal(status.resyncCount, 1);
    assert.equal(result.resyncMetric, '1');
    assert.ok(
      result.warnings.some((w) =>
        w.includes(`resynchronises the weights of ${result.perturbed}`),
      ),
      result.warnings.join('\n'),
    );
    // The ring was the same three peers throughout: generation 3 (the
    // third join) and the resync's.
    assert.equal(status.resyncs[0]?.generation, 4);
    assert.ok(status.hashCheck?.agreed, JSON.stringify(status.hashCheck));
    assert.ok(status.hashCheck.step > 50);
  });
});

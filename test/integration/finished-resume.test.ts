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

// A crashed peer restarted with --resume after its run finished without
// it (fixtures/finished-resume-run.ts): refused at join, so it cannot
// train the rest alone into another model; a peer resumed from the final
// checkpoint ends with the final weights; a newcomer starts a new run.

interface Result {
  readonly killedAfter: number;
  readonly finishedAfterB: RoomStatus['finished'];
  readonly finishedAfterResumes: RoomStatus['finished'];
  readonly summaries: (SessionSummary | string)[];
}

/** 600 samples, one peer x 16 a step: 37 steps an epoch, 2 epochs. */
const STEPS = 74;

describe(`resuming after the run finished (${isolationNote()})`, () => {
  it('an older checkpoint is refused with ERR_RUN_FINISHED, the final one ends identical', async () => {
    const run = await runChild<Result>(
      fixturePath('finished-resume-run.ts'),
      [],
      { timeoutMs: 240_000 },
    );
    assert.equal(run.code, 0, describeRun(run));
    const result = run.result as Result;
    const [killed, b, staleA, finalB, fresh] = result.summaries;
    assert.equal(typeof killed, 'string', 'A was killed');
    assert.ok(result.killedAfter >= 15 && result.killedAfter < STEPS);
    const summaryB = b as SessionSummary;
    assert.equal(summaryB.steps, STEPS);
    assert.deepEqual(
      [result.finishedAfterB?.step, result.finishedAfterB?.modelHash],
      [STEPS, summaryB.modelHash],
    );

    // A's checkpoint (step 10 or later, before the end) is refused at
    // join, naming the final step; it trained nothing on its own.
    assert.equal(typeof staleA, 'string');
    assert.match(staleA as string, /ERR_RUN_FINISHED/);
    assert.match(staleA as string, new RegExp(`finished at step ${STEPS}`));
    assert.match(staleA as string, /Start a new run without --resume/);

    // B's final checkpoint: admitted, nothing left to train, same model.
    assert.equal(typeof finalB, 'object', String(finalB));
    const summaryFinalB = finalB as SessionSummary;
    assert.equal(summaryFinalB.steps, STEPS);
    assert.equal(summaryFinalB.modelHash, summaryB.modelHash);
    assert.equal(summaryFinalB.bytesSent, 0);
    assert.deepEqual(result.finishedAfterResumes, result.finishedAfterB);

    // A newcomer in the empty room starts a new run of its own.
    assert.equal(typeof fresh, 'object', String(fresh));
    assert.equal((fresh as SessionSummary).steps, STEPS);
    assert.ok((run.exitAfterResultMs ?? Infinity) < 10_000);
  });
});

/**
 * Assertions shared by the WebRTC integration tests: a scenario child must
 * finish in time, exit 0 by itself soon after its result, and never see an
 * uncaught exception; negotiations retried by the fixture stay rare.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';

import { WEBRTC_BINDINGS } from '../../../peer/webrtc/bindings.ts';
import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
  type ChildRun,
} from './isolated-child.ts';

/** Both bindings, each tested on its own. */
export const BINDINGS = WEBRTC_BINDINGS;

/** What every WebRTC fixture adds to its result. */
export interface FixtureResult {
  readonly uncaught: readonly string[];
  readonly connectFailures: readonly string[];
  readonly error?: string;
}

/** How long a child may take, after its result, to exit by itself. */
const EXIT_AFTER_RESULT_MS = 5000;

/**
 * Runs `fixture` with `args` in an isolated child and checks that it ended
 * cleanly; returns its result for the scenario's own assertions.
 */
export async function runScenario<T>(
  t: TestContext,
  fixture: string,
  args: readonly string[],
  options: { timeoutMs: number; nodeFlags?: readonly string[] },
): Promise<T & FixtureResult> {
  t.diagnostic(isolationNote());
  const run: ChildRun<T & FixtureResult> = await runChild(
    fixturePath(fixture),
    args,
    options,
  );
  const summary = describeRun(run);
  assert.ok(run.result !== undefined, `no result: ${summary}`);
  assert.equal(run.result.error, undefined, summary);
  assert.deepEqual(run.result.uncaught, [], summary);
  assert.ok(
    run.result.connectFailures.length <= 2,
    `negotiations retried: ${run.result.connectFailures.join('; ')}`,
  );
  if (run.result.connectFailures.length > 0) {
    t.diagnostic(`retried: ${run.result.connectFailures.join('; ')}`);
  }
  assert.equal(run.timedOut, false, `did not exit by itself: ${summary}`);
  assert.equal(run.code, 0, summary);
  assert.ok(
    (run.exitAfterResultMs ?? Infinity) < EXIT_AFTER_RESULT_MS,
    `exit took ${run.exitAfterResultMs} ms after the result`,
  );
  return run.result;
}

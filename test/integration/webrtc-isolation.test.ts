/**
 * Case 7: a crash or hang in a child fails that child's test only. These
 * tests check the runner itself with stand-ins for a misbehaving binding,
 * and that isolated children see no network but loopback.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
} from './helpers/isolated-child.ts';

const script = fixturePath('misbehave.ts');

describe('isolated child runner (case 7)', () => {
  it('reports a crashed child and carries on', async () => {
    const run = await runChild(script, ['crash'], { timeoutMs: 20_000 });
    assert.equal(run.signal, 'SIGABRT', describeRun(run));
    assert.equal(run.result, undefined);
    assert.equal(run.timedOut, false);
  });

  it('kills a hung child at its deadline', async () => {
    const started = performance.now();
    const run = await runChild(script, ['hang'], { timeoutMs: 3000 });
    assert.equal(run.timedOut, true, describeRun(run));
    assert.equal(run.signal, 'SIGKILL');
    assert.ok(performance.now() - started < 10_000);
  });

  it('sees a child that prints its result but does not exit', async () => {
    const run = await runChild<{ done: boolean }>(script, ['linger'], {
      timeoutMs: 3000,
    });
    assert.deepEqual(run.result, { done: true });
    assert.equal(run.timedOut, true);
    assert.equal(run.exitAfterResultMs !== undefined, true);
  });

  it('gives an isolated child loopback only', async (t) => {
    t.diagnostic(isolationNote());
    const run = await runChild<{ interfaces: string[] }>(
      script,
      ['interfaces'],
      { timeoutMs: 20_000 },
    );
    assert.ok(run.result !== undefined, describeRun(run));
    if (run.isolated) assert.deepEqual(run.result.interfaces, ['lo']);
    else t.diagnostic(`interfaces: ${run.result.interfaces.join(', ')}`);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
} from './helpers/isolated-child.ts';

// The ring session a browser tab runs (peer/session/ring-session.ts, with
// its data from the server's routes), here on a Node WebRTC binding so
// the regular suite checks it against two `topk-ring peer` processes; the
// browser suite (test/browser) runs the same code in Chromium.

interface Result {
  readonly tab: { steps: number; modelHash: string; stopped: boolean };
  readonly shards: number[];
  readonly nodes: {
    code: number | null;
    summary?: { steps: number; modelHash: string };
  }[];
  readonly uncaught: string[];
}

describe(`a tab's ring session with two Node peers (${isolationNote()})`, () => {
  it('trains with them to identical weights on its downloaded shard', async () => {
    const run = await runChild<Result>(
      fixturePath('remote-peer-ring.ts'),
      ['roamhq'],
      {
        timeoutMs: 180_000,
      },
    );
    assert.equal(run.code, 0, describeRun(run));
    const result = run.result as Result;
    assert.deepEqual(result.uncaught, []);
    // 960 samples over 3 peers x 16 per step: 20 steps, 320 per shard.
    assert.equal(result.tab.steps, 20);
    assert.equal(result.tab.stopped, false);
    // One download per generation: a ring that re-forms (a stalled step
    // restarted, seen once on a loaded machine) deals the shard again.
    assert.ok(result.shards.length >= 1);
    assert.ok(
      result.shards.every((samples) => samples === 320),
      `${result.shards}`,
    );
    for (const node of result.nodes) {
      assert.equal(node.code, 0);
      assert.equal(node.summary?.steps, 20);
      assert.equal(node.summary?.modelHash, result.tab.modelHash);
    }
    assert.ok((run.exitAfterResultMs ?? Infinity) < 10_000);
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { startSignalingServer } from '../../signaling/server.ts';

import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
} from './helpers/isolated-child.ts';

// Issue 6: a joining Node peer presents its model's fingerprint and its
// config; a room that trains another model refuses it at join with a
// message naming the difference, and one with the same model admits it.

interface Refusal {
  readonly code: string;
  readonly message: string;
}

interface Result {
  readonly refusals: {
    readonly narrower: Refusal | null;
    readonly logreg: Refusal | null;
    readonly otherConfig: Refusal | null;
  };
  readonly sameAdmitted: boolean;
  readonly sameRefusal: Refusal | null;
  readonly ids: readonly string[];
  readonly members: readonly string[];
  readonly stopped: readonly boolean[];
  readonly uncaught: readonly string[];
}

describe(`Node peers present their model at join (${isolationNote()})`, () => {
  it('another model or config is refused naming the difference; the same is admitted', async () => {
    const run = await runChild<Result>(fixturePath('fingerprint-join.ts'), [], {
      timeoutMs: 120_000,
    });
    assert.equal(run.code, 0, describeRun(run));
    const result = run.result as Result;
    assert.deepEqual(result.uncaught, []);

    // The room's fingerprint is the one the first Node peer presented:
    // half as many hidden units is refused, naming variable and shapes.
    const { narrower, logreg, otherConfig } = result.refusals;
    assert.equal(narrower?.code, 'ERR_MISMATCH');
    assert.match(
      narrower.message,
      /variable 0 \(\S+\/kernel\): room has shape \[784,(\d+)\], peer has \[784,(\d+)\]/,
    );
    const [, room, peer] = /\[784,(\d+)\].*\[784,(\d+)\]/.exec(
      narrower.message,
    ) as RegExpExecArray;
    assert.equal(Number(peer) * 2, Number(room));
    // Another architecture altogether.
    assert.equal(logreg?.code, 'ERR_MISMATCH');
    assert.match(logreg.message, /trains another model \(.+\)/);
    // A Node peer whose config names another model: the setting is named.
    assert.equal(otherConfig?.code, 'ERR_MISMATCH');
    assert.match(
      otherConfig.message,
      /another config \(model: room has "mlp", peer has "logreg"\)/,
    );

    // The same fingerprint, and a Node peer with the room's model, get in.
    assert.equal(result.sameAdmitted, true, JSON.stringify(result.sameRefusal));
    assert.equal(result.ids.length, 2);
    assert.deepEqual([...result.members].sort(), [...result.ids].sort());
    assert.deepEqual(result.stopped, [true, true]);
  });
});

describe('a Node peer cuts the training set the room names', () => {
  it("a --max-train other than the room's trainSamples is refused before training", async () => {
    const server = await startSignalingServer({
      rooms: { sized: { model: 'mlp', dataset: 'mnist', trainSamples: 600 } },
      dashboard: false,
      onWarning: () => {},
    });
    try {
      const bin = fileURLToPath(
        new URL('../../peer/cli/bin.mjs', import.meta.url),
      );
      const child = spawn(
        process.execPath,
        [
          bin,
          'peer',
          '--server',
          server.url,
          '--room',
          'sized',
          '--max-train',
          '300',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
      const code = await new Promise<number | null>((resolve) =>
        child.once('exit', resolve),
      );
      assert.equal(code, 1, stderr);
      assert.match(
        stderr,
        /topk-ring: ERR_MISMATCH: room sized trains on the first 600 samples, this peer's --max-train is 300/,
      );
      // Refused before joining: the room never saw it.
      assert.equal(server.roomStatus('sized')?.peers.length ?? 0, 0);
    } finally {
      await server.close();
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Liveness } from '../../peer/webrtc/liveness.ts';

// Silence detection of ring neighbours (peer/webrtc/liveness.ts) on a
// fake clock: bytes are life, silence for the timeout is reported once,
// and a late tick (this peer's own event loop was blocked) is no
// evidence against anybody.

function setup() {
  const clock = { nowMs: 0 };
  const bytes = { next: 0, prev: 0 };
  const liveness = new Liveness<'next' | 'prev'>({
    timeoutMs: 1000,
    tickMs: 100,
    now: () => clock.nowMs,
  });
  liveness.watch('next', () => bytes.next);
  liveness.watch('prev', () => bytes.prev);
  /** Ticks every 100 ms for `ms`; returns the sides reported, with when. */
  const run = (ms: number, each?: () => void) => {
    const seen: string[] = [];
    for (let t = 0; t < ms; t += 100) {
      clock.nowMs += 100;
      each?.();
      for (const { side, silentMs } of liveness.tick()) {
        seen.push(`${side}@${clock.nowMs}:${silentMs}`);
      }
    }
    return seen;
  };
  return { clock, bytes, liveness, run };
}

describe('Liveness', () => {
  it('a neighbour that sends bytes stays alive; one that stops is reported once after the timeout', () => {
    const { bytes, run } = setup();
    // Heartbeats from both every 300 ms for 3 s: nobody is silent.
    let t = 0;
    const beat = () => {
      t += 100;
      if (t % 300 === 0) {
        bytes.next += 40;
        bytes.prev += 40;
      }
    };
    assert.deepEqual(run(3000, beat), []);
    // The previous peer stops at 3 s; the next one keeps beating.
    const onlyNext = () => {
      t += 100;
      if (t % 300 === 0) bytes.next += 40;
    };
    assert.deepEqual(run(3000, onlyNext), ['prev@4000:1000']);
  });

  it('a long transfer counts as life chunk by chunk', () => {
    const { bytes, run } = setup();
    assert.deepEqual(
      run(5000, () => (bytes.prev += 65_536)),
      ['next@1000:1000'],
    );
  });

  it('a late tick means this peer was blocked: every clock starts afresh', () => {
    const { clock, run, liveness } = setup();
    assert.deepEqual(run(800), []);
    // A 3 s synchronous step: the next tick comes 3 s late.
    clock.nowMs += 3000;
    assert.deepEqual(liveness.tick(), []);
    // Still silent a full timeout later: reported then.
    assert.deepEqual(run(1000), ['next@4800:1000', 'prev@4800:1000']);
  });

  it('an unwatched side (its channel ended) is never reported', () => {
    const { liveness, run } = setup();
    liveness.unwatch('next');
    assert.deepEqual(run(2000), ['prev@1000:1000']);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  isFirstHop,
  StragglerDeadline,
  watchFirstHop,
} from '../../peer/session/straggler.ts';
import { parseRoomConfig } from '../../shared/config.ts';
import { RingSimulator } from '../../shared/simulator.ts';
import { PROTOCOL_VERSION, type PeerMessage } from '../../shared/protocol.ts';

// The straggler deadline (peer/session/straggler.ts): a multiple of this
// peer's own recent compute time, floored and capped; and the watch on
// the hop-0 receive, the one wait that blames the previous peer alone.

const limits = parseRoomConfig({
  limits: { stragglerFactor: 4, stragglerMinMs: 50, stepTimeoutMs: 1000 },
}).limits;

describe('StragglerDeadline', () => {
  it('learns for three steps, then is factor x the median compute time', () => {
    const deadline = new StragglerDeadline(limits);
    deadline.record(20);
    deadline.record(30);
    assert.equal(deadline.deadlineMs(), undefined);
    deadline.record(25);
    assert.equal(deadline.medianMs(), 25);
    assert.equal(deadline.deadlineMs(), 100);
    // One slow step moves the median little.
    deadline.record(400);
    assert.equal(deadline.medianMs(), 27.5);
  });

  it('is floored by stragglerMinMs and capped by stepTimeoutMs', () => {
    const fast = new StragglerDeadline(limits);
    for (let i = 0; i < 5; i++) fast.record(1);
    assert.equal(fast.deadlineMs(), 50);
    const slow = new StragglerDeadline(limits);
    for (let i = 0; i < 5; i++) slow.record(900);
    assert.equal(slow.deadlineMs(), 1000);
  });

  it('keeps the last 16 steps and ignores non-finite times', () => {
    const deadline = new StragglerDeadline(limits);
    for (let i = 0; i < 16; i++) deadline.record(500);
    for (let i = 0; i < 16; i++) deadline.record(10);
    deadline.record(Number.NaN);
    assert.equal(deadline.medianMs(), 10);
  });
});

function slice(step: number, phase: number, segment: number): PeerMessage {
  return {
    v: PROTOCOL_VERSION,
    type: 'dense',
    room: 'r',
    generation: 1,
    step,
    phase,
    segment,
    sender: 'peer-1',
    payload: { values: Float32Array.of(1), skip: false },
  };
}

describe('watchFirstHop', () => {
  it('hop 0 is phase 0-2 (one per algorithm); later hops and handshakes are not', () => {
    const key = { generation: 1, step: 3, segment: 0 };
    assert.deepEqual(
      [0, 1, 2, 3, 5, 2 ** 30].map((phase) => isFirstHop({ ...key, phase })),
      [true, true, true, false, false, false],
    );
  });

  it('reports a hop-0 message late by the deadline once, and the receive goes on', async () => {
    const ring = new RingSimulator({ peers: 2 });
    const misses: number[] = [];
    const link = watchFirstHop(ring.links[0], 30, (waitedMs) =>
      misses.push(waitedMs),
    );
    const key = { generation: 1, step: 3, phase: 0, segment: 1 };
    const received = link.receivePrev(key);
    await sleep(60);
    assert.equal(misses.length, 1);
    assert.ok(misses[0]! >= 29, String(misses[0]));
    await ring.links[1].sendNext(slice(3, 0, 1));
    assert.equal((await received).step, 3);

    // A later hop, however late, blames nobody: it depends on others.
    const later = link.receivePrev({ ...key, phase: 3, segment: 0 });
    await sleep(60);
    await ring.links[1].sendNext(slice(3, 3, 0));
    await later;
    assert.equal(misses.length, 1);
    ring.close();
  });

  it('says nothing when the hop-0 message comes in time', async () => {
    const ring = new RingSimulator({ peers: 2 });
    let missed = false;
    const link = watchFirstHop(ring.links[0], 200, () => (missed = true));
    const received = link.receivePrev({
      generation: 1,
      step: 3,
      phase: 1,
      segment: 1,
    });
    await ring.links[1].sendNext(slice(3, 1, 1));
    await received;
    await sleep(250);
    assert.equal(missed, false);
    ring.close();
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseRoomConfig } from '../../shared/config.ts';
import type { PeerReport } from '../../shared/signaling-protocol.ts';
import { DEFAULT_LIMITS } from '../../signaling/limits.ts';
import { recordReport, roomStatus } from '../../signaling/room-status.ts';
import { RoomRegistry } from '../../signaling/rooms.ts';
import { resyncIfDue } from '../../signaling/resync.ts';

// Issue 6: weights hashes are compared every few steps; peers that
// disagree at a step get a new generation of the same ring, whose
// handshake hands them the weights most peers hold (sync.test.ts checks
// the handshake side), once per step that disagreed.

function ringOf(peers: number) {
  const registry = new RoomRegistry({
    limits: DEFAULT_LIMITS,
    rooms: new Map([['main', parseRoomConfig({})]]),
  });
  const records = Array.from(
    { length: peers },
    () => registry.join({ room: 'main', kind: 'node', backend: 'wasm' }).peer,
  );
  return { registry, room: registry.room('main')!, records };
}

function hashReport(
  step: number,
  generation: number,
  modelHash: string,
): PeerReport {
  return { step, generation, bytesSent: 0, bytesReceived: 0, modelHash };
}

describe('resync after a model-hash mismatch', () => {
  it('once every member hashed the step: a new generation of the same ring', () => {
    const { room, records } = ringOf(3);
    const [a, b, c] = records as [
      (typeof records)[0],
      (typeof records)[0],
      (typeof records)[0],
    ];
    const g = room.generation;
    recordReport(room, a, hashReport(50, g, 'good'), 1);
    assert.equal(recordReport(room, b, hashReport(50, g, 'bad'), 2)?.step, 50);
    // c's hash is not in: one against one would name the wrong peer.
    assert.equal(resyncIfDue(room, 50, 2), undefined);
    assert.equal(room.generation, g);

    // Found once: the third report adds to the known mismatch.
    assert.equal(
      recordReport(room, c, hashReport(50, g, 'good'), 3),
      undefined,
    );
    const resync = resyncIfDue(room, 50, 1000);
    assert.deepEqual(resync, {
      step: 50,
      generation: g + 1,
      peers: [b.id],
      atMs: 1000,
    });
    assert.equal(room.generation, g + 1);
    assert.deepEqual(
      room.members.map((m) => m.id),
      [a.id, b.id, c.id],
    );
    // At most once per step.
    recordReport(room, b, hashReport(50, g, 'bad'), 4);
    assert.equal(resyncIfDue(room, 50, 1001), undefined);
    assert.equal(room.generation, g + 1);

    const status = roomStatus(room);
    assert.equal(status.resyncCount, 1);
    assert.deepEqual(status.resyncs, [resync]);
  });

  it('breaks a tie by the lowest ring index, as the handshake does', () => {
    const { room, records } = ringOf(2);
    const [a, b] = records as [(typeof records)[0], (typeof records)[0]];
    recordReport(room, b, hashReport(25, room.generation, 'y'), 1);
    recordReport(room, a, hashReport(25, room.generation, 'x'), 2);
    assert.deepEqual(resyncIfDue(room, 25, 3)?.peers, [b.id]);
  });

  it('does nothing where agreeing hashes or a changed ring say so', () => {
    const { registry, room, records } = ringOf(3);
    const [a, b, c] = records as [
      (typeof records)[0],
      (typeof records)[0],
      (typeof records)[0],
    ];
    const g = room.generation;
    for (const peer of [a, b, c]) {
      recordReport(room, peer, hashReport(25, g, 'same'), 1);
    }
    assert.equal(resyncIfDue(room, 25, 2), undefined);

    recordReport(room, a, hashReport(50, g, 'x'), 3);
    recordReport(room, b, hashReport(50, g, 'y'), 4);
    recordReport(room, c, hashReport(50, g, 'x'), 5);
    // A restarted server waiting for its peers: not now.
    room.restoreUntilMs = 10_000;
    assert.equal(resyncIfDue(room, 50, 6), undefined);
    room.restoreUntilMs = undefined;
    // The ring changed since: its handshake compared the weights.
    registry.leave(c.id);
    assert.equal(resyncIfDue(room, 50, 7), undefined);
    assert.equal(room.generation, g + 1);
    assert.equal(roomStatus(room).resyncCount, 0);
  });
});

describe('hashes are compared within one generation', () => {
  it('a step redone in a new generation is not a mismatch with its first run', () => {
    const { room, records } = ringOf(2);
    const [a, b] = records as [(typeof records)[0], (typeof records)[0]];
    const g = room.generation;
    // a completed step 25 in generation g, b aborted it; both redo it in
    // g + 1 on other batches, b reporting first.
    recordReport(room, a, hashReport(25, g, 'first-run'), 1);
    assert.equal(
      recordReport(room, b, hashReport(25, g + 1, 'redone'), 2),
      undefined,
    );
    // A late report of the old generation is not compared either.
    assert.equal(
      recordReport(room, a, hashReport(25, g, 'first-run'), 3),
      undefined,
    );
    assert.equal(
      recordReport(room, a, hashReport(25, g + 1, 'redone'), 4),
      undefined,
    );
    const status = roomStatus(room);
    assert.equal(status.mismatchCount, 0);
    assert.deepEqual(status.hashCheck, { step: 25, agreed: true, peers: 2 });
    // Within one generation a difference is still found.
    assert.equal(
      recordReport(room, b, hashReport(25, g + 1, 'other'), 5)?.step,
      25,
    );
  });
});

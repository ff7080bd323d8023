import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseRoomConfig } from '../../shared/config.ts';
import { isTopkError } from '../../shared/errors.ts';
import { DEFAULT_LIMITS } from '../../signaling/limits.ts';
import { roomStatus } from '../../signaling/room-status.ts';
import { RoomRegistry } from '../../signaling/rooms.ts';

// A stalled ring (signaling/stall.ts through the registry): a member's
// step ran out of time with nobody to blame, and the server restarts the
// ring as a new generation of the same members, once per generation.

function setup(peers: number) {
  const clock = { nowMs: 1_000_000 };
  const registry = new RoomRegistry({
    limits: DEFAULT_LIMITS,
    rooms: new Map([['main', parseRoomConfig({})]]),
    now: () => clock.nowMs,
  });
  const ids = Array.from(
    { length: peers },
    () =>
      registry.join({ room: 'main', kind: 'node', backend: 'wasm' }).peer.id,
  );
  return { registry, room: registry.room('main')!, ids, clock };
}

const members = (room: { members: { id: string }[] }) =>
  room.members.map((m) => m.id);

describe('a stalled ring', () => {
  it('restarts as a new generation of the same members, recorded', () => {
    const { registry, room, ids, clock } = setup(3);
    const before = room.generation;
    const { outcome } = registry.stalled(ids[1]!, {
      generation: before,
      step: 42,
    });
    assert.equal(outcome.verdict, 'restarted');
    assert.equal(room.generation, before + 1);
    assert.deepEqual(members(room), ids);
    const status = roomStatus(room);
    assert.equal(status.stallCount, 1);
    assert.deepEqual(status.stalls, [
      { step: 42, generation: before + 1, peerId: ids[1], atMs: clock.nowMs },
    ]);
    assert.equal(status.ejectionCount, 0);
    assert.deepEqual(status.benched, []);
  });

  it('once per generation: the other members report late', () => {
    const { registry, room, ids } = setup(3);
    const g = room.generation;
    registry.stalled(ids[0]!, { generation: g, step: 7 });
    for (const id of ids) {
      const { outcome } = registry.stalled(id, { generation: g, step: 7 });
      assert.equal(outcome.verdict, 'late');
    }
    assert.equal(room.generation, g + 1);
    assert.equal(roomStatus(room).stallCount, 1);
  });

  it('is late for an older generation and for a peer alone', () => {
    const { registry, room, ids } = setup(2);
    const g = room.generation;
    assert.equal(
      registry.stalled(ids[0]!, { generation: g - 1, step: 3 }).outcome.verdict,
      'late',
    );
    registry.leave(ids[1]!);
    assert.equal(
      registry.stalled(ids[0]!, { generation: room.generation, step: 3 })
        .outcome.verdict,
      'late',
    );
    assert.equal(roomStatus(room).stallCount, 0);
  });

  it('is refused, typed, from a peer outside any ring', () => {
    const { registry, room } = setup(2);
    const before = room.generation;
    assert.throws(
      () => registry.stalled('nobody', { generation: before, step: 1 }),
      (error) =>
        isTopkError(error, 'ERR_BAD_MESSAGE') &&
        error.context['reason'] === 'not-in-ring',
    );
    assert.equal(room.generation, before);
  });

  it('keeps the latest twenty restarts and counts them all', () => {
    const { registry, room, ids } = setup(2);
    for (let step = 0; step < 25; step++) {
      registry.stalled(ids[step % 2]!, { generation: room.generation, step });
    }
    const status = roomStatus(room);
    assert.equal(status.stallCount, 25);
    assert.equal(status.stalls.length, 20);
    assert.equal(status.stalls.at(-1)?.step, 24);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseRoomConfig } from '../../shared/config.ts';
import { isTopkError } from '../../shared/errors.ts';
import { DEFAULT_LIMITS } from '../../signaling/limits.ts';
import { roomStatus } from '../../signaling/room-status.ts';
import { RoomRegistry } from '../../signaling/rooms.ts';

// The end of a run (signaling/finish.ts through the registry): the room
// remembers the finished run, and benched members are put back once so
// that the finished peers hand them the final weights before leaving.

function setup(peers: number, roomName = 'main') {
  const clock = { nowMs: 1_000_000 };
  const registry = new RoomRegistry({
    limits: DEFAULT_LIMITS,
    rooms: new Map([['main', parseRoomConfig({})]]),
    defaultRoomConfig: parseRoomConfig({}),
    now: () => clock.nowMs,
  });
  const ids = Array.from(
    { length: peers },
    () =>
      registry.join({ room: roomName, kind: 'node', backend: 'wasm' }).peer.id,
  );
  return { registry, room: registry.room(roomName)!, ids, clock };
}

const members = (room: { members: { id: string }[] }) =>
  room.members.map((m) => m.id);

/** Benches `ids[2]` on `ids[1]`'s word (it went silent). */
function benchThird(registry: RoomRegistry, ids: string[], generation: number) {
  const { outcome } = registry.accuse(ids[1]!, {
    generation,
    peerId: ids[2]!,
    reason: 'silent',
  });
  assert.equal(outcome.verdict, 'ejected');
}

describe('the end of a run', () => {
  it('is done at once when nobody is benched, and remembered', () => {
    const { registry, room, ids, clock } = setup(2);
    const g = room.generation;
    const { outcome } = registry.finish(ids[0]!, {
      generation: g,
      step: 500,
      modelHash: 'final',
    });
    assert.equal(outcome.verdict, 'done');
    assert.equal(room.generation, g);
    assert.deepEqual(roomStatus(room).finished, {
      step: 500,
      modelHash: 'final',
      atMs: clock.nowMs,
    });
    // Every membership from now on says so: a stale member stops.
    assert.deepEqual(registry.membership(room).finished, {
      step: 500,
      modelHash: 'final',
    });
    assert.equal(
      registry.finish(ids[1]!, { generation: g, step: 500, modelHash: 'final' })
        .outcome.verdict,
      'done',
    );
  });

  it('puts a benched member back once, in a new generation', () => {
    const { registry, room, ids } = setup(3);
    benchThird(registry, ids, room.generation);
    const g = room.generation;
    assert.deepEqual(members(room), ids.slice(0, 2));
    const first = registry.finish(ids[0]!, {
      generation: g,
      step: 300,
      modelHash: 'final',
    });
    assert.equal(first.outcome.verdict, 'wait');
    assert.deepEqual(first.outcome.readmitted, [ids[2]]);
    assert.equal(room.generation, g + 1);
    assert.deepEqual(members(room), ids);
    assert.deepEqual(roomStatus(room).benched, []);
    // The other finisher of generation g follows the new one too.
    assert.equal(
      registry.finish(ids[1]!, { generation: g, step: 300, modelHash: 'final' })
        .outcome.verdict,
      'wait',
    );
    // In the new generation everyone finishes and may leave.
    for (const id of ids) {
      const { outcome } = registry.finish(id, {
        generation: g + 1,
        step: 300,
        modelHash: 'final',
      });
      assert.equal(outcome.verdict, 'done');
    }
  });

  it('does not wait when a finished peer left, but for a newcomer', () => {
    const { registry, room, ids } = setup(3);
    const g = room.generation;
    const request = { generation: g, step: 300, modelHash: 'final' };
    assert.equal(registry.finish(ids[0]!, request).outcome.verdict, 'done');
    registry.leave(ids[0]!);
    // The ring changed, but only by a departure: nobody needs weights.
    assert.equal(registry.finish(ids[1]!, request).outcome.verdict, 'done');
    const { peer } = registry.join({
      room: 'main',
      kind: 'node',
      backend: 'wasm',
    });
    // A newcomer took a place since generation g: hand it the weights.
    assert.equal(registry.finish(ids[2]!, request).outcome.verdict, 'wait');
    assert.equal(
      registry.finish(peer.id, { ...request, generation: room.generation })
        .outcome.verdict,
      'done',
    );
  });

  it('does not wait twice for a member that fails again', () => {
    const { registry, room, ids } = setup(3);
    benchThird(registry, ids, room.generation);
    registry.finish(ids[0]!, {
      generation: room.generation,
      step: 300,
      modelHash: 'final',
    });
    // Back in the ring, it fails the handshake and is benched again.
    benchThird(registry, ids, room.generation);
    const { outcome } = registry.finish(ids[0]!, {
      generation: room.generation,
      step: 300,
      modelHash: 'final',
    });
    assert.equal(outcome.verdict, 'done');
    assert.equal(roomStatus(room).benched.length, 1);
  });

  it('lets a benched finisher leave, and keeps the highest step', () => {
    const { registry, room, ids } = setup(3);
    benchThird(registry, ids, room.generation);
    // Benched right after it completed the last step: it holds the
    // final weights and may go.
    const { outcome } = registry.finish(ids[2]!, {
      generation: room.generation - 1,
      step: 12,
      modelHash: 'later',
    });
    assert.equal(outcome.verdict, 'done');
    registry.finish(ids[0]!, {
      generation: room.generation,
      step: 10,
      modelHash: 'early',
    });
    assert.equal(roomStatus(room).finished?.step, 12);
    assert.equal(roomStatus(room).finished?.modelHash, 'later');
  });

  for (const made of ['by the server', 'on demand'] as const) {
    it(`outlives a room made ${made} that empties: an older checkpoint is refused, a newcomer starts anew`, () => {
      const roomName = made === 'on demand' ? 'elsewhere' : 'main';
      const { registry, room, ids } = setup(2, roomName);
      registry.finish(ids[0]!, {
        generation: room.generation,
        step: 50,
        modelHash: 'final',
      });
      for (const id of ids) registry.leave(id);
      assert.equal(registry.room(roomName) === undefined, made === 'on demand');
      const join = (holdsStep?: number) =>
        registry.join({
          room: roomName,
          kind: 'node',
          backend: 'wasm',
          ...(holdsStep === undefined ? {} : { holdsStep }),
        });
      assert.throws(
        () => join(49),
        (error) =>
          isTopkError(error, 'ERR_RUN_FINISHED') &&
          error.context['finishedStep'] === 50 &&
          error.context['step'] === 49 &&
          /finished at step 50 \(model final\)/.test(error.message),
      );
      // Refused: nothing changed, and the room made on demand is not made.
      assert.equal(registry.room(roomName) === undefined, made === 'on demand');
      // The final checkpoint is admitted; the run stays finished.
      const final = join(50);
      assert.deepEqual(registry.membership(final.room).finished, {
        step: 50,
        modelHash: 'final',
      });
      registry.leave(final.peer.id);
      // A newcomer in the empty room starts a new run.
      const newcomer = join();
      assert.equal(registry.membership(newcomer.room).finished, undefined);
      registry.leave(newcomer.peer.id);
      assert.equal(join(10).room.members.length, 1);
    });
  }

  it('admits an older checkpoint while finished peers can hand it on', () => {
    const { registry, room, ids } = setup(2);
    registry.finish(ids[0]!, {
      generation: room.generation,
      step: 50,
      modelHash: 'final',
    });
    const { peer } = registry.join({
      room: 'main',
      kind: 'node',
      backend: 'wasm',
      holdsStep: 10,
    });
    assert.deepEqual(members(room), [...ids, peer.id]);
    assert.equal(
      registry.finish(ids[1]!, {
        generation: room.generation - 1,
        step: 50,
        modelHash: 'final',
      }).outcome.verdict,
      'wait',
    );
  });

  it('is refused, typed, from a peer outside any room', () => {
    const { registry, room } = setup(2);
    const before = room.generation;
    assert.throws(
      () =>
        registry.finish('nobody', {
          generation: before,
          step: 1,
          modelHash: 'x',
        }),
      (error) =>
        isTopkError(error, 'ERR_BAD_MESSAGE') &&
        error.context['reason'] === 'not-in-ring',
    );
    assert.equal(roomStatus(room).finished, null);
  });
});

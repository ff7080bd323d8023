import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseRoomConfig, type RoomConfigInput } from '../../shared/config.ts';
import { isTopkError } from '../../shared/errors.ts';
import type {
  SuspectReason,
  SuspectRequest,
} from '../../shared/signaling-protocol.ts';
import { DEFAULT_LIMITS, type ServerLimits } from '../../signaling/limits.ts';
import { roomStatus } from '../../signaling/room-status.ts';
import { RoomRegistry } from '../../signaling/rooms.ts';

// Accusations without sockets (signaling/ejection.ts through the
// registry): who may accuse whom, what a verdict does to the ring and its
// generation, the bench and the return to the ring, straggler strikes,
// and the bound on what one accuser can do.

interface Clock {
  nowMs: number;
}

function setup(
  peers: number,
  config: RoomConfigInput = {},
  limits: Partial<ServerLimits> = {},
) {
  const clock: Clock = { nowMs: 1_000_000 };
  const registry = new RoomRegistry({
    limits: { ...DEFAULT_LIMITS, ...limits },
    rooms: new Map([['main', parseRoomConfig(config)]]),
    now: () => clock.nowMs,
  });
  const ids = Array.from(
    { length: peers },
    () =>
      registry.join({ room: 'main', kind: 'node', backend: 'wasm' }).peer.id,
  );
  const room = registry.room('main')!;
  return { registry, room, ids, clock };
}

function accusation(
  generation: number,
  peerId: string,
  reason: SuspectReason = 'silent',
  extra: Partial<SuspectRequest> = {},
): SuspectRequest {
  return { generation, peerId, reason, detail: 'test', ...extra };
}

/** The refusal's code and context.reason. */
function refusal(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    assert.ok(isTopkError(error), String(error));
    const reason = error.context['reason'];
    return `${error.code}${reason === undefined ? '' : `:${String(reason)}`}`;
  }
  assert.fail('expected a refusal');
}

const members = (room: { members: { id: string }[] }) =>
  room.members.map((m) => m.id);

describe('accusations the server accepts', () => {
  for (const side of ['next', 'prev'] as const) {
    it(`a silent ${side} neighbour is benched and a new generation starts without it`, () => {
      const { registry, room, ids } = setup(4);
      const [a, b, , d] = ids as [string, string, string, string];
      const accused = side === 'next' ? b : d;
      const before = room.generation;
      const { outcome } = registry.accuse(a, accusation(before, accused));
      assert.equal(outcome.verdict, 'ejected');
      assert.equal(room.generation, before + 1);
      assert.deepEqual(
        members(room),
        ids.filter((id) => id !== accused),
      );
      assert.ok(outcome.verdict === 'ejected');
      assert.deepEqual(
        { ...outcome.ejection, benchMs: outcome.ejection.benchMs },
        {
          room: 'main',
          generation: before + 1,
          peerId: accused,
          reason: 'silent',
          detail: 'test',
          accuser: a,
          benchMs: 10_000,
        },
      );
      const status = roomStatus(room);
      assert.deepEqual(
        status.benched.map((p) => [p.id, p.reason, p.ejections]),
        [[accused, 'silent', 1]],
      );
      assert.equal(status.ejectionCount, 1);
      assert.equal(status.ejections[0]?.accuser, a);
      assert.equal(status.ejections[0]?.peerId, accused);
      // The benched peer holds no ring place: it signals nobody.
      assert.equal(
        refusal(() =>
          registry.relay(accused, {
            to: a,
            generation: room.generation,
            data: { type: 'offer', sdp: 'x' },
          }),
        ),
        'ERR_BAD_MESSAGE',
      );
    });
  }

  it('a ring of two: either peer may accuse the other, leaving one', () => {
    const { registry, room, ids } = setup(2);
    const [a, b] = ids as [string, string];
    registry.accuse(b, accusation(room.generation, a, 'malformed'));
    assert.deepEqual(members(room), [b]);
  });
});

describe('accusations the server refuses, changing nothing', () => {
  it('from another generation, about a non-neighbour, itself, or from the bench', () => {
    const { registry, room, ids } = setup(5);
    const [a, b, c, , e] = ids as [string, string, string, string, string];
    const g = room.generation;
    assert.equal(
      refusal(() => registry.accuse(a, accusation(g - 1, b))),
      'ERR_BAD_MESSAGE:stale-generation',
    );
    assert.equal(
      refusal(() => registry.accuse(a, accusation(g + 1, b))),
      'ERR_BAD_MESSAGE:stale-generation',
    );
    assert.equal(
      refusal(() => registry.accuse(a, accusation(g, c))),
      'ERR_BAD_MESSAGE:not-a-neighbour',
    );
    assert.equal(
      refusal(() => registry.accuse(a, accusation(g, a))),
      'ERR_BAD_MESSAGE:self',
    );
    // A straggler is the previous peer (whose message was awaited).
    assert.equal(
      refusal(() => registry.accuse(a, accusation(g, b, 'straggler'))),
      'ERR_BAD_MESSAGE:not-previous',
    );
    assert.equal(
      refusal(() => registry.accuse('nobody-here-1', accusation(g, a))),
      'ERR_BAD_MESSAGE:not-in-ring',
    );
    assert.equal(room.generation, g);
    assert.deepEqual(members(room), ids);

    // A benched peer accuses nobody.
    registry.accuse(a, accusation(g, e));
    assert.equal(
      refusal(() => registry.accuse(e, accusation(room.generation, a))),
      'ERR_BAD_MESSAGE:not-in-ring',
    );
  });

  it('both neighbours of a silent peer accuse it: the second is stale', () => {
    const { registry, room, ids } = setup(3);
    const [a, b, c] = ids as [string, string, string];
    const g = room.generation;
    registry.accuse(a, accusation(g, b));
    assert.equal(
      refusal(() => registry.accuse(c, accusation(g, b))),
      'ERR_BAD_MESSAGE:stale-generation',
    );
    assert.deepEqual(members(room), [a, c]);
  });

  it('one accuser ejects at most maxEjectionsPerAccuser peers per window', () => {
    const { registry, room, ids, clock } = setup(
      6,
      { limits: { benchMs: 3_600_000 } },
      { maxEjectionsPerAccuser: 2, ejectionWindowMs: 60_000 },
    );
    const a = ids[0]!;
    const nextOf = () => members(room)[1]!;
    registry.accuse(a, accusation(room.generation, nextOf()));
    registry.accuse(a, accusation(room.generation, nextOf()));
    assert.equal(members(room).length, 4);
    assert.equal(
      refusal(() => registry.accuse(a, accusation(room.generation, nextOf()))),
      'ERR_RATE_LIMIT',
    );
    assert.equal(members(room).length, 4);
    // Another peer is not bound by a's budget; a is again after the window.
    registry.accuse(nextOf(), accusation(room.generation, members(room)[2]!));
    clock.nowMs += 60_001;
    registry.accuse(a, accusation(room.generation, nextOf()));
    assert.equal(members(room).length, 2);
  });
});

describe('the bench', () => {
  it('puts an ejected peer back at the end of the ring when it is over, in a new generation', () => {
    const { registry, room, ids, clock } = setup(3, {
      limits: { benchMs: 5000 },
    });
    const [a, b, c] = ids as [string, string, string];
    registry.accuse(a, accusation(room.generation, b));
    assert.equal(registry.benchEndMs('main'), clock.nowMs + 5000);
    clock.nowMs += 4999;
    assert.equal(registry.readmitBenched('main'), undefined);
    const g = room.generation;
    clock.nowMs += 1;
    assert.equal(registry.readmitBenched('main'), room);
    assert.equal(room.generation, g + 1);
    assert.deepEqual(members(room), [a, c, b]);
    assert.equal(registry.benchEndMs('main'), undefined);
  });

  it('doubles for each further ejection of the same peer, up to 16 times', () => {
    const { registry, room, ids, clock } = setup(2, {
      limits: { benchMs: 1000 },
    });
    const [a, b] = ids as [string, string];
    const benches: number[] = [];
    for (let i = 0; i < 6; i++) {
      const { outcome } = registry.accuse(a, accusation(room.generation, b));
      assert.ok(outcome.verdict === 'ejected');
      benches.push(outcome.ejection.benchMs);
      clock.nowMs += outcome.ejection.benchMs + 60_001;
      registry.readmitBenched('main');
      assert.deepEqual(members(room), [a, b]);
    }
    assert.deepEqual(benches, [1000, 2000, 4000, 8000, 16000, 16000]);
  });

  it('a benched peer that leaves (or disconnects) is forgotten without a new generation', () => {
    const { registry, room, ids } = setup(3);
    const [a, b] = ids as [string, string];
    registry.accuse(a, accusation(room.generation, b));
    const g = room.generation;
    assert.equal(registry.leave(b), room);
    assert.equal(room.generation, g);
    assert.deepEqual(roomStatus(room).benched, []);
    assert.equal(registry.benchEndMs('main'), undefined);
  });

  it('a benched peer that reconnects keeps its bench, and a dropped one is not put back', () => {
    const { registry, room, ids, clock } = setup(3, {
      limits: { benchMs: 1000 },
    });
    const [a, b, c] = ids as [string, string, string];
    const resumeKey = room.members[1]!.resumeKey!;
    registry.accuse(a, accusation(room.generation, b));
    const back = registry.join({
      room: 'main',
      kind: 'node',
      backend: 'wasm',
      peerId: b,
      resumeKey,
    });
    assert.equal(back.peer.id, b);
    assert.deepEqual(members(room), [a, c]);
    assert.equal(roomStatus(room).benched.length, 1);

    // Still connected at the end of the bench: back in the ring.
    clock.nowMs += 1000;
    registry.readmitBenched('main');
    assert.deepEqual(members(room), [a, c, b]);

    // Not connected at the end of the bench: dropped, id free again.
    registry.accuse(c, accusation(room.generation, b));
    room.benched[0]!.peer.connected = false;
    const g = room.generation;
    clock.nowMs += 10_000;
    registry.readmitBenched('main');
    assert.equal(room.generation, g);
    assert.deepEqual(members(room), [a, c]);
    assert.deepEqual(roomStatus(room).benched, []);
  });

  it('benched peers count against the room capacity', () => {
    const { registry, room, ids } = setup(2, { limits: { maxPeers: 2 } });
    registry.accuse(ids[0]!, accusation(room.generation, ids[1]!));
    assert.equal(
      refusal(() =>
        registry.join({ room: 'main', kind: 'node', backend: 'wasm' }),
      ),
      'ERR_ADMISSION:room-full',
    );
  });
});

describe('stragglers: strikes, not victims', () => {
  const limits = { stragglerStrikes: 3, stragglerWindowSteps: 10 };

  it('a previous peer is benched at its third missed deadline within the window', () => {
    const { registry, room, ids } = setup(4, { limits });
    const [a, , , d] = ids as [string, string, string, string];
    const g = room.generation;
    const verdicts = [5, 6, 9].map(
      (step) =>
        registry.accuse(a, accusation(g, d, 'straggler', { step })).outcome,
    );
    assert.deepEqual(
      verdicts.map((v) => v.verdict),
      ['strike', 'strike', 'ejected'],
    );
    assert.deepEqual(
      verdicts.slice(0, 2).map((v) => (v.verdict === 'strike' ? v.strikes : 0)),
      [1, 2],
    );
    assert.equal(room.generation, g + 1);
    assert.deepEqual(roomStatus(room).benched[0]?.reason, 'straggler');
  });

  it('strikes out of the window, or at the same step, do not add up', () => {
    const { registry, room, ids } = setup(3, { limits });
    const [a, , c] = ids as [string, string, string];
    const g = room.generation;
    const strikes = [1, 1, 5, 12, 16].map((step) => {
      const { outcome } = registry.accuse(
        a,
        accusation(g, c, 'straggler', { step }),
      );
      assert.equal(outcome.verdict, 'strike');
      return outcome.verdict === 'strike' ? outcome.strikes : -1;
    });
    // Step 1 falls out of the window of 10 at step 12, step 5 at 16.
    assert.deepEqual(strikes, [1, 1, 2, 2, 2]);
    assert.deepEqual(members(room), ids);
  });
});

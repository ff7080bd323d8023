import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { parseRoomConfig, type RoomConfigInput } from '../../shared/config.ts';
import { isTopkError } from '../../shared/errors.ts';
import type { JoinRequest } from '../../shared/signaling-protocol.ts';
import { DEFAULT_LIMITS } from '../../signaling/limits.ts';
import { recordReport, roomStatus } from '../../signaling/room-status.ts';
import {
  RoomRegistry,
  type RoomRegistryOptions,
} from '../../signaling/rooms.ts';

// Random sequences of joins (fresh, reclaiming, restoring, with configs),
// leaves, relays, reports and restore expiries against one registry:
// after every event the ring is consistent, and every refusal is a typed
// error. TOPK_FUZZ_RUNS raises the number of sequences (default 300).

function registry(
  rooms: Record<string, RoomConfigInput>,
  extra: Partial<RoomRegistryOptions>,
): RoomRegistry {
  return new RoomRegistry({
    limits: DEFAULT_LIMITS,
    rooms: new Map(
      Object.entries(rooms).map(([name, c]) => [name, parseRoomConfig(c)]),
    ),
    ...extra,
  });
}

function request(extra: Partial<JoinRequest>): JoinRequest {
  return { room: 'main', kind: 'node', backend: 'wasm', ...extra };
}

describe('any sequence of events (fuzz)', () => {
  const runs = Number(process.env.TOPK_FUZZ_RUNS ?? 300);

  it('keeps the ring consistent; every refusal is typed', () => {
    const idPool = [
      'peer-aaaaaaaa',
      'peer-bbbbbbbb',
      'peer-cccccccc',
      'peer-dddddddd',
    ];
    const anyId = fc.oneof(fc.constantFrom(...idPool), fc.constant(undefined));
    const action = fc.oneof(
      fc.record({
        kind: fc.constant('join' as const),
        room: fc.constantFrom('main', 'side', 'new'),
        peerId: anyId,
        resumeKey: fc.option(fc.constantFrom('k'.repeat(20), 'j'.repeat(20)), {
          nil: undefined,
        }),
        previous: fc.option(
          fc.record({
            generation: fc.nat(20),
            members: fc.uniqueArray(fc.constantFrom(...idPool), {
              minLength: 1,
              maxLength: 4,
            }),
          }),
          { nil: undefined },
        ),
        config: fc.option(
          fc.constantFrom<RoomConfigInput>({}, { density: 0.5 }, { k: 3 }),
          { nil: undefined },
        ),
      }),
      fc.record({ kind: fc.constant('leave' as const), which: fc.nat(10) }),
      fc.record({
        kind: fc.constant('relay' as const),
        which: fc.nat(10),
        to: fc.nat(10),
        generationDelta: fc.integer({ min: -2, max: 1 }),
      }),
      fc.record({
        kind: fc.constant('report' as const),
        which: fc.nat(10),
        step: fc.nat(30),
        hash: fc.constantFrom('h1', 'h2'),
      }),
      fc.record({
        kind: fc.constant('expire' as const),
        advanceMs: fc.nat(20_000),
      }),
    );

    fc.assert(
      fc.property(fc.array(action, { maxLength: 40 }), (actions) => {
        let nowMs = 0;
        const r = registry(
          { main: { limits: { maxPeers: 3 } }, side: {} },
          {
            allowPeerConfig: true,
            now: () => nowMs,
            limits: { ...DEFAULT_LIMITS, maxRooms: 3 },
          },
        );
        const generations = new Map<string, number>();
        const everyone = () => r.rooms().flatMap((room) => room.members);
        for (const a of actions) {
          try {
            const members = everyone();
            const pick = (i: number) =>
              members[i % Math.max(1, members.length)];
            if (a.kind === 'join') {
              const { kind: _kind, ...fields } = a;
              r.join(
                request(
                  Object.fromEntries(
                    Object.entries(fields).filter(([, v]) => v !== undefined),
                  ),
                ),
              );
            } else if (a.kind === 'leave') {
              const peer = pick(a.which);
              if (peer !== undefined) r.leave(peer.id);
            } else if (a.kind === 'relay') {
              const from = pick(a.which);
              const to = pick(a.to);
              const room =
                from && r.rooms().find((x) => x.members.includes(from));
              if (from && to && room) {
                r.relay(from.id, {
                  to: to.id,
                  generation: Math.max(0, room.generation + a.generationDelta),
                  data: {},
                });
              }
            } else if (a.kind === 'report') {
              const peer = pick(a.which);
              const room =
                peer && r.rooms().find((x) => x.members.includes(peer));
              if (peer && room) {
                recordReport(
                  room,
                  peer,
                  {
                    step: a.step,
                    bytesSent: 0,
                    bytesReceived: 0,
                    modelHash: a.hash,
                  },
                  nowMs,
                );
              }
            } else {
              nowMs += a.advanceMs;
              for (const room of r.rooms()) r.expireRestore(room.name);
            }
          } catch (error) {
            assert.ok(isTopkError(error), String(error));
            assert.notEqual(error.code, 'ERR_INTERNAL');
          }

          // Invariants after every event.
          // A deleted room made on demand starts over when made again.
          for (const name of generations.keys()) {
            if (r.room(name) === undefined) generations.delete(name);
          }
          const ids = everyone().map((m) => m.id);
          assert.equal(new Set(ids).size, ids.length, 'an id in two places');
          for (const room of r.rooms()) {
            const before = generations.get(room.name) ?? 0;
            assert.ok(room.generation >= before, 'generation went back');
            generations.set(room.name, room.generation);
            assert.ok(room.members.length <= room.config.limits.maxPeers);
            const status = roomStatus(room);
            assert.deepEqual(
              status.peers.map((p) => p.ringIndex),
              room.members.map((_, i) => i),
            );
            assert.ok(room.hashes.size <= 16);
          }
        }
      }),
      { numRuns: runs },
    );
  });
});

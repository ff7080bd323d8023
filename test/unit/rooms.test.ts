import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseRoomConfig, type RoomConfigInput } from '../../shared/config.ts';
import { isTopkError, type ErrorCode } from '../../shared/errors.ts';
import {
  ringPosition,
  type JoinRequest,
} from '../../shared/signaling-protocol.ts';
import { DEFAULT_LIMITS } from '../../signaling/limits.ts';
import { recordReport, roomStatus } from '../../signaling/room-status.ts';
import {
  RoomRegistry,
  type RoomRegistryOptions,
} from '../../signaling/rooms.ts';

// Rooms without sockets: ring placement, generations, who may signal
// whom, admission by capacity, config and model, reconnection and the
// restore after a server restart (case 8), and the model-hash check.

function registry(
  rooms: Record<string, RoomConfigInput> = { main: {} },
  extra: Partial<RoomRegistryOptions> = {},
): RoomRegistry {
  return new RoomRegistry({
    limits: DEFAULT_LIMITS,
    rooms: new Map(
      Object.entries(rooms).map(([name, c]) => [name, parseRoomConfig(c)]),
    ),
    ...extra,
  });
}

function request(extra: Partial<JoinRequest> = {}): JoinRequest {
  return { room: 'main', kind: 'node', backend: 'wasm', ...extra };
}

function codeOf(action: () => unknown): ErrorCode | undefined {
  try {
    action();
    return undefined;
  } catch (error) {
    assert.ok(isTopkError(error), String(error));
    return error.code;
  }
}

function ids(r: RoomRegistry, name = 'main'): string[] {
  return r.room(name)?.members.map((m) => m.id) ?? [];
}

describe('ring placement and generations', () => {
  it('newcomers take the last ring index; each change is a generation', () => {
    const r = registry();
    const a = r.join(request()).peer.id;
    assert.equal(r.room('main')?.generation, 1);
    const b = r.join(request()).peer.id;
    const c = r.join(request()).peer.id;
    const room = r.room('main')!;
    assert.equal(room.generation, 3);
    assert.deepEqual(ids(r), [a, b, c]);

    const membership = r.membership(room);
    assert.deepEqual(
      membership.members.map((m) => m.ringIndex),
      [0, 1, 2],
    );
    assert.deepEqual(ringPosition(membership, b), {
      ringIndex: 1,
      size: 3,
      next: c,
      prev: a,
    });
    assert.deepEqual(ringPosition(membership, c)?.next, a);
  });

  it('a leaver is cut out and the others keep their order', () => {
    const r = registry();
    const [a, b, c, d] = [1, 2, 3, 4].map(() => r.join(request()).peer.id);
    r.leave(b!);
    assert.deepEqual(ids(r), [a, c, d]);
    assert.equal(r.room('main')?.generation, 5);
    assert.equal(r.leave(b!), undefined, 'a second leave changes nothing');
    assert.equal(r.room('main')?.generation, 5);
  });

  it('peer ids are unique and URL-safe', () => {
    const r = registry();
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(r.join(request()).peer.id);
    assert.equal(seen.size, 20);
    for (const id of seen) assert.match(id, /^[A-Za-z0-9_-]{16}$/);
  });
});

describe('relay', () => {
  it('only between ring neighbours of the current generation', () => {
    const r = registry();
    const [a, b, c, d] = [1, 2, 3, 4].map(() => r.join(request()).peer.id);
    const generation = r.room('main')!.generation;
    const data = { type: 'offer', sdp: 'x' };
    assert.deepEqual(r.relay(a!, { to: b!, generation, data }), {
      deliver: true,
      to: b,
    });
    assert.deepEqual(r.relay(a!, { to: d!, generation, data }), {
      deliver: true,
      to: d,
    });
    assert.equal(
      codeOf(() => r.relay(a!, { to: c!, generation, data })),
      'ERR_BAD_MESSAGE',
      'a and c are not neighbours in a ring of 4',
    );
    assert.equal(
      codeOf(() => r.relay(a!, { to: a!, generation, data })),
      'ERR_BAD_MESSAGE',
    );
    assert.deepEqual(
      r.relay(a!, { to: b!, generation: generation - 1, data }),
      { deliver: false, reason: 'stale' },
    );
    assert.equal(
      codeOf(() => r.relay(a!, { to: b!, generation: generation + 1, data })),
      'ERR_BAD_MESSAGE',
    );
    assert.equal(
      codeOf(() => r.relay('nobody-in-a-room', { to: b!, generation, data })),
      'ERR_BAD_MESSAGE',
    );
  });

  it('alone in the room, a peer has nobody to signal', () => {
    const r = registry();
    const a = r.join(request()).peer.id;
    assert.equal(
      codeOf(() => r.relay(a, { to: a, generation: 1, data: {} })),
      'ERR_BAD_MESSAGE',
    );
  });
});

describe('admission by the room', () => {
  it('a full room refuses', () => {
    const r = registry({ main: { limits: { maxPeers: 2 } } });
    r.join(request());
    r.join(request());
    assert.equal(
      codeOf(() => r.join(request())),
      'ERR_ADMISSION',
    );
    assert.equal(r.room('main')?.generation, 2);
  });

  it('an unknown room is refused unless rooms are made on demand', () => {
    assert.equal(
      codeOf(() => registry().join(request({ room: 'other' }))),
      'ERR_ADMISSION',
    );
    const onDemand = registry(
      {},
      { defaultRoomConfig: parseRoomConfig({ density: 0.2 }) },
    );
    onDemand.join(request({ room: 'other' }));
    assert.equal(onDemand.room('other')?.config.density, 0.2);
    assert.equal(onDemand.room('other')?.configSource, 'default');
  });

  it('the first peer sets the config where allowed; joiners must match', () => {
    const r = registry({}, { allowPeerConfig: true });
    r.join(request({ room: 'job', config: { density: 0.05 } }));
    assert.equal(r.room('job')?.config.density, 0.05);
    assert.equal(r.room('job')?.configSource, 'peer');
    r.join(request({ room: 'job' }));
    r.join(request({ room: 'job', config: { density: 0.05 } }));
    assert.equal(
      codeOf(() => r.join(request({ room: 'job', config: { density: 0.1 } }))),
      'ERR_MISMATCH',
    );
    assert.equal(
      codeOf(() => r.join(request({ room: 'job', config: { density: 7 } }))),
      'ERR_BAD_CONFIG',
    );
    assert.equal(r.room('job')?.members.length, 3);
  });

  it('a partial config is compared on what it names, not on defaults', () => {
    const r = registry({
      job: parseRoomConfig({
        batchSize: 32,
        density: 0.1,
        limits: { peerTimeoutMs: 2000 },
      }),
    });
    // Names only settings the room has: admitted, though the room's batch
    // size and peer timeout are not the defaults.
    r.join(request({ room: 'job', config: { density: 0.1 } }));
    r.join(request({ room: 'job', config: { limits: { heartbeatMs: 1000 } } }));
    // K as a count the room does not have, or a named setting that
    // differs: refused, naming it.
    assert.equal(
      codeOf(() => r.join(request({ room: 'job', config: { k: 10 } }))),
      'ERR_MISMATCH',
    );
    assert.throws(
      () => r.join(request({ room: 'job', config: { batchSize: 64 } })),
      /batchSize: room has 32, peer has 64/,
    );
    assert.equal(r.room('job')?.members.length, 2);
  });

  it('a bad first config creates no room', () => {
    const r = registry({}, { allowPeerConfig: true });
    assert.equal(
      codeOf(() => r.join(request({ room: 'job', config: { k: -1 } }))),
      'ERR_BAD_CONFIG',
    );
    assert.equal(r.room('job'), undefined);
  });

  it('a joiner with another model is refused, naming the variable', () => {
    const r = registry();
    const variables = [
      { name: 'dense/kernel', shape: [784, 128], dtype: 'float32' },
      { name: 'dense/bias', shape: [128], dtype: 'float32' },
    ];
    r.join(request({ fingerprint: { variables } }));
    r.join(request({ fingerprint: { variables } }));
    try {
      r.join(
        request({
          fingerprint: {
            variables: [
              variables[0]!,
              { name: 'dense/bias', shape: [64], dtype: 'float32' },
            ],
          },
        }),
      );
      assert.fail('accepted another model');
    } catch (error) {
      assert.ok(isTopkError(error, 'ERR_MISMATCH'));
      assert.match(String(error.context.difference), /dense\/bias/);
    }
  });

  it('a room may not outgrow the server limit on rooms', () => {
    const r = registry(
      {},
      {
        allowPeerConfig: true,
        limits: { ...DEFAULT_LIMITS, maxRooms: 2 },
      },
    );
    r.join(request({ room: 'a' }));
    r.join(request({ room: 'b' }));
    assert.equal(
      codeOf(() => r.join(request({ room: 'c' }))),
      'ERR_ADMISSION',
    );
  });

  it('an empty on-demand room is deleted; a configured one stays', () => {
    const r = registry({ main: {} }, { allowPeerConfig: true });
    const x = r.join(request({ room: 'x' })).peer.id;
    const m = r.join(request()).peer.id;
    r.leave(x);
    r.leave(m);
    assert.equal(r.room('x'), undefined);
    assert.equal(r.room('main')?.generation, 2);
  });
});

describe('reconnection', () => {
  it('a peer with its resume key takes its place back, same generation', () => {
    const r = registry();
    const a = r.join(request()).peer;
    r.join(request());
    const before = r.room('main')!.generation;
    const again = r.join(request({ peerId: a.id, resumeKey: a.resumeKey! }));
    assert.equal(again.replacedConnection, true);
    assert.equal(again.peer.id, a.id);
    assert.equal(r.room('main')!.generation, before);
    assert.equal(
      codeOf(() =>
        r.join(request({ peerId: a.id, resumeKey: 'x'.repeat(24) })),
      ),
      'ERR_ADMISSION',
    );
    assert.equal(
      codeOf(() => r.join(request({ peerId: a.id }))),
      'ERR_ADMISSION',
    );
  });

  it('an id held in another room cannot be claimed', () => {
    const r = registry({ main: {}, other: {} });
    const a = r.join(request()).peer;
    assert.equal(
      codeOf(() =>
        r.join(
          request({ room: 'other', peerId: a.id, resumeKey: a.resumeKey! }),
        ),
      ),
      'ERR_ADMISSION',
    );
  });

  it('a restarted server restores the ring in the same generation', () => {
    let nowMs = 0;
    const r = registry({ main: {} }, { now: () => nowMs });
    const previous = {
      generation: 7,
      members: ['peer-aaaaaaaa', 'peer-bbbbbbbb', 'peer-cccccccc'],
    };
    const [a, b, c] = previous.members as [string, string, string];
    r.join(request({ peerId: b, resumeKey: 'b'.repeat(24), previous }));
    const room = r.room('main')!;
    assert.equal(room.generation, 7);
    assert.deepEqual(ids(r), [a, b, c]);
    assert.deepEqual(
      room.members.map((m) => m.connected),
      [false, true, false],
    );
    assert.equal(roomStatus(room).restoring, true);

    r.join(request({ peerId: a, resumeKey: 'a'.repeat(24), previous }));
    assert.equal(room.generation, 7);
    assert.equal(
      codeOf(() => r.join(request({ peerId: a, resumeKey: 'z'.repeat(24) }))),
      'ERR_ADMISSION',
      'the first key presented for a restored place is the one kept',
    );

    nowMs = DEFAULT_LIMITS.rejoinGraceMs - 1;
    assert.equal(r.expireRestore('main'), undefined, 'not yet');
    nowMs = DEFAULT_LIMITS.rejoinGraceMs;
    assert.equal(r.expireRestore('main'), room);
    assert.deepEqual(ids(r), [a, b]);
    assert.equal(room.generation, 8);
    assert.equal(roomStatus(room).restoring, false);
  });

  it('with a resume secret, a restored place takes only its own signed key', () => {
    const secret = 'server-secret-that-survives-restarts';
    // Before the restart: two peers with the keys the server gave them.
    const before = registry({ main: {} }, { resumeSecret: secret });
    const a = before.join(request());
    const b = before.join(request());
    const previous = {
      generation: before.room('main')!.generation,
      members: [a.peer.id, b.peer.id],
    };
    const keyOf = (outcome: typeof a) => outcome.peer.resumeKey as string;

    // After it: same secret, nothing else remembered.
    const r = registry({ main: {} }, { resumeSecret: secret });
    // Restoring the ring needs a valid key too.
    assert.equal(
      codeOf(() =>
        r.join(
          request({ peerId: a.peer.id, resumeKey: 'x'.repeat(24), previous }),
        ),
      ),
      'ERR_ADMISSION',
    );
    r.join(request({ peerId: a.peer.id, resumeKey: keyOf(a), previous }));
    // Another member knows b's id (ids travel in memberships) but not its
    // key: it cannot take b's place, with a key or without one.
    for (const resumeKey of [undefined, 'y'.repeat(24), keyOf(a)]) {
      let error: unknown;
      try {
        r.join(request({ peerId: b.peer.id, resumeKey }));
      } catch (caught) {
        error = caught;
      }
      assert.ok(
        isTopkError(error, 'ERR_ADMISSION') &&
          error.context['reason'] === 'bad-resume-key',
        String(error),
      );
    }
    r.join(request({ peerId: b.peer.id, resumeKey: keyOf(b) }));
    const room = r.room('main')!;
    assert.deepEqual(ids(r), previous.members);
    assert.ok(room.members.every((m) => m.connected));
    assert.equal(room.generation, previous.generation);
    // Nor can a made-up id be claimed.
    assert.equal(
      codeOf(() =>
        r.join(request({ peerId: 'peer-madeupid', resumeKey: keyOf(a) })),
      ),
      'ERR_ADMISSION',
    );
  });

  it('when every place is reclaimed the restore ends at once', () => {
    const r = registry();
    const previous = {
      generation: 3,
      members: ['peer-aaaaaaaa', 'peer-bbbbbbbb'],
    };
    r.join(request({ peerId: 'peer-aaaaaaaa', previous }));
    r.join(request({ peerId: 'peer-bbbbbbbb', previous }));
    assert.equal(r.room('main')!.restoreUntilMs, undefined);
    assert.equal(r.room('main')!.generation, 3);
  });

  it('a newcomer during a restore ends it with a new generation', () => {
    const r = registry();
    const previous = {
      generation: 3,
      members: ['peer-aaaaaaaa', 'peer-bbbbbbbb'],
    };
    r.join(request({ peerId: 'peer-aaaaaaaa', previous }));
    const newcomer = r.join(request()).peer.id;
    assert.deepEqual(ids(r), ['peer-aaaaaaaa', newcomer]);
    assert.equal(r.room('main')!.generation, 4);
  });

  it('a stale peer cannot roll a room back to an older generation', () => {
    const r = registry();
    const a = r.join(request()).peer.id;
    r.join(request());
    r.leave(a);
    r.leave(ids(r)[0]!);
    assert.equal(r.room('main')!.generation, 4);
    r.join(
      request({
        peerId: 'peer-oldoldold',
        previous: { generation: 2, members: ['peer-oldoldold', a] },
      }),
    );
    assert.equal(r.room('main')!.generation, 5);
    assert.deepEqual(ids(r), ['peer-oldoldold']);
  });
});

describe('model-hash check', () => {
  it('reports a mismatch at a step once, and keeps status current', () => {
    const r = registry();
    const a = r.join(request()).peer;
    const b = r.join(request()).peer;
    const c = r.join(request()).peer;
    const room = r.room('main')!;
    const report = (modelHash: string, step = 10) => ({
      step,
      bytesSent: 100,
      bytesReceived: 200,
      loss: 0.5,
      modelHash,
    });
    assert.equal(recordReport(room, a, report('h1'), 1), undefined);
    assert.equal(recordReport(room, b, report('h1'), 2), undefined);
    assert.equal(roomStatus(room).hashCheck?.agreed, true);

    const mismatch = recordReport(room, c, report('h2'), 3);
    assert.equal(mismatch?.step, 10);
    assert.equal(mismatch?.hashes.length, 3);
    assert.equal(recordReport(room, c, report('h3'), 4), undefined);

    const status = roomStatus(room);
    assert.equal(status.step, 10);
    assert.equal(status.mismatchCount, 1);
    assert.equal(status.hashCheck?.agreed, false);
    assert.equal(status.peers[2]?.modelHash, 'h3');
    assert.equal(status.peers[0]?.bytesReceived, 200);
  });

  it('keeps hashes of a bounded number of steps', () => {
    const r = registry();
    const a = r.join(request()).peer;
    const room = r.room('main')!;
    for (let step = 0; step < 1000; step++) {
      recordReport(
        room,
        a,
        { step, bytesSent: 0, bytesReceived: 0, modelHash: `h${step}` },
        step,
      );
    }
    assert.ok(room.hashes.size <= 16);
    assert.equal(room.step, 999);
  });

  it('hides ICE credentials from the status', () => {
    const r = registry({
      main: {
        iceServers: [
          { urls: 'turn:t.example', username: 'u', credential: 'secret' },
        ],
      },
    });
    const status = roomStatus(r.room('main')!);
    assert.notEqual(status.config.iceServers[0]?.credential, 'secret');
    assert.equal(r.room('main')!.config.iceServers[0]?.credential, 'secret');
  });
});

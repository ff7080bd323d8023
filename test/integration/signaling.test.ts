import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseRoomConfig } from '../../shared/config.ts';
import type {
  JoinReply,
  Membership,
  Rejection,
} from '../../shared/signaling-protocol.ts';
import { signRoomToken } from '../../signaling/admission.ts';
import {
  emitWithAck,
  httpGet,
  membershipWhere,
  nextClientEvent,
  nextEvent,
  rawClient,
  refusal,
  serverFor,
} from './helpers/signaling-harness.ts';

// The signaling server on loopback with real socket.io clients in this
// process: joining, ring order and generations, relay between neighbours
// with the sender stamped by the server, admission, hostile input, rate
// limits. The HTTP side is in signaling-http.test.ts, reconnection and
// timeouts in signaling-recovery.test.ts.

const T = { timeout: 15_000 };

describe('join, ring order, generations', () => {
  const { state, join } = serverFor();

  it(
    'a join is answered with an id, the config and the membership',
    T,
    async () => {
      const a = await join();
      assert.match(a.peerId, /^[A-Za-z0-9_-]{8,64}$/);
      assert.ok(a.resumeKey.length >= 16);
      assert.deepEqual(a.config, parseRoomConfig({}));
      assert.equal(a.membership.room, 'main');
      assert.deepEqual(a.position, {
        ringIndex: 0,
        size: 1,
        next: a.peerId,
        prev: a.peerId,
      });
      await a.leave();
    },
  );

  it(
    'each peer learns its ring index, neighbours and generation',
    T,
    async () => {
      const a = await join();
      const base = a.membership.generation;
      const b = await join();
      const c = await join();
      for (const client of [a, b, c]) {
        await membershipWhere(client, (m) => m.generation === base + 2);
      }
      assert.deepEqual(
        [a, b, c].map((client) => client.position?.ringIndex),
        [0, 1, 2],
      );
      assert.equal(a.position?.next, b.peerId);
      assert.equal(a.position?.prev, c.peerId);
      assert.equal(c.position?.next, a.peerId);

      // A graceful leave re-forms the ring in a new generation.
      await b.leave();
      for (const client of [a, c]) {
        const m = await membershipWhere(client, (m) => m.members.length === 2);
        assert.equal(m.generation, base + 3);
      }
      assert.equal(a.position?.next, c.peerId);
      assert.equal(c.position?.next, a.peerId);

      // A lost connection does too, without a goodbye.
      c.close();
      const m = await membershipWhere(a, (m) => m.members.length === 1);
      assert.equal(m.generation, base + 4);
      await a.leave();
      assert.equal(state.server.roomStatus('main')?.peers.length, 0);
    },
  );
});

describe('relay between ring neighbours', () => {
  const { state, join } = serverFor();

  it(
    'is stamped with the sender by the server; a forged from is refused',
    T,
    async () => {
      const a = await join();
      const b = await join();
      await membershipWhere(a, (m) => m.members.length === 2);

      const received = nextClientEvent(b, 'signal');
      a.signal(b.peerId, { type: 'offer', sdp: 'v=0' });
      const signal = await received;
      assert.equal(signal.from, a.peerId);
      assert.equal(signal.generation, a.membership.generation);
      assert.deepEqual(signal.data, { type: 'offer', sdp: 'v=0' });

      // A raw client that joins and claims to be `a`.
      const raw = await rawClient(state.server.url);
      const reply = (await emitWithAck(raw, 'join', {
        room: 'main',
        kind: 'node',
        backend: 'x',
      })) as JoinReply;
      assert.equal(reply.ok, true);
      if (!reply.ok) return;
      const rejected = nextEvent(raw, 'rejected');
      raw.emit('signal', {
        from: a.peerId,
        to: a.peerId,
        generation: reply.membership.generation,
        data: { type: 'offer', sdp: 'forged' },
      });
      assert.equal(((await rejected) as Rejection).code, 'ERR_BAD_MESSAGE');

      // Unforged, it arrives, but from the raw client's own id.
      const fromRaw = nextClientEvent(a, 'signal');
      raw.emit('signal', {
        to: a.peerId,
        generation: reply.membership.generation,
        data: { type: 'offer', sdp: 'honest' },
      });
      assert.equal((await fromRaw).from, reply.peerId);
      raw.disconnect();
      await membershipWhere(a, (m) => m.members.length === 2);
      a.close();
      b.close();
    },
  );

  it('goes only to neighbours; stale generations are dropped', T, async () => {
    const [a, b, c, d] = [
      await join(),
      await join(),
      await join(),
      await join(),
    ];
    // Exactly these four (peers of the test before may still be leaving).
    const ids = [a, b, c, d].map((client) => client!.peerId).join();
    const ours = (m: Membership) =>
      m.members.map((x) => x.peerId).join() === ids;
    for (const client of [a, b, c, d]) await membershipWhere(client!, ours);
    const generation = a!.membership.generation;

    // a -> c: not neighbours in a ring of 4.
    const refused = nextClientEvent(a!, 'rejected');
    a!.signal(c!.peerId, { type: 'offer', sdp: 'not a neighbour' });
    assert.equal((await refused).code, 'ERR_BAD_MESSAGE');

    // a -> b tagged with an older generation: dropped, no error.
    a!.signal(b!.peerId, { type: 'offer', sdp: 'stale' }, generation - 1);
    // Markers from the right neighbours arrive first at b and c: the
    // refused and the stale signal never reached them.
    const atB = nextClientEvent(b!, 'signal');
    const atC = nextClientEvent(c!, 'signal');
    a!.signal(b!.peerId, { type: 'offer', sdp: 'marker-b' });
    d!.signal(c!.peerId, { type: 'offer', sdp: 'marker-c' });
    assert.equal((await atB).data.sdp, 'marker-b');
    assert.equal((await atC).data.sdp, 'marker-c');

    const metrics = (await httpGet(`${state.server.url}/metrics`)).body;
    assert.match(
      metrics,
      /topk_signaling_signals_dropped_total\{reason="stale"\} 1/,
    );
    for (const client of [a, b, c, d]) client!.close();
  });
});

describe('admission', () => {
  const secret = 'sign-here';
  const { join } = serverFor({
    admission: { sharedToken: 'open-sesame', tokenSecret: secret },
  });

  it('a wrong or missing token is refused with the reason', T, async () => {
    const wrong = await refusal(join({ token: 'guess' }));
    assert.equal(wrong.code, 'ERR_ADMISSION');
    assert.equal(wrong.context.reason, 'wrong-token');
    const missing = await refusal(join());
    assert.equal(missing.context.reason, 'missing-token');
    const expired = await refusal(
      join({
        token: signRoomToken(secret, {
          room: 'main',
          expiresAtMs: Date.now() - 1000,
        }),
      }),
    );
    assert.equal(expired.context.reason, 'expired-token');
  });

  it('the shared secret and a signed token are admitted', T, async () => {
    const a = await join({ token: 'open-sesame' });
    const b = await join({
      token: signRoomToken(secret, {
        room: 'main',
        expiresAtMs: Date.now() + 60_000,
      }),
    });
    assert.notEqual(a.peerId, b.peerId);
    a.close();
    b.close();
  });
});

describe('room config', () => {
  const { state, join } = serverFor({ rooms: {}, allowPeerConfig: true });

  it(
    'the first peer sets it; joiners receive it and cannot change it',
    T,
    async () => {
      const a = await join({ room: 'job', config: { density: 0.05 } });
      assert.equal(a.config.density, 0.05);
      const b = await join({ room: 'job' });
      assert.equal(b.config.density, 0.05);
      const other = await refusal(
        join({ room: 'job', config: { density: 0.1 } }),
      );
      assert.equal(other.code, 'ERR_MISMATCH');
      assert.match(String(other.context.difference), /^density/);
      const bad = await refusal(join({ room: 'job2', config: { k: -3 } }));
      assert.equal(bad.code, 'ERR_BAD_CONFIG');
      assert.equal(state.server.roomStatus('job2'), undefined);
      assert.equal(state.server.roomStatus('job')?.config.density, 0.05);
      a.close();
      b.close();
    },
  );
});

describe('hostile input', () => {
  const { state, join } = serverFor({
    limits: { maxEventBytes: 16 * 1024, maxPacketBytes: 128 * 1024 },
  });

  it('malformed events get typed errors; nobody else notices', T, async () => {
    const a = await join();
    const b = await join();
    await membershipWhere(a, (m) => m.members.length === 2);
    const generation = a.membership.generation;
    let changes = 0;
    a.on('membership', () => changes++);

    const raw = await rawClient(state.server.url);
    const joinReplies = [
      await emitWithAck(raw, 'join', 5),
      await emitWithAck(raw, 'join', { room: 'main', kind: 'node' }),
      await emitWithAck(raw, 'join', {
        room: 'main',
        kind: 'node',
        backend: 'x',
        isAdmin: true,
      }),
      await emitWithAck(raw, 'join', { room: 'main' }, 'extra'),
      await emitWithAck(raw, 'join', {
        room: 'main',
        kind: 'node',
        backend: 'x',
        token: 'y'.repeat(20_000),
      }),
    ] as JoinReply[];
    assert.deepEqual(
      joinReplies.map((r) => (r.ok ? 'ok' : r.error.code)),
      [
        'ERR_BAD_MESSAGE',
        'ERR_BAD_MESSAGE',
        'ERR_BAD_MESSAGE',
        'ERR_BAD_MESSAGE',
        'ERR_MESSAGE_TOO_LARGE',
      ],
    );

    const rejections: Rejection[] = [];
    raw.on('rejected', (r: Rejection) => rejections.push(r));
    const sends: [string, ...unknown[]][] = [
      ['signal', { to: 12, generation: 'x', data: [] }],
      ['report', { step: 'one' }],
      [
        'report',
        { step: 1, bytesSent: 0, bytesReceived: 0, pad: 'z'.repeat(20_000) },
      ],
      ['error', { boom: true }],
      ['nonsense'],
      ['signal', { to: b.peerId, generation, data: {} }],
    ];
    for (const [event, ...args] of sends) raw.emit(event, ...args);
    await new Promise<void>((resolve) => {
      const check = () =>
        rejections.length >= sends.length ? resolve() : undefined;
      raw.on('rejected', check);
      check();
    });
    assert.deepEqual(
      rejections.map((r) => [r.event, r.code]),
      [
        ['signal', 'ERR_BAD_MESSAGE'],
        ['report', 'ERR_BAD_MESSAGE'],
        ['report', 'ERR_MESSAGE_TOO_LARGE'],
        ['error', 'ERR_BAD_MESSAGE'],
        ['nonsense', 'ERR_BAD_MESSAGE'],
        ['signal', 'ERR_BAD_MESSAGE'],
      ],
    );

    // Above the transport's cap the connection itself is closed.
    const closed = nextEvent(raw, 'disconnect');
    raw.emit('report', { blob: 'q'.repeat(200 * 1024) });
    await closed;

    // The server is up, the room untouched, the peers still talk.
    const health = await httpGet(`${state.server.url}/healthz`);
    assert.equal(health.status, 200);
    const received = nextClientEvent(b, 'signal');
    a.signal(b.peerId, { type: 'offer', sdp: 'still here' });
    assert.equal((await received).data.sdp, 'still here');
    assert.equal(a.membership.generation, generation);
    assert.equal(changes, 0);
    a.close();
    b.close();
  });

  it('joining twice on one connection is refused', T, async () => {
    const raw = await rawClient(state.server.url);
    const request = { room: 'main', kind: 'browser', backend: 'webgl' };
    const first = (await emitWithAck(raw, 'join', request)) as JoinReply;
    const second = (await emitWithAck(raw, 'join', request)) as JoinReply;
    assert.equal(first.ok, true);
    assert.equal(second.ok ? 'ok' : second.error.code, 'ERR_BAD_MESSAGE');
    raw.disconnect();
  });
});

describe('rate limit', () => {
  const { state } = serverFor({
    limits: { eventsPerSecond: 5, eventBurst: 5 },
  });

  it('events above the rate are refused with ERR_RATE_LIMIT', T, async () => {
    const raw = await rawClient(state.server.url);
    const replies = (await Promise.all(
      Array.from({ length: 12 }, () => emitWithAck(raw, 'leave', {})),
    )) as { ok: boolean; error?: { code: string } }[];
    assert.deepEqual(
      replies.slice(0, 5).map((r) => r.ok),
      [true, true, true, true, true],
    );
    const limited = replies.filter((r) => r.error?.code === 'ERR_RATE_LIMIT');
    assert.ok(limited.length >= 6, `${limited.length} limited`);

    // Without acks, a flood earns a notice, not one reply per event.
    const notices: Rejection[] = [];
    raw.on('rejected', (r: Rejection) => {
      if (r.code === 'ERR_RATE_LIMIT') notices.push(r);
    });
    for (let i = 0; i < 50; i++) raw.emit('report', { step: i });
    // Replies come in order: once this one is back, all of the flood's are.
    await emitWithAck(raw, 'leave', {});
    raw.disconnect();
    assert.ok(notices.length >= 1, 'no notice');
    assert.ok(notices.length < 5, `${notices.length} notices for 50 events`);
  });
});

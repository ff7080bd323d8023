import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SignalingClient } from '../../shared/signaling-client.ts';
import type {
  Membership,
  RoomStatus,
} from '../../shared/signaling-protocol.ts';
import { startSignalingServer } from '../../signaling/server.ts';
import {
  CuttableProxy,
  httpGet,
  membershipWhere,
  nextClientEvent,
} from './helpers/signaling-harness.ts';

// Recovery at the signaling level: a peer that vanishes without a word is
// dropped within the configured timeout, not socket.io's 45 s (case 9);
// a restarted server gets its peers back with the same ids, in the same
// ring and generation (case 8); a reconnecting peer keeps its place.

const T = { timeout: 20_000 };

function peerOptions(url: string) {
  return { url, room: 'main', kind: 'node' as const, backend: 'wasm' };
}

const peerIds = (m: Membership) => m.members.map((x) => x.peerId);

describe('a peer that vanishes', () => {
  it('is dropped within peerTimeoutMs (case 9)', T, async () => {
    const peerTimeoutMs = 1000;
    const server = await startSignalingServer({
      rooms: { main: { limits: { heartbeatMs: 250, peerTimeoutMs } } },
    });
    const proxy = await CuttableProxy.start(server.port);
    const a = await SignalingClient.connect(peerOptions(server.url));
    const b = await SignalingClient.connect({
      ...peerOptions(proxy.url),
      reconnect: false,
    });
    await membershipWhere(a, (m) => m.members.length === 2);

    const cutAtMs = performance.now();
    proxy.cut();
    await membershipWhere(a, (m) => m.members.length === 1);
    const detectedMs = performance.now() - cutAtMs;
    // Up to one ping interval plus the ping timeout, with room for a
    // loaded machine.
    assert.ok(detectedMs <= peerTimeoutMs + 1500, `${detectedMs} ms`);

    b.close();
    a.close();
    await proxy.close();
    await server.close();
  });
});

describe('the server restarts mid-run (case 8)', () => {
  it('peers rejoin with their ids, same ring, same generation', T, async () => {
    const first = await startSignalingServer({ rooms: { main: {} } });
    const port = first.port;
    const clients = [];
    for (let i = 0; i < 3; i++) {
      clients.push(await SignalingClient.connect(peerOptions(first.url)));
    }
    const [a, b, c] = clients as [
      SignalingClient,
      SignalingClient,
      SignalingClient,
    ];
    const ids = [a.peerId, b.peerId, c.peerId];
    for (const client of clients) {
      await membershipWhere(client, (m) => m.members.length === 3);
    }
    const generation = a.membership.generation;
    const disconnected = clients.map((client) =>
      nextClientEvent(client, 'disconnected'),
    );

    await first.close();
    await Promise.all(disconnected);
    const rejoined = clients.map((client) =>
      nextClientEvent(client, 'rejoined'),
    );
    const second = await startSignalingServer({ port, rooms: { main: {} } });
    await Promise.all(rejoined);

    assert.deepEqual(
      clients.map((client) => client.peerId),
      ids,
    );
    for (const client of clients) {
      const m = await membershipWhere(
        client,
        (m) => m.members.every((x) => x.connected) && m.members.length === 3,
      );
      assert.equal(m.generation, generation);
      assert.deepEqual(peerIds(m), ids);
    }
    const status = JSON.parse(
      (await httpGet(`${second.url}/api/rooms/main`)).body,
    ) as RoomStatus;
    assert.equal(status.generation, generation);
    assert.equal(status.restoring, false);
    assert.deepEqual(
      status.peers.map((p) => p.id),
      ids,
    );

    // Signals flow again between neighbours of the restored ring.
    const received = nextClientEvent(b, 'signal');
    a.signal(b.peerId, { type: 'offer', sdp: 'after restart' });
    assert.equal((await received).from, a.peerId);

    for (const client of clients) client.close();
    await second.close();
  });

  it(
    'a peer that does not come back loses its place after the grace',
    T,
    async () => {
      const first = await startSignalingServer({ rooms: { main: {} } });
      const port = first.port;
      const a = await SignalingClient.connect(peerOptions(first.url));
      const b = await SignalingClient.connect({
        ...peerOptions(first.url),
        reconnect: false,
      });
      await membershipWhere(a, (m) => m.members.length === 2);
      const generation = a.membership.generation;

      const rejoined = nextClientEvent(a, 'rejoined');
      await first.close();
      const second = await startSignalingServer({
        port,
        rooms: { main: {} },
        limits: { rejoinGraceMs: 300 },
      });
      const restored = await rejoined;
      assert.equal(restored.generation, generation);
      assert.deepEqual(
        restored.members.map((m) => [m.peerId, m.connected]),
        [
          [a.peerId, true],
          [b.peerId, false],
        ],
      );
      const alone = await membershipWhere(a, (m) => m.members.length === 1);
      assert.equal(alone.generation, generation + 1);

      a.close();
      b.close();
      await second.close();
    },
  );
});

describe('a connection that drops while the server stays', () => {
  it('takes its place back with the same id and generation', T, async () => {
    const server = await startSignalingServer({ rooms: { main: {} } });
    const proxy = await CuttableProxy.start(server.port);
    const a = await SignalingClient.connect(peerOptions(server.url));
    const b = await SignalingClient.connect(peerOptions(proxy.url));
    await membershipWhere(a, (m) => m.members.length === 2);
    const generation = a.membership.generation;

    // A fresh connection of b, as a restarted process would make it,
    // presenting b's id and resume key: the old connection is replaced.
    const replaced = nextClientEvent(b, 'closed');
    const again = await SignalingClient.connect({
      ...peerOptions(server.url),
      peerId: b.peerId,
      resumeKey: b.resumeKey,
    });
    await replaced;
    assert.equal(again.peerId, b.peerId);
    assert.equal(again.membership.generation, generation);

    // Someone else presenting b's id without the key is refused.
    await assert.rejects(
      SignalingClient.connect({
        ...peerOptions(server.url),
        peerId: b.peerId,
        resumeKey: 'not-the-key-at-all',
      }),
      (error: { code?: string }) => error.code === 'ERR_ADMISSION',
    );

    again.close();
    a.close();
    await proxy.close();
    await server.close();
  });
});

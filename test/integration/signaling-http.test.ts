import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SignalingClient } from '../../shared/signaling-client.ts';
import type { RoomStatus } from '../../shared/signaling-protocol.ts';
import { startSignalingServer } from '../../signaling/server.ts';
import {
  httpGet,
  membershipWhere,
  nextClientEvent,
  refusal,
  serverFor,
} from './helpers/signaling-harness.ts';

// The signaling server's HTTP side (room status kept current from peer
// reports, health, metrics, extra handlers), its limits on connections,
// and close() releasing everything.

const T = { timeout: 15_000 };

describe('HTTP status, health and metrics', () => {
  const warnings: string[] = [];
  const { state, join } = serverFor({
    onWarning: (message) => warnings.push(message),
  });

  it('serves rooms with peers kept current from reports', T, async () => {
    const a = await join({ backend: 'wasm' });
    const b = await join({ kind: 'browser', backend: 'webgl' });
    const joined = await membershipWhere(a, (m) => m.members.length === 2);
    const mismatch = nextClientEvent(a, 'mismatch');
    a.report({
      step: 7,
      generation: joined.generation,
      loss: 0.25,
      bytesSent: 1000,
      bytesReceived: 2000,
      modelHash: 'aaaa',
      timing: { computeMs: 5, selectMs: 1, communicateMs: 3 },
    });
    b.report({
      step: 7,
      generation: joined.generation,
      loss: 0.3,
      bytesSent: 10,
      bytesReceived: 20,
      modelHash: 'bbbb',
    });
    assert.equal((await mismatch).step, 7);
    // The disagreement starts a new generation of the same ring, whose
    // handshake hands b the weights of a (a tie goes to ring index 0).
    const resynced = await membershipWhere(
      a,
      (m) => m.generation === joined.generation + 1,
    );
    assert.deepEqual(
      resynced.members.map((m) => m.peerId),
      joined.members.map((m) => m.peerId),
    );

    const one = await httpGet(`${state.server.url}/api/rooms/main`);
    assert.equal(one.status, 200);
    assert.match(one.contentType, /application\/json/);
    const status = JSON.parse(one.body) as RoomStatus;
    assert.equal(status.room, 'main');
    assert.equal(status.generation, a.membership.generation);
    assert.equal(status.step, 7);
    assert.equal(status.config.model, 'mlp');
    assert.deepEqual(
      status.peers.map((p) => [p.id, p.kind, p.ringIndex, p.backend]),
      [
        [a.peerId, 'node', 0, 'wasm'],
        [b.peerId, 'browser', 1, 'webgl'],
      ],
    );
    assert.deepEqual(
      [
        status.peers[0]?.step,
        status.peers[0]?.loss,
        status.peers[0]?.bytesSent,
      ],
      [7, 0.25, 1000],
    );
    assert.equal(status.peers[1]?.modelHash, 'bbbb');
    assert.equal(status.mismatchCount, 1);
    assert.equal(status.hashCheck?.agreed, false);
    assert.equal(status.resyncCount, 1);
    assert.deepEqual(
      status.resyncs.map((r) => [r.step, r.generation, r.peers]),
      [[7, resynced.generation, [b.peerId]]],
    );
    assert.equal(warnings.length, 2);
    assert.match(warnings[1] ?? '', /resynchronises the weights of \S+/);

    const list = JSON.parse(
      (await httpGet(`${state.server.url}/api/rooms`)).body,
    ) as {
      rooms: RoomStatus[];
    };
    assert.deepEqual(
      list.rooms.map((r) => r.room),
      ['main'],
    );
    assert.equal(
      (await httpGet(`${state.server.url}/api/rooms/nope`)).status,
      404,
    );
    assert.equal(
      (await httpGet(`${state.server.url}/nothing-here`)).status,
      404,
    );

    const health = JSON.parse(
      (await httpGet(`${state.server.url}/healthz`)).body,
    );
    assert.equal(health.ok, true);
    assert.equal(health.connections, 2);

    const metrics = await httpGet(`${state.server.url}/metrics`);
    assert.match(metrics.contentType, /text\/plain/);
    assert.match(metrics.body, /topk_room_peers\{room="main"\} 2/);
    assert.match(
      metrics.body,
      new RegExp(`topk_room_generation\\{room="main"\\} ${status.generation}`),
    );
    assert.match(
      metrics.body,
      /topk_signaling_model_hash_mismatches_total\{room="main"\} 1/,
    );
    assert.match(metrics.body, /topk_room_resyncs_total\{room="main"\} 1/);
    assert.match(metrics.body, /topk_peer_step\{room="main",peer="[^"]+"\} 7/);
    assert.match(metrics.body, /topk_signaling_connections 2/);
    a.close();
    b.close();
  });

  it('extra HTTP handlers are served after the API', T, async () => {
    state.server.addHttpHandler((request, response, url) => {
      if (url.pathname !== '/hello') return false;
      response.end('hi');
      return true;
    });
    const hello = await httpGet(`${state.server.url}/hello`);
    assert.deepEqual([hello.status, hello.body], [200, 'hi']);
  });
});

describe('close()', () => {
  it('releases every socket and timer it opened', T, async () => {
    const tcpHandles = () =>
      process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP'))
        .length;
    const baseline = tcpHandles();
    const server = await startSignalingServer({ rooms: { main: {} } });
    const clients = await Promise.all(
      [1, 2, 3].map(() =>
        SignalingClient.connect({
          url: server.url,
          room: 'main',
          kind: 'node',
          backend: 'wasm',
        }),
      ),
    );
    await httpGet(`${server.url}/healthz`);
    assert.ok(tcpHandles() > baseline);
    await server.close();
    await server.close();
    for (const client of clients) client.close();
    // Closed handles leave the list within a few turns of the event loop.
    for (let turn = 0; turn < 50 && tcpHandles() > baseline; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(tcpHandles(), baseline);
  });
});

describe('a full server', () => {
  const { join } = serverFor({ limits: { maxConnections: 1 } });

  it(
    'refuses the connection above its limit at once, saying why',
    T,
    async () => {
      const a = await join();
      const startMs = performance.now();
      const full = await refusal(join({ timeoutMs: 10_000 }));
      assert.equal(full.code, 'ERR_ADMISSION');
      assert.ok(performance.now() - startMs < 5000, 'waited for the timeout');
      a.close();
    },
  );
});

describe('an unreachable server', () => {
  it('fails with ERR_UNREACHABLE within the timeout', T, async () => {
    const server = await startSignalingServer();
    const url = server.url;
    await server.close();
    for (const reconnect of [false, true]) {
      const error = await refusal(
        SignalingClient.connect({
          url,
          room: 'main',
          kind: 'node',
          backend: 'wasm',
          reconnect,
          timeoutMs: 500,
        }),
      );
      assert.equal(error.code, 'ERR_UNREACHABLE');
    }
  });
});

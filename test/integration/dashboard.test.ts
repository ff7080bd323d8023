import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { io, type Socket } from 'socket.io-client';

import type {
  DashboardUpdate,
  RoomHistory,
} from '../../shared/dashboard-protocol.ts';
import type { Rejection } from '../../shared/signaling-protocol.ts';
import {
  startSignalingServer,
  type SignalingServer,
} from '../../signaling/server.ts';
import {
  emitWithAck,
  httpGet,
  rawClient,
  type RawSocket,
} from './helpers/signaling-harness.ts';

// The dashboard's server side: the history API fed by peers' reports over
// socket.io, the page and its bundle, live pushes on the read-only
// /dashboard namespace.

const T = { timeout: 60_000 };
const UPDATE_INTERVAL_MS = 200;

let server: SignalingServer;
const sockets: Socket[] = [];

before(async () => {
  server = await startSignalingServer({
    rooms: { main: {}, quiet: {}, history: {} },
    // Reports come far faster than any real peer sends them.
    limits: { eventsPerSecond: 1e6, eventBurst: 1e6 },
    dashboardUpdateIntervalMs: UPDATE_INTERVAL_MS,
    onWarning: () => {},
  });
});
after(async () => {
  for (const socket of sockets) socket.close();
  await server.close();
});

/** A peer that joined `room`, as a raw socket, with its id. */
async function peer(room = 'main'): Promise<{ socket: RawSocket; id: string }> {
  const socket = await rawClient(server.url);
  sockets.push(socket);
  const reply = (await emitWithAck(socket, 'join', {
    room,
    kind: 'node',
    backend: 'wasm',
  })) as { ok: boolean; peerId: string };
  assert.ok(reply.ok);
  return { socket, id: reply.peerId };
}

/**
 * Resolves once the server has handled every event `socket` sent before:
 * a second join is refused, and its answer comes after them.
 */
async function drained(socket: RawSocket): Promise<void> {
  const reply = (await emitWithAck(socket, 'join', {
    room: 'main',
    kind: 'node',
    backend: 'wasm',
  })) as { ok: boolean };
  assert.equal(reply.ok, false);
}

/** A dashboard connection to the /dashboard namespace. */
function dashboard(auth: Record<string, unknown>): Socket {
  const socket = io(`${server.url}/dashboard`, {
    auth,
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  sockets.push(socket);
  return socket;
}

/** Resolves with the first update that satisfies `accept`. */
function updateWhere(
  socket: Socket,
  accept: (update: DashboardUpdate) => boolean,
): Promise<DashboardUpdate> {
  return new Promise((resolve) => {
    const listener = (update: DashboardUpdate) => {
      if (!accept(update)) return;
      socket.off('update', listener);
      resolve(update);
    };
    socket.on('update', listener);
  });
}

async function history(room: string, since?: number): Promise<RoomHistory> {
  const query = since === undefined ? '' : `?since=${since}`;
  const response = await httpGet(
    `${server.url}/api/rooms/${room}/history${query}`,
  );
  assert.equal(response.status, 200, response.body);
  assert.match(response.contentType, /application\/json/);
  return JSON.parse(response.body) as RoomHistory;
}

describe('history API', () => {
  it('stays bounded after 20,000 reports from one peer', T, async () => {
    const { socket, id } = await peer();
    for (let step = 0; step < 20_000; step++) {
      socket.emit('report', {
        step,
        loss: 2 / (1 + step),
        bytesSent: 300 * step,
        bytesReceived: 600 * step,
        denseBytes: 30_000 * step,
        k: 10,
        n: 1000,
      });
    }
    await drained(socket);

    const all = await history('main');
    const mine = all.peers.find((p) => p.id === id)!;
    assert.equal(mine.reports, 20_000);
    assert.ok(mine.points.step.length <= all.maxPointsPerPeer);
    assert.ok(mine.points.step.length >= all.maxPointsPerPeer / 2);
    assert.equal(all.bucketSteps, 16);
    assert.deepEqual(new Set(mine.points.sentPerStep.slice(1)), new Set([300]));
    assert.deepEqual(
      new Set(mine.points.receivedPerStep.slice(1)),
      new Set([600]),
    );
    assert.deepEqual(
      new Set(mine.points.densePerStep.slice(1)),
      new Set([30_000]),
    );
    assert.deepEqual(
      [mine.k, mine.n, mine.lastStep, mine.bytesSent, mine.denseBytes],
      [10, 1000, 19_999, 300 * 19_999, 30_000 * 19_999],
    );

    const tail = await history('main', 19_990);
    assert.equal(tail.sinceStep, 19_984);
    assert.deepEqual(
      tail.peers.find((p) => p.id === id)!.points.step,
      [19_984],
    );
  });

  it('derives bytes per step from coalesced cumulative counts', T, async () => {
    const { socket, id } = await peer('quiet');
    // Steps 0, 4, 10: 250 B per step, then 100 B per step.
    for (const [step, bytesSent] of [
      [0, 0],
      [4, 1000],
      [10, 1600],
    ] as const) {
      socket.emit('report', { step, bytesSent, bytesReceived: bytesSent });
    }
    await drained(socket);
    const points = (await history('quiet')).peers.find(
      (p) => p.id === id,
    )!.points;
    assert.deepEqual(points.step, [0, 4, 10]);
    assert.deepEqual(points.sentPerStep, [null, 250, 100]);
  });

  it('answers 404 for an unknown room and 400 for a bad since', T, async () => {
    const unknown = await httpGet(`${server.url}/api/rooms/nope/history`);
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.body).error.code, 'ERR_UNKNOWN_NAME');
    const bad = await httpGet(`${server.url}/api/rooms/main/history?since=-1`);
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).error.code, 'ERR_BAD_MESSAGE');
    // A room may be called "history": its status stays where it was.
    const named = await httpGet(`${server.url}/api/rooms/history`);
    assert.equal(named.status, 200);
    assert.equal(JSON.parse(named.body).room, 'history');
    const rooms = await httpGet(`${server.url}/api/history`);
    assert.equal(rooms.status, 200);
    const listed = JSON.parse(rooms.body) as { rooms: { room: string }[] };
    assert.ok(listed.rooms.some((r) => r.room === 'main'));
  });
});

describe('the dashboard page', () => {
  it('serves the HTML, the bundled script and the style sheet', T, async () => {
    const page = await httpGet(`${server.url}/dashboard?room=main`);
    assert.equal(page.status, 200);
    assert.match(page.contentType, /^text\/html/);
    assert.match(page.body, /<script type="module" src="\/dashboard\/app.js">/);

    const script = await httpGet(`${server.url}/dashboard/app.js`);
    assert.equal(script.status, 200);
    assert.match(script.contentType, /^text\/javascript/);
    // Bundled: uPlot and the socket.io client are inside, nothing imported.
    assert.ok(script.body.length > 50_000, `${script.body.length} bytes`);
    assert.ok(!/^import /m.test(script.body), 'the bundle imports modules');
    assert.ok(/class="?uplot|"uplot"/.test(script.body), 'no uPlot inside');

    const style = await httpGet(`${server.url}/dashboard/app.css`);
    assert.equal(style.status, 200);
    assert.match(style.contentType, /^text\/css/);
    assert.match(style.body, /\.uplot/);

    const missing = await httpGet(`${server.url}/dashboard/nothing.js`);
    assert.equal(missing.status, 404);
  });
});

describe('live updates', () => {
  it('pushes a peer report to a watching dashboard, batched', T, async () => {
    const watcher = dashboard({ room: 'main' });
    const first = await updateWhere(watcher, () => true);
    assert.equal(first.full, true);
    assert.equal(first.room, 'main');
    assert.ok(first.status !== null);

    const { socket, id } = await peer();
    const joined = await updateWhere(
      watcher,
      (u) => u.status?.peers.some((p) => p.id === id) === true,
    );
    assert.equal(joined.full, false);

    // A burst of 300 reports: the dashboard sees the last one, in far
    // fewer pushes than reports.
    let updates = 0;
    watcher.on('update', () => (updates += 1));
    const startMs = performance.now();
    for (let step = 20_000; step < 20_300; step++) {
      socket.emit('report', {
        step,
        loss: 0.5,
        bytesSent: step,
        bytesReceived: step,
      });
    }
    const last = await updateWhere(watcher, (u) =>
      u.history.peers.some((p) => p.id === id && p.lastStep === 20_299),
    );
    const elapsedMs = performance.now() - startMs;
    assert.equal(last.full, false);
    const mine = last.history.peers.find((p) => p.id === id)!;
    assert.ok(mine.points.step.at(-1)! >= 20_288);
    assert.ok(
      updates <= Math.ceil(elapsedMs / UPDATE_INTERVAL_MS) + 1,
      `${updates} updates in ${elapsedMs.toFixed(0)} ms`,
    );
    watcher.close();
  });

  it('refuses every event a dashboard sends; it never joins', T, async () => {
    const watcher = dashboard({ room: 'quiet' });
    await updateWhere(watcher, () => true);
    const peersBefore = server.roomStatus('quiet')!.peers.length;
    const reportsBefore = server.history
      .history('quiet')
      ?.peers.reduce((a, p) => a + p.reports, 0);

    const refusals: Rejection[] = [];
    const twoRefused = new Promise<void>((resolve) =>
      watcher.on('rejected', (rejection: Rejection) => {
        refusals.push(rejection);
        if (refusals.length === 2) resolve();
      }),
    );
    let acked = false;
    watcher.emit(
      'join',
      { room: 'quiet', kind: 'node', backend: 'wasm' },
      () => (acked = true),
    );
    watcher.emit('report', { step: 1, bytesSent: 0, bytesReceived: 0 });
    await twoRefused;
    assert.deepEqual(
      refusals.map((r) => [r.event, r.code]),
      [
        ['join', 'ERR_BAD_MESSAGE'],
        ['report', 'ERR_BAD_MESSAGE'],
      ],
    );
    assert.equal(server.roomStatus('quiet')!.peers.length, peersBefore);
    assert.equal(
      server.history.history('quiet')?.peers.reduce((a, p) => a + p.reports, 0),
      reportsBefore,
    );
    assert.equal(acked, false);
    watcher.close();
  });

  it('refuses a handshake naming a bad room', T, async () => {
    const watcher = dashboard({ room: '../etc' });
    const error = await new Promise<Error>((resolve) =>
      watcher.once('connect_error', resolve),
    );
    assert.match(error.message, /room/);
  });
});

describe('live updates across a coarsening', () => {
  let small: SignalingServer;
  before(async () => {
    small = await startSignalingServer({
      rooms: { main: {} },
      limits: { eventsPerSecond: 1e6, eventBurst: 1e6 },
      history: { maxPointsPerPeer: 8 },
      dashboardUpdateIntervalMs: 50,
    });
  });
  after(() => small.close());

  it('sends everything again once the bucket width changes', T, async () => {
    const watcher = io(`${small.url}/dashboard`, {
      auth: { room: 'main' },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    sockets.push(watcher);
    await updateWhere(watcher, (u) => u.full);
    const socket = await rawClient(small.url);
    sockets.push(socket);
    await emitWithAck(socket, 'join', {
      room: 'main',
      kind: 'browser',
      backend: 'webgl',
    });
    for (let step = 0; step < 40; step++) {
      socket.emit('report', { step, bytesSent: step, bytesReceived: step });
    }
    const full = await updateWhere(
      watcher,
      (u) => u.full && u.history.peers[0]?.lastStep === 39,
    );
    assert.equal(full.history.bucketSteps, 8);
    assert.deepEqual(full.history.peers[0]!.points.step, [0, 8, 16, 24, 32]);
    assert.equal(full.history.peers[0]!.kind, 'browser');
    watcher.close();
    socket.close();
  });
});

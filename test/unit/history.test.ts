import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import type { PeerReport } from '../../shared/signaling-protocol.ts';
import { HistoryStore, type ReportingPeer } from '../../signaling/history.ts';
import { BYTES_PER_BUCKET } from '../../signaling/series.ts';

const PEER: ReportingPeer = {
  id: 'peer-aaaaaaaa',
  kind: 'node',
  backend: 'wasm',
};

function report(step: number, extra: Partial<PeerReport> = {}): PeerReport {
  return { step, bytesSent: 0, bytesReceived: 0, ...extra };
}

/** Relative closeness, for values rounded to 5 significant digits. */
function near(actual: number | null | undefined, expected: number): void {
  assert.ok(actual !== null && actual !== undefined, `expected ${expected}`);
  assert.ok(
    Math.abs(actual - expected) <= 1e-4 * Math.max(1, Math.abs(expected)),
    `expected ~${expected}, got ${actual}`,
  );
}

describe('history: bytes per step', () => {
  it('divides counter differences by the steps between reports', () => {
    const store = new HistoryStore();
    // Coalesced reports: steps 0, 5, 7, 8; 1000 B sent and 3000 B received
    // per step, dense 40000 per step.
    for (const step of [0, 5, 7, 8]) {
      store.record(
        'main',
        PEER,
        report(step, {
          bytesSent: 1000 * step,
          bytesReceived: 3000 * step,
          denseBytes: 40_000 * step,
        }),
        step,
      );
    }
    const points = store.history('main')!.peers[0]!.points;
    assert.deepEqual(points.step, [0, 5, 7, 8]);
    assert.deepEqual(points.sentPerStep, [null, 1000, 1000, 1000]);
    assert.deepEqual(points.receivedPerStep, [null, 3000, 3000, 3000]);
    assert.deepEqual(points.densePerStep, [null, 40_000, 40_000, 40_000]);
  });

  it('starts afresh when a counter goes down or a step goes back', () => {
    const store = new HistoryStore();
    const sends: [number, number][] = [
      [10, 5000],
      [12, 7000], // 1000 per step
      [14, 100], // restarted: no figure for this report
      [16, 500], // 200 per step since the restart
      [15, 900], // step went back: no figure
      [17, 1200], // 150 per step from step 15
    ];
    for (const [step, bytesSent] of sends) {
      store.record('main', PEER, report(step, { bytesSent }), 0);
    }
    const points = store.history('main')!.peers[0]!.points;
    assert.deepEqual(points.step, [10, 12, 14, 15, 16, 17]);
    assert.deepEqual(points.sentPerStep, [null, 1000, null, null, 200, 150]);
  });
});

describe('history: bounded by coarsening', () => {
  it('keeps at most maxPointsPerPeer after 20,000 reports, sums intact', () => {
    const store = new HistoryStore({ maxPointsPerPeer: 2000 });
    for (let step = 0; step < 20_000; step++) {
      store.record(
        'main',
        PEER,
        report(step, { bytesSent: 500 * step, loss: 1 / (step + 1) }),
        step,
      );
    }
    const history = store.history('main')!;
    const points = history.peers[0]!.points;
    assert.ok(points.step.length <= 2000, `${points.step.length} points`);
    assert.ok(points.step.length > 1000, 'coarsened more than needed');
    assert.equal(history.bucketSteps, 16);
    assert.ok(points.step.every((s) => s % history.bucketSteps === 0));
    // Every bucket but the first (whose first report has no predecessor)
    // still says 500 bytes per step.
    for (const value of points.sentPerStep.slice(1)) near(value, 500);
    // The first bucket's loss is the mean of its 16 reports.
    let sum = 0;
    for (let step = 0; step < 16; step++) sum += 1 / (step + 1);
    near(points.loss[0], sum / 16);
    assert.ok(store.memoryBytes() <= 2 * 2000 * BYTES_PER_BUCKET);
  });

  it('merged buckets equal buckets computed from the raw reports', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gap: fc.integer({ min: 1, max: 9 }),
            sent: fc.integer({ min: 0, max: 10_000 }),
            loss: fc.option(fc.double({ min: 0, max: 10, noNaN: true })),
          }),
          { minLength: 1, maxLength: 400 },
        ),
        fc.integer({ min: 2, max: 40 }),
        (reports, maxPointsPerPeer) => {
          const store = new HistoryStore({ maxPointsPerPeer });
          let step = 0;
          let sent = 0;
          const raw: {
            step: number;
            sent: number;
            steps: number;
            loss: number | null;
          }[] = [];
          reports.forEach((r, i) => {
            if (i > 0) step += r.gap;
            sent += r.sent;
            raw.push({
              step,
              sent: r.sent,
              steps: i === 0 ? 0 : r.gap,
              loss: r.loss,
            });
            store.record(
              'main',
              PEER,
              report(step, { bytesSent: sent, loss: r.loss }),
              0,
            );
          });
          const history = store.history('main')!;
          const width = history.bucketSteps;
          const points = history.peers[0]!.points;
          assert.ok(points.step.length <= maxPointsPerPeer);

          // Group the raw reports by bucket and compare.
          const buckets = new Map<number, typeof raw>();
          for (const r of raw) {
            const start = Math.floor(r.step / width) * width;
            buckets.set(start, [...(buckets.get(start) ?? []), r]);
          }
          assert.deepEqual(points.step, [...buckets.keys()]);
          [...buckets.values()].forEach((group, i) => {
            const steps = group.reduce((a, r) => a + r.steps, 0);
            const bytes = group.reduce(
              (a, r) => a + (r.steps > 0 ? r.sent : 0),
              0,
            );
            if (steps === 0) assert.equal(points.sentPerStep[i], null);
            else near(points.sentPerStep[i], bytes / steps);
            const losses = group.flatMap((r) =>
              r.loss === null ? [] : [r.loss],
            );
            if (losses.length === 0) assert.equal(points.loss[i], null);
            else
              near(
                points.loss[i],
                losses.reduce((a, b) => a + b, 0) / losses.length,
              );
          });
        },
      ),
      { numRuns: Number(process.env['TOPK_FUZZ_RUNS'] ?? 100) },
    );
  });

  it('puts every peer of a room on one grid of steps', () => {
    const store = new HistoryStore({ maxPointsPerPeer: 100 });
    const other = { ...PEER, id: 'peer-bbbbbbbb' };
    for (let step = 0; step < 1000; step++) {
      store.record('main', PEER, report(step), 0);
      if (step % 3 === 0) store.record('main', other, report(step + 1), 0);
    }
    const history = store.history('main')!;
    assert.equal(history.bucketSteps, 16);
    const [a, b] = history.peers;
    assert.ok(a!.points.step.every((s) => s % 16 === 0));
    assert.deepEqual(
      a!.points.step,
      b!.points.step.slice(0, a!.points.step.length),
    );
  });
});

describe('history: what it hands out', () => {
  it('gives the buckets from `since` on, aligned to the grid', () => {
    const store = new HistoryStore();
    for (let step = 0; step < 10; step++)
      store.record('main', PEER, report(step), 0);
    const history = store.history('main', 7)!;
    assert.equal(history.sinceStep, 7);
    assert.deepEqual(history.peers[0]!.points.step, [7, 8, 9]);
    assert.deepEqual(store.history('main', 50)!.peers, []);
    assert.equal(store.history('other'), undefined);
  });

  it('keeps the latest counters, K and n of each peer', () => {
    const store = new HistoryStore();
    store.record(
      'main',
      PEER,
      report(3, {
        bytesSent: 10,
        bytesReceived: 20,
        denseBytes: 99,
        k: 5,
        n: 500,
        backend: 'cpu',
      }),
      1234,
    );
    const peer = store.history('main')!.peers[0]!;
    assert.deepEqual(
      [
        peer.k,
        peer.n,
        peer.lastStep,
        peer.bytesSent,
        peer.bytesReceived,
        peer.denseBytes,
        peer.backend,
        peer.updatedAtMs,
      ],
      [5, 500, 3, 10, 20, 99, 'cpu', 1234],
    );
  });

  it('drops the least recently updated peers and rooms past its limits', () => {
    const store = new HistoryStore({ maxPeers: 3, maxRooms: 2 });
    const peer = (id: string) => ({ ...PEER, id });
    store.record('a', peer('p1'), report(1), 1);
    store.record('a', peer('p2'), report(1), 2);
    store.record('a', peer('p3'), report(1), 3);
    store.record('a', peer('p1'), report(2), 4); // p1 is now the freshest
    store.record('a', peer('p4'), report(1), 5); // p2 goes
    assert.deepEqual(
      store
        .history('a')!
        .peers.map((p) => p.id)
        .sort(),
      ['p1', 'p3', 'p4'],
    );
    store.record('b', peer('q1'), report(1), 6);
    store.record('c', peer('r1'), report(1), 7); // room a goes
    assert.equal(store.history('a'), undefined);
    assert.deepEqual(
      store.rooms((name) => name === 'c').map((r) => [r.room, r.live]),
      [
        ['c', true],
        ['b', false],
      ],
    );
  });

  it('tells listeners the room and the first bucket changed', () => {
    const store = new HistoryStore();
    const seen: [string, number][] = [];
    const off = store.onChange((room, fromStep) => seen.push([room, fromStep]));
    store.record('main', PEER, report(4), 0);
    off();
    store.record('main', PEER, report(5), 0);
    assert.deepEqual(seen, [['main', 4]]);
  });

  it('refuses limits below their minimum', () => {
    assert.throws(
      () => new HistoryStore({ maxPointsPerPeer: 1 }),
      (error: { code?: string }) => error.code === 'ERR_BAD_CONFIG',
    );
  });

  it('stays small for 50 peers over 10,000 steps', () => {
    const store = new HistoryStore();
    for (let step = 0; step < 10_000; step++) {
      for (let p = 0; p < 50; p++) {
        store.record(
          'main',
          { ...PEER, id: `peer-${String(p).padStart(8, '0')}` },
          report(step, {
            bytesSent: 100 * step,
            bytesReceived: 100 * step,
            loss: 1,
            timing: { computeMs: 1, selectMs: 1, communicateMs: 1 },
          }),
          step,
        );
      }
    }
    const history = store.history('main')!;
    assert.equal(history.bucketSteps, 8);
    const bytes = store.memoryBytes();
    console.log(
      `50 peers x 10,000 steps: ${history.peers[0]!.points.step.length} points per peer, ` +
        `${(bytes / 1024 / 1024).toFixed(2)} MiB of series, ` +
        `${(JSON.stringify(history).length / 1024 / 1024).toFixed(2)} MiB as JSON`,
    );
    assert.ok(bytes < 50 * 2 * 2000 * BYTES_PER_BUCKET);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseRoomConfig } from '../../shared/config.ts';
import type {
  DashboardUpdate,
  PeerHistory,
  RoomHistory,
} from '../../shared/dashboard-protocol.ts';
import type {
  PeerStatus,
  RoomStatus,
} from '../../shared/signaling-protocol.ts';
import { faultSummary, RoomModel } from '../../signaling/dashboard/model.ts';

// The dashboard page's model of a room: live updates merged into the
// history it holds, and the points lined up for the charts.

function peer(
  id: string,
  steps: number[],
  loss: number[],
  sent?: number[],
): PeerHistory {
  const none = steps.map(() => null);
  return {
    id,
    kind: 'node',
    backend: 'wasm',
    k: 1,
    n: 100,
    lastStep: steps.at(-1) ?? null,
    bytesSent: 0,
    bytesReceived: 0,
    denseBytes: null,
    reports: steps.length,
    updatedAtMs: 0,
    points: {
      step: steps,
      loss,
      accuracy: none,
      sentPerStep: sent ?? none,
      receivedPerStep: none,
      densePerStep: steps.map(() => 1000),
      computeMs: none,
      selectMs: none,
      communicateMs: none,
      compressionError: none,
    },
  };
}

function history(
  peers: PeerHistory[],
  bucketSteps = 1,
  sinceStep = 0,
): RoomHistory {
  return {
    room: 'main',
    bucketSteps,
    maxPointsPerPeer: 2000,
    sinceStep,
    peers,
  };
}

function status(ids: string[]): RoomStatus {
  const peers: PeerStatus[] = ids.map((id, ringIndex) => ({
    id,
    kind: 'node',
    ringIndex,
    connected: true,
    backend: 'wasm',
    step: null,
    epoch: null,
    loss: null,
    accuracy: null,
    bytesSent: 0,
    bytesReceived: 0,
    modelHash: null,
    modelHashStep: null,
    timing: null,
    updatedAtMs: null,
  }));
  return {
    room: 'main',
    generation: 1,
    step: 0,
    configSource: 'server',
    config: parseRoomConfig({}),
    peers,
    restoring: false,
    hashCheck: null,
    mismatches: [],
    mismatchCount: 0,
    resyncs: [],
    resyncCount: 0,
    benched: [],
    ejections: [],
    ejectionCount: 0,
    stalls: [],
    stallCount: 0,
    finished: null,
  };
}

function update(h: RoomHistory, full: boolean, ids: string[]): DashboardUpdate {
  return { room: 'main', full, history: h, status: status(ids), sentAtMs: 0 };
}

describe('dashboard model', () => {
  it('replaces points from `since` on and keeps the rest', () => {
    const model = new RoomModel('main');
    model.apply(
      update(history([peer('a', [0, 1, 2], [3, 2, 1])]), true, ['a']),
    );
    const applied = model.apply(
      update(history([peer('a', [2, 3], [0.9, 0.8])], 1, 2), false, ['a']),
    );
    assert.equal(applied, true);
    assert.deepEqual(model.view().steps, [0, 1, 2, 3]);
    assert.deepEqual(model.view().loss, [[3, 2, 0.9, 0.8]]);
  });

  it('asks for the whole history when the bucket width is not its own', () => {
    const model = new RoomModel('main');
    model.apply(update(history([peer('a', [0, 1], [1, 1])]), true, ['a']));
    const applied = model.apply(
      update(history([peer('a', [0], [1])], 2, 0), false, ['a']),
    );
    assert.equal(applied, false);
    // Nothing changed meanwhile.
    assert.deepEqual(model.view().steps, [0, 1]);
  });

  it('lines peers up on one grid, in ring order, with means', () => {
    const model = new RoomModel('main');
    model.apply(
      update(
        history([
          peer('a', [0, 1, 2], [1, 2, 3], [10, 20, 30]),
          peer('b', [1, 2], [5, 6], [30, 40]),
        ]),
        true,
        ['b', 'a'],
      ),
    );
    const view = model.view();
    assert.deepEqual(view.peerIds, ['b', 'a']);
    assert.deepEqual(view.steps, [0, 1, 2]);
    assert.deepEqual(view.loss, [
      [null, 5, 6],
      [1, 2, 3],
    ]);
    // Step 0 has one of the two ring peers; it is not the newest, so kept.
    assert.deepEqual(view.mean.sentPerStep, [10, 25, 35]);
    assert.deepEqual(view.ratio, [100, 40, 1000 / 35]);
  });

  it('leaves out the newest steps until every ring peer has them', () => {
    const model = new RoomModel('main');
    model.apply(
      update(
        history([
          peer('a', [0, 1, 2, 3], [1, 1, 1, 1], [10, 10, 10, 99]),
          peer('b', [0, 1, 2], [1, 1, 1], [10, 10, 10]),
        ]),
        true,
        ['a', 'b'],
      ),
    );
    assert.deepEqual(model.view().mean.sentPerStep, [10, 10, 10, null]);
  });

  it('keeps a departed peer, after the ring, with its colour', () => {
    const model = new RoomModel('main');
    model.apply(
      update(history([peer('a', [0], [1]), peer('b', [0], [1])]), true, [
        'a',
        'b',
      ]),
    );
    const colour = model.colorIndex('a');
    model.apply(update(history([]), false, ['b']));
    assert.deepEqual(model.view().peerIds, ['b', 'a']);
    assert.equal(model.colorIndex('a'), colour);
  });

  it('names benched peers, why and for how long, and the ejections', () => {
    const quiet = status(['a', 'b']);
    assert.equal(faultSummary(quiet, 0), null);
    const faulty: RoomStatus = {
      ...quiet,
      benched: [
        {
          id: 'c0ffee1234',
          kind: 'node',
          connected: true,
          reason: 'silent',
          untilMs: 20_500,
          ejections: 2,
        },
      ],
      ejections: [
        {
          generation: 3,
          peerId: 'c0ffee1234',
          accuser: 'abcdef9999',
          reason: 'silent',
          detail: 'no byte for 5000 ms',
          step: 412,
          atMs: 0,
        },
      ],
      ejectionCount: 2,
    };
    assert.equal(
      faultSummary(faulty, 10_000),
      'Benched: c0ffee (silent, back in 11 s, ejected 2 times) · ' +
        '2 ejections, last c0ffee (silent) reported by abcdef at step 412',
    );
    assert.equal(
      faultSummary(
        {
          ...quiet,
          stalls: [{ step: 8, generation: 2, peerId: 'abcdef9999', atMs: 0 }],
          stallCount: 1,
        },
        0,
      ),
      '1 stalled step restarted, last at step 8 (reported by abcdef)',
    );
    // Past its time, not yet put back: never a negative wait.
    assert.match(faultSummary(faulty, 60_000) ?? '', /back in 0 s/);
  });
});

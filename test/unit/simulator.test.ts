import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  AutoPlanner,
  type AllReduceChoice,
} from '../../shared/allreduce/index.ts';
import { encodeMessage } from '../../shared/codec.ts';
import { isTopkError } from '../../shared/errors.ts';
import { PROTOCOL_VERSION, type PeerMessage } from '../../shared/protocol.ts';
import {
  RingSimulator,
  type FaultAction,
  type WireEvent,
} from '../../shared/simulator.ts';
import {
  runSimulatedStep,
  settleSimulatedStep,
} from '../../shared/simulator-step.ts';
import { seededRandom, syntheticVectors } from '../../peer/bench/gradients.ts';
import { assertSum, inputsOf, settleOnce } from './ring-helpers.ts';

const message = (step: number, phase = 0): PeerMessage => ({
  v: PROTOCOL_VERSION,
  room: 'sim',
  generation: 0,
  step,
  phase,
  segment: 0,
  sender: 'peer-0',
  type: 'sparse',
  payload: {
    length: 4,
    indices: Uint32Array.of(1),
    values: Float32Array.of(2),
    skip: false,
  },
});

const vectors = (peers: number, seed: number) =>
  syntheticVectors({
    peers,
    n: 300,
    k: 30,
    overlap: 0.4,
    random: seededRandom(seed),
  });

describe('RingSimulator links', () => {
  it('refuses impossible settings', () => {
    for (const options of [
      { peers: 0 },
      { peers: 2, latencyMs: -1 },
      { peers: 2, bandwidthBytesPerSecond: 0 },
    ]) {
      assert.throws(
        () => new RingSimulator(options),
        (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
      );
    }
  });

  it('encode every message: byte counts are the codec bytes', async () => {
    const ring = new RingSimulator({ peers: 2 });
    const sent = message(0);
    await ring.links[0].sendNext(sent);
    const received = await ring.links[1].receivePrev({
      generation: 0,
      step: 0,
      phase: 0,
      segment: 0,
    });
    assert.deepEqual(received, sent);
    assert.notEqual(received.payload, sent.payload);
    const bytes = encodeMessage(sent).byteLength;
    assert.equal(ring.links[0].bytesSent, bytes);
    assert.equal(ring.links[1].bytesReceived, bytes);
    ring.close();
  });

  it('hold a slow sender back by the bandwidth, and deliver after the latency', async () => {
    const bytesPerSecond = 20_000;
    const ring = new RingSimulator({
      peers: 2,
      latencyMs: 5,
      bandwidthBytesPerSecond: bytesPerSecond,
    });
    const sent = message(0);
    const bytes = encodeMessage(sent).byteLength;
    const startMs = performance.now();
    await ring.links[0].sendNext(sent);
    const sentMs = performance.now() - startMs;
    await ring.links[1].receivePrev({
      generation: 0,
      step: 0,
      phase: 0,
      segment: 0,
    });
    const arrivedMs = performance.now() - startMs;
    const wireMs = (1000 * bytes) / bytesPerSecond;
    // Timers fire no earlier than asked; allow 1 ms of clock granularity.
    assert.ok(
      sentMs >= wireMs - 1,
      `sent after ${sentMs} ms, wire ${wireMs} ms`,
    );
    assert.ok(arrivedMs >= wireMs + 5 - 1, `arrived after ${arrivedMs} ms`);
    ring.close();
  });

  it('fail pending receives with ERR_CHANNEL_CLOSED on close', async () => {
    const ring = new RingSimulator({ peers: 3 });
    const waiting = ring.links[2].receivePrev({
      generation: 0,
      step: 0,
      phase: 0,
      segment: 0,
    });
    ring.close();
    await assert.rejects(waiting, (e) => isTopkError(e, 'ERR_CHANNEL_CLOSED'));
  });
});

describe('simulated steps under faults', () => {
  const tolerated: [string, (event: WireEvent) => FaultAction | undefined][] = [
    [
      'reordered',
      // Peer 1's first message arrives after its second: the second does
      // not wait on the first, so holding it back cannot stall the ring.
      ({ from, message }) =>
        from === 1 && message.phase < 3 ? 'reorder' : undefined,
    ],
    ['delayed', ({ from }) => (from === 1 ? { delayMs: 2 } : undefined)],
  ];
  for (const algorithm of [
    'sparse-ring',
    'allgather',
    'dense',
  ] as AllReduceChoice[]) {
    for (const [name, fault] of tolerated) {
      it(`${algorithm} sums correctly with ${name} messages`, async () => {
        const inputs = vectors(4, 11);
        const { outcomes, ring } = await settleOnce(
          inputsOf(inputs),
          algorithm,
          { fault },
        );
        const results = outcomes.map((o) => {
          assert.equal(o.status, 'fulfilled');
          return o.value;
        });
        assertSum(inputs, results);
        assert.equal(ring.inFlightCount, 0);
      });
    }
  }

  it('a killed peer fails its neighbours with ERR_PEER_GONE, the rest abort; nothing stays', async () => {
    const ring = new RingSimulator({ peers: 5 });
    let killed = false;
    ring.setFaultHook(({ from, message }) => {
      if (from === 2 && message.phase >= 3 && !killed) {
        killed = true;
        queueMicrotask(() => ring.kill(2));
        return 'drop';
      }
      return undefined;
    });
    const outcomes = await settleSimulatedStep(ring, {
      step: 0,
      inputs: inputsOf(vectors(5, 12)),
      options: () => ({ algorithm: 'sparse-ring' }),
    });
    const codes = outcomes.map((o) =>
      o.status === 'rejected' && isTopkError(o.reason) ? o.reason.code : 'ok',
    );
    assert.equal(codes[2], 'ERR_PEER_GONE');
    assert.equal(codes[3], 'ERR_PEER_GONE');
    assert.ok(
      codes.every((c) => c === 'ERR_PEER_GONE' || c === 'ERR_RING_ABORTED'),
      codes.join(),
    );
    assert.ok(ring.isDead(2));
    for (const link of ring.links) assert.equal(link.mailbox.pendingCount, 0);
    assert.equal(ring.inFlightCount, 0);
    ring.close();
  });

  it('a step whose message is lost rejects on every peer once aborted, and the next step works', async () => {
    const ring = new RingSimulator({ peers: 3 });
    const controller = new AbortController();
    ring.setFaultHook(({ from, message }) => {
      if (from !== 0 || message.phase !== 3) return undefined;
      queueMicrotask(() => controller.abort(new Error('deadline')));
      return 'drop';
    });
    const planners = [0, 1, 2].map(() => new AutoPlanner());
    const options = (i: number) => ({
      algorithm: 'auto' as const,
      planner: planners[i],
      k: 30,
    });
    await assert.rejects(
      runSimulatedStep(ring, {
        step: 0,
        inputs: inputsOf(vectors(3, 13)),
        options,
        signal: controller.signal,
      }),
      (e) => isTopkError(e, 'ERR_RING_ABORTED'),
    );
    for (const link of ring.links) assert.equal(link.mailbox.pendingCount, 0);

    ring.setFaultHook(undefined);
    const next = vectors(3, 14);
    assertSum(
      next,
      await runSimulatedStep(ring, {
        step: 1,
        inputs: inputsOf(next),
        options,
      }),
    );
    ring.close();
  });

  it('never sums a message of another step held in a mailbox', async () => {
    const ring = new RingSimulator({ peers: 2 });
    // A message for step 5 under the very key step 0's first hop uses on
    // peer 1 (phase 0, segment 0 of sparse-ring with P = 2).
    ring.links[1].mailbox.put(message(5));
    const inputs = vectors(2, 15);
    const results = await runSimulatedStep(ring, {
      step: 0,
      inputs: inputsOf(inputs),
      options: () => ({ algorithm: 'sparse-ring' }),
    });
    assertSum(inputs, results);
    assert.equal(ring.links[1].mailbox.pendingCount, 1);
    ring.advanceFloor(0, 6);
    assert.equal(ring.links[1].mailbox.pendingCount, 0);
    ring.close();
  });
});

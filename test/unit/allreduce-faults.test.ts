import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  ALL_REDUCE_ALGORITHMS,
  allReduce,
  type AllReduceChoice,
} from '../../shared/allreduce/index.ts';
import { encodeMessage } from '../../shared/codec.ts';
import { isTopkError } from '../../shared/errors.ts';
import type { RingLink } from '../../shared/link.ts';
import type { PeerMessage, SparsePayload } from '../../shared/protocol.ts';
import { seededRandom, syntheticVectors } from '../../peer/bench/gradients.ts';
import { inputsOf, reduceOnce, settleOnce, vectorOf } from './ring-helpers.ts';

// The all-reduce when something goes wrong: a peer skips, a message lies
// or is malformed, the step is aborted. Every failure is typed and leaves
// no result behind.

const CHOICES: AllReduceChoice[] = [...ALL_REDUCE_ALGORITHMS, 'auto'];

describe('skip travels with the step', () => {
  for (const algorithm of CHOICES) {
    it(`one peer's skip makes every peer skip (${algorithm})`, async () => {
      for (const peers of [2, 3, 5]) {
        for (let skipper = 0; skipper < peers; skipper++) {
          const vectors = syntheticVectors({
            peers,
            n: 50,
            k: 10,
            overlap: 0.3,
            random: seededRandom(peers * 10 + skipper),
          });
          // The skipping peer's values are not finite: none may travel.
          const poisoned = {
            ...vectors[skipper],
            values: vectors[skipper].values.map(() => NaN),
          };
          const inputs = vectors.map((vector, p) =>
            p === skipper
              ? { vector: poisoned, skip: true }
              : { vector, skip: false },
          );
          const results = await reduceOnce(inputs, algorithm);
          for (const result of results) {
            assert.equal(result.skip, true);
            assert.equal(result.parts.length, 0);
          }
        }
      }
    });
  }

  it('refuses non-finite values sent without skip', async () => {
    const vector = vectorOf(3, [[1, 1]]);
    const bad = { ...vector, values: new Float32Array([Infinity]) };
    const { outcomes } = await settleOnce(inputsOf([vector, bad]), 'allgather');
    const failure = outcomes[1];
    assert.equal(failure.status, 'rejected');
    assert.ok(isTopkError(failure.reason, 'ERR_NON_FINITE'));
  });
});

/** A link whose previous peer answers every receive with `lie(key)`. */
function lyingLink(lie: (message: PeerMessage) => PeerMessage): RingLink {
  let sent: PeerMessage | undefined;
  return {
    bytesSent: 0,
    bytesReceived: 0,
    sendNext: async (message) => {
      sent = message;
    },
    receivePrev: async (key) => {
      assert.ok(sent !== undefined);
      return lie({ ...sent, ...key, sender: 'prev' } as PeerMessage);
    },
  };
}

/**
 * `message` as a sparse message (the dense algorithm's slices also may
 * travel sparse) with `change(length)` applied to its payload.
 */
function sparseLie(
  message: PeerMessage,
  change: (length: number) => Partial<SparsePayload>,
): PeerMessage {
  const length =
    message.type === 'sparse'
      ? message.payload.length
      : message.type === 'dense'
        ? message.payload.values.length
        : 0;
  const payload: SparsePayload = {
    length,
    indices: new Uint32Array(0),
    values: new Float32Array(0),
    skip: false,
    ...change(length),
  };
  return { ...message, type: 'sparse', payload } as PeerMessage;
}

describe('bad messages are refused whole', () => {
  const context = (link: RingLink, step = 3) => ({
    room: 'r',
    peerId: 'me',
    generation: 1,
    step,
    ringIndex: 0,
    peers: 2,
    link,
  });
  const input = {
    vector: vectorOf(10, [
      [1, 1],
      [7, 2],
    ]),
    skip: false,
  };
  const lies: Record<string, (m: PeerMessage) => PeerMessage> = {
    'another step': (m) => ({ ...m, step: m.step + 1 }),
    'another generation': (m) => ({ ...m, generation: 0 }),
    'another room': (m) => ({ ...m, room: 'elsewhere' }),
    'another segment or origin': (m) => ({ ...m, segment: m.segment + 1 }),
    'a wrong slice length': (m) =>
      sparseLie(m, (length) => ({ length: length + 1 })),
    'an index outside the segment': (m) =>
      sparseLie(m, () => ({
        indices: Uint32Array.of(99),
        values: Float32Array.of(1),
      })),
    'a non-finite value': (m) =>
      sparseLie(m, () => ({
        indices: Uint32Array.of(0),
        values: Float32Array.of(NaN),
      })),
    'a dense slice of the wrong length': (m) =>
      ({
        ...m,
        type: 'dense',
        payload: { values: new Float32Array(3), skip: false },
      }) as PeerMessage,
    'a message of another type': (m) =>
      ({ ...m, type: 'heartbeat', payload: { sentAtMs: 1 } }) as PeerMessage,
  };
  for (const algorithm of ALL_REDUCE_ALGORITHMS) {
    for (const [name, lie] of Object.entries(lies)) {
      it(`${algorithm}: ${name} gives ERR_BAD_MESSAGE`, async () => {
        await assert.rejects(
          allReduce(context(lyingLink(lie)), input, { algorithm }),
          (error) => isTopkError(error, 'ERR_BAD_MESSAGE'),
        );
      });
    }
  }

  it('an abort message for the step gives ERR_RING_ABORTED', async () => {
    const link = lyingLink(
      (m) =>
        ({ ...m, type: 'abort', payload: { reason: 'bye' } }) as PeerMessage,
    );
    await assert.rejects(
      allReduce(context(link), input, { algorithm: 'sparse-ring' }),
      (e) => isTopkError(e, 'ERR_RING_ABORTED'),
    );
  });

  it('a lying message on the wire fails the step on every peer, nothing applied', async () => {
    const vectors = syntheticVectors({
      peers: 4,
      n: 100,
      k: 10,
      overlap: 0,
      random: seededRandom(3),
    });
    const { outcomes, ring } = await settleOnce(
      inputsOf(vectors),
      'sparse-ring',
      {
        fault: ({ from, message }) => {
          if (from !== 2 || message.phase !== 3 || message.type !== 'sparse')
            return undefined;
          const lie = {
            ...message,
            payload: { ...message.payload, length: 1000 },
          };
          return { bytes: encodeMessage(lie) };
        },
      },
    );
    const codes = outcomes.map((o) =>
      o.status === 'rejected' && isTopkError(o.reason) ? o.reason.code : 'ok',
    );
    assert.equal(codes[3], 'ERR_BAD_MESSAGE');
    assert.ok(
      codes.every(
        (code) => code === 'ERR_BAD_MESSAGE' || code === 'ERR_RING_ABORTED',
      ),
      codes.join(),
    );
    assert.equal(ring.inFlightCount, 0);
  });

  it('a corrupt message on the wire gives ERR_BAD_MESSAGE', async () => {
    const vectors = syntheticVectors({
      peers: 3,
      n: 100,
      k: 10,
      overlap: 0,
      random: seededRandom(4),
    });
    const { outcomes } = await settleOnce(inputsOf(vectors), 'allgather', {
      fault: ({ from }) =>
        from === 0 ? { bytes: Uint8Array.of(0x93, 1, 2) } : undefined,
    });
    const received = outcomes[1];
    assert.equal(received.status, 'rejected');
    assert.ok(isTopkError(received.reason, 'ERR_BAD_MESSAGE'));
  });
});

describe('abort', () => {
  for (const algorithm of CHOICES) {
    it(`a signal aborts a stalled step with ERR_RING_ABORTED (${algorithm})`, async () => {
      const controller = new AbortController();
      const vectors = syntheticVectors({
        peers: 4,
        n: 200,
        k: 20,
        overlap: 0.5,
        random: seededRandom(5),
      });
      const { outcomes, ring } = await settleOnce(
        inputsOf(vectors),
        algorithm,
        {
          signal: controller.signal,
          // Lose one message, then abort once it is lost: the step cannot end.
          fault: ({ from, message }) => {
            if (from !== 1 || message.phase < 3) return undefined;
            queueMicrotask(() => controller.abort(new Error('test timeout')));
            return 'drop';
          },
        },
      );
      for (const outcome of outcomes) {
        assert.equal(outcome.status, 'rejected');
        assert.ok(
          isTopkError(outcome.reason, 'ERR_RING_ABORTED'),
          String(outcome.reason),
        );
      }
      for (const link of ring.links) assert.equal(link.mailbox.pendingCount, 0);
    });
  }

  it('an already aborted signal sends nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    const vectors = syntheticVectors({
      peers: 3,
      n: 20,
      k: 5,
      overlap: 0,
      random: seededRandom(6),
    });
    const { outcomes, ring } = await settleOnce(inputsOf(vectors), 'dense', {
      signal: controller.signal,
    });
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      assert.ok(isTopkError(outcome.reason, 'ERR_RING_ABORTED'));
    }
    for (const link of ring.links) assert.equal(link.bytesSent, 0);
  });
});

/** Messages whose exact bytes are pinned in codec.test.ts. */
import type { EnvelopeFields, PeerMessage } from '../../shared/protocol.ts';

const envelope: EnvelopeFields = {
  v: 1,
  room: 'mnist',
  generation: 3,
  step: 1000,
  phase: 2,
  segment: 5,
  sender: 'peer-a',
};

/** One message of every type, covering each gap width. */
export const FIXTURES: Record<string, PeerMessage> = {
  sparseGap8: {
    ...envelope,
    type: 'sparse',
    payload: {
      length: 300,
      indices: Uint32Array.of(0, 7, 255),
      values: Float32Array.of(1.5, -2, 0.25),
      skip: false,
    },
  },
  sparseGap16: {
    ...envelope,
    type: 'sparse',
    payload: {
      length: 70000,
      indices: Uint32Array.of(3, 65000),
      values: Float32Array.of(-1, 1),
      skip: false,
    },
  },
  sparseGap32: {
    ...envelope,
    type: 'sparse',
    payload: {
      length: 100000,
      indices: Uint32Array.of(99999),
      values: Float32Array.of(3),
      skip: true,
    },
  },
  sparseEmpty: {
    ...envelope,
    type: 'sparse',
    payload: {
      length: 0,
      indices: new Uint32Array(0),
      values: new Float32Array(0),
      skip: false,
    },
  },
  dense: {
    ...envelope,
    type: 'dense',
    payload: { values: Float32Array.of(0, 1, -1, 0.5), skip: false },
  },
  hello: {
    ...envelope,
    type: 'hello',
    payload: {
      ringIndex: 2,
      step: 1000,
      fresh: false,
      modelHash: 'c8e3596c',
      previousHash: '9a01b2c3',
    },
  },
  state: {
    ...envelope,
    type: 'state',
    payload: {
      step: 1000,
      modelHash: 'c8e3596c',
      weights: Float32Array.of(0.5, -0.25),
    },
  },
  bye: { ...envelope, type: 'bye', payload: { reason: 'leaving' } },
  heartbeat: { ...envelope, type: 'heartbeat', payload: { sentAtMs: 1234.5 } },
  abort: { ...envelope, type: 'abort', payload: { reason: 'peer gone' } },
};

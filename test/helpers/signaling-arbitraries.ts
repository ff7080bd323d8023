/**
 * fast-check arbitraries for the events a peer sends the signaling server:
 * valid payloads of each event, the same payloads with fields replaced by
 * values of the wrong type or range, removed or added, and whole packets
 * `[name, ...args, ack?]` as socket.io hands them to the server.
 */
import fc from 'fast-check';

import type { ClientEventName } from '../../shared/signaling-protocol.ts';

/** Ids a fuzzed sequence reuses, so that joins and signals meet. */
export const PEER_ID_POOL = [
  'peer-aaaaaaaa',
  'peer-bbbbbbbb',
  'peer-cccccccc',
  'peer-dddddddd',
];

/** Rooms a fuzzed sequence reuses. */
export const ROOM_POOL = ['main', 'side', 'other-1', 'x'];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const peerId = fc.oneof(
  { arbitrary: fc.constantFrom(...PEER_ID_POOL), weight: 4 },
  fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/),
);
const room = fc.oneof(
  { arbitrary: fc.constantFrom(...ROOM_POOL), weight: 4 },
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
);
const count = fc.nat({ max: 1_000_000 });
const optional = <T>(arbitrary: fc.Arbitrary<T>) =>
  fc.option(arbitrary, { nil: undefined });

const fingerprint = fc.record({
  variables: fc.array(
    fc.record({
      name: fc.constantFrom('dense/kernel', 'dense/bias', 'conv/kernel'),
      shape: fc.array(fc.nat(64), { maxLength: 3 }),
      dtype: fc.constantFrom('float32', 'int32'),
    }),
    { maxLength: 3 },
  ),
});

const join = fc.record({
  room,
  kind: fc.constantFrom('node', 'browser'),
  backend: fc.constantFrom('wasm', 'cpu', 'webgl'),
  token: optional(fc.string({ maxLength: 40 })),
  peerId: optional(peerId),
  resumeKey: optional(fc.constantFrom('k'.repeat(20), 'j'.repeat(32))),
  previous: optional(
    fc.record({
      generation: fc.nat(20),
      members: fc.uniqueArray(fc.constantFrom(...PEER_ID_POOL), {
        minLength: 1,
        maxLength: 4,
      }),
    }),
  ),
  config: optional(
    fc.constantFrom<Json>({}, { density: 0.5 }, { k: 3 }, { density: 2 }),
  ),
  fingerprint: optional(fingerprint),
});

const signal = fc.record({
  to: peerId,
  generation: fc.nat(30),
  data: fc.oneof(
    fc.record({
      type: fc.constant('offer'),
      sdp: fc.string({ maxLength: 60 }),
    }),
    fc.record({
      type: fc.constant('candidate'),
      candidate: fc.record({
        candidate: fc.string({ maxLength: 60 }),
        sdpMLineIndex: fc.nat(3),
      }),
    }),
    fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()),
      { maxKeys: 4 },
    ),
  ),
});

const report = fc.record(
  {
    step: count,
    generation: fc.nat(30),
    epoch: fc.nat(10),
    loss: fc.oneof(fc.double({ noNaN: true }), fc.constant(null)),
    accuracy: fc.oneof(
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.constant(null),
    ),
    bytesSent: count,
    bytesReceived: count,
    modelHash: fc.constantFrom('h1', 'h2', 'abc_DEF-1'),
    backend: fc.constantFrom('wasm', 'cpu'),
    timing: fc.record({
      computeMs: fc.double({ min: 0, max: 1e4, noNaN: true }),
      selectMs: fc.double({ min: 0, max: 1e4, noNaN: true }),
      communicateMs: fc.double({ min: 0, max: 1e4, noNaN: true }),
    }),
    denseBytes: count,
    k: count,
    n: count,
    compressionError: fc.double({ min: 0, max: 2, noNaN: true }),
  },
  { requiredKeys: ['step', 'bytesSent', 'bytesReceived'] },
);

const leave = fc.record(
  { reason: fc.string({ maxLength: 220 }) },
  { requiredKeys: [] },
);

const suspect = fc.record(
  {
    generation: fc.nat(30),
    peerId,
    reason: fc.constantFrom('silent', 'malformed', 'unreachable', 'straggler'),
    detail: fc.string({ maxLength: 220 }),
    step: fc.nat(1000),
  },
  { requiredKeys: ['generation', 'peerId', 'reason'] },
);

const stalled = fc.record({ generation: fc.nat(30), step: fc.nat(1000) });

const finish = fc.record({
  generation: fc.nat(30),
  step: fc.nat(1000),
  modelHash: fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/),
});

/** A valid (or nearly valid) payload of each event. */
export const VALID_PAYLOADS: Record<ClientEventName, fc.Arbitrary<unknown>> = {
  join,
  signal,
  report,
  leave,
  suspect,
  stalled,
  finish,
};

/** Values a field may wrongly hold. */
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    undefined,
    -1,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    '',
    '../x',
    'x'.repeat(300),
    true,
    [],
    {},
    { __proto__: { admin: true } },
  ),
  fc.string({ maxLength: 30 }),
  fc.integer(),
  fc.double(),
  fc.uint8Array({ maxLength: 16 }),
  fc.array(fc.integer(), { maxLength: 4 }),
  fc.object({ maxDepth: 2, maxKeys: 3 }),
);

/** One change to a payload object. */
type PayloadEdit =
  | { kind: 'set'; path: number[]; value: unknown }
  | { kind: 'delete'; path: number[] }
  | { kind: 'add'; key: string; value: unknown };

const payloadEdit: fc.Arbitrary<PayloadEdit> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      path: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
      value: wrongValue,
    }),
    weight: 3,
  },
  fc.record({
    kind: fc.constant('delete' as const),
    path: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('add' as const),
    key: fc.oneof(
      fc.constantFrom('from', 'admin', '__proto__', 'constructor'),
      fc.string({ maxLength: 10 }),
    ),
    value: wrongValue,
  }),
);

/** A copy of `payload` with `edits` applied (path steps index the keys). */
function applyEdits(payload: unknown, edits: readonly PayloadEdit[]): unknown {
  const copy = structuredCloneLoose(payload);
  for (const edit of edits) {
    if (edit.kind === 'add') {
      if (isRecord(copy)) {
        Object.defineProperty(copy, edit.key, {
          value: edit.value,
          enumerable: true,
          configurable: true,
          writable: true,
        });
      }
      continue;
    }
    let target: unknown = copy;
    for (let depth = 0; depth < edit.path.length; depth++) {
      if (!isRecord(target)) break;
      const keys = Object.keys(target);
      if (keys.length === 0) break;
      const key = keys[edit.path[depth] % keys.length];
      if (depth === edit.path.length - 1 || !isRecord(target[key])) {
        if (edit.kind === 'set') target[key] = edit.value;
        else delete target[key];
        break;
      }
      target = target[key];
    }
  }
  return copy;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)
  );
}

/** A deep copy of plain objects and arrays; other values as they are. */
function structuredCloneLoose(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(structuredCloneLoose);
  if (isRecord(value)) {
    const copy: Record<string, unknown> = {};
    for (const [key, element] of Object.entries(value)) {
      if (element !== undefined) copy[key] = structuredCloneLoose(element);
    }
    return copy;
  }
  return value;
}

/** A payload of `name`: valid, edited, or anything at all. */
export function payloadFor(name: ClientEventName): fc.Arbitrary<unknown> {
  const valid = VALID_PAYLOADS[name].map(structuredCloneLoose);
  return fc.oneof(
    { arbitrary: valid, weight: 3 },
    {
      arbitrary: fc
        .tuple(valid, fc.array(payloadEdit, { minLength: 1, maxLength: 3 }))
        .map(([payload, edits]) => applyEdits(payload, edits)),
      weight: 4,
    },
    { arbitrary: fc.anything({ maxDepth: 3 }), weight: 1 },
  );
}

/** Event names socket.io-client refuses to emit (it throws). */
const RESERVED = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);

/** One event as a peer sends it. */
export interface FuzzEvent {
  readonly name: string;
  readonly args: unknown[];
  readonly withAck: boolean;
}

const KNOWN: ClientEventName[] = ['join', 'signal', 'report', 'leave'];

/**
 * An event: mostly a known name with one payload of its kind, sometimes
 * an unknown or odd name, no payload or extra ones, with or without ack.
 */
export const eventArbitrary: fc.Arbitrary<FuzzEvent> = fc
  .oneof(
    {
      arbitrary: fc.constantFrom(...KNOWN).chain((name) =>
        fc.record({
          name: fc.constant<string>(name),
          args: payloadFor(name).map((payload) => [payload]),
          withAck: fc.oneof(
            {
              arbitrary: fc.constant(name === 'join' || name === 'leave'),
              weight: 4,
            },
            fc.boolean(),
          ),
        }),
      ),
      weight: 8,
    },
    fc.record({
      name: fc.oneof(
        fc.constantFrom(
          ...KNOWN,
          'error',
          '__proto__',
          'toString',
          'membership',
        ),
        fc.string({ maxLength: 80 }),
      ),
      args: fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 3 }),
      withAck: fc.boolean(),
    }),
  )
  .filter((event) => !RESERVED.has(event.name));

/**
 * fast-check arbitraries for peer-to-peer messages: valid messages of every
 * type (as `encodeMessage` takes them), raw wire arrays in the codec's
 * fixed-position layout whose fields may be of the wrong type or out of
 * range, and byte-level mutations of encoded messages.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';

import { encodeMessage } from '../../shared/codec.ts';
import {
  MAX_HASH_LENGTH,
  MAX_NAME_LENGTH,
  MAX_REASON_LENGTH,
  PEER_MESSAGE_TYPES,
  PROTOCOL_VERSION,
  type EnvelopeFields,
  type PeerMessage,
  type PeerMessageType,
} from '../../shared/protocol.ts';

/** Packs a raw array the way the codec lays messages out. */
export const rawPackr = new Packr({ moreTypes: true, useRecords: false });

const name = fc.string({ minLength: 1, maxLength: MAX_NAME_LENGTH });
const finite = fc.float({ noNaN: true, noDefaultInfinity: true });

/** Valid envelope fields. */
export const envelopeArbitrary: fc.Arbitrary<EnvelopeFields> = fc
  .record({
    v: fc.constant(PROTOCOL_VERSION),
    room: name,
    generation: fc.nat(),
    step: fc.nat(),
    phase: fc.nat(40),
    segment: fc.nat(16),
    sender: name,
  })
  .map((envelope) => ({ ...envelope }));

/** Sorted distinct indices below `length`, with finite values. */
const sparsePayload = fc
  .record({
    length: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.nat(1 << 22)),
    picks: fc.array(fc.nat(), { maxLength: 60 }),
    values: fc.array(finite, { maxLength: 60 }),
    skip: fc.boolean(),
  })
  .map(({ length, picks, values, skip }) => {
    const indices = Uint32Array.from(
      length === 0 ? [] : [...new Set(picks.map((p) => p % length))],
    ).sort();
    const floats = Float32Array.from(indices, (_, i) => values[i] ?? 1);
    return { length, indices, values: floats, skip };
  });

const floats = fc
  .array(finite, { maxLength: 80 })
  .map((values) => Float32Array.from(values));

const payloads = {
  sparse: sparsePayload,
  dense: fc.record({ values: floats, skip: fc.boolean() }),
  hello: fc.record({
    ringIndex: fc.nat(64),
    step: fc.nat(),
    fresh: fc.boolean(),
    modelHash: fc.string({ maxLength: MAX_HASH_LENGTH }),
    previousHash: fc.string({ maxLength: MAX_HASH_LENGTH }),
  }),
  bye: fc.record({ reason: fc.string({ maxLength: MAX_REASON_LENGTH }) }),
  heartbeat: fc.record({
    // msgpack writes -0 as the integer 0: equal, but not Object.is-equal.
    sentAtMs: fc
      .double({ noNaN: true, noDefaultInfinity: true })
      .map((ms) => ms + 0),
  }),
  abort: fc.record({ reason: fc.string({ maxLength: MAX_REASON_LENGTH }) }),
  state: fc.record({
    step: fc.nat(),
    modelHash: fc.string({ maxLength: MAX_HASH_LENGTH }),
    weights: floats,
  }),
} satisfies Record<PeerMessageType, fc.Arbitrary<unknown>>;

/** A valid message of any type. */
export const messageArbitrary: fc.Arbitrary<PeerMessage> = fc
  .constantFrom(...PEER_MESSAGE_TYPES)
  .chain((type) =>
    fc.tuple(envelopeArbitrary, payloads[type]).map(
      // Plain objects: fast-check's records have no prototype.
      ([envelope, payload]) =>
        ({ ...envelope, type, payload: { ...payload } }) as PeerMessage,
    ),
  );

/**
 * Values of every msgpack shape a field could wrongly hold: wrong types,
 * out-of-range numbers, over-long strings, typed arrays of other kinds,
 * non-finite floats inside typed arrays, nested containers.
 */
export const wrongValueArbitrary: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    -1,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    2 ** 53,
    2 ** 32,
    -(2 ** 31),
    '',
    'x'.repeat(MAX_REASON_LENGTH + 1),
    true,
    false,
    null,
    [],
    {},
    { length: 3 },
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 80 }),
  fc.uint8Array({ maxLength: 20 }),
  fc.uint32Array({ maxLength: 20 }),
  fc.int16Array({ maxLength: 20 }),
  fc.float64Array({ maxLength: 20 }),
  fc.float32Array({ maxLength: 20 }),
  fc.array(fc.oneof(fc.integer(), fc.string(), fc.boolean()), {
    maxLength: 5,
  }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.integer(), { maxKeys: 3 }),
);

/**
 * A raw wire array `[v, typeCode, room, generation, step, phase, segment,
 * sender, payload]` taken from a valid message, with up to three fields
 * (of the envelope or the payload) replaced by values of the wrong type or
 * range, and sometimes a field missing or extra at either level.
 */
export const rawMessageArbitrary: fc.Arbitrary<unknown[]> = fc
  .record({
    message: messageArbitrary,
    corruptions: fc.array(
      fc.tuple(fc.boolean(), fc.nat(), wrongValueArbitrary),
      { maxLength: 3 },
    ),
    arity: fc.nat(9),
  })
  .map(({ message, corruptions, arity }) => {
    const raw = rawPackr.unpack(encodeMessage(message)) as unknown[];
    const payload = [...(raw[8] as unknown[])];
    const fields = [...raw.slice(0, 8), payload];
    // Half of the corruptions hit the payload, whose fields are fewer.
    for (const [inPayload, at, value] of corruptions) {
      if (inPayload && payload.length > 0) payload[at % payload.length] = value;
      else fields[at % fields.length] = value;
    }
    if (arity === 0) return fields.slice(0, 8);
    if (arity === 1) return [...fields, 0];
    if (arity === 2) payload.pop();
    if (arity === 3) payload.push(true);
    return fields;
  });

/** One edit of an encoded message. */
export type ByteEdit =
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: number[] }
  | { readonly kind: 'delete'; readonly at: number; readonly count: number }
  | { readonly kind: 'truncate'; readonly at: number };

/** A list of byte edits (positions are taken modulo the length). */
export const byteEditsArbitrary: fc.Arbitrary<ByteEdit[]> = fc.array(
  fc.oneof(
    {
      arbitrary: fc.record({
        kind: fc.constant('set' as const),
        at: fc.nat(),
        value: fc.nat(255),
      }),
      weight: 4,
    },
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 8 }),
    }),
    fc.record({
      kind: fc.constant('delete' as const),
      at: fc.nat(),
      count: fc.integer({ min: 1, max: 8 }),
    }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  ),
  { minLength: 1, maxLength: 5 },
);

/** `bytes` with `edits` applied, as a new array. */
export function applyByteEdits(
  bytes: Uint8Array,
  edits: readonly ByteEdit[],
): Uint8Array {
  let out = [...bytes];
  for (const edit of edits) {
    const at = out.length === 0 ? 0 : edit.at % (out.length + 1);
    if (edit.kind === 'set') {
      if (out.length > 0) out[edit.at % out.length] = edit.value;
    } else if (edit.kind === 'insert') {
      out.splice(at, 0, ...edit.bytes);
    } else if (edit.kind === 'delete') {
      out.splice(at, edit.count);
    } else {
      out = out.slice(0, at);
    }
  }
  return Uint8Array.from(out);
}

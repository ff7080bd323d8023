import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  decodeMessage,
  DEFAULT_DECODE_LIMITS,
  encodeMessage,
  type DecodeLimits,
} from '../../shared/codec.ts';
import { isTopkError, type ErrorCode } from '../../shared/errors.ts';
import {
  MAX_HASH_LENGTH,
  MAX_NAME_LENGTH,
  MAX_REASON_LENGTH,
  type PeerMessage,
} from '../../shared/protocol.ts';
import { assertTypedRejection, describeStats, fuzz } from '../helpers/fuzz.ts';
import {
  applyByteEdits,
  byteEditsArbitrary,
  messageArbitrary,
  rawMessageArbitrary,
  rawPackr,
} from '../helpers/message-arbitraries.ts';

// decodeMessage under hostile input: random bytes, mutated valid messages,
// well-formed msgpack arrays with fields of the wrong type or range. Every
// input is answered with a fully valid message or a typed error of a
// decoding code, the same one each time, and quickly. Valid messages of
// every type come back exactly as sent.

const CODES: readonly ErrorCode[] = [
  'ERR_BAD_MESSAGE',
  'ERR_MESSAGE_TOO_LARGE',
];

/** Decode limits: mostly the defaults, sometimes tight. */
const limitsArbitrary: fc.Arbitrary<DecodeLimits> = fc.oneof(
  { arbitrary: fc.constant(DEFAULT_DECODE_LIMITS), weight: 3 },
  fc.record({
    maxMessageBytes: fc.nat(400),
    maxLength: fc.nat(2000),
  }),
);

/** The code `decodeMessage` answers `bytes` with, or the message. */
function outcomeOf(
  bytes: Uint8Array,
  limits: DecodeLimits,
): { message: PeerMessage } | { code: ErrorCode } {
  try {
    return { message: decodeMessage(bytes, limits) };
  } catch (error) {
    assertTypedRejection(error, CODES, 'decodeMessage');
    return { code: isTopkError(error) ? error.code : 'ERR_INTERNAL' };
  }
}

/** Asserts that what `decodeMessage` returned holds every promise. */
function assertValidMessage(message: PeerMessage, limits: DecodeLimits): void {
  for (const name of [message.room, message.sender]) {
    assert.ok(name.length >= 1 && name.length <= MAX_NAME_LENGTH);
  }
  for (const counter of [
    message.generation,
    message.step,
    message.phase,
    message.segment,
  ]) {
    assert.ok(Number.isSafeInteger(counter) && counter >= 0);
  }
  const finite = (values: Float32Array) =>
    values.every((value) => Number.isFinite(value));
  switch (message.type) {
    case 'sparse': {
      const { length, indices, values } = message.payload;
      assert.ok(indices instanceof Uint32Array);
      assert.ok(values instanceof Float32Array);
      assert.equal(values.length, indices.length);
      assert.ok(length <= limits.maxLength);
      for (let i = 0; i < indices.length; i++) {
        assert.ok(i === 0 || indices[i] > indices[i - 1]);
        assert.ok(indices[i] < length);
      }
      assert.ok(finite(values));
      break;
    }
    case 'dense':
      assert.ok(message.payload.values.length <= limits.maxLength);
      assert.ok(finite(message.payload.values));
      break;
    case 'state':
      assert.ok(finite(message.payload.weights));
      assert.ok(message.payload.modelHash.length <= MAX_HASH_LENGTH);
      break;
    case 'hello':
      assert.ok(message.payload.modelHash.length <= MAX_HASH_LENGTH);
      break;
    case 'bye':
    case 'abort':
      assert.ok(message.payload.reason.length <= MAX_REASON_LENGTH);
      break;
    case 'heartbeat':
      assert.ok(Number.isFinite(message.payload.sentAtMs));
      break;
  }
  // What was accepted encodes again and decodes to the same message.
  assert.deepEqual(decodeMessage(encodeMessage(message)), message);
}

/** The shared property: valid message or typed error, the same twice. */
function checkDecode(bytes: Uint8Array, limits: DecodeLimits): void {
  const first = outcomeOf(bytes, limits);
  if ('message' in first) {
    assertValidMessage(first.message, limits);
    return;
  }
  const again = outcomeOf(bytes, limits);
  assert.deepEqual(again, first, 'the same bytes must give the same code');
}

describe('decodeMessage fuzz', () => {
  it('random bytes', (t) => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // Start like a 9-field array so that more inputs reach the fields.
      fc
        .uint8Array({ maxLength: 120 })
        .map((tail) => Uint8Array.of(0x99, 0x01, ...tail)),
    );
    const stats = fuzz(
      fc.tuple(bytes, limitsArbitrary),
      ([input, limits]) => checkDecode(input, limits),
      { defaultRuns: 1500 },
    );
    t.diagnostic(describeStats('codec random bytes', stats));
  });

  it('mutated valid messages', (t) => {
    const stats = fuzz(
      fc.tuple(messageArbitrary, byteEditsArbitrary, limitsArbitrary),
      ([message, edits, limits]) =>
        checkDecode(applyByteEdits(encodeMessage(message), edits), limits),
      { defaultRuns: 1500 },
    );
    t.diagnostic(describeStats('codec mutated messages', stats));
  });

  it('msgpack arrays with fields of the wrong type or range', (t) => {
    const stats = fuzz(
      fc.tuple(rawMessageArbitrary, limitsArbitrary),
      ([raw, limits]) => checkDecode(rawPackr.pack(raw), limits),
      { defaultRuns: 1500 },
    );
    t.diagnostic(describeStats('codec wrong fields', stats));
  });

  it('valid messages of every type come back exactly as sent', (t) => {
    const stats = fuzz(
      messageArbitrary,
      (message) => {
        const decoded = decodeMessage(encodeMessage(message));
        assert.deepEqual(decoded, message);
        assertValidMessage(decoded, DEFAULT_DECODE_LIMITS);
      },
      { defaultRuns: 1000 },
    );
    t.diagnostic(describeStats('codec round trip', stats));
  });
});

/**
 * Checks at the edges of the all-reduce: the caller's context and vector
 * before anything is sent, and every received message before any of it is
 * used. A received message that is malformed or does not say what the hop
 * expects (another step, another segment, another length, an index outside
 * the segment) is an `ERR_BAD_MESSAGE`; nothing of it is summed.
 */
import { describeValue, topkError, type TopkRingError } from '../errors.ts';
import { keyString, type MessageKey } from '../link.ts';
import type { PeerMessage } from '../protocol.ts';
import type { SliceValue } from './slice-sum.ts';
import type { AllReduceInput, RingContext } from './types.ts';

/** What one hop expects to receive. */
export interface ExpectedSlice {
  /** The key the message was asked for under. */
  readonly key: MessageKey;
  /** The room of the step. */
  readonly room: string;
  /** Coordinates the slice must cover. */
  readonly length: number;
  /** The hop in words, for error messages ("allgather hop 2 origin 5"). */
  readonly hop: string;
}

/** A validated slice and the skip flag that came with it. */
export interface ReceivedSlice {
  readonly value: SliceValue;
  readonly skip: boolean;
}

/**
 * Validates `message` against `expected` and returns its slice. An `abort`
 * for the step rejects with `ERR_RING_ABORTED`; anything else that is not
 * the expected slice with `ERR_BAD_MESSAGE`.
 */
export function acceptSlice(
  message: PeerMessage,
  expected: ExpectedSlice,
): ReceivedSlice {
  const { key } = expected;
  if (message.type === 'abort') {
    throw topkError(
      'ERR_RING_ABORTED',
      `all-reduce: ${message.sender} aborted step ${key.step}: ` +
        message.payload.reason,
      { key, sender: message.sender, reason: message.payload.reason },
    );
  }
  if (message.type !== 'sparse' && message.type !== 'dense') {
    throw bad(expected, "a 'sparse' or 'dense' message", `'${message.type}'`);
  }
  if (message.room !== expected.room) {
    throw bad(expected, `room "${expected.room}"`, describeValue(message.room));
  }
  const got = keyString(message);
  if (got !== keyString(key)) {
    throw bad(expected, `key ${keyString(key)}`, `key ${got}`);
  }
  if (message.type === 'dense') {
    const { values, skip } = message.payload;
    checkFloats(values, expected);
    if (values.length !== expected.length) {
      throw bad(
        expected,
        `${expected.length} dense values`,
        `${values.length}`,
      );
    }
    return {
      value: { kind: 'dense', values },
      skip: checkSkip(skip, expected),
    };
  }
  const { length, indices, values, skip } = message.payload;
  if (length !== expected.length) {
    throw bad(expected, `a slice of length ${expected.length}`, `${length}`);
  }
  checkIndices(indices, expected);
  checkFloats(values, expected);
  if (values.length !== indices.length) {
    throw bad(expected, `${indices.length} values`, `${values.length}`);
  }
  return {
    value: { kind: 'sparse', indices, values },
    skip: checkSkip(skip, expected),
  };
}

function checkIndices(indices: unknown, expected: ExpectedSlice): void {
  if (!(indices instanceof Uint32Array)) {
    throw bad(expected, 'indices as a Uint32Array', describeValue(indices));
  }
  let previous = -1;
  for (let i = 0; i < indices.length; i++) {
    if (indices[i] <= previous) {
      throw bad(
        expected,
        'strictly increasing indices',
        `${indices[i]} at ${i}`,
      );
    }
    previous = indices[i];
  }
  if (previous >= expected.length) {
    throw bad(expected, `indices below ${expected.length}`, `${previous}`);
  }
}

function checkFloats(values: unknown, expected: ExpectedSlice): void {
  if (!(values instanceof Float32Array)) {
    throw bad(expected, 'values as a Float32Array', describeValue(values));
  }
  for (let i = 0; i < values.length; i++) {
    // x - x is NaN exactly when x is NaN or infinite.
    if (values[i] - values[i] !== 0) {
      throw bad(expected, 'finite values', `${values[i]} at ${i}`);
    }
  }
}

function checkSkip(skip: unknown, expected: ExpectedSlice): boolean {
  if (typeof skip !== 'boolean') {
    throw bad(expected, 'a boolean skip flag', describeValue(skip));
  }
  return skip;
}

function bad(
  expected: ExpectedSlice,
  wanted: string,
  received: string,
): TopkRingError {
  return topkError(
    'ERR_BAD_MESSAGE',
    `all-reduce ${expected.hop}: expected ${wanted}, got ${received}`,
    { key: expected.key, expected: wanted, received },
  );
}

/**
 * Checks the caller's context and vector; a mistake here is the caller's
 * bug (`ERR_BAD_CONFIG`, `ERR_INTERNAL`), or a non-finite value sent
 * without `skip` (`ERR_NON_FINITE`).
 */
export function checkCall(context: RingContext, input: AllReduceInput): void {
  const { peers, ringIndex } = context;
  if (!Number.isSafeInteger(peers) || peers < 1) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `all-reduce: expected peers to be an integer >= 1, got ${describeValue(peers)}`,
      { setting: 'peers', received: peers },
    );
  }
  if (!Number.isSafeInteger(ringIndex) || ringIndex < 0 || ringIndex >= peers) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `all-reduce: expected ringIndex in 0..${peers - 1}, got ${describeValue(ringIndex)}`,
      { setting: 'ringIndex', received: ringIndex },
    );
  }
  const { n, indices, values } = input.vector;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw topkError(
      'ERR_INTERNAL',
      `all-reduce: expected a vector length >= 0, got ${describeValue(n)}`,
      { received: n },
    );
  }
  if (indices.length !== values.length) {
    throw topkError(
      'ERR_INTERNAL',
      `all-reduce: expected one value per index (${indices.length}), ` +
        `got ${values.length}`,
      { indices: indices.length, values: values.length },
    );
  }
  if (input.skip) return;
  let previous = -1;
  for (let i = 0; i < indices.length; i++) {
    if (indices[i] <= previous || indices[i] >= n) {
      throw topkError(
        'ERR_INTERNAL',
        `all-reduce: expected increasing indices below ${n}, got ` +
          `${indices[i]} at ${i}`,
        { position: i, index: indices[i], n },
      );
    }
    previous = indices[i];
    if (values[i] - values[i] !== 0) {
      throw topkError(
        'ERR_NON_FINITE',
        `all-reduce: expected finite values (or skip), got ${values[i]} at ${i}`,
        { position: i, value: values[i] },
      );
    }
  }
}

/**
 * The byte layout of {@link PeerMessage}: msgpack (msgpackr with typed
 * arrays as typed arrays) of a fixed-position array, so the header costs a
 * few bytes and a change of layout shows up in the golden fixtures.
 *
 *   [v, typeCode, room, generation, step, phase, segment, sender, payload]
 *
 * Sparse indices travel as gaps (each index minus the one before it, the
 * first as it is) in the narrowest of Uint8/Uint16/Uint32 that holds the
 * largest gap: 5 or 6 bytes per entry instead of 8 on most gradients.
 *
 * Encoding and decoding are one JavaScript pass each (gaps on encode;
 * prefix sum and the finiteness sum on decode) plus msgpackr's copy and
 * native scans: see `topk-ring bench codec` for the figures.
 *
 * Decoding validates everything before returning, so a caller never sees a
 * partially valid message: a violation is an `ERR_BAD_MESSAGE` that names
 * what was expected and what arrived.
 */
import { Packr } from 'msgpackr';

import { describeValue, topkError, type TopkRingError } from './errors.ts';
import {
  MAX_HASH_LENGTH,
  MAX_NAME_LENGTH,
  MAX_REASON_LENGTH,
  PEER_MESSAGE_TYPES,
  PROTOCOL_VERSION,
  type EnvelopeFields,
  type PeerMessage,
  type PeerMessageType,
} from './protocol.ts';

/** Limits a decoder enforces; see {@link DEFAULT_DECODE_LIMITS}. */
export interface DecodeLimits {
  /** Largest encoded message accepted, in bytes. */
  readonly maxMessageBytes: number;
  /** Largest slice length (coordinates) a sparse or dense payload may have. */
  readonly maxLength: number;
}

/** 64 MiB and 2^28 coordinates: far above any model this project trains. */
export const DEFAULT_DECODE_LIMITS: DecodeLimits = {
  maxMessageBytes: 64 * 1024 * 1024,
  maxLength: 2 ** 28,
};

/** Wire bytes of the array header and scalars, an upper estimate. */
export const ENVELOPE_OVERHEAD_BYTES = 48;

const packr = new Packr({ moreTypes: true, useRecords: false });

const TYPE_CODES = new Map<PeerMessageType, number>(
  PEER_MESSAGE_TYPES.map((type, code) => [type, code]),
);

/** Encodes one message to bytes. Throws only on a caller's bug. */
export function encodeMessage(message: PeerMessage): Uint8Array {
  const header = [
    message.v,
    TYPE_CODES.get(message.type),
    message.room,
    message.generation,
    message.step,
    message.phase,
    message.segment,
    message.sender,
  ];
  return packr.pack([...header, encodePayload(message)]);
}

function encodePayload(message: PeerMessage): unknown[] {
  switch (message.type) {
    case 'sparse': {
      const { length, indices, values, skip } = message.payload;
      return [length, encodeGaps(indices), values, skip];
    }
    case 'dense':
      return [message.payload.values, message.payload.skip];
    case 'hello': {
      const { ringIndex, step, fresh, modelHash, previousHash } =
        message.payload;
      return [ringIndex, step, fresh, modelHash, previousHash];
    }
    case 'state': {
      const { step, modelHash, weights } = message.payload;
      return [step, modelHash, weights];
    }
    case 'bye':
    case 'abort':
      return [message.payload.reason];
    case 'heartbeat':
      return [message.payload.sentAtMs];
  }
}

/** Bytes per index on the wire for these sorted indices: 1, 2 or 4. */
export function gapWidthBytes(indices: Uint32Array): 1 | 2 | 4 {
  let maxGap = indices.length > 0 ? indices[0] : 0;
  for (let i = 1; i < indices.length; i++) {
    const gap = indices[i] - indices[i - 1];
    if (gap > maxGap) maxGap = gap;
  }
  if (maxGap < 0x100) return 1;
  return maxGap < 0x10000 ? 2 : 4;
}

/**
 * Payload bytes of a sparse slice with these indices (index gaps plus
 * 4-byte values), without the envelope: what the dense/sparse switch
 * compares against `4 * length`.
 */
export function sparsePayloadBytes(indices: Uint32Array): number {
  return indices.length * (gapWidthBytes(indices) + 4);
}

function encodeGaps(
  indices: Uint32Array,
): Uint8Array | Uint16Array | Uint32Array {
  // One pass computes the gaps and the largest of them; narrowing to the
  // wire width is then a native typed-array conversion.
  const gaps = new Uint32Array(indices.length);
  let previous = 0;
  let maxGap = 0;
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i];
    const gap = index - previous;
    if (gap <= 0 && i > 0) {
      throw topkError('ERR_INTERNAL', 'encodeMessage: indices must increase', {
        position: i,
        previous,
        index,
      });
    }
    gaps[i] = gap;
    if (gap > maxGap) maxGap = gap;
    previous = index;
  }
  if (maxGap < 0x100) return new Uint8Array(gaps);
  return maxGap < 0x10000 ? new Uint16Array(gaps) : gaps;
}

/**
 * Decodes and validates one message. Throws `ERR_MESSAGE_TOO_LARGE` or
 * `ERR_BAD_MESSAGE` (a {@link TopkRingError}); never returns a message that
 * is only partly valid.
 */
export function decodeMessage(
  bytes: Uint8Array,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): PeerMessage {
  if (bytes.byteLength > limits.maxMessageBytes) {
    throw topkError(
      'ERR_MESSAGE_TOO_LARGE',
      `decodeMessage: expected at most ${limits.maxMessageBytes} bytes, ` +
        `got ${bytes.byteLength}`,
      { limit: limits.maxMessageBytes, received: bytes.byteLength },
    );
  }
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (cause) {
    throw bad('valid msgpack', `bytes that do not parse`, cause);
  }
  return validateMessage(raw, limits);
}

function validateMessage(raw: unknown, limits: DecodeLimits): PeerMessage {
  if (!Array.isArray(raw) || raw.length !== 9) {
    throw bad('an array of 9 fields', describeValue(raw));
  }
  const [v, typeCode, room, generation, step, phase, segment, sender, body] =
    raw as unknown[];
  if (v !== PROTOCOL_VERSION) {
    throw bad(`protocol version ${PROTOCOL_VERSION}`, describeValue(v), 'v');
  }
  const type =
    typeof typeCode === 'number' ? PEER_MESSAGE_TYPES[typeCode] : undefined;
  if (type === undefined) {
    throw bad('a known message type code', describeValue(typeCode), 'type');
  }
  const fields: EnvelopeFields = {
    v,
    room: checkName(room, 'room'),
    generation: checkCounter(generation, 'generation'),
    step: checkCounter(step, 'step'),
    phase: checkCounter(phase, 'phase'),
    segment: checkCounter(segment, 'segment'),
    sender: checkName(sender, 'sender'),
  };
  if (!Array.isArray(body)) {
    throw bad('a payload array', describeValue(body), 'payload');
  }
  return { ...fields, ...validatePayload(type, body, limits) } as PeerMessage;
}

function validatePayload(
  type: PeerMessageType,
  body: unknown[],
  limits: DecodeLimits,
): Pick<PeerMessage, 'type' | 'payload'> {
  switch (type) {
    case 'sparse': {
      expectFields(body, 4, type);
      const length = checkLength(body[0], limits);
      const indices = decodeSparse(body[1], body[2], length);
      const values = body[2] as Float32Array;
      const skip = checkFlag(body[3]);
      return { type, payload: { length, indices, values, skip } };
    }
    case 'dense': {
      expectFields(body, 2, type);
      const values = checkValues(body[0], 'payload.values');
      checkLength(values.length, limits);
      return { type, payload: { values, skip: checkFlag(body[1]) } };
    }
    case 'hello':
      expectFields(body, 5, type);
      return {
        type,
        payload: {
          ringIndex: checkCounter(body[0], 'payload.ringIndex'),
          step: checkCounter(body[1], 'payload.step'),
          fresh: checkFlag(body[2], 'payload.fresh'),
          modelHash: checkHash(body[3]),
          previousHash: checkHash(body[4], 'payload.previousHash'),
        },
      };
    case 'state': {
      expectFields(body, 3, type);
      const weights = checkValues(body[2], 'payload.weights');
      checkLength(weights.length, limits);
      return {
        type,
        payload: {
          step: checkCounter(body[0], 'payload.step'),
          modelHash: checkHash(body[1]),
          weights,
        },
      };
    }
    case 'bye':
    case 'abort':
      expectFields(body, 1, type);
      return { type, payload: { reason: checkReason(body[0]) } };
    case 'heartbeat': {
      expectFields(body, 1, type);
      const sentAtMs = body[0];
      if (typeof sentAtMs !== 'number' || !Number.isFinite(sentAtMs)) {
        throw bad(
          'a finite number',
          describeValue(sentAtMs),
          'payload.sentAtMs',
        );
      }
      return { type, payload: { sentAtMs } };
    }
  }
}

/**
 * Turns the gaps back into indices and checks the values in the same pass:
 * indices strictly increasing and below `length`, values finite.
 */
function decodeSparse(
  rawGaps: unknown,
  rawValues: unknown,
  length: number,
): Uint32Array {
  if (
    !(rawGaps instanceof Uint8Array) &&
    !(rawGaps instanceof Uint16Array) &&
    !(rawGaps instanceof Uint32Array)
  ) {
    throw bad(
      'index gaps as Uint8/16/32Array',
      describeValue(rawGaps),
      'payload.indices',
    );
  }
  if (!(rawValues instanceof Float32Array)) {
    throw bad('a Float32Array', describeValue(rawValues), 'payload.values');
  }
  if (rawValues.length !== rawGaps.length) {
    throw bad(
      `${rawGaps.length} values (one per index)`,
      `${rawValues.length}`,
      'payload.values',
    );
  }
  // The prefix sum runs alone; the checks are native scans or sums that
  // are NaN exactly when some value is not finite (x * 0 is ±0 for finite
  // x). Where one fails, a slower scan names the position. Four sums, not
  // one: a single float sum is a chain of dependent adds that, not memory,
  // would set the pace.
  const count = rawGaps.length;
  const indices = new Uint32Array(count);
  let index = 0;
  let p0 = 0;
  let p1 = 0;
  let p2 = 0;
  let p3 = 0;
  const unrolled = count & ~3;
  let i = 0;
  for (; i < unrolled; i += 4) {
    index += rawGaps[i];
    indices[i] = index;
    p0 += rawValues[i] * 0;
    index += rawGaps[i + 1];
    indices[i + 1] = index;
    p1 += rawValues[i + 1] * 0;
    index += rawGaps[i + 2];
    indices[i + 2] = index;
    p2 += rawValues[i + 2] * 0;
    index += rawGaps[i + 3];
    indices[i + 3] = index;
    p3 += rawValues[i + 3] * 0;
  }
  for (; i < count; i++) {
    index += rawGaps[i];
    indices[i] = index;
    p0 += rawValues[i] * 0;
  }
  if (p0 + p1 + p2 + p3 !== 0) {
    const at = rawValues.findIndex((value) => !Number.isFinite(value));
    throw bad('finite values', `${rawValues[at]} at ${at}`, 'payload.values');
  }
  if (rawGaps.length > 1) {
    const repeated = rawGaps.subarray(1).indexOf(0);
    if (repeated >= 0) {
      throw bad(
        'strictly increasing indices',
        `a repeated index at ${repeated + 1}`,
        'payload.indices',
      );
    }
  }
  // `index` is a plain number, so it cannot wrap; the bound check covers
  // every index because they increase.
  if (rawGaps.length > 0 && index >= length) {
    throw bad(`indices below ${length}`, `index ${index}`, 'payload.indices');
  }
  return indices;
}

function checkValues(raw: unknown, field: string): Float32Array {
  if (!(raw instanceof Float32Array)) {
    throw bad('a Float32Array', describeValue(raw), field);
  }
  if (!allFinite(raw)) {
    const at = raw.findIndex((value) => !Number.isFinite(value));
    throw bad('finite values', `${raw[at]} at ${at}`, field);
  }
  return raw;
}

/**
 * Whether every value is finite: four sums of x * 0 (±0 for a finite x,
 * NaN otherwise), four so that no chain of dependent adds sets the pace.
 */
function allFinite(values: Float32Array): boolean {
  let p0 = 0;
  let p1 = 0;
  let p2 = 0;
  let p3 = 0;
  const unrolled = values.length & ~3;
  let i = 0;
  for (; i < unrolled; i += 4) {
    p0 += values[i] * 0;
    p1 += values[i + 1] * 0;
    p2 += values[i + 2] * 0;
    p3 += values[i + 3] * 0;
  }
  for (; i < values.length; i++) p0 += values[i] * 0;
  return p0 + p1 + p2 + p3 === 0;
}

function checkLength(raw: unknown, limits: DecodeLimits): number {
  if (!Number.isSafeInteger(raw) || (raw as number) < 0) {
    throw bad(
      'a non-negative integer length',
      describeValue(raw),
      'payload.length',
    );
  }
  if ((raw as number) > limits.maxLength) {
    throw bad(
      `a length of at most ${limits.maxLength}`,
      String(raw),
      'payload.length',
    );
  }
  return raw as number;
}

function checkCounter(raw: unknown, field: string): number {
  if (!Number.isSafeInteger(raw) || (raw as number) < 0) {
    throw bad('a non-negative integer', describeValue(raw), field);
  }
  return raw as number;
}

function checkName(raw: unknown, field: string): string {
  if (
    typeof raw !== 'string' ||
    raw.length === 0 ||
    raw.length > MAX_NAME_LENGTH
  ) {
    throw bad(
      `a string of 1 to ${MAX_NAME_LENGTH} characters`,
      describeValue(raw),
      field,
    );
  }
  return raw;
}

function checkReason(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length > MAX_REASON_LENGTH) {
    throw bad(
      `a string of at most ${MAX_REASON_LENGTH} characters`,
      describeValue(raw),
      'payload.reason',
    );
  }
  return raw;
}

function checkFlag(raw: unknown, field = 'payload.skip'): boolean {
  if (typeof raw !== 'boolean') {
    throw bad('a boolean', describeValue(raw), field);
  }
  return raw;
}

function checkHash(raw: unknown, field = 'payload.modelHash'): string {
  if (typeof raw !== 'string' || raw.length > MAX_HASH_LENGTH) {
    throw bad(
      `a hash of at most ${MAX_HASH_LENGTH} characters`,
      describeValue(raw),
      field,
    );
  }
  return raw;
}

function expectFields(body: unknown[], count: number, type: string): void {
  if (body.length !== count) {
    throw bad(
      `${count} payload fields for '${type}'`,
      `${body.length}`,
      'payload',
    );
  }
}

function bad(
  expected: string,
  received: string,
  fieldOrCause?: unknown,
  cause?: unknown,
): TopkRingError {
  const field = typeof fieldOrCause === 'string' ? fieldOrCause : undefined;
  const where = field === undefined ? '' : ` in ${field}`;
  return topkError(
    'ERR_BAD_MESSAGE',
    `decodeMessage: expected ${expected}${where}, got ${received}`,
    { expected, received, field },
    typeof fieldOrCause === 'string' ? cause : fieldOrCause,
  );
}

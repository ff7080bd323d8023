import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import type { ErrorCode } from '../../shared/errors.ts';
import {
  FRAME_HEADER_BYTES,
  Framer,
  MAX_CHUNK_BYTES,
  Reassembler,
  type ReassemblerOptions,
} from '../../shared/framing.ts';
import { assertTypedRejection, describeStats, fuzz } from '../helpers/fuzz.ts';

// The framing Reassembler under hostile and broken chunk streams: random
// chunks, chunks with random header fields, and streams of real messages
// from several sources, interleaved, then reordered, duplicated, dropped,
// cut short, padded or flipped. Every chunk is answered with a result or
// a typed error; what is held stays within the limits at every moment and
// drops to nothing when the sources go; a message that completes is
// always one that was sent, whole, when no byte was altered.

const CODES: readonly ErrorCode[] = [
  'ERR_BAD_MESSAGE',
  'ERR_MESSAGE_TOO_LARGE',
];

const LIMITS = {
  maxMessageBytes: 4096,
  maxPartialMessages: 6,
  maxPartialBytes: 10_000,
} satisfies ReassemblerOptions;

const SOURCES = ['peer-a', 'peer-b', 'peer-c'];

/** One chunk on the wire, from `source`. */
interface Arrival {
  readonly source: string;
  readonly chunk: Uint8Array;
}

/** Feeds `arrivals` to `reassembler`, checking each answer and the limits. */
function feedAll(
  reassembler: Reassembler,
  arrivals: readonly Arrival[],
): { source: string; bytes: Uint8Array }[] {
  const delivered: { source: string; bytes: Uint8Array }[] = [];
  for (const { source, chunk } of arrivals) {
    try {
      const result = reassembler.accept(chunk, source);
      if (result.kind === 'message') {
        assert.ok(result.bytes.byteLength <= LIMITS.maxMessageBytes);
        delivered.push({ source, bytes: result.bytes });
      }
    } catch (error) {
      assertTypedRejection(error, CODES, 'Reassembler.accept');
    }
    assertWithinLimits(reassembler);
  }
  return delivered;
}

function assertWithinLimits(reassembler: Reassembler): void {
  assert.ok(reassembler.partialCount >= 0);
  assert.ok(reassembler.partialCount <= LIMITS.maxPartialMessages);
  assert.ok(reassembler.partialBytes >= 0);
  assert.ok(reassembler.partialBytes <= LIMITS.maxPartialBytes);
}

/** Drops every source and asserts that nothing is held afterwards. */
function assertReleasesEverything(reassembler: Reassembler): void {
  for (const source of SOURCES) reassembler.dropSource(source);
  assert.equal(reassembler.partialCount, 0);
  assert.equal(reassembler.partialBytes, 0);
}

/** A header with random (often nearly right) fields and a payload. */
const headerChunk = fc
  .record({
    magic: fc.oneof({ arbitrary: fc.constant(0xc7), weight: 9 }, fc.nat(255)),
    kind: fc.oneof({ arbitrary: fc.constant(0), weight: 6 }, fc.nat(3)),
    reserved: fc.oneof({ arbitrary: fc.constant(0), weight: 9 }, fc.nat()),
    messageId: fc.oneof(fc.nat(4), fc.constant(0xffffffff)),
    sequence: fc.oneof(fc.nat(6), fc.nat()),
    chunkCount: fc.oneof(fc.nat(6), fc.nat()),
    totalBytes: fc.oneof(fc.nat(600), fc.nat(), fc.constant(0xffffffff)),
    strideBytes: fc.oneof(fc.nat(300), fc.nat()),
    payloadBytes: fc.oneof(fc.nat(300), fc.constant(0)),
  })
  .map((h) => {
    const chunk = new Uint8Array(FRAME_HEADER_BYTES + h.payloadBytes);
    const view = new DataView(chunk.buffer);
    view.setUint8(0, h.magic);
    view.setUint8(1, h.kind);
    view.setUint16(2, h.reserved & 0xffff, true);
    view.setUint32(4, h.messageId >>> 0, true);
    view.setUint32(8, h.sequence >>> 0, true);
    view.setUint32(12, h.chunkCount >>> 0, true);
    view.setUint32(16, h.totalBytes >>> 0, true);
    view.setUint32(20, h.strideBytes >>> 0, true);
    return chunk;
  });

const arrivalArbitrary: fc.Arbitrary<Arrival> = fc.record({
  source: fc.constantFrom(...SOURCES),
  chunk: fc.oneof(fc.uint8Array({ maxLength: 200 }), headerChunk),
});

/** Messages of each source, framed at one chunk size. */
interface Sent {
  readonly messages: Map<string, Uint8Array[]>;
  readonly arrivals: Arrival[];
}

/** Frames 1-3 messages per source and interleaves all their chunks. */
const sentArbitrary: fc.Arbitrary<Sent> = fc
  .record({
    maxChunkBytes: fc.integer({ min: FRAME_HEADER_BYTES + 1, max: 200 }),
    perSource: fc.array(
      fc.array(fc.uint8Array({ maxLength: 900 }), {
        minLength: 1,
        maxLength: 3,
      }),
      { minLength: 1, maxLength: SOURCES.length },
    ),
    order: fc.array(fc.nat(), { maxLength: 400 }),
  })
  .map(({ maxChunkBytes, perSource, order }) => {
    const messages = new Map<string, Uint8Array[]>();
    const queues: Arrival[][] = [];
    perSource.forEach((bodies, s) => {
      const source = SOURCES[s];
      const framer = new Framer({ maxChunkBytes });
      messages.set(source, bodies);
      for (const body of bodies) {
        const framed = framer.frame(body);
        queues.push(
          Array.from({ length: framed.chunkCount }, (_, i) => ({
            source,
            chunk: framed.chunkAt(i),
          })),
        );
      }
    });
    // Interleave: each pick takes the next chunk of one message.
    const arrivals: Arrival[] = [];
    let pick = 0;
    while (queues.some((queue) => queue.length > 0)) {
      const open = queues.filter((queue) => queue.length > 0);
      const queue = open[(order[pick++] ?? 0) % open.length];
      arrivals.push(queue.shift() as Arrival);
    }
    return { messages, arrivals };
  });

/** One change to a stream of chunks. */
type StreamEdit =
  | { kind: 'swap'; at: number; to: number }
  | { kind: 'duplicate'; at: number; to: number }
  | { kind: 'drop'; at: number }
  | { kind: 'cut'; at: number; keep: number }
  | { kind: 'pad'; at: number; extra: number }
  | { kind: 'oversize'; at: number }
  | { kind: 'flip'; at: number; byte: number; value: number };

const streamEdit: fc.Arbitrary<StreamEdit> = fc.oneof(
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: fc.nat(),
    to: fc.nat(),
  }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('cut' as const),
    at: fc.nat(),
    keep: fc.nat(),
  }),
  fc.record({
    kind: fc.constant('pad' as const),
    at: fc.nat(),
    extra: fc.integer({ min: 1, max: 16 }),
  }),
  fc.record({ kind: fc.constant('oversize' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    byte: fc.nat(),
    value: fc.nat(255),
  }),
);

/** Edits that change no byte of any chunk. */
const ORDER_ONLY = new Set(['swap', 'duplicate', 'drop']);

function applyEdits(arrivals: Arrival[], edits: StreamEdit[]): Arrival[] {
  const out = [...arrivals];
  for (const edit of edits) {
    if (out.length === 0) break;
    const at = edit.at % out.length;
    const { source, chunk } = out[at];
    switch (edit.kind) {
      case 'swap': {
        const to = edit.to % out.length;
        [out[at], out[to]] = [out[to], out[at]];
        break;
      }
      case 'duplicate':
        out.splice(edit.to % (out.length + 1), 0, out[at]);
        break;
      case 'drop':
        out.splice(at, 1);
        break;
      case 'cut':
        out[at] = { source, chunk: chunk.slice(0, edit.keep % chunk.length) };
        break;
      case 'pad': {
        const padded = new Uint8Array(chunk.length + edit.extra);
        padded.set(chunk);
        out[at] = { source, chunk: padded };
        break;
      }
      case 'oversize': {
        const big = new Uint8Array(MAX_CHUNK_BYTES + 1);
        big.set(chunk.subarray(0, big.length));
        out[at] = { source, chunk: big };
        break;
      }
      case 'flip': {
        const flipped = chunk.slice();
        flipped[edit.byte % flipped.length] = edit.value;
        out[at] = { source, chunk: flipped };
        break;
      }
    }
  }
  return out;
}

/** True when `bytes` equals one of `candidates`. */
function isOneOf(
  bytes: Uint8Array,
  candidates: readonly Uint8Array[],
): boolean {
  return candidates.some(
    (candidate) =>
      candidate.byteLength === bytes.byteLength &&
      candidate.every((value, i) => value === bytes[i]),
  );
}

describe('Reassembler fuzz', () => {
  it('random chunks and random headers from several sources', (t) => {
    const stats = fuzz(
      fc.array(arrivalArbitrary, { maxLength: 30 }),
      (arrivals) => {
        const reassembler = new Reassembler(LIMITS);
        feedAll(reassembler, arrivals);
        assertReleasesEverything(reassembler);
      },
      { defaultRuns: 1500 },
    );
    t.diagnostic(describeStats('framing random chunks', stats));
  });

  it('interleaved streams, reordered, duplicated, dropped, cut, padded, flipped', (t) => {
    // One reassembler that lives through every input, as a long-running
    // peer's would: whatever the streams did, it stays within its limits.
    const longLived = new Reassembler(LIMITS);
    const stats = fuzz(
      fc.tuple(sentArbitrary, fc.array(streamEdit, { maxLength: 6 })),
      ([sent, edits]) => {
        const arrivals = applyEdits(sent.arrivals, edits);
        const reassembler = new Reassembler(LIMITS);
        const delivered = feedAll(reassembler, arrivals);
        feedAll(longLived, arrivals);

        if (edits.every((edit) => ORDER_ONLY.has(edit.kind))) {
          // Chunks moved, repeated or lost, none altered: whatever
          // completes is a message its source sent, whole.
          for (const { source, bytes } of delivered) {
            assert.ok(
              isOneOf(bytes, sent.messages.get(source) ?? []),
              `a message from ${source} that it never sent`,
            );
          }
        }
        if (edits.every((edit) => edit.kind === 'swap')) {
          // Only reordered: every message arrives exactly once.
          const expected = [...sent.messages.values()].flat().length;
          if (expected <= LIMITS.maxPartialMessages) {
            assert.equal(delivered.length, expected);
          }
        }
        assertReleasesEverything(reassembler);
      },
      { defaultRuns: 1500 },
    );
    assertWithinLimits(longLived);
    longLived.clear();
    assert.equal(longLived.partialCount, 0);
    assert.equal(longLived.partialBytes, 0);
    t.diagnostic(describeStats('framing edited streams', stats));
  });
});

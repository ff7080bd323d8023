import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { isTopkError } from '../../shared/errors.ts';
import {
  DEFAULT_CHUNK_BYTES,
  FRAME_HEADER_BYTES,
  Framer,
  MAX_CHUNK_BYTES,
  Reassembler,
  type ReassembleResult,
} from '../../shared/framing.ts';

function bytesOf(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function allChunks(framer: Framer, message: Uint8Array): Uint8Array[] {
  const framed = framer.frame(message);
  return Array.from({ length: framed.chunkCount }, (_, i) => framed.chunkAt(i));
}

function feed(
  reassembler: Reassembler,
  chunks: Uint8Array[],
  source = '',
): Uint8Array[] {
  const messages: Uint8Array[] = [];
  for (const chunk of chunks) {
    const result = reassembler.accept(chunk, source);
    if (result.kind === 'message') messages.push(result.bytes);
  }
  return messages;
}

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isTopkError(error), `expected a TopkRingError, got ${error}`);
    assert.equal(error.code, code);
    return true;
  });
}

/** Rewrites one little-endian u32 of a chunk header. */
function patchU32(chunk: Uint8Array, offset: number, value: number): void {
  new DataView(chunk.buffer, chunk.byteOffset).setUint32(offset, value, true);
}

describe('framing', () => {
  it('writes the documented header layout', () => {
    const framer = new Framer({ maxChunkBytes: FRAME_HEADER_BYTES + 4 });
    framer.frame(new Uint8Array(1)); // message id 0 used
    const framed = framer.frame(Uint8Array.of(1, 2, 3, 4, 5, 6));
    assert.equal(framed.chunkCount, 2);
    assert.deepEqual(
      [...framed.chunkAt(1)],
      [
        0xc7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 6, 0, 0, 0, 4, 0, 0,
        0, 5, 6,
      ],
    );
    assert.deepEqual(
      [...framer.bye()],
      [0xc7, 1, ...new Array<number>(FRAME_HEADER_BYTES - 2).fill(0)],
    );
  });

  it('round-trips messages of the sizes of case 1', () => {
    const framer = new Framer();
    const reassembler = new Reassembler();
    for (const size of [0, 1, 65536, 262144, 262145, 4_000_000]) {
      const message = bytesOf(size, size + 7);
      const chunks = allChunks(framer, message);
      for (const chunk of chunks) {
        assert.ok(chunk.byteLength <= DEFAULT_CHUNK_BYTES);
      }
      const out = feed(reassembler, chunks);
      assert.equal(out.length, 1);
      assert.deepEqual(out[0], message);
    }
    assert.equal(reassembler.partialCount, 0);
    assert.equal(reassembler.partialBytes, 0);
  });

  it('round-trips any message at any chunk size, in any chunk order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: FRAME_HEADER_BYTES + 1, max: 700 }),
        fc.integer(),
        fc.boolean(),
        (length, maxChunkBytes, seed, shuffle) => {
          const message = bytesOf(length, seed);
          const chunks = allChunks(new Framer({ maxChunkBytes }), message);
          if (shuffle) {
            // Deterministic shuffle from the seed.
            let x = seed >>> 0 || 1;
            for (let i = chunks.length - 1; i > 0; i--) {
              x = (x * 1103515245 + 12345) >>> 0;
              const j = x % (i + 1);
              [chunks[i], chunks[j]] = [chunks[j], chunks[i]];
            }
          }
          const reassembler = new Reassembler();
          const out = feed(reassembler, chunks);
          assert.equal(out.length, 1);
          assert.deepEqual(out[0], message);
          assert.equal(reassembler.partialCount, 0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('has no 255-chunk limit', () => {
    const framer = new Framer({ maxChunkBytes: FRAME_HEADER_BYTES + 10 });
    const message = bytesOf(100_000, 3);
    const chunks = allChunks(framer, message);
    assert.equal(chunks.length, 10_000);
    assert.deepEqual(feed(new Reassembler(), chunks), [message]);
  });

  it('reassembles interleaved messages and separate sources', () => {
    const framer = new Framer({ maxChunkBytes: 100 });
    const a = bytesOf(1000, 1);
    const b = bytesOf(777, 2);
    const chunksA = allChunks(framer, a);
    const chunksB = allChunks(framer, b);
    const reassembler = new Reassembler();
    const out: Uint8Array[] = [];
    for (let i = 0; i < Math.max(chunksA.length, chunksB.length); i++) {
      if (i < chunksB.length) out.push(...feed(reassembler, [chunksB[i]]));
      if (i < chunksA.length) out.push(...feed(reassembler, [chunksA[i]]));
    }
    assert.deepEqual(out, [b, a]);

    // The same message id from two sources does not collide.
    const other = new Framer({ maxChunkBytes: 100 });
    const c = allChunks(other, bytesOf(300, 5));
    const d = allChunks(new Framer({ maxChunkBytes: 100 }), bytesOf(300, 6));
    assert.equal(feed(reassembler, c.slice(0, 2), 'x').length, 0);
    assert.equal(feed(reassembler, d.slice(0, 2), 'y').length, 0);
    assert.deepEqual(feed(reassembler, c.slice(2), 'x'), [bytesOf(300, 5)]);
    assert.deepEqual(feed(reassembler, d.slice(2), 'y'), [bytesOf(300, 6)]);
  });

  it('hands a one-chunk message on as a view, without a copy', () => {
    const chunk = new Framer().frame(bytesOf(10)).chunkAt(0);
    const result = new Reassembler().accept(chunk);
    assert.equal(result.kind, 'message');
    assert.equal((result as { bytes: Uint8Array }).bytes.buffer, chunk.buffer);
  });

  it('reports a goodbye', () => {
    const result: ReassembleResult = new Reassembler().accept(
      new Framer().bye(),
    );
    assert.equal(result.kind, 'bye');
  });

  it('refuses malformed chunks with ERR_BAD_MESSAGE', () => {
    const framer = new Framer({ maxChunkBytes: 64 });
    const good = () => framer.frame(bytesOf(100)).chunkAt(0);
    const cases: Array<[string, () => Uint8Array]> = [
      ['empty', () => new Uint8Array(0)],
      ['short', () => good().subarray(0, FRAME_HEADER_BYTES - 1)],
      ['oversized', () => new Uint8Array(MAX_CHUNK_BYTES + 1)],
      [
        'magic',
        () => {
          const c = good();
          c[0] = 0;
          return c;
        },
      ],
      [
        'kind',
        () => {
          const c = good();
          c[1] = 9;
          return c;
        },
      ],
      [
        'reserved',
        () => {
          const c = good();
          c[2] = 1;
          return c;
        },
      ],
      [
        'sequence',
        () => {
          const c = good();
          patchU32(c, 8, 3);
          return c;
        },
      ],
      [
        'count',
        () => {
          const c = good();
          patchU32(c, 12, 5);
          return c;
        },
      ],
      [
        'stride',
        () => {
          const c = good();
          patchU32(c, 20, 0);
          return c;
        },
      ],
      ['payload', () => good().subarray(0, 50)],
      [
        'bye with payload',
        () => {
          const c = new Uint8Array(FRAME_HEADER_BYTES + 1);
          c.set(framer.bye());
          return c;
        },
      ],
    ];
    for (const [name, make] of cases) {
      const reassembler = new Reassembler();
      assert.throws(
        () => reassembler.accept(make()),
        (error: unknown) => isTopkError(error, 'ERR_BAD_MESSAGE'),
        name,
      );
      assert.equal(reassembler.partialCount, 0, name);
    }
  });

  it('drops a message whose chunks disagree, then discards its rest', () => {
    const framer = new Framer({ maxChunkBytes: 64 });
    const chunks = allChunks(framer, bytesOf(200));
    const reassembler = new Reassembler();
    assert.equal(reassembler.accept(chunks[0]).kind, 'pending');
    throwsCode(() => reassembler.accept(chunks[0]), 'ERR_BAD_MESSAGE');
    assert.equal(reassembler.partialCount, 0);
    assert.equal(reassembler.partialBytes, 0);
    for (const chunk of chunks.slice(1)) {
      assert.equal(reassembler.accept(chunk).kind, 'discarded');
    }
    // The next message of the same sender is unaffected.
    assert.deepEqual(feed(reassembler, allChunks(framer, bytesOf(99))), [
      bytesOf(99),
    ]);
  });

  it('enforces the message cap on both sides', () => {
    throwsCode(
      () => new Framer({ maxMessageBytes: 10 }).frame(new Uint8Array(11)),
      'ERR_MESSAGE_TOO_LARGE',
    );
    const chunks = allChunks(new Framer({ maxChunkBytes: 64 }), bytesOf(500));
    const reassembler = new Reassembler({ maxMessageBytes: 499 });
    throwsCode(() => reassembler.accept(chunks[0]), 'ERR_MESSAGE_TOO_LARGE');
    for (const chunk of chunks.slice(1)) {
      assert.equal(reassembler.accept(chunk).kind, 'discarded');
    }
    assert.equal(reassembler.partialCount, 0);
  });

  it('caps concurrent partial messages and their bytes', () => {
    const framer = new Framer({ maxChunkBytes: 64 });
    const reassembler = new Reassembler({ maxPartialMessages: 2 });
    const m1 = allChunks(framer, bytesOf(100, 1));
    const m2 = allChunks(framer, bytesOf(100, 2));
    const m3 = allChunks(framer, bytesOf(100, 3));
    reassembler.accept(m1[0]);
    reassembler.accept(m2[0]);
    throwsCode(() => reassembler.accept(m3[0]), 'ERR_MESSAGE_TOO_LARGE');
    assert.deepEqual(feed(reassembler, m1.slice(1)), [bytesOf(100, 1)]);

    const byBytes = new Reassembler({ maxPartialBytes: 150 });
    byBytes.accept(allChunks(framer, bytesOf(100))[0]);
    throwsCode(
      () => byBytes.accept(allChunks(framer, bytesOf(100))[0]),
      'ERR_MESSAGE_TOO_LARGE',
    );
    assert.equal(byBytes.partialBytes, 100);
  });

  it('drops the partial messages of a departed source', () => {
    const framer = new Framer({ maxChunkBytes: 64 });
    const chunks = allChunks(framer, bytesOf(300));
    const reassembler = new Reassembler();
    feed(reassembler, chunks.slice(0, 3), 'gone');
    feed(reassembler, chunks.slice(0, 3), 'stays');
    assert.equal(reassembler.partialCount, 2);
    assert.equal(reassembler.dropSource('gone'), 1);
    assert.equal(reassembler.partialCount, 1);
    assert.equal(reassembler.partialBytes, 300);
    // Nothing the departed source sent half-way is ever completed.
    assert.deepEqual(feed(reassembler, chunks.slice(3), 'gone'), []);
    assert.deepEqual(feed(reassembler, chunks.slice(3), 'stays'), [
      bytesOf(300),
    ]);
    reassembler.clear();
    assert.equal(reassembler.partialCount, 0);
    assert.equal(reassembler.partialBytes, 0);
  });

  // Random chunks and broken chunk streams: test/fuzz/framing.fuzz.ts.

  it('refuses bad options with ERR_BAD_CONFIG', () => {
    for (const maxChunkBytes of [0, FRAME_HEADER_BYTES, MAX_CHUNK_BYTES + 1]) {
      throwsCode(() => new Framer({ maxChunkBytes }), 'ERR_BAD_CONFIG');
    }
    throwsCode(() => new Framer({ maxMessageBytes: -1 }), 'ERR_BAD_CONFIG');
    throwsCode(
      () => new Reassembler({ maxPartialMessages: 0 }),
      'ERR_BAD_CONFIG',
    );
  });
});

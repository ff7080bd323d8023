import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  decodeMessage,
  encodeMessage,
  gapWidthBytes,
  sparsePayloadBytes,
} from '../../shared/codec.ts';
import { isTopkError } from '../../shared/errors.ts';
import type { PeerMessage } from '../../shared/protocol.ts';
import { FIXTURES } from './codec-fixtures.ts';

// The exact bytes of each fixture. A change here is a change of the wire
// format: bump PROTOCOL_VERSION and say so in docs/protocol.md.
const GOLDEN: Record<string, string> = {
  sparseGap8:
    '990100a56d6e69737403cd03e80205a6706565722d6194cd012cc70474010007f8c70d74070000c03f000000c00000803ec2',
  sparseGap16:
    '990100a56d6e69737403cd03e80205a6706565722d6194ce00011170c70574040300e5fdc7097407000080bf0000803fc2',
  sparseGap32:
    '990100a56d6e69737403cd03e80205a6706565722d6194ce000186a0c70574069f860100c705740700004040c3',
  sparseEmpty:
    '990100a56d6e69737403cd03e80205a6706565722d619400c7017401c7017407c2',
  dense:
    '990101a56d6e69737403cd03e80205a6706565722d6192c7117407000000000000803f000080bf0000003fc2',
  hello:
    '990102a56d6e69737403cd03e80205a6706565722d619502cd03e8c2a86338653335393663a83961303162326333',
  state:
    '990106a56d6e69737403cd03e80205a6706565722d6193cd03e8a86338653335393663c70974070000003f000080be',
  bye: '990103a56d6e69737403cd03e80205a6706565722d6191a76c656176696e67',
  heartbeat: '990104a56d6e69737403cd03e80205a6706565722d6191cb40934a0000000000',
  abort: '990105a56d6e69737403cd03e80205a6706565722d6191a97065657220676f6e65',
};

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array =>
  new Uint8Array(Buffer.from(text, 'hex'));

function assertRejects(bytes: Uint8Array, code = 'ERR_BAD_MESSAGE'): void {
  assert.throws(
    () => decodeMessage(bytes),
    (error: unknown) => isTopkError(error) && error.code === code,
  );
}

/** Encodes a raw fixed-position array the way the codec lays messages out. */
async function packRaw(raw: unknown[]): Promise<Uint8Array> {
  const { Packr } = await import('msgpackr');
  return new Packr({ moreTypes: true, useRecords: false }).pack(raw);
}

describe('codec golden bytes', () => {
  for (const [name, message] of Object.entries(FIXTURES)) {
    it(`encodes ${name} to its pinned bytes and back`, () => {
      const bytes = encodeMessage(message);
      assert.equal(hex(bytes), GOLDEN[name]);
      assert.deepEqual(decodeMessage(fromHex(GOLDEN[name])), message);
    });
  }

  it('spends one byte of header per small field and 5 bytes per entry', () => {
    const bytes = encodeMessage(FIXTURES.sparseGap8);
    // 3 entries at 1 + 4 bytes, plus a header well under 48 bytes.
    assert.ok(bytes.length < 3 * 5 + 48, `got ${bytes.length} bytes`);
  });
});

describe('codec round trip', () => {
  const sparseArbitrary = fc
    .record({
      length: fc.integer({ min: 1, max: 1 << 20 }),
      count: fc.integer({ min: 0, max: 300 }),
      seed: fc.integer(),
    })
    .map(({ length, count, seed }) => {
      const set = new Set<number>();
      let state = seed >>> 0;
      for (let i = 0; i < Math.min(count, length); i++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        set.add(state % length);
      }
      const indices = Uint32Array.from([...set].sort((a, b) => a - b));
      const values = Float32Array.from(indices, (i) => (i % 7) - 3.25);
      return { length, indices, values };
    });

  it('returns every sparse message exactly as sent', () => {
    fc.assert(
      fc.property(
        sparseArbitrary,
        fc.nat(),
        fc.boolean(),
        ({ length, indices, values }, step, skip) => {
          const message: PeerMessage = {
            ...FIXTURES.hello,
            step,
            type: 'sparse',
            payload: { length, indices, values, skip },
          };
          const bytes = encodeMessage(message);
          assert.deepEqual(decodeMessage(bytes), message);
          const entryBytes = gapWidthBytes(indices) + 4;
          assert.ok(entryBytes <= 8);
          assert.ok(bytes.length <= indices.length * entryBytes + 48);
          assert.equal(
            sparsePayloadBytes(indices),
            indices.length * entryBytes,
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('codec rejects bad input with a typed error', () => {
  it('refuses oversized messages before parsing them', () => {
    const bytes = encodeMessage(FIXTURES.dense);
    assert.throws(
      () => decodeMessage(bytes, { maxMessageBytes: 10, maxLength: 100 }),
      (error: unknown) => isTopkError(error, 'ERR_MESSAGE_TOO_LARGE'),
    );
  });

  it('refuses bytes that are not msgpack', () => {
    assertRejects(fromHex('c1'));
    assertRejects(new Uint8Array(0));
  });

  const envelope = [1, 0, 'r', 1, 1, 0, 0, 's'];
  const gaps = Uint8Array.of(1, 2);
  const values = Float32Array.of(1, 2);
  const cases: Record<string, unknown[]> = {
    'an unknown version': [2, ...envelope.slice(1), [4, gaps, values, false]],
    'an unknown type': [1, 99, ...envelope.slice(2), [4, gaps, values, false]],
    'a negative step': [1, 0, 'r', 1, -1, 0, 0, 's', [4, gaps, values, false]],
    'a fractional generation': [
      1,
      0,
      'r',
      1.5,
      1,
      0,
      0,
      's',
      [4, gaps, values],
    ],
    'an empty sender': [1, 0, 'r', 1, 1, 0, 0, '', [4, gaps, values, false]],
    'an overlong room': [
      1,
      0,
      'x'.repeat(65),
      ...envelope.slice(3),
      [4, gaps, values, false],
    ],
    'too few envelope fields': envelope,
    'lengths that differ': [...envelope, [4, gaps, Float32Array.of(1), false]],
    'a repeated index': [...envelope, [4, Uint8Array.of(1, 0), values, false]],
    'an index at the length': [
      ...envelope,
      [3, Uint8Array.of(1, 2), values, false],
    ],
    'a NaN value': [
      ...envelope,
      [4, gaps, Float32Array.of(1, Number.NaN), false],
    ],
    'an infinite value': [
      ...envelope,
      [4, gaps, Float32Array.of(Number.POSITIVE_INFINITY, 1), false],
    ],
    'values as a plain array': [...envelope, [4, gaps, [1, 2], false]],
    'indices as Float32Array': [...envelope, [4, values, values, false]],
    'a missing skip flag': [...envelope, [4, gaps, values]],
    'a length above the limit': [...envelope, [2 ** 29, gaps, values, false]],
    'a NaN in a dense slice': [
      1,
      1,
      ...envelope.slice(2),
      [Float32Array.of(Number.NaN), false],
    ],
    'a non-numeric heartbeat': [1, 4, ...envelope.slice(2), ['soon']],
    'an overlong reason': [1, 3, ...envelope.slice(2), ['x'.repeat(201)]],
    'a hello without its step': [1, 2, ...envelope.slice(2), [0]],
    'a hello without its previous hash': [
      1,
      2,
      ...envelope.slice(2),
      [0, 1, false, 'abc'],
    ],
    'a NaN weight in a state': [
      1,
      6,
      ...envelope.slice(2),
      [3, 'abc', Float32Array.of(1, Number.NaN)],
    ],
    'an overlong model hash': [
      1,
      6,
      ...envelope.slice(2),
      [3, 'h'.repeat(65), Float32Array.of(1)],
    ],
  };
  for (const [name, raw] of Object.entries(cases)) {
    it(`refuses ${name}`, async () => {
      assertRejects(await packRaw(raw));
    });
  }

  it('names the first offending position', async () => {
    const nan = Float32Array.of(1, 2, Number.NEGATIVE_INFINITY, Number.NaN);
    const at = (raw: unknown[]) =>
      packRaw(raw).then((bytes) => {
        try {
          decodeMessage(bytes);
        } catch (error) {
          return (error as Error).message;
        }
        return 'accepted';
      });
    const four = Uint8Array.of(1, 1, 1, 1);
    assert.match(await at([...envelope, [9, four, nan, false]]), /-Inf.* at 2/);
    const repeated = Uint16Array.of(3, 1, 0, 0);
    assert.match(
      await at([
        ...envelope,
        [9, repeated, Float32Array.of(1, 2, 3, 4), false],
      ]),
      /a repeated index at 2/,
    );
  });
});

describe('codec finds a non-finite value wherever it lies', () => {
  // Decoding checks values four at a time plus a tail: every lane and the
  // tail, in sparse and in dense slices, for NaN and both infinities.
  const size = 11;
  const gaps = new Uint8Array(size).fill(1);
  for (const bad of [
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
  ]) {
    it(`${bad} at each of ${size} positions`, async () => {
      for (let at = 0; at < size; at++) {
        const values = new Float32Array(size).fill(0.5);
        values[at] = bad;
        for (const raw of [
          [1, 0, 'r', 1, 1, 0, 0, 's', [size + 1, gaps, values, false]],
          [1, 1, 'r', 1, 1, 0, 0, 's', [values, false]],
        ]) {
          const bytes = await packRaw(raw);
          assert.throws(
            () => decodeMessage(bytes),
            (error) =>
              isTopkError(error, 'ERR_BAD_MESSAGE') &&
              error.message.includes(` at ${at}`),
            `${bad} at ${at}`,
          );
        }
      }
    });
  }
});

describe('codec refuses to encode indices that do not increase', () => {
  const sparse = (indices: number[]): PeerMessage => ({
    ...FIXTURES.hello,
    type: 'sparse',
    payload: {
      length: 1 << 30,
      indices: Uint32Array.from(indices),
      values: new Float32Array(indices.length),
      skip: false,
    },
  });
  const cases: Record<string, [number[], number]> = {
    'a repeat among small gaps': [[0, 5, 5, 9], 2],
    'a repeat among 16-bit gaps': [[0, 300, 70_000, 70_000], 3],
    'a repeat among 32-bit gaps': [[1, 100_000, 100_000], 2],
    'a step down': [[10, 20, 15, 30], 2],
    'a repeated first index': [[0, 0], 1],
  };
  for (const [name, [indices, position]] of Object.entries(cases)) {
    it(`throws on ${name}, naming where`, () => {
      assert.throws(
        () => encodeMessage(sparse(indices)),
        (error: unknown) =>
          isTopkError(error, 'ERR_INTERNAL') &&
          error.context.position === position,
      );
    });
  }
});

// Random and mutated bytes: test/fuzz/codec.fuzz.ts.

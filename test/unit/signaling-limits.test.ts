import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  checkEvent,
  payloadBytes,
  TokenBucket,
} from '../../signaling/limits.ts';

// The checks every incoming signaling event passes: known name, ack where
// one is needed, one payload, a size cap, the schema; and the rate limit.

const MAX_EVENT_BYTES = 4096;
const ack = () => {};

function codeOf(packet: unknown[]): string | undefined {
  const checked = checkEvent(packet, MAX_EVENT_BYTES);
  return checked.ok ? undefined : checked.error.code;
}

const validJoin = { room: 'main', kind: 'node', backend: 'wasm' };
const validSignal = {
  to: 'peer-aaaaaaaa',
  generation: 3,
  data: {
    type: 'candidate',
    candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host' },
  },
};

describe('checkEvent', () => {
  it('passes well-formed events and hands over the parsed payload', () => {
    const checked = checkEvent(['join', validJoin, ack], MAX_EVENT_BYTES);
    assert.equal(checked.ok, true);
    assert.equal(checked.ack, ack);
    assert.equal(codeOf(['signal', validSignal]), undefined);
    assert.equal(
      codeOf(['report', { step: 1, bytesSent: 0, bytesReceived: 0 }]),
      undefined,
    );
    assert.equal(codeOf(['leave', {}, ack]), undefined);
  });

  it('refuses what is not the protocol, each with a typed error', () => {
    const cases: [string, unknown[], string][] = [
      ['unknown event', ['nonsense', {}], 'ERR_BAD_MESSAGE'],
      ['an event named error', ['error', {}], 'ERR_BAD_MESSAGE'],
      ['inherited name', ['toString', {}], 'ERR_BAD_MESSAGE'],
      ['join without ack', ['join', validJoin], 'ERR_BAD_MESSAGE'],
      ['no payload', ['signal'], 'ERR_BAD_MESSAGE'],
      ['two payloads', ['signal', validSignal, 1], 'ERR_BAD_MESSAGE'],
      ['wrong type', ['join', 5, ack], 'ERR_BAD_MESSAGE'],
      [
        'unknown field',
        ['join', { ...validJoin, admin: true }, ack],
        'ERR_BAD_MESSAGE',
      ],
      [
        'a forged from',
        ['signal', { ...validSignal, from: 'x' }],
        'ERR_BAD_MESSAGE',
      ],
      [
        'bad room name',
        ['join', { ...validJoin, room: '../x' }, ack],
        'ERR_BAD_MESSAGE',
      ],
      [
        'negative step',
        ['report', { step: -1, bytesSent: 0, bytesReceived: 0 }],
        'ERR_BAD_MESSAGE',
      ],
      [
        'NaN loss',
        ['report', { step: 1, loss: NaN, bytesSent: 0, bytesReceived: 0 }],
        'ERR_BAD_MESSAGE',
      ],
      [
        'deep signal data',
        ['signal', { ...validSignal, data: { a: { b: { c: 1 } } } }],
        'ERR_BAD_MESSAGE',
      ],
      [
        'too large',
        [
          'report',
          {
            step: 1,
            bytesSent: 0,
            bytesReceived: 0,
            modelHash: 'x'.repeat(5000),
          },
        ],
        'ERR_MESSAGE_TOO_LARGE',
      ],
      [
        'binary payload',
        ['signal', new Uint8Array(8192)],
        'ERR_MESSAGE_TOO_LARGE',
      ],
    ];
    for (const [name, packet, code] of cases) {
      assert.equal(codeOf(packet), code, name);
    }
  });

  it('names the offending field', () => {
    const checked = checkEvent(
      ['join', { ...validJoin, kind: 'robot' }, ack],
      MAX_EVENT_BYTES,
    );
    assert.equal(checked.ok, false);
    if (!checked.ok) assert.match(checked.error.message, /^kind: /);
  });

  // Random payloads of every event: test/fuzz/signaling.fuzz.ts.
});

describe('payloadBytes', () => {
  it('stops counting at the cap, however large the payload', () => {
    const huge = Array.from({ length: 1_000_000 }, (_, i) => i);
    assert.ok(payloadBytes(huge, 1000) > 1000);
    assert.ok(payloadBytes('x'.repeat(10_000), 100) > 100);
    assert.ok(payloadBytes({ a: 'b' }, 100) < 100);
  });

  it('does not overflow the stack on deep nesting', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    assert.ok(payloadBytes(deep, 64 * 1024) > 64 * 1024);
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then the sustained rate', () => {
    let nowMs = 0;
    const bucket = new TokenBucket(3, 10, () => nowMs);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => bucket.take()),
      [true, true, true, false],
    );
    nowMs += 100;
    assert.equal(bucket.take(), true, 'one token after 100 ms at 10/s');
    assert.equal(bucket.take(), false);
    nowMs += 10_000;
    assert.deepEqual(
      [1, 2, 3, 4].map(() => bucket.take()),
      [true, true, true, false],
      'refills no further than the burst',
    );
  });
});

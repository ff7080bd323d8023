import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';

import fc from 'fast-check';

import { isTopkError, topkError, type ErrorCode } from '../../shared/errors.ts';
import { keyString, type MessageKey } from '../../shared/link.ts';
import { Mailbox } from '../../shared/mailbox.ts';
import { PROTOCOL_VERSION, type PeerMessage } from '../../shared/protocol.ts';
import { describeStats, fuzzAsync } from '../helpers/fuzz.ts';

// The Mailbox under random sequences of put, take (with and without an
// abort signal), abort, advanceFloor and fail, checked against a model
// written from its documentation: every take settles as the model says
// (the right message, or a typed error), put throws only the documented
// typed errors, what is held never exceeds the cap and matches the model,
// and no promise is left rejected without a handler.

const MAX_PENDING = 3;

type Op =
  | { kind: 'put'; key: MessageKey }
  | { kind: 'take'; key: MessageKey; signal: 'none' | 'live' | 'aborted' }
  | { kind: 'abort'; take: number }
  | { kind: 'floor'; generation: number; step: number }
  | { kind: 'fail'; code: ErrorCode; keepHeld: boolean };

const keyArbitrary: fc.Arbitrary<MessageKey> = fc.record({
  generation: fc.nat(2),
  step: fc.nat(2),
  phase: fc.nat(1),
  segment: fc.nat(1),
});

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('put' as const),
      key: keyArbitrary,
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('take' as const),
      key: keyArbitrary,
      signal: fc.constantFrom(
        'none' as const,
        'live' as const,
        'aborted' as const,
      ),
    }),
    weight: 4,
  },
  fc.record({ kind: fc.constant('abort' as const), take: fc.nat() }),
  fc.record({
    kind: fc.constant('floor' as const),
    generation: fc.nat(3),
    step: fc.nat(3),
  }),
  fc.record({
    kind: fc.constant('fail' as const),
    code: fc.constantFrom<ErrorCode>('ERR_PEER_GONE', 'ERR_CHANNEL_CLOSED'),
    keepHeld: fc.boolean(),
  }),
);

/** How a take ended: a message (by its sender tag) or an error code. */
type Outcome = { message: string } | { code: ErrorCode } | 'pending';

function messageOf(key: MessageKey, tag: string): PeerMessage {
  return {
    v: PROTOCOL_VERSION,
    room: 'fuzz',
    ...key,
    sender: tag,
    type: 'heartbeat',
    payload: { sentAtMs: 0 },
  };
}

/** One message per (generation, step, phase): the mailbox's slot. */
function slotOf(key: MessageKey): string {
  return `${key.generation}/${key.step}/${key.phase}`;
}

/** The Mailbox as its documentation describes it. */
class MailboxModel {
  /** Slot -> the held message's segment and tag. */
  readonly pending = new Map<string, { segment: number; tag: string }>();
  /** Slot -> the waiting take's segment and index. */
  readonly waiters = new Map<string, { segment: number; index: number }>();
  readonly outcomes: Outcome[] = [];
  floor = { generation: 0, step: 0 };
  failure: ErrorCode | undefined;

  isStale(key: MessageKey): boolean {
    return (
      key.generation < this.floor.generation ||
      (key.generation === this.floor.generation && key.step < this.floor.step)
    );
  }

  /** The code `put` throws, if any. */
  put(key: MessageKey, tag: string): ErrorCode | undefined {
    // A link that failed delivers nothing more ("fails every waiting and
    // future take"); a stale message is dropped silently.
    if (this.failure !== undefined || this.isStale(key)) return undefined;
    const id = slotOf(key);
    const waiter = this.waiters.get(id);
    if (waiter !== undefined) {
      this.waiters.delete(id);
      // Another segment of the phase is a lie: the receiver fails too.
      if (waiter.segment !== key.segment) {
        this.outcomes[waiter.index] = { code: 'ERR_BAD_MESSAGE' };
        return 'ERR_BAD_MESSAGE';
      }
      this.outcomes[waiter.index] = { message: tag };
      return undefined;
    }
    if (this.pending.has(id)) return 'ERR_BAD_MESSAGE';
    if (this.pending.size >= MAX_PENDING) return 'ERR_MESSAGE_TOO_LARGE';
    this.pending.set(id, { segment: key.segment, tag });
    return undefined;
  }

  take(key: MessageKey, aborted: boolean): void {
    const id = slotOf(key);
    const index = this.outcomes.length;
    const held = this.pending.get(id);
    if (held !== undefined) {
      this.pending.delete(id);
      this.outcomes.push(
        held.segment === key.segment
          ? { message: held.tag }
          : { code: 'ERR_BAD_MESSAGE' },
      );
    } else if (this.failure !== undefined) {
      this.outcomes.push({ code: this.failure });
    } else if (aborted) {
      this.outcomes.push({ code: 'ERR_RING_ABORTED' });
    } else if (this.waiters.has(id)) {
      this.outcomes.push({ code: 'ERR_INTERNAL' });
    } else {
      this.waiters.set(id, { segment: key.segment, index });
      this.outcomes.push('pending');
    }
  }

  abort(take: number): void {
    for (const [id, { index }] of this.waiters) {
      if (index !== take) continue;
      this.waiters.delete(id);
      this.outcomes[index] = { code: 'ERR_RING_ABORTED' };
    }
  }

  advanceFloor(generation: number, step: number): void {
    this.floor = { generation, step };
    for (const id of [...this.pending.keys()]) {
      const [generation, step] = id.split('/').map(Number);
      if (this.isStale({ generation, step, phase: 0, segment: 0 })) {
        this.pending.delete(id);
      }
    }
  }

  fail(code: ErrorCode, keepHeld: boolean): void {
    this.failure = code;
    if (!keepHeld) this.pending.clear();
    for (const { index } of this.waiters.values()) {
      this.outcomes[index] = { code };
    }
    this.waiters.clear();
  }
}

/** Runs `ops` on a real mailbox and on the model; compares them. */
async function checkSequence(ops: readonly Op[]): Promise<void> {
  const mailbox = new Mailbox({ maxPending: MAX_PENDING });
  const model = new MailboxModel();
  const actual: Outcome[] = [];
  const controllers: (AbortController | undefined)[] = [];

  ops.forEach((op, i) => {
    if (op.kind === 'put') {
      const tag = `m${i}`;
      const expected = model.put(op.key, tag);
      let thrown: ErrorCode | undefined;
      try {
        mailbox.put(messageOf(op.key, tag));
      } catch (error) {
        assert.ok(isTopkError(error), `put threw ${String(error)}`);
        thrown = error.code;
      }
      assert.equal(thrown, expected, `op ${i}: put ${keyString(op.key)}`);
    } else if (op.kind === 'take') {
      const controller =
        op.signal === 'none' ? undefined : new AbortController();
      if (op.signal === 'aborted') controller?.abort();
      const index = actual.length;
      controllers.push(controller);
      actual.push('pending');
      model.take(op.key, op.signal === 'aborted');
      mailbox.take(op.key, controller?.signal).then(
        (message) => (actual[index] = { message: message.sender }),
        (error: unknown) => {
          assert.ok(isTopkError(error), `take rejected with ${String(error)}`);
          actual[index] = { code: error.code };
        },
      );
    } else if (op.kind === 'abort') {
      if (controllers.length === 0) return;
      const index = op.take % controllers.length;
      controllers[index]?.abort();
      model.abort(controllers[index] === undefined ? -1 : index);
    } else if (op.kind === 'floor') {
      mailbox.advanceFloor(op.generation, op.step);
      model.advanceFloor(op.generation, op.step);
    } else {
      const error = topkError(op.code, 'fuzz: link failed', {});
      mailbox.fail(error, { keepHeld: op.keepHeld });
      model.fail(op.code, op.keepHeld);
    }
    assert.equal(mailbox.pendingCount, model.pending.size, `op ${i}: held`);
    assert.ok(mailbox.pendingCount <= MAX_PENDING);
  });

  // Let every settled take's handler run, then compare.
  await nextTurn();
  assert.deepEqual(actual, model.outcomes);

  // Whatever is still waiting is released by a failure; nothing stays.
  mailbox.fail(topkError('ERR_CHANNEL_CLOSED', 'fuzz: closed', {}));
  await nextTurn();
  assert.ok(actual.every((outcome) => outcome !== 'pending'));
  assert.equal(mailbox.pendingCount, 0);
}

describe('Mailbox fuzz', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  before(() => process.on('unhandledRejection', onUnhandled));
  after(() => process.off('unhandledRejection', onUnhandled));

  it('random put/take/abort/advanceFloor/fail sequences follow the model', async (t) => {
    const stats = await fuzzAsync(
      fc.array(opArbitrary, { maxLength: 40 }),
      checkSequence,
      { defaultRuns: 1000 },
    );
    await nextTurn();
    assert.deepEqual(unhandled, [], 'a promise was rejected without a handler');
    t.diagnostic(describeStats('mailbox sequences', stats));
  });
});

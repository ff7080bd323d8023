import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { isTopkError, topkError } from '../../shared/errors.ts';
import { Mailbox } from '../../shared/mailbox.ts';
import { PROTOCOL_VERSION, type PeerMessage } from '../../shared/protocol.ts';

// Mailbox rules found by the fuzz model (test/fuzz/mailbox.fuzz.ts), kept
// here as plain examples.

const key = { generation: 1, step: 4, phase: 0, segment: 2 };

function message(sender: string): PeerMessage {
  return {
    v: PROTOCOL_VERSION,
    room: 'r',
    ...key,
    sender,
    type: 'heartbeat',
    payload: { sentAtMs: 0 },
  };
}

describe('Mailbox after its link failed', () => {
  for (const keepHeld of [false, true]) {
    it(`hands out nothing that arrives later (keepHeld ${keepHeld})`, async () => {
      const mailbox = new Mailbox();
      mailbox.fail(topkError('ERR_PEER_GONE', 'gone', {}), { keepHeld });
      // A message still on its way when the crash was detected.
      mailbox.put(message('late'));
      assert.equal(mailbox.pendingCount, 0);
      await assert.rejects(mailbox.take(key), (error) =>
        isTopkError(error, 'ERR_PEER_GONE'),
      );
    });
  }

  it('still hands out what a peer that said goodbye sent before', async () => {
    const mailbox = new Mailbox();
    mailbox.put(message('before'));
    mailbox.fail(topkError('ERR_PEER_GONE', 'bye', {}), { keepHeld: true });
    assert.equal((await mailbox.take(key)).sender, 'before');
  });
});

describe('Mailbox holds one message per (generation, step, phase)', () => {
  const other = { ...key, segment: 3 };
  const lie = (): PeerMessage => ({ ...message('liar'), segment: 3 });

  it('refuses a held message of another segment when its phase is asked for', async () => {
    const mailbox = new Mailbox();
    mailbox.put(lie());
    await assert.rejects(mailbox.take(key), (error) => {
      assert.ok(isTopkError(error, 'ERR_BAD_MESSAGE'));
      assert.match(error.message, /expected segment 2/);
      return true;
    });
    assert.equal(mailbox.pendingCount, 0);
  });

  it('fails a waiting receiver when another segment of its phase arrives', async () => {
    const mailbox = new Mailbox();
    const taken = mailbox.take(key);
    assert.throws(
      () => mailbox.put(lie()),
      (error) => isTopkError(error, 'ERR_BAD_MESSAGE'),
    );
    await assert.rejects(taken, (error) =>
      isTopkError(error, 'ERR_BAD_MESSAGE'),
    );
  });

  it('refuses a second message of a phase, whatever its segment', () => {
    const mailbox = new Mailbox();
    mailbox.put(message('first'));
    assert.throws(
      () => mailbox.put(lie()),
      (error) => isTopkError(error, 'ERR_BAD_MESSAGE'),
    );
    assert.equal(mailbox.pendingCount, 1);
  });

  it('still hands out the right segment and keeps other phases apart', async () => {
    const mailbox = new Mailbox();
    mailbox.put({ ...message('next phase'), phase: 1, segment: 3 });
    mailbox.put(message('right'));
    assert.equal((await mailbox.take(key)).sender, 'right');
    assert.equal(
      (await mailbox.take({ ...other, phase: 1 })).sender,
      'next phase',
    );
  });
});

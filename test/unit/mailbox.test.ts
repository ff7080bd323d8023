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

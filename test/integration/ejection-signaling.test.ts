import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { RoomStatus } from '../../shared/signaling-protocol.ts';
import {
  emitWithAck,
  httpGet,
  membershipWhere,
  nextClientEvent,
  rawClient,
  serverFor,
} from './helpers/signaling-harness.ts';

// The `suspect` event over socket.io on loopback: the accused is told
// why and benched, the room sees a new generation without it and the
// status and metrics show the ejection; it comes back by itself when its
// bench is over. Bad, stale and flooding accusations are refused to the
// sender alone, with a typed error.

const T = { timeout: 20_000 };

describe('a peer accuses a ring neighbour', () => {
  const { state, join } = serverFor({
    rooms: { main: { limits: { benchMs: 600 } } },
  });

  it(
    'the accused is benched, told why, and put back after its bench',
    T,
    async () => {
      const a = await join();
      const b = await join();
      const c = await join();
      await membershipWhere(a, (m) => m.members.length === 3);
      const generation = a.membership.generation;

      const told = nextClientEvent(b, 'ejected');
      const reply = await a.suspect({
        generation,
        peerId: b.peerId,
        reason: 'silent',
        detail: 'no bytes for 5000 ms',
      });
      assert.deepEqual(reply, { ok: true, verdict: 'ejected', strikes: 0 });
      const ejection = await told;
      assert.equal(ejection.peerId, b.peerId);
      assert.equal(ejection.accuser, a.peerId);
      assert.equal(ejection.reason, 'silent');
      assert.equal(ejection.detail, 'no bytes for 5000 ms');
      assert.equal(ejection.benchMs, 600);
      assert.equal(ejection.generation, generation + 1);

      const without = await membershipWhere(
        c,
        (m) => m.generation === generation + 1,
      );
      assert.deepEqual(
        without.members.map((m) => m.peerId),
        [a.peerId, c.peerId],
      );
      // The benched peer still follows the room: it is in no ring place.
      await membershipWhere(b, (m) => m.generation === generation + 1);
      assert.equal(b.position, null);

      const status = JSON.parse(
        (await httpGet(`${state.server.url}/api/rooms/main`)).body,
      ) as RoomStatus;
      assert.deepEqual(
        status.benched.map((p) => [p.id, p.reason, p.ejections]),
        [[b.peerId, 'silent', 1]],
      );
      assert.equal(status.ejectionCount, 1);
      assert.equal(status.ejections[0]?.accuser, a.peerId);
      const metrics = (await httpGet(`${state.server.url}/metrics`)).body;
      assert.match(
        metrics,
        /topk_room_ejections_total\{room="main",reason="silent"\} 1/,
      );
      assert.match(
        metrics,
        /topk_signaling_accusations_total\{reason="silent",verdict="ejected"\} 1/,
      );

      // Back at the end of the ring once the bench is over.
      const back = await membershipWhere(
        b,
        (m) => m.generation > generation + 1,
      );
      assert.deepEqual(
        back.members.map((m) => m.peerId),
        [a.peerId, c.peerId, b.peerId],
      );
      assert.equal(back.members.at(-1)?.ringIndex, 2);
      for (const client of [a, b, c]) client.close();
      await membershipWhere(a, () => true);
    },
  );

  it(
    'refuses what it cannot act on, each to its sender, with a typed error',
    T,
    async () => {
      const a = await join();
      const b = await join();
      await membershipWhere(a, (m) =>
        m.members.some((x) => x.peerId === b.peerId),
      );
      const generation = a.membership.generation;

      const stale = await a.suspect({
        generation: generation - 1,
        peerId: b.peerId,
        reason: 'malformed',
      });
      assert.equal(stale.ok, false);
      assert.equal(!stale.ok && stale.error.code, 'ERR_BAD_MESSAGE');
      assert.equal(
        !stale.ok && stale.error.context?.['reason'],
        'stale-generation',
      );

      // A payload off the schema, and a missing ack, from a raw socket.
      const raw = await rawClient(state.server.url);
      const unknown = (await emitWithAck(raw, 'suspect', {
        generation,
        peerId: b.peerId,
        reason: 'disliked',
      })) as { ok: boolean; error: { code: string; message: string } };
      assert.equal(unknown.ok, false);
      assert.equal(unknown.error.code, 'ERR_BAD_MESSAGE');
      assert.match(unknown.error.message, /reason/);
      const notJoined = (await emitWithAck(raw, 'suspect', {
        generation,
        peerId: b.peerId,
        reason: 'silent',
      })) as { ok: boolean; error: { code: string } };
      assert.equal(notJoined.error.code, 'ERR_BAD_MESSAGE');
      raw.close();

      // A flood of accusations: the suspect bucket (burst 10) runs dry.
      const codes = [];
      for (let i = 0; i < 14; i++) {
        const reply = await a.suspect({
          generation: generation + 100,
          peerId: b.peerId,
          reason: 'silent',
        });
        codes.push(reply.ok ? 'ok' : reply.error.code);
      }
      assert.ok(codes.includes('ERR_RATE_LIMIT'), codes.join(' '));
      assert.equal(a.membership.generation, generation);
      a.close();
      b.close();
    },
  );
});

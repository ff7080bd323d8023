/**
 * The WebRTC RingLink with real connections, each scenario in its own
 * isolated child process (case 7), on both bindings: a ring of three with
 * one late connection, where early messages wait for their step (case 11)
 * and a departed neighbour fails the wait with ERR_PEER_GONE; and a ring
 * of two over one connection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BINDINGS, runScenario } from './helpers/webrtc-expect.ts';

const FIXTURE = 'webrtc-ring.ts';
const TIMEOUT_MS = 60_000;

for (const binding of BINDINGS) {
  describe(`WebRtcRingLink over ${binding}`, () => {
    it('keeps early messages for their step in a ring of three (case 11)', async (t) => {
      const result = await runScenario<{
        exact: boolean;
        pendingWhenPeer1Listened: number;
        departure: string;
        departedSide: string;
        faults: string[];
        bytesSent: number[];
        bytesReceived: number[];
      }>(t, FIXTURE, [binding, 'ring3'], { timeoutMs: TIMEOUT_MS });
      assert.equal(result.exact, true);
      assert.ok(result.pendingWhenPeer1Listened >= 1);
      assert.equal(result.departure, 'ERR_PEER_GONE');
      assert.equal(result.departedSide, 'prev');
      assert.deepEqual(result.faults, []);
      assert.deepEqual(result.bytesSent, result.bytesReceived);
      assert.ok(result.bytesSent.every((bytes) => bytes > 0));
    });

    it('runs a ring of two over one connection and reports bad bytes as a fault', async (t) => {
      const result = await runScenario<{
        exact: boolean;
        faultCode: string;
        faults: string[];
        afterClose: string;
        departed: {
          side: string;
          info: { initiatedLocally: boolean; remoteSaidBye: boolean };
        };
      }>(t, FIXTURE, [binding, 'ring2'], { timeoutMs: TIMEOUT_MS });
      assert.equal(result.exact, true);
      assert.equal(result.faultCode, 'ERR_BAD_MESSAGE');
      assert.deepEqual(result.faults, ['peer1: ERR_BAD_MESSAGE']);
      assert.equal(result.afterClose, 'ERR_PEER_GONE');
      assert.equal(result.departed.side, 'prev');
      assert.equal(result.departed.info.remoteSaidBye, true);
    });
  });
}

/**
 * Moving bytes between two WebRTC peers, each scenario in its own isolated
 * child process (case 7), on both bindings: message sizes around the
 * channel limits (case 1), a sender faster than the channel (cases 2 and
 * 3), and a receiver that leaves mid-message (case 5).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BINDINGS, runScenario } from './helpers/webrtc-expect.ts';

const FIXTURE = 'webrtc-transfer.ts';
const TIMEOUT_MS = 60_000;

for (const binding of BINDINGS) {
  describe(`WebRTC transfer over ${binding}`, () => {
    it('delivers 64 KiB, 256 KiB, 256 KiB + 1 and 4 MB intact (case 1)', async (t) => {
      const result = await runScenario<{
        runs: Array<{
          maxChunkBytes: number;
          lengths: number[];
          intact: boolean[];
          maxChunkReceived: number;
        }>;
      }>(t, FIXTURE, [binding, 'sizes'], { timeoutMs: TIMEOUT_MS });
      assert.equal(result.runs.length, 2);
      for (const run of result.runs) {
        assert.deepEqual(run.lengths, [65536, 262144, 262145, 4_000_000]);
        assert.deepEqual(run.intact, [true, true, true, true]);
        assert.equal(run.maxChunkReceived, run.maxChunkBytes);
      }
    });

    it('delivers 600 x 64 KiB sent at once within the high-water mark (cases 2, 3)', async (t) => {
      const result = await runScenario<{
        modes: Array<{
          mode: string;
          arrived: number;
          intact: boolean;
          maxBufferedBytes: number;
          highWaterMarkBytes: number;
          largestSendBytes: number;
        }>;
      }>(t, FIXTURE, [binding, 'flood'], { timeoutMs: TIMEOUT_MS });
      assert.deepEqual(
        result.modes.map((mode) => mode.mode),
        ['raw', 'framed'],
      );
      for (const mode of result.modes) {
        assert.equal(mode.arrived, 600, mode.mode);
        assert.equal(mode.intact, true, mode.mode);
        assert.ok(
          mode.maxBufferedBytes <=
            mode.highWaterMarkBytes + mode.largestSendBytes,
          `${mode.mode}: ${mode.maxBufferedBytes} buffered`,
        );
      }
    });

    it('does not stall with a low-water mark of 0 (case 3)', async (t) => {
      const result = await runScenario<{
        arrived: number[];
        maxSendMs: number;
      }>(t, FIXTURE, [binding, 'lowwater'], { timeoutMs: TIMEOUT_MS });
      assert.deepEqual(result.arrived, [0, 1, 2, 3, 4]);
      assert.ok(
        result.maxSendMs < 2000,
        `a send waited ${result.maxSendMs} ms`,
      );
    });

    for (const how of ['graceful', 'abrupt'] as const) {
      it(`rejects the send, typed, when the receiver leaves mid-message (case 5, ${how})`, async (t) => {
        const result = await runScenario<{
          rejection: string;
          laterRejection: string;
          chunksSent: number;
          messagesSeen: number;
          senderInitiatedLocally: boolean;
          senderRemoteSaidBye: boolean;
          senderError: string | null;
        }>(t, FIXTURE, [binding, 'leave', how], { timeoutMs: TIMEOUT_MS });
        // B is gone for every later send, whatever happened to this one.
        assert.equal(result.laterRejection, 'ERR_PEER_GONE');
        if (how === 'abrupt' || result.rejection !== 'none') {
          assert.equal(result.rejection, 'ERR_PEER_GONE');
          assert.ok(result.chunksSent >= 37 && result.chunksSent < 112);
          assert.equal(result.messagesSeen, 0);
        } else {
          // TODO(#3): a send resolves once its chunks are handed to the
          // channel, not once delivered: a graceful leave that races it
          // can let every chunk go out and still drop the message. The
          // ring aborts the step on the departure, so nothing is summed
          // wrongly, but there is no end-to-end delivery guarantee.
          assert.equal(result.chunksSent, 112);
          assert.ok(result.messagesSeen <= 1);
        }
        // B is treated as departed: its end, not a local close.
        assert.ok(
          !result.senderInitiatedLocally ||
            result.senderError === 'ERR_PEER_GONE',
        );
        if (how === 'graceful' && !result.senderInitiatedLocally) {
          assert.equal(result.senderRemoteSaidBye, true);
        }
      });
    }
  });
}

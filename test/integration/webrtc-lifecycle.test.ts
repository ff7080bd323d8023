/**
 * Opening and closing WebRTC connections, each scenario in its own isolated
 * child process (case 7), on both bindings: many channels that carry data
 * and close, with no handle left and a flat heap (case 4), and repeated
 * connect/leave cycles that the remote sees as clean closes (case 6).
 *
 * The default run is short; TOPK_SLOW_TESTS=1 runs the full counts of the
 * cases (50 rounds of 20 channels, 100 cycles).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BINDINGS, runScenario } from './helpers/webrtc-expect.ts';

const FIXTURE = 'webrtc-lifecycle.ts';
const SLOW = process.env.TOPK_SLOW_TESTS === '1';
const ROUNDS = SLOW ? 50 : 4;
const CYCLES = SLOW ? 100 : 10;
const TIMEOUT_MS = SLOW ? 600_000 : 90_000;

for (const binding of BINDINGS) {
  describe(`WebRTC lifecycle over ${binding}`, () => {
    it(`closes 20 channels x 1 MiB, ${ROUNDS} times, leaving nothing open (case 4)`, async (t) => {
      const result = await runScenario<{
        rounds: number;
        gcExposed: boolean;
        heapMiB: number[];
        failures: string[];
        baselineResources: Record<string, number>;
        leftResources: Record<string, number>;
      }>(t, FIXTURE, [binding, 'churn', String(ROUNDS), '20'], {
        timeoutMs: TIMEOUT_MS,
        nodeFlags: ['--expose-gc'],
      });
      assert.deepEqual(result.failures, []);
      assert.equal(result.gcExposed, true);
      assert.equal(result.heapMiB.length, ROUNDS);
      // Nothing but what the process had before the first connection.
      for (const [kind, count] of Object.entries(result.leftResources)) {
        assert.ok(
          count <= (result.baselineResources[kind] ?? 0),
          `${count} ${kind} left open`,
        );
      }
      // Flat heap: the last round within 8 MiB of the first (no growth
      // per channel; one leaked channel with its 1 MiB would show).
      const growth = result.heapMiB[ROUNDS - 1] - result.heapMiB[0];
      t.diagnostic(
        `heap MiB per round: ${result.heapMiB.map((x) => x.toFixed(1)).join(' ')}`,
      );
      assert.ok(growth < 8, `heap grew by ${growth.toFixed(1)} MiB`);
    });

    it(`sees ${CYCLES} connect/leave cycles end in clean closes (case 6)`, async (t) => {
      const result = await runScenario<{
        cycles: number;
        exchanged: number;
        unclean: string[];
      }>(t, FIXTURE, [binding, 'cycles', String(CYCLES)], {
        timeoutMs: TIMEOUT_MS,
      });
      assert.equal(result.cycles, CYCLES);
      assert.equal(result.exchanged, CYCLES);
      assert.deepEqual(result.unclean, []);
    });
  });
}

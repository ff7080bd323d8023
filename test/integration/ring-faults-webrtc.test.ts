import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { SessionSummary } from '../../peer/session/session.ts';
import type {
  EjectionStatus,
  RoomStatus,
  StallStatus,
} from '../../shared/signaling-protocol.ts';
import {
  describeRun,
  fixturePath,
  isolationNote,
  runChild,
} from './helpers/isolated-child.ts';

// A peer misbehaves on its data channels while its signaling connection
// stays up (fixtures/ring-fault-run.ts, TOPK_TEST_FAULT): its neighbours
// accuse it, the server benches it, the other two re-form the ring and
// train on; it comes back after its bench, receives the weights, and the
// three end identical. Only the faulty peer is ever ejected: a straggler's
// victims wait as long as its next peer, but at later hops, and accuse
// nobody (peer/session/straggler.ts).

interface Result {
  readonly ids: string[];
  readonly ejections: EjectionStatus[];
  readonly stalls: StallStatus[];
  readonly finished: RoomStatus['finished'];
  readonly stallAfterMs?: number;
  readonly detectionMs?: number;
  readonly recoveryMs?: number;
  readonly generations: number;
  readonly summaries: (SessionSummary | string)[];
}

/** The room's peerTimeoutMs in the fixture. */
const PEER_TIMEOUT_MS = 1500;
/** Its stepTimeoutMs in `drop` mode. */
const STEP_TIMEOUT_MS = 3000;

/** Runs the fixture in `mode`; every peer finishes, all identical. */
async function faultRun(
  mode: 'silent' | 'garbage' | 'slow' | 'drop' | 'late',
): Promise<Result> {
  const run = await runChild<Result>(fixturePath('ring-fault-run.ts'), [mode], {
    timeoutMs: 240_000,
  });
  assert.equal(run.code, 0, describeRun(run));
  const result = run.result as Result;
  const finished = result.summaries.map((s) =>
    typeof s === 'string' ? assert.fail(s) : s,
  );
  // 1,200 samples over 3 peers x 16 per step: 25 steps an epoch, 12
  // epochs (4 in `late` mode).
  const steps = mode === 'late' ? 100 : 300;
  for (const summary of finished) assert.equal(summary.steps, steps);
  assert.equal(result.finished?.step, steps);
  assert.equal(result.finished.modelHash, finished[0]!.modelHash);
  assert.equal(
    new Set(finished.map((s) => s.modelHash)).size,
    1,
    finished.map((s) => s.modelHash).join(' '),
  );
  assert.ok((run.exitAfterResultMs ?? Infinity) < 10_000);
  return result;
}

/** Runs the fixture in `mode`: the faulty peer alone is ejected, then
 * comes back. */
async function ejectionRun(
  mode: 'silent' | 'garbage' | 'slow' | 'late',
): Promise<Result> {
  const result = await faultRun(mode);
  const finished = result.summaries as SessionSummary[];
  const faulty = result.ids[2];
  assert.ok(result.ejections.length >= 1, 'nobody was ejected');
  for (const ejection of result.ejections) {
    assert.equal(ejection.peerId, faulty, JSON.stringify(ejection));
  }
  assert.ok(result.ids.slice(0, 2).includes(result.ejections[0]!.accuser));
  // It came back: it trained in a ring of three again after its bench.
  assert.ok(finished[2]!.generations >= 2);
  assert.deepEqual(result.stalls, []);
  return result;
}

describe(`a peer misbehaving on its data channels (${isolationNote()})`, () => {
  it('silent, its server connection up: ejected within about peerTimeoutMs, the others identical', async (t) => {
    const result = await ejectionRun('silent');
    assert.equal(result.ejections[0]!.reason, 'silent');
    const detected = result.detectionMs ?? Infinity;
    const recovered = result.recoveryMs ?? Infinity;
    t.diagnostic(
      `silent peer ejected ${Math.round(detected)} ms after its last step, ` +
        `ring of two training ${Math.round(recovered)} ms after it`,
    );
    // The timeout, not something else, found it; with room for a
    // loaded machine.
    assert.ok(detected >= PEER_TIMEOUT_MS - 200, `${detected} ms`);
    assert.ok(detected <= PEER_TIMEOUT_MS + 1500, `${detected} ms`);
    assert.ok(recovered <= PEER_TIMEOUT_MS + 3000, `${recovered} ms`);
  });

  it('sending garbage: ejected at once as malformed, the others identical', async (t) => {
    const result = await ejectionRun('garbage');
    assert.equal(result.ejections[0]!.reason, 'malformed');
    assert.match(result.ejections[0]!.detail, /msgpack|decode/);
    const detected = result.detectionMs ?? Infinity;
    t.diagnostic(`garbage sender ejected ${Math.round(detected)} ms after`);
    assert.ok(detected < PEER_TIMEOUT_MS, `${detected} ms`);
  });

  it('a straggler (each step 400 ms late): dropped at its third missed deadline, never its victims', async () => {
    const result = await ejectionRun('slow');
    const ejection = result.ejections[0]!;
    assert.equal(ejection.reason, 'straggler');
    assert.match(ejection.detail, /first message of step \d+/);
    // Strikes at steps 8, 9 and 10 (stragglerStrikes 3).
    assert.ok(ejection.step >= 9 && ejection.step <= 12, `${ejection.step}`);
  });

  it('benched while the others finish the run: put back at their finish, it receives the final weights', async () => {
    const result = await ejectionRun('late');
    assert.equal(result.ejections.length, 1);
    const ejection = result.ejections[0]!;
    assert.equal(ejection.reason, 'silent');
    // Its 30 s bench had not run out: the finish put it back. Before,
    // it came back after the others had left and trained the last 20
    // steps alone, ending with other weights.
    const finishedAt = result.finished?.atMs ?? Infinity;
    assert.ok(finishedAt - ejection.atMs < 30_000);
  });

  it('a message that never comes: the step runs out of time, the server restarts the ring of three, nobody ejected', async (t) => {
    const result = await faultRun('drop');
    assert.deepEqual(result.ejections, []);
    assert.equal(result.stalls.length, 1, JSON.stringify(result.stalls));
    const stall = result.stalls[0]!;
    assert.equal(stall.step, 8, JSON.stringify(stall));
    assert.ok(result.ids.includes(stall.peerId));
    const after = result.stallAfterMs ?? Infinity;
    t.diagnostic(
      `stalled ring restarted ${Math.round(after)} ms after the last good ` +
        `step (stepTimeoutMs ${STEP_TIMEOUT_MS})`,
    );
    assert.ok(after >= STEP_TIMEOUT_MS - 200, `${after} ms`);
    assert.ok(after <= STEP_TIMEOUT_MS + 2000, `${after} ms`);
  });
});

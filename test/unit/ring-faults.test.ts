import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import {
  AutoPlanner,
  type AllReduceAlgorithm,
  type AllReduceChoice,
  type AllReduceResult,
  resultToDense,
} from '../../shared/allreduce/index.ts';
import { decodeMessage } from '../../shared/codec.ts';
import { isTopkError } from '../../shared/errors.ts';
import type { PeerMessage } from '../../shared/protocol.ts';
import { RingSimulator } from '../../shared/simulator.ts';
import { settleSimulatedStep } from '../../shared/simulator-step.ts';
import {
  FAULTS,
  type Fault,
  type FaultContext,
} from '../helpers/ring-fault-table.ts';
import {
  FAULT_STEP,
  GENERATION,
  makePeers,
  restoreAndResend,
  runScenario,
  type ScenarioPeer,
  type ScenarioRun,
} from '../helpers/ring-scenario.ts';
import { assertSum } from './ring-helpers.ts';

// Fault injection in the ring all-reduce from ONE enumeration of faults
// (FAULTS in test/helpers/ring-fault-table.ts: name, how the simulator's
// hooks inject it, what must happen), run against every algorithm and
// ring sizes 2, 3, 4 and 8, and the case 12 sizes.
//
// Each scenario: P peers with error-feedback compressors, a clean warm-up
// step, then the fault step with the fault injected (peer `victim` = ring
// index 1 is the one that dies, lies or is slowed). Whatever happens:
// - every peer that completes holds exactly the bits of a run without the
//   fault, which equal the float64 reference within float32 rounding;
// - every peer that fails does so with a typed error of an expected code,
//   the victim's next peer (the one that sees the fault) with the fault's
//   own code;
// - nothing stays pending: mailboxes empty once the floor moves past the
//   step, no message or timer in flight.
// When the step fails, every survivor puts what it sent back into its
// residual (which is then exactly that step's acc: no gradient lost),
// sends the same vector again, and the survivors redo the step in a new
// generation on a ring without the victim, with every message of the
// failed step replayed into their new mailboxes: they get identical
// results equal to the survivors' sum, with nothing of the victim in it
// (its gradients are 1000 times larger, so any trace would show).

const ALGORITHMS: AllReduceChoice[] = [
  'sparse-ring',
  'allgather',
  'dense',
  'auto',
];
const SIZES = [2, 3, 4, 8];
const VICTIM = 1;
/** A step that cannot end is aborted after this long. */
const STALL_DEADLINE_MS = 100;
/** Never reached by a healthy step; keeps a bug from hanging the run. */
const SAFETY_DEADLINE_MS = 10_000;

/** The fault step without a fault: what every completed peer must hold. */
interface Baseline {
  readonly results: readonly AllReduceResult[];
  /** What ran at the fault step (what `auto` picked). */
  readonly algorithm: AllReduceAlgorithm;
}

/** A ring: P peers over n coordinates sending k each. */
interface Shape {
  readonly peers: number;
  readonly n: number;
  readonly k: number;
}

function peersOf(shape: Shape): ScenarioPeer[] {
  return makePeers(
    shape.peers,
    shape.n,
    shape.k,
    1000 + shape.n,
    VICTIM % shape.peers,
  );
}

async function baselineOf(
  algorithm: AllReduceChoice,
  shape: Shape,
): Promise<Baseline> {
  const peers = peersOf(shape);
  const run = await runScenario({
    algorithm,
    peers,
    k: shape.k,
    deadlineMs: SAFETY_DEADLINE_MS,
  });
  run.ring.close();
  const results = run.outcomes.map((outcome) => {
    if (outcome.status === 'rejected') throw outcome.reason;
    return outcome.value;
  });
  assertSum(
    peers.map((peer) => peer.sent[1]),
    results,
  );
  return { results, algorithm: results[0].algorithm };
}

function codeOf(outcome: PromiseSettledResult<AllReduceResult>): string {
  if (outcome.status === 'fulfilled') return 'ok';
  assert.ok(
    isTopkError(outcome.reason),
    `untyped failure: ${String(outcome.reason)}`,
  );
  return outcome.reason.code;
}

function assertSameBits(
  actual: AllReduceResult,
  expected: AllReduceResult,
  what: string,
): void {
  assert.equal(actual.algorithm, expected.algorithm, what);
  assert.deepEqual(
    new Uint32Array(resultToDense(actual).buffer),
    new Uint32Array(resultToDense(expected).buffer),
    `${what}: differs from the run without the fault`,
  );
}

/** Checks a scenario's outcome against its row; redoes a failed step. */
async function checkScenario(
  fault: Fault,
  ctx: FaultContext,
  shape: Shape,
  algorithm: AllReduceChoice,
  peers: ScenarioPeer[],
  run: ScenarioRun,
  baseline: Baseline,
): Promise<void> {
  const { ring, outcomes } = run;
  assert.deepEqual(ctx.notes, []);
  const codes = outcomes.map(codeOf);
  outcomes.forEach((outcome, p) => {
    if (outcome.status === 'fulfilled') {
      assertSameBits(outcome.value, baseline.results[p], `peer ${p}`);
    }
  });
  for (const link of ring.links) assert.equal(link.mailbox.pendingCount, 0);

  const failed = codes.some((code) => code !== 'ok');
  const { expect } = fault;
  if (expect.outcome === 'complete') {
    assert.ok(
      !failed,
      `expected every peer to complete, got ${codes.join(', ')}`,
    );
    assert.equal(ring.inFlightCount, 0);
  } else if (expect.outcome === 'stall') {
    assert.ok(run.timedOut, 'expected the deadline to end the step');
    assert.equal(codes[ctx.next], 'ERR_RING_ABORTED');
    for (const code of codes)
      assert.ok(code === 'ok' || code === 'ERR_RING_ABORTED', codes.join(', '));
  } else if (expect.outcome === 'fail' || failed) {
    assert.equal(
      codes[ctx.next],
      expect.code,
      `the victim's next peer: ${codes.join(', ')}`,
    );
    const allowed = ['ok', expect.code, 'ERR_RING_ABORTED'];
    for (const code of codes)
      assert.ok(allowed.includes(code), codes.join(', '));
    assert.ok(!run.timedOut, 'a detected fault must not wait for the deadline');
  }
  ring.close();
  assert.equal(ring.inFlightCount, 0);

  if (failed) await redo(ctx, shape, algorithm, peers, run);
}

/**
 * The survivors restore what they sent, send it again and redo the step in
 * the next generation on a ring without the victim, with every message of
 * the failed step replayed into their mailboxes: identical results, the
 * survivors' sum, nothing of the victim.
 */
async function redo(
  ctx: FaultContext,
  shape: Shape,
  algorithm: AllReduceChoice,
  peers: ScenarioPeer[],
  failed: ScenarioRun,
): Promise<void> {
  const survivors = peers.flatMap((peer, p) =>
    p === ctx.victim ? [] : [{ peer, p }],
  );
  const inputs = survivors.map(({ peer }) => ({
    vector: restoreAndResend(peer),
    skip: false,
  }));
  const ring = new RingSimulator({ peers: survivors.length });
  const newIndex = new Map(survivors.map(({ p }, i) => [p, i]));
  for (const event of failed.wire) {
    const to = newIndex.get(event.to);
    if (to === undefined) continue;
    let message: PeerMessage;
    try {
      message = decodeMessage(event.bytes);
    } catch {
      continue; // a lie the codec refuses never reaches a mailbox
    }
    ring.links[to].mailbox.put(message);
  }
  const planners = survivors.map(() => new AutoPlanner());
  const outcomes = await settleSimulatedStep(ring, {
    generation: GENERATION + 1,
    step: FAULT_STEP,
    inputs,
    options: (i) => ({ algorithm, planner: planners[i], k: shape.k }),
  });
  const results = outcomes.map((outcome) => {
    if (outcome.status === 'rejected') throw outcome.reason;
    return outcome.value;
  });
  assertSum(
    survivors.map(({ peer }) => peer.sent[1]),
    results,
  );
  for (const link of ring.links) assert.equal(link.mailbox.pendingCount, 0);
  assert.equal(ring.inFlightCount, 0);
  ring.close();
}

/** Runs `fault` on `shape` with `algorithm` and checks everything. */
async function runFault(
  fault: Fault,
  algorithm: AllReduceChoice,
  shape: Shape,
  baseline: Baseline,
): Promise<void> {
  const ctx = contextOf(shape, baseline, []);
  const peers = peersOf(shape);
  const run = await runScenario({
    algorithm,
    peers,
    k: shape.k,
    hook: fault.inject.hook?.(ctx),
    lateStarter: fault.inject.lateStarter?.(ctx),
    deadlineMs:
      fault.expect.outcome === 'stall' ? STALL_DEADLINE_MS : SAFETY_DEADLINE_MS,
  });
  await checkScenario(fault, ctx, shape, algorithm, peers, run, baseline);
}

function contextOf(
  shape: Shape,
  baseline: Baseline,
  notes: string[],
): FaultContext {
  const victim = VICTIM % shape.peers;
  return {
    peers: shape.peers,
    algorithm: baseline.algorithm,
    victim,
    next: (victim + 1) % shape.peers,
    notes,
  };
}

/** Defines one test per fault for every algorithm on `shapes`. */
async function defineFaultTests(
  shapes: readonly Shape[],
  faults: readonly Fault[],
): Promise<void> {
  for (const algorithm of ALGORITHMS) {
    for (const shape of shapes) {
      const baseline = await baselineOf(algorithm, shape);
      describe(`${algorithm}, n = ${shape.n} over ${shape.peers} peers`, () => {
        // A fault that cannot happen in this shape (e.g. a second send
        // where the victim sends one message per step) gets no test.
        const applicable = faults.filter(
          (fault) =>
            fault.notApplicable?.(contextOf(shape, baseline, [])) === undefined,
        );
        for (const fault of applicable) {
          it(fault.name, () => runFault(fault, algorithm, shape, baseline));
        }
      });
    }
  }
}

describe('ring faults (one enumeration, every algorithm)', async () => {
  const shapes = SIZES.map((peers) => {
    const n = 40 + 13 * peers;
    return { peers, n, k: Math.ceil(n / 6) };
  });
  await defineFaultTests(shapes, FAULTS);
});

describe('case 12 sizes under faults', async () => {
  // Sizes that do not divide, some segments empty.
  const shapes: Shape[] = [
    { peers: 4, n: 10, k: 3 },
    { peers: 3, n: 1, k: 1 },
    { peers: 8, n: 7, k: 2 },
  ];
  const names = new Set([
    'peer dies after the first reduce-scatter hop',
    'peer dies in the middle of a chunked message',
    'link delayed',
    'chunks reordered',
    'message from an old generation',
    'message from the future step',
  ]);
  await defineFaultTests(
    shapes,
    FAULTS.filter((fault) => names.has(fault.name)),
  );
});

after(() => {
  // Every simulator was closed: no timer of a message in flight is left.
  const timers = process
    .getActiveResourcesInfo()
    .filter((kind) => kind === 'Timeout');
  assert.deepEqual(timers, []);
});

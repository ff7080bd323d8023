/**
 * The chaos run: a signaling server and N peer processes train together
 * while peers are killed with SIGKILL at random moments and restarted a
 * few seconds later as newcomers. Faults stop after `faultWindowMs`; the
 * run then finishes normally, and every live peer must end with the same
 * weights. Reports the faults injected, the recoveries and how long each
 * took: from the kill to the first step the survivors completed in a new
 * ring.
 */
import path from 'node:path';

import createDebug from 'debug';

import {
  parseRoomConfig,
  type RoomConfig,
  type RoomConfigInput,
} from '../../shared/config.ts';
import { startSignalingServer } from '../../signaling/server.ts';
import type { PeerIpcMessage } from '../cli/peer.ts';
import { Rng } from '../data/rng.ts';
import type { SessionSummary } from '../session/session.ts';
import { startPeerProcess, type PeerProcess } from './peer-process.ts';

const log = createDebug('topk:chaos');

/** Settings of a chaos run. */
export interface ChaosOptions {
  readonly peers: number;
  readonly config: RoomConfigInput;
  /** Faults are injected during this long after the first step. */
  readonly faultWindowMs: number;
  /** A kill every [min, max] milliseconds, drawn at random. */
  readonly killEveryMs: readonly [number, number];
  /** A killed peer comes back (as a newcomer) after this long. */
  readonly restartAfterMs: number;
  readonly seed: number;
  readonly webrtc: string;
  readonly backend: string;
  readonly maxTrain?: number;
  readonly maxTest?: number;
  /** Folder for each peer's log (`peer-N.log`); none by default. */
  readonly logDir?: string;
  /** Told about faults and recoveries as they happen. */
  readonly onLog?: (line: string) => void;
}

/** What a chaos run measured. */
export interface ChaosSummary {
  readonly config: RoomConfig;
  readonly kills: number;
  readonly restarts: number;
  /** Milliseconds from each kill to the survivors' first step after it. */
  readonly recoveryMs: readonly number[];
  readonly medianRecoveryMs: number;
  readonly maxRecoveryMs: number;
  /** Milliseconds from the first step until faults stopped: the end of the
   * fault window, or the end of the run if that came first. */
  readonly faultsForMs: number;
  /** The longest time between two steps completed by any peer, from the
   * first step to the end of the run: how long training stalled. */
  readonly longestStallMs: number;
  /** Restarted peers that found the run over and were stopped. */
  readonly lateJoiners: number;
  /** Peers that finished the run, and their weights hashes. */
  readonly finished: number;
  readonly modelHashes: readonly string[];
  readonly identical: boolean;
  readonly steps: number;
  readonly testAccuracy?: number;
  readonly testLoss: number;
  readonly wallMs: number;
}

interface Slot {
  process: PeerProcess;
  alive: boolean;
  generation: number;
  /** Completed a step: it holds the ring's weights and finishes with it. */
  stepped: boolean;
  /** Its process has ended (finished, failed or killed). */
  settled: boolean;
  /** Its summary, or undefined for a peer that was killed. */
  outcome: Promise<SessionSummary | undefined>;
}

/** Most the accuracy may differ from the baseline's, in points. */
export const ACCURACY_TOLERANCE_POINTS = 1;

/** How a run's test accuracy compares with the baseline's (both 0-1). */
export interface AccuracyComparison {
  /** Run minus baseline, in percentage points; undefined without both. */
  readonly accuracyDifferencePoints: number | undefined;
  /** Within {@link ACCURACY_TOLERANCE_POINTS}; undefined without both. */
  readonly accuracyWithinTolerance: boolean | undefined;
}

/** Compares a chaos run's accuracy with a run without faults. */
export function compareAccuracy(
  accuracy: number | undefined,
  baseline: number | undefined,
): AccuracyComparison {
  if (accuracy === undefined || baseline === undefined) {
    return {
      accuracyDifferencePoints: undefined,
      accuracyWithinTolerance: undefined,
    };
  }
  const points = (accuracy - baseline) * 100;
  return {
    accuracyDifferencePoints: points,
    // A hair of slack for the float subtraction (0.9712 - 0.9612 is a
    // bit over 0.01); a NaN accuracy is never within tolerance.
    accuracyWithinTolerance:
      Math.abs(points) <= ACCURACY_TOLERANCE_POINTS + 1e-9,
  };
}

/** Runs the chaos scenario; see the module comment. */
export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const startMs = performance.now();
  const say = options.onLog ?? (() => {});
  const config = parseRoomConfig({
    ...options.config,
    minPeers: options.peers,
    ...(options.maxTrain === undefined
      ? {}
      : { trainSamples: options.maxTrain }),
  });
  const room = 'chaos';
  const server = await startSignalingServer({
    port: 0,
    rooms: { [room]: config },
  });
  const rng = new Rng(options.seed);
  const slots: Slot[] = [];
  const recoveryMs: number[] = [];
  let pendingKill: { atMs: number; generation: number } | undefined;
  let firstStepMs: number | undefined;
  let lastStepMs: number | undefined;
  let longestStallMs = 0;
  let endedMs: number | undefined;
  /** Set when the first peer finished: no more faults or restarts. */
  let ending = false;
  let kills = 0;
  let lateJoiners = 0;
  let restarts = 0;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const later = (ms: number, work: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      work();
    }, ms);
    timers.add(timer);
  };

  const onEvent = (slot: Slot, message: PeerIpcMessage): void => {
    if (message.type !== 'event') return;
    const event = message.event;
    if (event.type === 'generation') slot.generation = event.generation;
    if (event.type !== 'step') return;
    slot.stepped = true;
    const nowMs = performance.now();
    firstStepMs ??= nowMs;
    if (lastStepMs !== undefined && endedMs === undefined) {
      longestStallMs = Math.max(longestStallMs, nowMs - lastStepMs);
    }
    lastStepMs = nowMs;
    if (
      pendingKill !== undefined &&
      event.record.generation > pendingKill.generation
    ) {
      const took = performance.now() - pendingKill.atMs;
      recoveryMs.push(took);
      say(
        `recovered in ${(took / 1000).toFixed(1)} s at step ${event.record.step}`,
      );
      pendingKill = undefined;
    }
  };

  const start = async (): Promise<void> => {
    const slot = {
      alive: true,
      generation: -1,
      stepped: false,
      settled: false,
    } as Slot;
    slot.process = await startPeerProcess(
      slots.length,
      server.url,
      {
        room,
        webrtc: options.webrtc,
        backend: options.backend,
        maxTrain: options.maxTrain,
        maxTest: options.maxTest,
        logFile:
          options.logDir === undefined
            ? undefined
            : path.join(options.logDir, `peer-${slots.length}.log`),
      },
      (message) => onEvent(slot, message),
    );
    slots.push(slot);
    slot.outcome = slot.process.finished.then(
      (summary) => {
        ending = true;
        endedMs ??= performance.now();
        return summary;
      },
      (error: unknown) => {
        if (slot.alive) throw error;
        return undefined;
      },
    );
    // Settled either way; a failure is rethrown where outcomes are awaited.
    void slot.outcome.then(
      () => (slot.settled = true),
      () => (slot.settled = true),
    );
  };

  const killOne = (): void => {
    if (ending) return;
    const elapsed = performance.now() - (firstStepMs ?? performance.now());
    if (firstStepMs !== undefined && elapsed > options.faultWindowMs) return;
    const alive = slots.filter((s) => s.alive && s.generation >= 0);
    if (
      firstStepMs !== undefined &&
      alive.length > 1 &&
      pendingKill === undefined
    ) {
      const victim = alive[rng.nextInt(alive.length)];
      victim.alive = false;
      victim.process.child.kill('SIGKILL');
      kills++;
      pendingKill = {
        atMs: performance.now(),
        generation: Math.max(...slots.map((s) => s.generation)),
      };
      say(`killed peer ${slots.indexOf(victim)} (SIGKILL)`);
      later(options.restartAfterMs, () => {
        if (ending) return;
        restarts++;
        say('restarting a peer as a newcomer');
        void start().catch((error: unknown) =>
          log('restart failed: %s', String(error)),
        );
      });
    }
    scheduleKill();
  };
  const scheduleKill = (): void => {
    const [min, max] = options.killEveryMs;
    later(min + rng.nextFloat() * (max - min), killOne);
  };

  try {
    for (let i = 0; i < options.peers; i++) await start();
    scheduleKill();
    // Peers restarted later join the slots while earlier ones run, so
    // look again until every slot has settled.
    for (;;) {
      const pending = slots.filter((s) => !s.settled);
      if (pending.length === 0) break;
      if (ending && pending.every((s) => !s.stepped)) {
        // Restarted near the end, these newcomers found the run over:
        // nobody is left to hand them the weights, and they wait alone.
        for (const slot of pending) {
          slot.alive = false;
          slot.process.child.kill('SIGKILL');
        }
        lateJoiners += pending.length;
        say(`${pending.length} peer(s) restarted too late to rejoin; stopped`);
      }
      await Promise.race([
        ...pending.map((s) => s.outcome),
        new Promise((resolve) =>
          later(options.restartAfterMs + 100, () => resolve(undefined)),
        ),
      ]);
    }
  } finally {
    for (const timer of timers) clearTimeout(timer);
    for (const slot of slots)
      if (slot.alive) slot.process.child.kill('SIGKILL');
    await server.close();
  }

  const summaries = (await Promise.all(slots.map((s) => s.outcome))).filter(
    (s): s is SessionSummary => s !== undefined,
  );
  const sorted = [...recoveryMs].sort((a, b) => a - b);
  const modelHashes = summaries.map((s) => s.modelHash);
  return {
    config,
    kills,
    restarts,
    recoveryMs,
    medianRecoveryMs:
      sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)],
    maxRecoveryMs: sorted.length === 0 ? 0 : sorted[sorted.length - 1],
    faultsForMs:
      firstStepMs === undefined
        ? 0
        : Math.min(
            options.faultWindowMs,
            (endedMs ?? performance.now()) - firstStepMs,
          ),
    longestStallMs,
    lateJoiners,
    finished: summaries.length,
    modelHashes,
    identical: new Set(modelHashes).size === 1,
    steps: summaries[0]?.steps ?? 0,
    testAccuracy: summaries[0]?.testAccuracy,
    testLoss: summaries[0]?.testLoss ?? Number.NaN,
    wallMs: performance.now() - startMs,
  };
}

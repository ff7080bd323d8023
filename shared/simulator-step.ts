/**
 * Runs one all-reduce step on every peer of a ring that lives in this
 * process (a `RingSimulator`, or real links between local peers) at once,
 * as P separate processes would: each peer calls `allReduce` on its own
 * link, concurrently.
 */
import { allReduce } from './allreduce/index.ts';
import type {
  AllReduceInput,
  AllReduceOptions,
  AllReduceResult,
} from './allreduce/index.ts';
import { isTopkError } from './errors.ts';
import type { RingLink } from './link.ts';

/**
 * P links of one process, one per ring index: a {@link RingSimulator}, or
 * any transport whose peers all live in this process.
 */
export interface LocalRing {
  /** The links, by ring index. */
  readonly links: readonly RingLink[];
  /** The peer id of ring index `ringIndex` (default `peer-<index>`). */
  peerId?(ringIndex: number): string;
  /** Drops what is held of steps before (generation, step). */
  advanceFloor?(generation: number, step: number): void;
}

/** One step of a ring whose peers all run in this process. */
export interface SimulatedStep {
  /** Room name carried by every message (default `sim`). */
  readonly room?: string;
  /** The generation (default 0). */
  readonly generation?: number;
  /** The step number. */
  readonly step: number;
  /** Each peer's contribution, by ring index. */
  readonly inputs: readonly AllReduceInput[];
  /** Each peer's options, by ring index (each keeps its own planner). */
  readonly options: (ringIndex: number) => AllReduceOptions;
  /** Aborts the step on every peer. */
  readonly signal?: AbortSignal;
}

/**
 * Runs `step` on every living peer and waits until every one has settled.
 * When one peer fails, the others are aborted (as a ring would be, by the
 * failure detector), so the step never hangs on a peer that waits for a
 * message that will not come. Afterwards every mailbox's floor moves past
 * the step, so nothing of it stays held.
 */
export async function settleSimulatedStep(
  ring: LocalRing,
  step: SimulatedStep,
): Promise<PromiseSettledResult<AllReduceResult>[]> {
  const generation = step.generation ?? 0;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(step.signal?.reason);
  if (step.signal?.aborted) onAbort();
  step.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.allSettled(
      ring.links.map(async (link, ringIndex) => {
        try {
          return await allReduce(
            {
              room: step.room ?? 'sim',
              peerId: ring.peerId?.(ringIndex) ?? `peer-${ringIndex}`,
              generation,
              step: step.step,
              ringIndex,
              peers: ring.links.length,
              link,
              signal: controller.signal,
            },
            step.inputs[ringIndex],
            step.options(ringIndex),
          );
        } catch (error) {
          controller.abort(error);
          throw error;
        }
      }),
    );
  } finally {
    step.signal?.removeEventListener('abort', onAbort);
    ring.advanceFloor?.(generation, step.step + 1);
  }
}

/**
 * Like {@link settleSimulatedStep}, but resolves with every peer's result
 * or rejects with the cause of the failure: the first error in ring-index
 * order that is not an `ERR_RING_ABORTED` (those follow from the cause),
 * else the first error.
 */
export async function runSimulatedStep(
  ring: LocalRing,
  step: SimulatedStep,
): Promise<AllReduceResult[]> {
  const outcomes = await settleSimulatedStep(ring, step);
  const errors = outcomes.flatMap((outcome) =>
    outcome.status === 'rejected' ? [outcome.reason as unknown] : [],
  );
  if (errors.length > 0) {
    throw (
      errors.find((error) => !isTopkError(error, 'ERR_RING_ABORTED')) ??
      errors[0]
    );
  }
  return outcomes.map(
    (outcome) => (outcome as PromiseFulfilledResult<AllReduceResult>).value,
  );
}

/**
 * The two agreements a ring session makes over its links besides the
 * training steps (the protocol is sync.ts's): at the start of a
 * generation, on the start step and the weights; at the end of the run,
 * that everyone completed the last step. Browser-safe.
 */
import createDebug from 'debug';

import type { Trainer } from '../training/trainer.ts';
import {
  DONE_PHASE,
  exchangeStandings,
  planGeneration,
  transferState,
  type HandshakeContext,
} from './sync.ts';

const log = createDebug('topk:session:ring');

/** How a generation starts for this peer. */
export interface GenerationStart {
  /** The step every member starts the generation from. */
  readonly startStep: number;
  /**
   * A new run whose ring is still smaller than the room's `minPeers`:
   * the readiness barrier, so fast peers do not train alone while slow
   * ones connect. Nothing was transferred.
   */
  readonly waiting: boolean;
  /**
   * The highest step a member that holds weights had completed before
   * the handshake, or undefined when every member was a newcomer.
   */
  readonly newestHeld: number | undefined;
}

/**
 * The opening handshake of a generation: agree on the start step, take
 * back a step the others aborted, fetch the weights when `fresh` (a
 * newcomer). Rejects with the link's error when a neighbour fails.
 */
export async function openGeneration(
  context: HandshakeContext,
  trainer: Trainer,
  fresh: boolean,
): Promise<GenerationStart> {
  const standings = await exchangeStandings(context, {
    step: trainer.step,
    fresh,
    modelHash: fresh ? '' : trainer.modelHash(),
    previousHash: fresh ? '' : trainer.previousHash(),
  });
  const plan = planGeneration(standings);
  const { newestHeld } = plan;
  const minPeers = trainer.config.minPeers;
  const waiting = standings.every((s) => s.fresh) && context.peers < minPeers;
  if (waiting) {
    log('%d of %d peers; waiting', context.peers, minPeers);
    return { startStep: plan.startStep, waiting, newestHeld };
  }
  if (plan.rollback[context.ringIndex]) trainer.rollback();
  const ownHash = fresh ? '' : trainer.modelHash();
  await transferState(context, plan, trainer);
  if (!fresh && plan.fresh[context.ringIndex]) {
    // Held weights the others do not: a resync (issue 6).
    log(
      '%s: weights %s disagreed with the ring; resynchronised to %s at ' +
        'step %d from the previous peer',
      context.peerId,
      ownHash,
      trainer.modelHash(),
      plan.startStep,
    );
  }
  log(
    '%s: generation %d starts at step %d (%d peers)',
    context.peerId,
    context.generation,
    plan.startStep,
    context.peers,
  );
  return { startStep: plan.startStep, waiting, newestHeld };
}

/**
 * The end-of-run barrier: a last round of standings, so no peer leaves
 * (and makes a slower one abort its last step) before every peer has
 * completed the last step. A failure here only ends the run early.
 */
export async function finishTogether(
  context: Omit<HandshakeContext, 'signal'>,
  trainer: Trainer,
): Promise<void> {
  try {
    await exchangeStandings(
      {
        ...context,
        signal: AbortSignal.timeout(trainer.config.limits.stepTimeoutMs),
      },
      {
        step: trainer.step,
        fresh: false,
        modelHash: trainer.modelHash(),
        previousHash: '',
      },
      DONE_PHASE,
    );
  } catch (error) {
    log('end-of-run barrier: %s', String(error));
  }
}

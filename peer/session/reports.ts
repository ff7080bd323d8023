/**
 * The progress report a peer sends the signaling server after each step
 * (status API, dashboard, model-hash check). Browser-safe.
 */
import type { SignalingClient } from '../../shared/signaling-client.ts';
import type { StepRecord, Trainer } from '../training/trainer.ts';

/** Steps between two weights hashes sent to the server for comparison;
 * every peer uses the same period, so the server compares like steps. */
export const HASH_EVERY_STEPS = 25;

/** All-reduce bytes of a peer so far, and the dense ring's for them. */
export interface Totals {
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly denseBytes: number;
}

/** What {@link reportStep} reports besides the step record. */
export interface StepReportContext {
  readonly record: StepRecord;
  readonly totals: Totals;
  readonly generation: number;
  readonly epoch: number;
  /** Test accuracy, when the step ended an epoch. */
  readonly accuracy?: number;
  readonly backend: string;
}

/** Reports the step `trainer` just completed. */
export function reportStep(
  client: SignalingClient,
  trainer: Trainer,
  context: StepReportContext,
): void {
  const { record, totals } = context;
  const done = trainer.step;
  client.report({
    step: done,
    generation: context.generation,
    epoch: context.epoch,
    loss: Number.isFinite(record.loss) ? record.loss : null,
    ...(context.accuracy === undefined ? {} : { accuracy: context.accuracy }),
    ...totals,
    k: record.k,
    n: record.n,
    ...(Number.isFinite(record.compressionError)
      ? { compressionError: record.compressionError }
      : {}),
    backend: context.backend,
    ...(done % HASH_EVERY_STEPS === 0
      ? { modelHash: trainer.modelHash() }
      : {}),
    timing: {
      computeMs: record.computeMs,
      selectMs: record.selectMs,
      communicateMs: record.communicateMs,
    },
  });
}

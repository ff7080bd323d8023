/**
 * The shapes around a RingSession (ring-session.ts): its settings, the
 * events it tells its owner (the CLI, the launcher, or a browser tab's
 * page), and its result. Browser-safe.
 */
import type { TopkRingError } from '../../shared/errors.ts';
import type { SignalingClient } from '../../shared/signaling-client.ts';
import type {
  Ejection,
  SuspectReason,
} from '../../shared/signaling-protocol.ts';
import type { StepRecord, Trainer } from '../training/trainer.ts';
import type { RingConnector } from './connector.ts';
import type { Totals } from './reports.ts';

/** Where a peer sits in the ring of one generation. */
export interface Placement {
  readonly generation: number;
  readonly ringIndex: number;
  /** P. */
  readonly peers: number;
}

/** Progress of a ring session. */
export type RingSessionEvent =
  | {
      /** The channels to both ring neighbours: connecting, then open. */
      readonly type: 'neighbours';
      readonly generation: number;
      readonly prev: string;
      readonly next: string;
      /** A ring of one: the neighbours are this peer itself. */
      readonly alone: boolean;
      readonly state: 'connecting' | 'open';
    }
  | {
      /** A neighbour's channel closed (it left or the connection broke). */
      readonly type: 'departed';
      readonly generation: number;
      readonly side: 'prev' | 'next';
      readonly peerId: string;
    }
  | {
      /** This peer told the server a neighbour misbehaves; the verdict
       * (`ejected`, `strike`) or the refusal's error code. */
      readonly type: 'suspected';
      readonly generation: number;
      readonly peerId: string;
      readonly reason: SuspectReason;
      readonly verdict: string;
    }
  | {
      /** The server took this peer out of the ring for a while. */
      readonly type: 'ejected';
      readonly ejection: Ejection;
    }
  | {
      /** The ring is a new run's and smaller than the room's minPeers. */
      readonly type: 'waiting';
      readonly minPeers: number;
    }
  | ({
      /** A generation is ready: its first step comes next. */
      readonly type: 'generation';
      readonly totalSteps: number;
    } & Placement)
  | {
      readonly type: 'step';
      readonly record: StepRecord;
      readonly totals: Totals;
      readonly totalSteps: number;
    }
  | {
      /** A step (or a generation's start) failed; a new ring is awaited. */
      readonly type: 'step-failed';
      readonly generation: number;
      readonly error: TopkRingError;
    }
  | {
      /**
       * The run is complete here, but the server put ring members back
       * (benched ones, or newcomers) that need the final weights: this
       * peer hands them on in `generation` before it leaves.
       */
      readonly type: 'handing-on';
      readonly generation: number;
    }
  | {
      readonly type: 'evaluation';
      readonly step: number;
      readonly epoch: number;
      readonly loss: number;
      readonly accuracy?: number;
    };

/** Settings of a {@link RingSession}. */
export interface RingSessionOptions {
  /** Joined to the room already. */
  readonly client: SignalingClient;
  /** The model, residual and data of this peer. */
  readonly trainer: Trainer;
  /**
   * Connects the ring of each generation; made by `ringConnector` (ring-session.ts)
   * right after joining, so no neighbour's offer made while this peer was
   * still loading is lost.
   */
  readonly connector: RingConnector;
  readonly room: string;
  /** The TensorFlow.js backend, as reported to the server. */
  readonly backend: string;
  /** False when this peer holds weights already (resumed checkpoint). */
  readonly fresh: boolean;
  /** Stops the session between steps. */
  readonly signal?: AbortSignal;
  /** Receives progress. Must not throw. */
  readonly onEvent?: (event: RingSessionEvent) => void;
  /**
   * Readies the data of a generation before its first step (a tab
   * downloads its shard). Runs while the ring connects, unless the ring
   * is likely to wait for more peers first.
   */
  readonly prepareGeneration?: (placement: Placement) => Promise<void>;
  /** Saves a checkpoint after `checkpointEvery` steps and at the end. */
  readonly checkpoint?: (placement: Placement) => Promise<void>;
}

/** What a session did, for its owner's summary. */
export interface RingSessionResult extends Totals {
  /** Steps completed. */
  readonly steps: number;
  readonly testLoss: number;
  readonly testAccuracy?: number;
  readonly testSamples: number;
  readonly modelHash: string;
  readonly generations: number;
  /** True when stopped early through `signal` or `RingSession.leaveNow`. */
  readonly stopped: boolean;
}

/**
 * The straggler deadline of a step, and how a peer tells a straggler from
 * its victims. Browser-safe.
 *
 * In a ring everybody waits when one peer is slow, so the time a step
 * takes blames nobody. The first message of a step's all-reduce is
 * different: at hop 0 every peer sends its own slice, which depends on
 * nothing but its own gradient. So a peer that waits long for its
 * previous peer's hop-0 message knows that this very peer computed late;
 * the peers further round the ring wait at later hops, for messages that
 * depend on the straggler, and accuse nobody.
 *
 * "Long" is relative to this peer's own recent compute time (gradient
 * and TopK selection, which exclude waiting): the deadline is
 * `stragglerFactor` times its median over the last steps, at least
 * `stragglerMinMs`, at most `stepTimeoutMs`.
 * A miss is reported to the server as a straggler accusation (a strike),
 * and the step goes on: the server drops the accused from the ring only
 * when it keeps missing (`stragglerStrikes` within `stragglerWindowSteps`
 * steps), so one slow step costs nothing more than its slowness.
 *
 * TODO(#6): a peer whose uplink is slow, not its compute, shows the same
 * hop-0 wait and is dropped the same way; telling the two apart (and
 * placing such a peer where its link matters less) is left open.
 */
import type { RoomLimits } from '../../shared/config.ts';
import type { MessageKey, RingLink } from '../../shared/link.ts';
import type { PeerMessage } from '../../shared/protocol.ts';

/** Compute times kept for the median. */
const WINDOW = 16;
/** Steps measured before any deadline applies. */
const MIN_SAMPLES = 3;

/** A peer's recent compute times and the deadline they give. */
export class StragglerDeadline {
  readonly #limits: Pick<
    RoomLimits,
    'stragglerFactor' | 'stragglerMinMs' | 'stepTimeoutMs'
  >;
  readonly #samples: number[] = [];

  constructor(
    limits: Pick<
      RoomLimits,
      'stragglerFactor' | 'stragglerMinMs' | 'stepTimeoutMs'
    >,
  ) {
    this.#limits = limits;
  }

  /** Adds the compute time (gradient plus selection) of a step. */
  record(computeMs: number): void {
    if (!Number.isFinite(computeMs) || computeMs < 0) return;
    this.#samples.push(computeMs);
    if (this.#samples.length > WINDOW) this.#samples.shift();
  }

  /** The median of the recent compute times, or undefined. */
  medianMs(): number | undefined {
    if (this.#samples.length < MIN_SAMPLES) return undefined;
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1
      ? sorted[mid]!
      : (sorted[mid - 1]! + sorted[mid]!) / 2;
  }

  /** How long to wait for the hop-0 message; undefined while learning. */
  deadlineMs(): number | undefined {
    const median = this.medianMs();
    if (median === undefined) return undefined;
    const { stragglerFactor, stragglerMinMs, stepTimeoutMs } = this.#limits;
    return Math.min(
      stepTimeoutMs,
      Math.max(stragglerMinMs, stragglerFactor * median),
    );
  }
}

/** True for the key of a hop-0 all-reduce message (phase = 3 hop + code). */
export function isFirstHop(key: MessageKey): boolean {
  return key.phase < 3;
}

/**
 * `link` with a watch on its hop-0 receive: when the message has not
 * arrived `deadlineMs` after it was asked for, `onMiss` is called once
 * (with the wait so far); the receive itself goes on. Everything else
 * passes through.
 */
export function watchFirstHop(
  link: RingLink,
  deadlineMs: number,
  onMiss: (waitedMs: number, key: MessageKey) => void,
): RingLink {
  let missed = false;
  return {
    sendNext: (message, signal) => link.sendNext(message, signal),
    receivePrev(key, signal): Promise<PeerMessage> {
      const received = link.receivePrev(key, signal);
      if (missed || !isFirstHop(key)) return received;
      const startMs = performance.now();
      const timer = setTimeout(() => {
        missed = true;
        onMiss(performance.now() - startMs, key);
      }, deadlineMs);
      const stop = () => clearTimeout(timer);
      received.then(stop, stop);
      return received;
    },
    get bytesSent() {
      return link.bytesSent;
    },
    get bytesReceived() {
      return link.bytesReceived;
    },
  };
}

/**
 * What the dashboard page knows about one room: every peer's points (as
 * the server's history and live updates give them) and the latest status,
 * and the same points lined up on one grid of steps for the charts, with
 * the room's means per step.
 *
 * The server buckets every peer of a room on one grid of steps, so lining
 * them up is filling columns by step, not interpolating.
 */
import type {
  DashboardUpdate,
  PeerHistory,
  RoomHistory,
  SeriesColumns,
} from '../../shared/dashboard-protocol.ts';
import { short } from '../../shared/format.ts';
import type { RoomStatus } from '../../shared/signaling-protocol.ts';

/** A peer's details without its points. */
export type PeerMeta = Omit<PeerHistory, 'points'>;

interface PeerSeries {
  meta: PeerMeta;
  points: SeriesColumns;
}

/** A value per step, null where there is none. */
export type Column = (number | null)[];

/** The room's points lined up on one grid of steps. */
export interface ChartView {
  readonly steps: number[];
  /** Peers in chart order: ring order, then departed ones. */
  readonly peerIds: string[];
  readonly loss: Column[];
  readonly accuracy: Column[];
  /** Means over the peers that have a value at a step. */
  readonly mean: Readonly<
    Record<
      | 'sentPerStep'
      | 'receivedPerStep'
      | 'densePerStep'
      | 'computeMs'
      | 'selectMs'
      | 'communicateMs'
      | 'compressionError',
      Column
    >
  >;
  /** Mean dense bytes over mean sent bytes, per step. */
  readonly ratio: Column;
}

type ColumnName = Exclude<keyof SeriesColumns, 'step'>;
const COLUMNS: readonly ColumnName[] = [
  'loss',
  'accuracy',
  'sentPerStep',
  'receivedPerStep',
  'densePerStep',
  'computeMs',
  'selectMs',
  'communicateMs',
  'compressionError',
];

/** One room as the page holds it. */
export class RoomModel {
  readonly room: string;
  bucketSteps = 1;
  maxPointsPerPeer = 0;
  status: RoomStatus | null = null;
  /** Set once the first update has arrived. */
  loaded = false;
  readonly #peers = new Map<string, PeerSeries>();
  /** Peer ids in the order first seen: each keeps its colour. */
  readonly #seen: string[] = [];

  constructor(room: string) {
    this.room = room;
  }

  /**
   * Applies a live update. Returns false when it cannot be applied (its
   * bucket width is not the one held): the caller fetches the whole
   * history and calls {@link replace}.
   */
  apply(update: DashboardUpdate): boolean {
    this.status = update.status;
    if (update.full) {
      this.replace(update.history);
      return true;
    }
    if (update.history.peers.length === 0) return true;
    if (update.history.bucketSteps !== this.bucketSteps) return false;
    for (const peer of update.history.peers) {
      this.#merge(peer, update.history.sinceStep);
    }
    return true;
  }

  /** Replaces every peer's points with `history`. */
  replace(history: RoomHistory): void {
    this.bucketSteps = history.bucketSteps;
    this.maxPointsPerPeer = history.maxPointsPerPeer;
    this.#peers.clear();
    for (const peer of history.peers) this.#merge(peer, 0);
    this.loaded = true;
  }

  /** Details of every peer with history, by id. */
  meta(id: string): PeerMeta | undefined {
    return this.#peers.get(id)?.meta;
  }

  /** Every peer with history. */
  peerIds(): string[] {
    return [...this.#peers.keys()];
  }

  /** Points held per peer, at most. */
  largestSeries(): number {
    let largest = 0;
    for (const peer of this.#peers.values()) {
      largest = Math.max(largest, peer.points.step.length);
    }
    return largest;
  }

  /** The last value of `column` for peer `id`, or null. */
  latest(id: string, column: ColumnName): number | null {
    const values = this.#peers.get(id)?.points[column];
    if (values === undefined) return null;
    for (let i = values.length - 1; i >= 0; i--) {
      const value = values[i];
      if (value !== null && value !== undefined) return value;
    }
    return null;
  }

  /** A stable index per peer, for its colour. */
  colorIndex(id: string): number {
    let index = this.#seen.indexOf(id);
    if (index < 0) {
      this.#seen.push(id);
      index = this.#seen.length - 1;
    }
    return index;
  }

  /** The points lined up for the charts. */
  view(): ChartView {
    const peerIds = this.#chartOrder();
    const stepSet = new Set<number>();
    for (const id of peerIds) {
      for (const step of this.#peers.get(id)!.points.step) stepSet.add(step);
    }
    const steps = [...stepSet].sort((a, b) => a - b);
    const at = new Map(steps.map((step, i) => [step, i]));

    const lined = (column: ColumnName): Column[] =>
      peerIds.map((id) => {
        const points = this.#peers.get(id)!.points;
        const out: Column = new Array<number | null>(steps.length).fill(null);
        points.step.forEach((step, i) => {
          out[at.get(step)!] = points[column][i] ?? null;
        });
        return out;
      });
    // Peers of the ring that report: a step is complete once all have.
    const reporting = (this.status?.peers ?? []).filter((p) =>
      this.#peers.has(p.id),
    ).length;
    const mean = (column: ColumnName): Column =>
      meanOf(lined(column), reporting);

    const sent = mean('sentPerStep');
    const dense = mean('densePerStep');
    return {
      steps,
      peerIds,
      loss: lined('loss'),
      accuracy: lined('accuracy'),
      mean: {
        sentPerStep: sent,
        receivedPerStep: mean('receivedPerStep'),
        densePerStep: dense,
        computeMs: mean('computeMs'),
        selectMs: mean('selectMs'),
        communicateMs: mean('communicateMs'),
        compressionError: mean('compressionError'),
      },
      ratio: sent.map((s, i) => {
        const d = dense[i];
        return s !== null && s > 0 && d !== null && d !== undefined
          ? d / s
          : null;
      }),
    };
  }

  /** Peers of the ring in ring order, then those that left. */
  #chartOrder(): string[] {
    const ring = (this.status?.peers ?? [])
      .map((p) => p.id)
      .filter((id) => this.#peers.has(id));
    const inRing = new Set(ring);
    const departed = [...this.#peers.keys()].filter((id) => !inRing.has(id));
    for (const id of [...ring, ...departed]) this.colorIndex(id);
    return [...ring, ...departed];
  }

  /** Replaces `peer`'s points from `sinceStep` on with the ones given. */
  #merge(peer: PeerHistory, sinceStep: number): void {
    const { points, ...meta } = peer;
    this.colorIndex(peer.id);
    const held = this.#peers.get(peer.id);
    if (held === undefined) {
      this.#peers.set(peer.id, { meta, points: copyColumns(points) });
      return;
    }
    held.meta = meta;
    const cut = firstAtOrAfter(held.points.step, sinceStep);
    held.points.step.length = cut;
    held.points.step.push(...points.step);
    for (const column of COLUMNS) {
      held.points[column].length = cut;
      held.points[column].push(...points[column]);
    }
  }
}

function copyColumns(points: SeriesColumns): SeriesColumns {
  return {
    step: [...points.step],
    loss: [...points.loss],
    accuracy: [...points.accuracy],
    sentPerStep: [...points.sentPerStep],
    receivedPerStep: [...points.receivedPerStep],
    densePerStep: [...points.densePerStep],
    computeMs: [...points.computeMs],
    selectMs: [...points.selectMs],
    communicateMs: [...points.communicateMs],
    compressionError: [...points.compressionError],
  };
}

function firstAtOrAfter(steps: readonly number[], step: number): number {
  let low = 0;
  let high = steps.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (steps[mid]! < step) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Newest points a mean may hide while waiting for slower peers. */
const MAX_TRAILING_HIDDEN = 32;

/**
 * The mean of each position over the columns with a value there. The
 * newest positions that fewer than `expected` peers have reported yet are
 * left out (at most {@link MAX_TRAILING_HIDDEN}): a mean over the peers
 * that are ahead would jump.
 */
function meanOf(columns: readonly Column[], expected: number): Column {
  const length = columns[0]?.length ?? 0;
  const out: Column = new Array<number | null>(length).fill(null);
  const counts = new Array<number>(length).fill(0);
  for (let i = 0; i < length; i++) {
    let sum = 0;
    for (const column of columns) {
      const value = column[i];
      if (value === null || value === undefined) continue;
      sum += value;
      counts[i]! += 1;
    }
    if (counts[i]! > 0) out[i] = sum / counts[i]!;
  }
  const stop = Math.max(1, length - MAX_TRAILING_HIDDEN);
  for (let end = length - 1; end >= stop && counts[end]! < expected; end--) {
    out[end] = null;
  }
  return out;
}

/**
 * The ring's faults in words, or null when there were none: who is
 * benched now (taken out of the ring after a neighbour reported it), why
 * and for how long yet, how many ejections the room has seen, and how
 * many stalled steps made the server restart the ring.
 */
export function faultSummary(status: RoomStatus, nowMs: number): string | null {
  const parts: string[] = [];
  if (status.benched.length > 0) {
    const peers = status.benched.map((b) => {
      const seconds = Math.max(0, Math.ceil((b.untilMs - nowMs) / 1000));
      return (
        `${short(b.id)} (${b.reason}, back in ${seconds} s` +
        (b.ejections > 1 ? `, ejected ${b.ejections} times` : '') +
        ')'
      );
    });
    parts.push(`Benched: ${peers.join(', ')}`);
  }
  if (status.ejectionCount > 0) {
    const last = status.ejections.at(-1);
    parts.push(
      `${status.ejectionCount} ejection${status.ejectionCount === 1 ? '' : 's'}` +
        (last === undefined
          ? ''
          : `, last ${short(last.peerId)} (${last.reason}) reported by ` +
            `${short(last.accuser)} at step ${last.step}`),
    );
  }
  if (status.stallCount > 0) {
    const last = status.stalls.at(-1);
    parts.push(
      `${status.stallCount} stalled step${status.stallCount === 1 ? '' : 's'} ` +
        'restarted' +
        (last === undefined
          ? ''
          : `, last at step ${last.step} (reported by ${short(last.peerId)})`),
    );
  }
  return parts.length === 0 ? null : parts.join(' · ');
}
